// `clothtag bench memory`: the bandwidth-bound kernels (BatchNorm, elementwise, Adam, SSIM, the
// f16 cast) on one activation-sized tensor (4 MiB), as GB/s of the bytes they must move at least
// and as a fraction of this adapter's own copy rate on the same 4 MiB, measured in the same run
// (bench roof's copy streams 128 MiB, beyond the caches a 4 MiB tensor still fits in).
import { ADAM_COUNTER_SIZE, adamBegin, adamCounterValues, adamStep } from '../src/engine/adam.js';
import { castTensor } from '../src/engine/cast.js';
import type { Engine } from '../src/engine/engine.js';
import { accumulate, binary, unary } from '../src/engine/elementwise.js';
import { batchNorm, batchNormBackward } from '../src/engine/norm.js';
import { ssimLoss, ssimLossBackward } from '../src/engine/ssim.js';
import { measureRoof } from './roof.js';
import { table, timeKernels } from './timing.js';

export interface MemoryRecord {
  kernel: string;
  shape: string;
  /** Bytes each run must read and write at the least (every input once, every output once). */
  bytes: number;
  ms: number;
  gbs: number;
  fraction_of_copy: number;
}

export async function benchMemory(engine: Engine, o: { reps: number; log: (s: string) => void }): Promise<{ copyGBs: number; streamingCopyGBs: number; records: MemoryRecord[] }> {
  const roof = await measureRoof(engine, o.reps);
  const shape = [16, 64, 32, 32];
  const n = shape.reduce((a, b) => a * b, 1);
  const MB = n * 4;
  const x = engine.full(shape, 0.5), y = engine.full(shape, 0.25), dy = engine.full(shape, 0.1);
  const copyOut = engine.empty(shape);
  const copyMs = await timeKernels(engine, () => engine.run({ kernel: 'roof', entry: 'copy', uniforms: { n: n / 4, iters: 0 }, inputs: { x }, outputs: { out: copyOut }, workgroups: Math.ceil(n / 4 / 256) }), o.reps);
  const copyGBs = (2 * MB) / copyMs / 1e6;
  o.log(`copy on this adapter: ${copyGBs.toFixed(2)} GB/s on ${(MB / 2 ** 20).toFixed(0)} MiB, ${roof.copyGBs.toFixed(2)} GB/s streaming 128 MiB`);
  const C = shape[1]!;
  const s = { gamma: engine.full([C], 1), beta: engine.zeros([C]), runningMean: engine.zeros([C]), runningVar: engine.full([C], 1), eps: 1e-5, momentum: 0.1 };
  const f = batchNorm(x, s, true, true);
  const h = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };
  const p = engine.full([n], 1), m = engine.zeros([n]), v = engine.zeros([n]);
  const counter = engine.tensor(adamCounterValues(0, h), [ADAM_COUNTER_SIZE]);
  const hm = [16, 8, 64, 64], hn = hm.reduce((a, b) => a * b, 1);
  const heat = engine.full(hm, 0.3), target = engine.full(hm, 0.5), mask = engine.full([16, 8], 1);
  const sf = ssimLoss(heat, target, mask);
  const one = engine.full([1], 1);
  const cases: [string, string, number, () => void][] = [
    ['BatchNorm forward (stats + apply, ReLU)', shape.join('x'), 2 * MB, () => void batchNorm(x, s, true, true)],
    ['BatchNorm backward (reduce + apply, ReLU)', shape.join('x'), 4 * MB, () => void batchNormBackward(dy, x, f, s, true, true)],
    ['ReLU', shape.join('x'), 2 * MB, () => void unary('relu', x)],
    ['add', shape.join('x'), 3 * MB, () => void binary('add', x, y)],
    ['add + ReLU (residual join)', shape.join('x'), 3 * MB, () => void binary('add_relu', x, y)],
    ['accumulate (acc += x)', shape.join('x'), 3 * MB, () => accumulate(y, x)],
    ['Adam (one parameter tensor)', `${n}`, 7 * MB, () => (adamBegin(counter, h), adamStep(p, dy.view([n]), m, v, h, counter))],
    ['cast f32 -> f16', shape.join('x'), MB + MB / 2, () => void castTensor(x, 'f16')],
    ['SSIM loss forward', hm.join('x'), 2 * hn * 4, () => void ssimLoss(heat, target, mask)],
    ['SSIM loss backward', hm.join('x'), 3 * hn * 4, () => void ssimLossBackward(heat, target, sf, one)],
  ];
  const records: MemoryRecord[] = [];
  for (const [kernel, shapeName, bytes, run] of cases) {
    if (kernel.startsWith('cast') && !engine.hasF16) continue;
    const ms = await timeKernels(engine, run, o.reps);
    const gbs = bytes / ms / 1e6;
    const r = { kernel, shape: shapeName, bytes, ms, gbs, fraction_of_copy: gbs / copyGBs };
    records.push(r);
    o.log(`  ${kernel.padEnd(42)} ${ms.toFixed(3).padStart(8)} ms  ${gbs.toFixed(2).padStart(6)} GB/s  ${(100 * r.fraction_of_copy).toFixed(0).padStart(3)}% of copy`);
  }
  return { copyGBs, streamingCopyGBs: roof.copyGBs, records };
}

export function memoryTable(records: MemoryRecord[]): string {
  return table(
    records.map((r) => [r.kernel, r.shape, (r.bytes / 2 ** 20).toFixed(1), r.ms.toFixed(3), r.gbs.toFixed(2), `${(100 * r.fraction_of_copy).toFixed(0)}%`]),
    ['kernel', 'shape', 'MiB moved', 'ms', 'GB/s', 'of copy'],
  );
}
