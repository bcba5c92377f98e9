// `clothtag bench gemm`: GFLOP/s of the engine's GEMM against TensorFlow.js WebGPU's matMul,
// same adapter, same process, both timed with timestamp queries.
import type { Engine } from '../src/engine/engine.js';
import { castTensor } from '../src/engine/cast.js';
import { matmul } from '../src/engine/gemm.js';
import { measureRoof } from './roof.js';
import { loadTfjs, timeTfjs } from './tfjs.js';
import { table, timeKernels } from './timing.js';

export interface GemmCase {
  name: string;
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
}

/** Square sizes, then the shapes of linear layers (batch 16) forward and backward. */
export function gemmCases(quick: boolean): GemmCase[] {
  const square = (quick ? [128, 256, 512] : [128, 256, 512, 1024]).map((n) => ({ name: `square ${n}`, M: n, N: n, K: n }));
  const linear: GemmCase[] = [
    { name: 'fc 2048->50 fwd (x·Wᵀ)', M: 16, N: 50, K: 2048, transB: true },
    { name: 'fc 2048->1000 fwd (x·Wᵀ)', M: 16, N: 1000, K: 2048, transB: true },
    { name: 'fc 2048->1000 dX (g·W)', M: 16, N: 2048, K: 1000 },
    { name: 'fc 2048->1000 dW (gᵀ·x)', M: 1000, N: 2048, K: 16, transA: true },
    { name: 'fc 4096->4096 fwd (x·Wᵀ)', M: 16, N: 4096, K: 4096, transB: true },
  ];
  return [...square, ...(quick ? linear.slice(0, 3) : linear)];
}

export interface GemmResult extends GemmCase {
  gflops: number;
  /** The same GEMM on f16 operands (f32 accumulation), where the adapter has shader-f16. */
  halfGflops: number | null;
  /** gflops as a fraction of the adapter's FMA peak measured in the same run (bench roof). */
  fractionOfPeak: number;
  baselineGflops: number | null;
}

export async function benchGemm(engine: Engine, opts: { quick?: boolean; reps?: number; log?: (s: string) => void } = {}): Promise<GemmResult[]> {
  const log = opts.log ?? console.log;
  const reps = opts.reps ?? 5;
  const tf = await loadTfjs(engine.device);
  if (!tf) log('TensorFlow.js is not installed (npm install --include=dev): no baseline column.');
  const { fmaGflops } = await measureRoof(engine, reps);
  log(`FMA peak on this adapter: ${fmaGflops.toFixed(1)} GFLOP/s`);
  const results: GemmResult[] = [];
  for (const c of gemmCases(!!opts.quick)) {
    const flops = 2 * c.M * c.N * c.K;
    const a = engine.full(c.transA ? [c.K, c.M] : [c.M, c.K], 0.5);
    const b = engine.full(c.transB ? [c.N, c.K] : [c.K, c.N], 0.25);
    const ms = await timeKernels(engine, () => void matmul(a, b, { transA: c.transA, transB: c.transB }), reps);
    let halfMs: number | null = null;
    if (engine.hasF16) {
      const ah = castTensor(a, 'f16'), bh = castTensor(b, 'f16');
      halfMs = await timeKernels(engine, () => void matmul(ah, bh, { transA: c.transA, transB: c.transB }), reps);
      ah.dispose();
      bh.dispose();
    }
    let baseline: number | null = null;
    if (tf) {
      const ta = tf.randomNormal(c.transA ? [c.K, c.M] : [c.M, c.K]);
      const tb = tf.randomNormal(c.transB ? [c.N, c.K] : [c.K, c.N]);
      const tms = await timeTfjs(tf, () => tf.matMul(ta, tb, !!c.transA, !!c.transB), reps);
      baseline = flops / tms / 1e6;
      ta.dispose();
      tb.dispose();
    }
    a.dispose();
    b.dispose();
    const r = { ...c, gflops: flops / ms / 1e6, halfGflops: halfMs ? flops / halfMs / 1e6 : null, baselineGflops: baseline, fractionOfPeak: flops / ms / 1e6 / fmaGflops };
    results.push(r);
    log(`  ${c.name.padEnd(28)} ${r.gflops.toFixed(2).padStart(7)} GFLOP/s   f16 operands ${r.halfGflops?.toFixed(2) ?? '-'}   tfjs ${baseline?.toFixed(2) ?? '-'}`);
  }
  return results;
}

export function gemmTable(results: GemmResult[]): string {
  return table(
    results.map((r) => [r.name, `${r.M}x${r.N}x${r.K}`, r.gflops.toFixed(2), `${(100 * r.fractionOfPeak).toFixed(0)}%`, r.halfGflops?.toFixed(2) ?? '-', r.baselineGflops?.toFixed(2) ?? '-', r.baselineGflops ? (r.gflops / r.baselineGflops).toFixed(2) + 'x' : '-']),
    ['case', 'M x N x K', 'clothtag GFLOP/s', 'of FMA peak', 'f16 operands', 'tfjs-webgpu GFLOP/s', 'ratio'],
  );
}

export function geomean(xs: number[]): number {
  return Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length);
}
