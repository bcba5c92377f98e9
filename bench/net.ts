// `clothtag bench net`: a network's training throughput and where one step's time goes —
// GPU kernels by family, the CPU's recording and submission overhead, and the data loading
// (decode + crop + resize + targets) that the loader threads must hide.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Engine, KernelTiming } from '../src/engine/engine.js';
import { loadBatch } from '../src/data/batch.js';
import { openDataset } from '../src/data/dataset.js';
import { datasetView } from '../src/data/loader.js';
import { synthesize } from '../src/data/synth.js';
import { type NetName, createNet } from '../src/nets/models.js';
import { syntheticBatch } from '../src/run/tune.js';
import { THESIS_LOSS } from '../src/train/losses.js';
import { Trainer } from '../src/train/step.js';
import { table } from './timing.js';

/** Which family a kernel belongs to, from its pipeline key. */
export function kernelFamily(key: string): string {
  if (key.startsWith('conv2d_grad_weight')) return 'conv backward-weight';
  if (key.startsWith('conv2d_grad_input')) return 'conv backward-data (and transposed conv)';
  if (key.startsWith('conv2d')) return 'conv forward';
  if (key.startsWith('gemm')) return 'GEMM (linear layers, 1x1 convs)';
  if (key.startsWith('batchnorm')) return 'BatchNorm';
  if (key.startsWith('adam')) return 'Adam';
  if (key.startsWith('reduce')) return 'reductions (bias gradients, broadcast sums)';
  if (/^(pool|resize|copy_channels)/.test(key)) return 'pooling, resize, concat';
  if (/^(xent|bce|mse|ssim|loss_mean)/.test(key)) return 'losses';
  return 'elementwise (ReLU, add, gradients)';
}

/**
 * The block a layer belongs to, for the per-layer profile: its dotted path up to and including
 * the first number (ResNet's `layer2.3`, VGG's `features.10`), else its first part.
 */
export function layerBlock(scope: string): string {
  if (!scope) return '(outside any layer: losses, optimizer)';
  const parts = scope.replace(/ \(backward\)$/, '').split('.');
  const i = parts.findIndex((p) => /^\d+$/.test(p));
  return i >= 0 ? parts.slice(0, i + 1).join('.') : parts[0]!;
}

/** Forward and backward milliseconds per key (a layer or a block). */
export function layerProfile(timings: readonly KernelTiming[], keyOf: (scope: string) => string): { key: string; forward: number; backward: number; dispatches: number }[] {
  const rows = new Map<string, { key: string; forward: number; backward: number; dispatches: number }>();
  for (const t of timings) {
    const key = keyOf(t.scope);
    const row = rows.get(key) ?? { key, forward: 0, backward: 0, dispatches: 0 };
    if (t.scope.endsWith(' (backward)')) row.backward += t.ms;
    else row.forward += t.ms;
    row.dispatches++;
    rows.set(key, row);
  }
  return [...rows.values()].sort((a, b) => b.forward + b.backward - a.forward - a.backward);
}

export interface NetBenchOptions {
  net: NetName;
  width: number;
  size: number;
  batch: number;
  steps: number;
  log: (s: string) => void;
}

