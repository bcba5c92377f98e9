// `clothtag bench net`: a network's training throughput and where one step's time goes —
// GPU kernels by family, the CPU's recording and submission overhead, and the data loading
// (decode + crop + resize + targets) that the loader threads must hide.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Engine, KernelTiming } from '../src/engine/engine.js';
import { loadBatch } from '../src/data/batch.js';
import { openDataset } from '../src/data/dataset.js';
import { datasetView } from '../src/data/loader.js';
import { synthesize } from '../src/data/synth.js';
import { type NetName, createNet } from '../src/nets/models.js';
import { syntheticBatch } from '../src/run/tune.js';
import { type LandmarkLoss, landmarkWeightFor, THESIS_LOSS } from '../src/train/losses.js';
import { savedBytes } from '../src/autograd/tape.js';
import { Trainer } from '../src/train/step.js';
import { measureRoof } from './roof.js';
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
  if (/^(xent|bce|mse|ssim|soft_argmax|loss_mean)/.test(key)) return 'losses';
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

/** What bench/torch_cpu.py reports: the same network's training step in PyTorch on this CPU. */
export interface TorchCpuResult {
  torch: string;
  threads: number;
  parameters: number;
  imagesPerSecond: number;
  stepMs: number;
}

/**
 * Runs bench/torch_cpu.py with the first Python that has PyTorch (CLOTHTAG_PYTHON, Debian's
 * /usr/bin/python3, then python3 on the PATH); `skipped`, with the reason, where there is none.
 */
export function torchCpuStep(o: { net: NetName; width: number; headWidth?: number; landmarkSkips?: boolean; size: number; batch: number; steps: number }): { result: TorchCpuResult } | { skipped: string } {
  const script = [new URL('./torch_cpu.py', import.meta.url), new URL('../../bench/torch_cpu.py', import.meta.url)].map((u) => fileURLToPath(u)).find(existsSync);
  if (!script) return { skipped: 'bench/torch_cpu.py is not beside this build' };
  const pythons = [process.env.CLOTHTAG_PYTHON, '/usr/bin/python3', 'python3'].filter((p): p is string => !!p);
  const python = pythons.find((p) => spawnSync(p, ['-c', 'import torch'], { stdio: 'ignore', timeout: 60_000 }).status === 0);
  if (!python) return { skipped: `no Python with PyTorch (tried ${pythons.join(', ')}; Debian: apt-get install python3-torch)` };
  const args = [script, '--net', o.net, '--width', String(o.width), '--size', String(o.size), '--batch', String(o.batch), '--steps', String(o.steps), '--threads', String(cpus().length), ...(o.headWidth ? ['--head-width', String(o.headWidth)] : []), ...(o.landmarkSkips ? ['--landmark-skips'] : [])];
  const r = spawnSync(python, args, { encoding: 'utf8', timeout: 1_800_000 });
  const line = r.stdout?.trim().split('\n').at(-1) ?? '';
  if (r.status !== 0 || !line.startsWith('{')) return { skipped: `${python} ${args.join(' ')} failed (exit ${r.status}): ${(r.stderr || r.stdout || '').trim().split('\n').at(-1)}` };
  return { result: JSON.parse(line) as TorchCpuResult };
}

export interface NetBenchOptions {
  net: NetName;
  width: number;
  size: number;
  batch: number;
  steps: number;
  /** f32, or mixed precision (f16 operands and saved activations; needs shader-f16). */
  precision?: 'f32' | 'mixed';
  /** Also time the same step in PyTorch on this CPU where it is installed (default true). */
  torch?: boolean;
  /**
   * The landmark networks as `train` builds them: the branches' own width (--head-width), the
   * branch joined to the trunk's finer maps (--landmark-skips) and the landmark objective
   * (default: the thesis's, SSIM for new_fashionnet and MSE for fashionnet, branch unjoined).
   */
  headWidth?: number;
  landmarkSkips?: boolean;
  landmarkLoss?: LandmarkLoss;
  log: (s: string) => void;
}

export async function benchNet(engine: Engine, o: NetBenchOptions): Promise<Record<string, unknown>> {
  const mixed = o.precision === 'mixed';
  return engine.with({ mixedPrecision: mixed }, () => benchNetIn(engine, o));
}

