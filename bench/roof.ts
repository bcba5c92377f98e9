// `clothtag bench roof`: the adapter's arithmetic peak and streaming bandwidth, measured with
// kernels/roof.wgsl, so that other numbers can be read as fractions of what this adapter can do.
import type { Engine } from '../src/engine/engine.js';
import { timeKernels } from './timing.js';

export interface Roof {
  /** GFLOP/s of independent register FMAs (2 flops each). */
  fmaGflops: number;
  /** GB/s of a vec4 copy (bytes read + written). */
  copyGBs: number;
}

export async function measureRoof(engine: Engine, reps = 5): Promise<Roof> {
  const threads = 64 * 1024, iters = 256;
  const x = engine.full([threads * 4], 1), out = engine.empty([threads * 4]);
  const fmaMs = await timeKernels(engine, () => engine.run({ kernel: 'roof', entry: 'fma_peak', uniforms: { n: threads, iters }, inputs: { x }, outputs: { out }, workgroups: threads / 256 }), reps);
  const fmaGflops = (threads * iters * 16 * 4 * 2) / fmaMs / 1e6;
  const n = 8 * 1024 * 1024; // vec4s: 128 MiB read + 128 MiB written... capped to the binding limit
  const vecs = Math.min(n, Math.floor(engine.maxTensorBytes / 16));
  const a = engine.full([vecs * 4], 1), b = engine.empty([vecs * 4]);
  const copyMs = await timeKernels(engine, () => engine.run({ kernel: 'roof', entry: 'copy', uniforms: { n: vecs, iters: 0 }, inputs: { x: a }, outputs: { out: b }, workgroups: Math.ceil(vecs / 256) }), reps);
  const copyGBs = (vecs * 16 * 2) / copyMs / 1e6;
  for (const t of [x, out, a, b]) t.dispose();
  return { fmaGflops, copyGBs };
}