export async function benchNet(engine: Engine, o: NetBenchOptions): Promise<Record<string, unknown>> {
  const net = createNet(engine, { net: o.net, categories: 50, attributes: 1000, width: o.width, seed: 1 });
  const trainer = new Trainer(net, { ...THESIS_LOSS, landmarkLoss: o.net === 'new_fashionnet' ? 'ssim' : 'mse' }, 1e-4);
  const n = o.batch, S = o.size;
  const batch = syntheticBatch(net, n, S);
  // The CPU's part of a step: recording it (trainer.step returns once every dispatch is encoded).
  let recordMs = 0;
  const step = async (k: number) => {
    const r0 = performance.now();
    const terms = trainer.step(batch, k);
    recordMs += performance.now() - r0;
    await terms.total.read();
    for (const t of new Set(Object.values(terms))) t?.dispose();
  };
  for (let k = 0; k < 2; k++) await step(k); // warm-up: pipelines, buffers
  // Device memory: the high-water mark of live tensors over one step, beside what the weights'
  // state alone takes (parameters, their gradients, Adam's two moments: 4 x the parameters).
  engine.resetPeak();
  await step(2);
  const peakBytes = engine.stats.peakBytes;
  const stateBytes = 4 * 4 * net.parameterCount();
  recordMs = 0;
  const t0 = performance.now();
  for (let k = 0; k < o.steps; k++) await step(k + 2);
  const stepMs = (performance.now() - t0) / o.steps;
  recordMs /= o.steps;
  let terms: ReturnType<Trainer['step']> | null = null;
  const timings = await engine.profileKernels(() => (terms = trainer.step(batch, 99)));
  const t = terms as ReturnType<Trainer['step']> | null;
  for (const x of new Set(Object.values(t ?? {}))) x?.dispose();
  const kernelMs = timings.reduce((s, k) => s + k.ms, 0);
  const families = new Map<string, { ms: number; count: number }>();
  for (const k of timings) {
    const f = families.get(kernelFamily(k.key)) ?? { ms: 0, count: 0 };
    f.ms += k.ms;
    f.count++;
    families.set(kernelFamily(k.key), f);
  }
  // Data loading for the same batch size, one thread (the loader spreads it over its threads).
  const dir = mkdtempSync(join(tmpdir(), 'clothtag-bench-net-'));
  synthesize(dir, { images: Math.max(n, 8), size: 128, seed: 1 });
  const view = datasetView(await openDataset(dir));
  const l0 = performance.now();
  loadBatch(view, Array.from({ length: n }, (_, i) => i % view.items.length), { size: S, augment: true, heatmaps: net.hasLandmarks }, 0);
  const loadMs = performance.now() - l0;
  trainer.dispose();
  net.dispose();

  o.log(`${o.net} width ${o.width}, ${S}x${S}, batch ${n}: ${((1000 * n) / stepMs).toFixed(1)} training images/s (${stepMs.toFixed(0)} ms a step, mean of ${o.steps})`);
  const rows = [...families].sort((a, b) => b[1].ms - a[1].ms).map(([f, v]) => [f, v.count, v.ms.toFixed(1), `${((100 * v.ms) / kernelMs).toFixed(0)}%`]);
  o.log(table(rows, ['kernels', 'dispatches', 'ms', 'share']));
  const blocks = layerProfile(timings, layerBlock);
  const layers = layerProfile(timings, (scope) => scope.replace(/ \(backward\)$/, '') || '(outside any layer: losses, optimizer)');
  const profileRow = (r: (typeof blocks)[number]) => [r.key, r.dispatches, r.forward.toFixed(1), r.backward.toFixed(1), `${((100 * (r.forward + r.backward)) / kernelMs).toFixed(0)}%`];
  o.log('per block of layers (forward and backward kernels of one step):');
  o.log(table(blocks.map(profileRow), ['block', 'dispatches', 'forward ms', 'backward ms', 'share']));
  o.log('the 12 most expensive layers:');
  o.log(table(layers.slice(0, 12).map(profileRow), ['layer', 'dispatches', 'forward ms', 'backward ms', 'share']));
  o.log(
    `a ${stepMs.toFixed(0)} ms step: recording it on the CPU ${recordMs.toFixed(1)} ms; the GPU kernels ${kernelMs.toFixed(0)} ms ` +
      `(${timings.length} dispatches, each timed in a pass of its own, which adds a little per dispatch); submission and readback the rest.`,
  );
  o.log(`device memory: a step's peak of live tensors ${(peakBytes / 2 ** 20).toFixed(1)} MB, of which the weights' state (parameters, gradients, Adam's moments) is ${(stateBytes / 2 ** 20).toFixed(1)} MB; the rest is activations kept for backward and temporaries (buffers rounded up to their pool size class).`);
  o.log(`data loading: ${loadMs.toFixed(0)} ms to decode, crop, resize and build targets for ${n} images in one thread (${((100 * loadMs) / stepMs).toFixed(0)}% of a step; the loader threads overlap it with the GPU).`);
  return { net: o.net, width: o.width, size: S, batch: n, imagesPerSecond: (1000 * n) / stepMs, stepMs, recordMs, kernelMs, peakBytes, stateBytes, dispatches: timings.length, loadMs, families: Object.fromEntries(families), blocks, layers: layers.slice(0, 40) };
}
