// BatchNorm2d launchers: kernels/batchnorm_stats.wgsl (per-channel sums of both passes),
// batchnorm_forward.wgsl and batchnorm_backward.wgsl (elementwise), batchnorm_eval.wgsl (eval mode).
import type { Engine } from './engine.js';
import { compiledDivisor, perInvocation } from './elementwise.js';
import { adapterKind } from './tune.js';
import type { Tensor } from './tensor.js';
import { castTensor } from './cast.js';
import { KernelError } from './dispatch.js';

/**
 * Invocations that share one channel's sums in the per-channel passes. Each strides over one
 * image's pixels, so a group wider than the plane idles: measured on lavapipe (batch 16), 32 beats
 * 256 by 7x at 4x4 planes and 64 is best from 32x32. A pure function of the shape, tested.
 */
export function batchNormReduceWorkgroup(pixels: number): number {
  return pixels >= 1024 ? 64 : 32;
}

/**
 * Whether one invocation sums a whole channel (THREAD_PER_CHANNEL) instead of a workgroup per
 * channel. On lavapipe a workgroup's barriers cost more than the sums up to 4096 values a channel
 * (measured: 2x2 planes at batch 16 4.5x faster, 16x16 planes 1.3-1.5x); past that, and on GPUs
 * past 256 values, one serial loop per channel leaves the machine idle. A pure function, tested.
 */
export function batchNormThreadPerChannel(values: number, adapter: string): boolean {
  return values <= (adapterKind(adapter) === 'cpu' ? 4096 : 256);
}

/** The elementwise passes take a vec4 per invocation when a plane holds whole vec4s (then so does every channel's run). */
const vec4 = (HW: number) => perInvocation(HW) === 4;

/** The elementwise passes' compiled-in channel count and plane size (they split each index into its channel by both). */
const divisors = (C: number, HW: number) => ({ C: compiledDivisor(C), HW: compiledDivisor(HW) });

/**
 * Whether a training-mode BatchNorm normalizes (forward) or forms dx (backward) inside its
 * per-channel pass (batchnorm_stats.wgsl's APPLY): one dispatch instead of two. On lavapipe every
 * dispatch costs about 0.1 ms whatever it does, more than the elementwise pass's own work where a
 * channel holds few values, and the per-channel pass already walks them all. Where a channel holds
 * many, the vec4 elementwise pass is the faster half (measured: README, "Kernels"); on a GPU the
 * per-channel pass runs a workgroup per channel, too few to fill the machine past small planes
 * (not measured: no GPU was at hand). A pure function of the shape, tested.
 */
export function batchNormOnePass(values: number, adapter: string): boolean {
  return values <= (adapterKind(adapter) === 'cpu' ? ONE_PASS_CPU : 1024);
}
const ONE_PASS_CPU = 16384;

/** The per-channel sums' specialization (batchnorm_stats.wgsl); `apply` with residual: APPLY's forward join. */
function sums(e: Engine, N: number, HW: number, relu: boolean, half: boolean, apply = false, residual = false) {
  return { SUBGROUPS: e.useSubgroups, THREAD_PER_CHANNEL: batchNormThreadPerChannel(N * HW, e.adapter), RWG: batchNormReduceWorkgroup(HW), RELU: relu, HALF: half, APPLY: apply, RESIDUAL: residual };
}

/** Workgroups of a per-channel pass. */
const reduceGroups = (e: Engine, N: number, HW: number, C: number) => (batchNormThreadPerChannel(N * HW, e.adapter) ? Math.ceil(C / 64) : C);

export interface BatchNormState {
  gamma: Tensor;
  beta: Tensor;
  runningMean: Tensor;
  runningVar: Tensor;
  eps: number;
  momentum: number;
}

export interface BatchNormForward {
  y: Tensor;
  /** What the backward pass needs: the statistics used to normalize. */
  mean: Tensor;
  invstd: Tensor;
}

function nchw(x: Tensor, s: BatchNormState): [number, number, number] {
  if (x.rank !== 4 && x.rank !== 2) throw new Error(`batch norm takes [N, C, H, W] or [N, C], got ${x.describe()}`);
  const [N, C] = x.shape as [number, number];
  if (s.gamma.size !== C) throw new Error(`batch norm over ${C} channels of ${x.describe()} has parameters for ${s.gamma.size}`);
  return [N, C, x.rank === 4 ? x.shape[2]! * x.shape[3]! : 1];
}

/**
 * Training mode normalizes with batch statistics (and updates the running ones); eval mode with the
 * running ones. `residual` (x's shape) is added to the normalized values, and `relu` fuses a
 * following ReLU (after the residual). The output has x's type: an f16 activation (mixed
 * precision) gives an f16 one; the statistics and the arithmetic are f32 either way.
 */