async function benchNetIn(engine: Engine, o: NetBenchOptions): Promise<Record<string, unknown>> {
  const net = createNet(engine, {
    net: o.net, categories: 50, attributes: 1000, width: o.width, seed: 1,
    ...(o.headWidth ? { headWidth: o.headWidth } : {}), ...(o.landmarkSkips ? { landmarkSkips: true } : {}),
  });
  const landmarkLoss = o.landmarkLoss ?? (o.net === 'new_fashionnet' ? 'ssim' : 'mse');
  const trainer = new Trainer(net, { ...THESIS_LOSS, landmarkLoss, wl: landmarkWeightFor(landmarkLoss) }, 1e-4);
  const n = o.batch, S = o.size;
  const batch = syntheticBatch(net, n, S, landmarkLoss === 'softargmax');
  // The CPU's part of a step: recording it (trainer.step returns once every dispatch is encoded).
  let recordMs = 0;
  let activationBytes = 0;
  const step = async (k: number, measure = false) => {
    const r0 = performance.now();
    const terms = trainer.step(batch, k, measure ? (total) => (activationBytes = savedBytes(total)) : undefined);
    recordMs += performance.now() - r0;
    await terms.total.read();
    for (const t of new Set(Object.values(terms))) t?.dispose();
  };
  for (let k = 0; k < 2; k++) await step(k); // warm-up: pipelines, buffers
  // Device memory: the high-water mark of live tensors over one step, beside its analytic floor:
  // the weights' state (parameters, their gradients, Adam's two moments: 4 x the parameters in
  // f32) and the activations backward reads (what the recorded ops saved, savedBytes).
  engine.resetPeak();
  await step(2, true);
  const peakBytes = engine.stats.peakBytes;
  const stateBytes = 4 * 4 * net.parameterCount();
  const floorBytes = stateBytes + activationBytes;
  recordMs = 0;
  const t0 = performance.now();
  for (let k = 0; k < o.steps; k++) await step(k + 2);
  const stepMs = (performance.now() - t0) / o.steps;
  recordMs /= o.steps;
  // The adapter's arithmetic peak, measured just before and just after the profiled step: the step's
  // kernels as a fraction of their mean (this machine's speed drifts from one minute to the next).
  const roofBefore = await measureRoof(engine, 3);
  let terms: ReturnType<Trainer['step']> | null = null;
  const timings = await engine.profileKernels(() => (terms = trainer.step(batch, 99)));
  const t = terms as ReturnType<Trainer['step']> | null;
  for (const x of new Set(Object.values(t ?? {}))) x?.dispose();
  const kernelMs = timings.reduce((s, k) => s + k.ms, 0);
  const stepFlops = timings.reduce((s, k) => s + k.flops, 0);
  const families = new Map<string, { ms: number; count: number; flops: number }>();
  for (const k of timings) {
    const f = families.get(kernelFamily(k.key)) ?? { ms: 0, count: 0, flops: 0 };
    f.ms += k.ms;
    f.count++;
    f.flops += k.flops;
    families.set(kernelFamily(k.key), f);
  }
  const roofAfter = await measureRoof(engine, 3);
  const roof = { fmaGflops: (roofBefore.fmaGflops + roofAfter.fmaGflops) / 2 };
  const ofPeak = (flops: number, ms: number) => (ms > 0 ? (100 * flops) / ms / 1e6 / roof.fmaGflops : 0);
  // Data loading for the same batch size, one thread (the loader spreads it over its threads).
  const dir = mkdtempSync(join(tmpdir(), 'clothtag-bench-net-'));
  synthesize(dir, { images: Math.max(n, 8), size: 128, seed: 1 });
  const view = datasetView(await openDataset(dir));
  const l0 = performance.now();
  loadBatch(view, Array.from({ length: n }, (_, i) => i % view.items.length), { size: S, augment: true, heatmaps: net.hasLandmarks }, 0);
  const loadMs = performance.now() - l0;
  rmSync(dir, { recursive: true, force: true });
  const parameters = net.parameterCount();
  trainer.dispose();
  net.dispose();

  const branches = net.hasLandmarks ? ` (branches ${o.headWidth ?? o.width}, ${o.landmarkSkips ? 'joined to the trunk\'s finer maps' : 'the thesis\'s'}, ${landmarkLoss} loss)` : '';
  o.log(`${o.net} width ${o.width}${branches}, ${S}x${S}, batch ${n}: ${((1000 * n) / stepMs).toFixed(1)} training images/s (${stepMs.toFixed(0)} ms a step, mean of ${o.steps})`);
  const rows = [...families].sort((a, b) => b[1].ms - a[1].ms).map(([f, v]) => [f, v.count, v.ms.toFixed(1), `${((100 * v.ms) / kernelMs).toFixed(0)}%`, v.flops ? (v.flops / 1e9).toFixed(2) : '-', v.flops ? `${ofPeak(v.flops, v.ms).toFixed(1)}%` : '-']);
  o.log(table(rows, ['kernels', 'dispatches', 'ms', 'share', 'GFLOP', 'of FMA peak']));
  o.log(`the step's kernels: ${(stepFlops / 1e9).toFixed(2)} GFLOP in ${kernelMs.toFixed(0)} ms = ${(stepFlops / kernelMs / 1e6).toFixed(2)} GFLOP/s, ${ofPeak(stepFlops, kernelMs).toFixed(1)}% of this adapter's FMA peak (${roof.fmaGflops.toFixed(1)} GFLOP/s, bench roof: ${roofBefore.fmaGflops.toFixed(1)} just before the step, ${roofAfter.fmaGflops.toFixed(1)} just after)`);
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
  const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MB`;
  o.log(
    `device memory (${o.precision ?? 'f32'}): a step's peak of live tensors ${mb(peakBytes)} against an analytic floor of ${mb(floorBytes)} = ${(peakBytes / floorBytes).toFixed(2)}x ` +
      `(the floor: the weights' state - parameters, gradients, Adam's moments - ${mb(stateBytes)}, and the activations backward reads ${mb(activationBytes)}; ` +
      `the peak adds the gradients in flight, temporaries, and buffers rounded up to their pool size class).`,
  );
  // The CPU path a user could take instead: the same network, width, size and batch in PyTorch.
  const torch = o.torch === false ? { skipped: 'not asked for' } : torchCpuStep({ net: o.net, width: o.width, headWidth: o.headWidth, landmarkSkips: o.landmarkSkips, size: S, batch: n, steps: o.steps });
  if ('result' in torch) {
    const t = torch.result;
    const same = t.parameters === parameters ? 'the same parameter count' : `${t.parameters} parameters against our ${parameters}: NOT the same network`;
    o.log(`PyTorch ${t.torch} on this CPU (${t.threads} threads, bench/torch_cpu.py, ${same}): ${t.imagesPerSecond.toFixed(1)} training images/s; clothtag on this adapter / PyTorch on the CPU = ${((1000 * n) / stepMs / t.imagesPerSecond).toFixed(2)}x`);
  } else o.log(`PyTorch on this CPU: skipped (${torch.skipped})`);
  o.log(`data loading: ${loadMs.toFixed(0)} ms to decode, crop, resize and build targets for ${n} images in one thread (${((100 * loadMs) / stepMs).toFixed(0)}% of a step; the loader threads overlap it with the GPU).`);
  return { net: o.net, width: o.width, ...(net.hasLandmarks ? { headWidth: o.headWidth ?? o.width, landmarkSkips: !!o.landmarkSkips, landmarkLoss } : {}), size: S, batch: n, precision: o.precision ?? 'f32', parameters, imagesPerSecond: (1000 * n) / stepMs, stepMs, recordMs, kernelMs, peakBytes, floorBytes, stateBytes, activationBytes, stepFlops, fmaPeakGflops: roof.fmaGflops, fmaPeakBeforeAfter: [roofBefore.fmaGflops, roofAfter.fmaGflops], fractionOfPeak: ofPeak(stepFlops, kernelMs) / 100, dispatches: timings.length, loadMs, torchCpu: 'result' in torch ? torch.result : null, families: Object.fromEntries(families), blocks, layers: layers.slice(0, 40) };
}
