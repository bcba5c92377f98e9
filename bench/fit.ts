// `clothtag bench fit`: a training step's device memory against its analytic floor, and the
// largest batch of each network that trains within a memory budget (4 GiB by default) — measured
// by dry runs (engine countOnly: every tensor counted at its pool size, nothing allocated or run),
// so 224x224 batches of hundreds are sized in seconds on any adapter.
import { savedBytes } from '../src/autograd/tape.js';
import type { Engine } from '../src/engine/engine.js';
import type { Tensor } from '../src/engine/tensor.js';
import { type NetName, createNet } from '../src/nets/models.js';
import { syntheticBatch } from '../src/run/tune.js';
import { THESIS_LOSS } from '../src/train/losses.js';
import { Trainer } from '../src/train/step.js';
import { table } from './timing.js';

export interface StepMemory {
  /** The high-water mark of live tensors over one training step (pool size classes). */
  peakBytes: number;
  /** The weights' state: parameters, gradients and Adam's two moments, f32 (16 bytes a parameter). */
  stateBytes: number;
  /** What backward reads: the activations, statistics and copies the recorded ops saved. */
  activationBytes: number;
  /**
   * stateBytes + activationBytes: the analytic floor. It counts the gradients beside every saved
   * activation, though backward frees activations as the gradients appear (backward's release), so
   * a step can peak a little under it.
   */
  floorBytes: number;
  /** The largest single tensor (an adapter's maxStorageBufferBindingSize caps it). */
  largestTensorBytes: number;
}

export interface StepShape {
  net: NetName;
  width: number;
  size: number;
  batch: number;
  precision: 'f32' | 'mixed';
}

/**
 * One training step's memory, by a dry run: the network, its optimizer state and the step are
 * built in countOnly mode (a first step creates Adam's moments; the second is measured).
 */
export function stepMemory(engine: Engine, s: StepShape): StepMemory {
  return engine.with({ countOnly: true, mixedPrecision: s.precision === 'mixed' }, () => {
    const base = engine.stats.allocatedBytes; // whatever else the engine holds is not this step's
    const net = createNet(engine, { net: s.net, categories: 50, attributes: 1000, width: s.width, seed: 1 });
    const trainer = new Trainer(net, { ...THESIS_LOSS, landmarkLoss: s.net === 'new_fashionnet' ? 'ssim' : 'mse' }, 1e-4);
    const batch = syntheticBatch(net, s.batch, s.size);
    const step = (k: number, seen?: (total: Tensor) => void) => {
      const terms = trainer.step(batch, k, seen);
      for (const t of new Set(Object.values(terms))) t?.dispose();
    };
    try {
      step(0);
      engine.resetPeak();
      let activationBytes = 0;
      step(1, (total) => (activationBytes = savedBytes(total)));
      const stateBytes = 16 * net.parameterCount();
      return { peakBytes: engine.stats.peakBytes - base, stateBytes, activationBytes, floorBytes: stateBytes + activationBytes, largestTensorBytes: engine.stats.largestTensorBytes };
    } finally {
      trainer.dispose();
      net.dispose();
    }
  });
}

/**
 * The largest batch whose step peaks within `budgetBytes` (0 when not even one image fits), by
 * doubling and then bisection over dry runs; `limit` caps the search. Also the step at that batch.
 */
export function largestBatch(engine: Engine, s: Omit<StepShape, 'batch'>, budgetBytes: number, limit = 4096): { batch: number; memory: StepMemory | null } {
  const fits = new Map<number, StepMemory | null>();
  const probe = (batch: number) => {
    if (!fits.has(batch)) {
      const m = stepMemory(engine, { ...s, batch });
      fits.set(batch, m.peakBytes <= budgetBytes ? m : null);
    }
    return fits.get(batch)!;
  };
  // Training-mode BatchNorm needs two values a channel: the smallest batch tried is 2.
  if (!probe(2)) return { batch: 0, memory: null };
  let lo = 2, hi = 4;
  while (hi <= limit && probe(hi)) [lo, hi] = [hi, hi * 2];
  if (hi > limit) return { batch: lo, memory: probe(lo) };
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (probe(mid)) lo = mid;
    else hi = mid;
  }
  return { batch: lo, memory: probe(lo) };
}

export interface FitOptions {
  nets: readonly NetName[];
  size: number;
  width: number;
  budgetMiB: number;
  precisions: readonly ('f32' | 'mixed')[];
  log: (s: string) => void;
}

export interface FitRow extends Omit<StepShape, 'batch'> {
  budgetMiB: number;
  /** The largest batch that fits (0: not even 2 images). */
  batch: number;
  /** The step at that batch. */
  memory: StepMemory | null;
}

export function benchFit(engine: Engine, o: FitOptions): FitRow[] {
  const MiB = (b: number) => (b / 2 ** 20).toFixed(0);
  const rows: FitRow[] = [];
  for (const net of o.nets) {
    for (const precision of o.precisions) {
      const { batch, memory } = largestBatch(engine, { net, width: o.width, size: o.size, precision }, o.budgetMiB * 2 ** 20);
      rows.push({ net, width: o.width, size: o.size, precision, budgetMiB: o.budgetMiB, batch, memory });
      o.log(`${net} ${precision}: batch ${batch}`);
    }
  }
  const cells = (m: StepMemory | null) => (m ? [MiB(m.peakBytes), MiB(m.floorBytes), MiB(m.activationBytes), (m.peakBytes / m.floorBytes).toFixed(2), MiB(m.largestTensorBytes)] : ['-', '-', '-', '-', '-']);
  o.log(table(rows.map((r) => [r.net, r.precision, r.batch, ...cells(r.memory)]), ['network', 'precision', 'largest batch', 'peak MiB', 'floor MiB', 'activations MiB', 'peak / floor', 'largest tensor MiB']));
  const limit = engine.maxTensorBytes;
  const over = rows.filter((r) => r.memory && r.memory.largestTensorBytes > limit);
  if (over.length) o.log(`on this adapter one tensor may hold at most ${MiB(limit)} MiB (maxStorageBufferBindingSize): ${over.map((r) => `${r.net} ${r.precision}`).join(', ')} would need smaller batches here, whatever the memory`);
  return rows;
}