export function batchNorm(x: Tensor, s: BatchNormState, training: boolean, relu = false, residual?: Tensor): BatchNormForward {
  const [N, C, HW] = nchw(x, s);
  if (residual && (residual.rank !== x.rank || residual.shape.some((d, i) => d !== x.shape[i]))) throw new Error(`batch norm of ${x.describe()} cannot add a residual ${residual.describe()}: the shapes differ`);
  const e = x.engine;
  const half = x.dtype === 'f16';
  // A residual of the other type is read through a copy in x's (never kept: its gradient needs no values).
  const joined = residual && residual.dtype !== x.dtype ? castTensor(residual, x.dtype) : residual;
  const mean = e.empty([C]), invstd = e.empty([C]);
  const y = e.empty(x.shape, undefined, x.dtype);
  // On small planes the statistics pass also normalizes (batchNormOnePass): no second dispatch.
  const onePass = training && batchNormOnePass(N * HW, e.adapter);
  if (training) {
    if (N * HW < 2) throw new Error(`batch norm in training mode needs more than one value per channel, got ${x.describe()}`);
    e.run({
      kernel: 'batchnorm_stats',
      entry: 'forward',
      params: sums(e, N, HW, onePass && relu, half, onePass, onePass && !!joined),
      half,
      uniforms: { N, C, HW, eps: s.eps, momentum: s.momentum },
      inputs: onePass ? { x, gamma: s.gamma, beta: s.beta, residual: joined } : { x },
      outputs: { batch_mean: mean, batch_invstd: invstd, running_mean: s.runningMean, running_var: s.runningVar, ...(onePass ? { out: y } : {}) },
      workgroups: reduceGroups(e, N, HW, C),
    });
  } else {
    e.run({ kernel: 'batchnorm_eval', entry: 'stats', uniforms: { C, eps: s.eps }, inputs: { running_mean: s.runningMean, running_var: s.runningVar }, outputs: { mean, invstd }, workgroups: Math.ceil(C / 64) });
  }
  if (!onePass) {
    e.run({
      kernel: 'batchnorm_forward',
      params: { VEC4: vec4(HW), RELU: relu, RESIDUAL: !!joined, HALF: half, ...divisors(C, HW) },
      half,
      uniforms: { N },
      inputs: { x, mean, invstd, gamma: s.gamma, beta: s.beta, residual: joined },
      outputs: { y },
      workgroups: Math.ceil(x.size / perInvocation(HW) / 256),
    });
  }
  if (joined && joined !== residual) joined.dispose();
  return { y, mean, invstd };
}

/** With `relu`, dy is the gradient of max(y, 0) and is masked by the output f.y first. */
export function batchNormBackward(dy: Tensor, x: Tensor, f: BatchNormForward, s: BatchNormState, training: boolean, relu = false): { dx: Tensor; dgamma: Tensor; dbeta: Tensor } {
  const [N, C, HW] = nchw(x, s);
  const e = x.engine;
  const dgamma = e.empty([C]), dbeta = e.empty([C]);
  // The kernels read the output y only for the fused ReLU's mask; without one x stands in for it
  // (same shape, never read), so that the output need not be kept for backward.
  const { mean, invstd } = f;
  const y = relu ? f.y : x;
  const half = x.dtype === 'f16';
  if (dy.dtype !== 'f32') throw new KernelError(`batch norm backward takes a float32 gradient, got ${dy.describe()}`);
  const dx = e.empty(x.shape);
  // On small planes the sums' pass also forms dx (batchNormOnePass): no second dispatch.
  const onePass = training && batchNormOnePass(N * HW, e.adapter);
  e.run({
    kernel: 'batchnorm_stats',
    entry: 'backward',
    params: sums(e, N, HW, relu, half, onePass),
    half,
    uniforms: { N, C, HW, eps: s.eps, momentum: s.momentum },
    inputs: onePass ? { dy, x, mean, invstd, y, gamma: s.gamma } : { dy, x, mean, invstd, y },
    outputs: onePass ? { dgamma, dbeta, dx } : { dgamma, dbeta },
    workgroups: reduceGroups(e, N, HW, C),
  });
  if (!onePass) {
    e.run({
      kernel: 'batchnorm_backward',
      params: { VEC4: vec4(HW), RELU: relu, TRAINING: training, HALF: half, ...divisors(C, HW) },
      half,
      uniforms: { N },
      inputs: { dy, x, mean, invstd, gamma: s.gamma, dgamma, dbeta, y },
      outputs: { dx },
      workgroups: Math.ceil(x.size / perInvocation(HW) / 256),
    });
  }
  return { dx, dgamma, dbeta };
}

/**
 * An eval-mode BatchNorm as a per-channel affine map (scale, shift) that a convolution applies in
 * its epilogue (conv2d's `affine`): the normalized output in the convolution's own pass.
 */
export function foldBatchNorm(s: BatchNormState): { scale: Tensor; shift: Tensor } {
  const e = s.gamma.engine;
  const C = s.gamma.size;
  const scale = e.empty([C]), shift = e.empty([C]);
  e.run({
    kernel: 'batchnorm_eval',
    entry: 'fold',
    uniforms: { C, eps: s.eps },
    inputs: { running_mean: s.runningMean, running_var: s.runningVar, gamma: s.gamma, beta: s.beta },
    outputs: { scale, shift },
    workgroups: Math.ceil(C / 64),
  });
  return { scale, shift };
}
