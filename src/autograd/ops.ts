// Differentiable ops: each one's forward (engine launchers) and its backward, side by side.
// This file is the one place where gradient rules live. A backward function receives
// d(loss)/d(output) and returns fresh tensors (views are fine) for each input.
import { castTensor } from '../engine/cast.js';
import * as C from '../engine/conv.js';
import * as ew from '../engine/elementwise.js';
import { matmul as gemm, type GemmOptions } from '../engine/gemm.js';
import * as L from '../engine/loss.js';
import * as Nm from '../engine/norm.js';
import { normalizeAxes, reduce } from '../engine/reduce.js';
import * as S from '../engine/spatial.js';
import * as Sa from '../engine/softargmax.js';
import * as Ss from '../engine/ssim.js';
import { Tensor, resolveShape } from '../engine/tensor.js';
import { record } from './tape.js';
import { traced } from './trace.js';

// ------------------------------------------------------------ mixed precision's f16 activations

// In mixed precision (engine.mixedPrecision) convolutions write their outputs in f16, and
// BatchNorm, pooling, resizing, concatenation and the elementwise ops keep them f16: the
// activations a step saves for backward take half the memory. Gradients, weights and statistics
// stay f32. The ops below that compute in f32 only (reductions, losses, dropout) read an f16 input
// through an f32 copy, and a network's outputs come back f32 (toFloat32).

/** x, or an f32 copy of an f16 x (for the kernels that read f32 only). */
function widened(x: Tensor): Tensor {
  return x.dtype === 'f16' ? castTensor(x, 'f32') : x;
}

/** Disposes a copy made of x (by widened() or operands()), never x itself. */
function dropCopy(copy: Tensor, x: Tensor): void {
  if (copy !== x) copy.dispose();
}

/** x as float32: an f16 activation widened (the gradient passes through), an f32 one as it is. */
export function toFloat32(x: Tensor): Tensor {
  if (x.dtype === 'f32') return x;
  return record(castTensor(x, 'f32'), 'toFloat32', [x], (g) => [g.view(g.shape)]);
}

// ------------------------------------------------------------ elementwise

// Binary ops broadcast; their backward functions return gradients in the output's shape, and the
// tape sums each down to its input's shape (tape.ts, backward): broadcasting is undone in one place.

export function add(a: Tensor, b: Tensor): Tensor {
  return traced('add', [a, b], record(ew.binary('add', a, b), 'add', [a, b], (g) => [g.view(g.shape), g.view(g.shape)]));
}

/** max(a + b, 0) in one pass (a residual join and its ReLU); the gradient mask is out > 0. */
export function addRelu(a: Tensor, b: Tensor): Tensor {
  const out = traced('add', [a, b], ew.binary('add_relu', a, b), { relu: true });
  return record(out, 'add+relu', [a, b], (g) => {
    const masked = ew.binary('relu_grad', out, g);
    const grads = [masked.view(masked.shape), masked.view(masked.shape)];
    masked.dispose(); // the views keep its buffer until they go
    return grads;
  }, [out]);
}

export function sub(a: Tensor, b: Tensor): Tensor {
  return traced('sub', [a, b], record(ew.binary('sub', a, b), 'sub', [a, b], (g) => [g.view(g.shape), ew.unary('neg', g)]));
}

export function mul(a: Tensor, b: Tensor): Tensor {
  return traced('mul', [a, b], record(ew.binary('mul', a, b), 'mul', [a, b], (g) => [
    a.requiresGrad ? ew.binary('mul', g, b) : null,
    b.requiresGrad ? ew.binary('mul', g, a) : null,
  ], [a.requiresGrad ? b : null, b.requiresGrad ? a : null]));
}

/** x * s for a number s. */
export function scale(x: Tensor, s: number): Tensor {
  return traced('scale', [x], record(ew.unary('affine', x, s, 0), 'scale', [x], (g) => [ew.unary('affine', g, s, 0)]), { scale: s });
}

/** Adds a per-channel bias [C] to x [N, C, ...] (or the last axis of a 2-d x). */
export function addBias(x: Tensor, bias: Tensor): Tensor {
  const channels = x.shape[1]!;
  if (bias.size !== channels) throw new Error(`bias ${bias.describe()} does not match ${channels} channels of ${x.describe()}`);
  const shaped = bias.view(x.rank === 2 ? [channels] : [channels, ...Array(x.rank - 2).fill(1)]);
  const out = ew.binary('add', x, shaped);
  shaped.dispose();
  const otherAxes = x.shape.map((_, i) => i).filter((i) => i !== 1);
  return traced('addBias', [x, bias], record(out, 'addBias', [x, bias], (g) => [g.view(x.shape), reduce('sum', g, otherAxes)]));
}

export function relu(x: Tensor): Tensor {
  return traced('relu', [x], record(ew.unary('relu', x), 'relu', [x], (g) => [ew.binary('relu_grad', x, g)], [x]));
}

export function exp(x: Tensor): Tensor {
  const y = traced('exp', [x], ew.unary('exp', x));
  return record(y, 'exp', [x], (g) => [ew.binary('mul', g, y)], [y]);
}

export function sigmoid(x: Tensor): Tensor {
  const y = traced('sigmoid', [x], ew.unary('sigmoid', x));
  return record(y, 'sigmoid', [x], (g) => [ew.binary('sigmoid_grad', y, g)], [y]);
}

// ------------------------------------------------------------ reductions

function keptShape(x: Tensor, axes: number[]): number[] {
  return x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

/** Broadcasts g (reduced over `axes`) back to x's shape, times alpha (x is bound for its shape). */
function expand(g: Tensor, x: Tensor, axes: number[], alpha: number): Tensor {
  const gk = g.view(keptShape(x, axes));
  const out = ew.binary('scaled_b', x, gk, alpha);
  gk.dispose();
  return out;
}

/** reduce() of x, reading an f16 x through a copy it frees at once. */
function reduced(op: 'sum' | 'mean' | 'max', x: Tensor, ax: number[], keepDims: boolean): Tensor {
  const xf = widened(x);
  const out = reduce(op, xf, ax, keepDims);
  dropCopy(xf, x);
  return out;
}

export function sum(x: Tensor, axes: readonly number[], keepDims = false): Tensor {
  const ax = normalizeAxes(axes, x.rank, x);
  return traced('sum', [x], record(reduced('sum', x, ax, keepDims), 'sum', [x], (g) => [expand(g, x, ax, 1)], [x]), { axes: ax, keepDims });
}

export function mean(x: Tensor, axes: readonly number[], keepDims = false): Tensor {
  const ax = normalizeAxes(axes, x.rank, x);
  const count = ax.reduce((p, a) => p * x.shape[a]!, 1);
  return traced('mean', [x], record(reduced('mean', x, ax, keepDims), 'mean', [x], (g) => [expand(g, x, ax, 1 / count)], [x]), { axes: ax, keepDims });
}

/** Max over axes. The gradient goes to every element equal to the maximum. */
export function max(x: Tensor, axes: readonly number[], keepDims = false): Tensor {
  const ax = normalizeAxes(axes, x.rank, x);
  const out = traced('max', [x], reduced('max', x, ax, keepDims), { axes: ax, keepDims });
  return record(out, 'max', [x], (g) => {
    const m = out.view(keptShape(x, ax));
    const mask = ew.binary('equal', x, m);
    const gk = g.view(keptShape(x, ax));
    const dx = ew.binary('mul', mask, gk);
    for (const t of [m, mask, gk]) t.dispose();
    return [dx];
  }, [x, out]);
}

/** Sum of all elements, shape [1]. */
export function sumAll(x: Tensor): Tensor {
  const flat = reshape(x, [x.size]);
  const s = sum(flat, [0], true);
  return s;
}

// ------------------------------------------------------------ shapes

/** A view with another shape (one -1 allowed). */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const out = traced('reshape', [x], x.view(resolveShape(shape, x.size, x)));
  return record(out, 'reshape', [x], (g) => [g.view(x.shape)]);
}

// ------------------------------------------------------------ matrix products

/**
 * op(A) op(B) for 2-d tensors, or batched 3-d x 3-d. With C = op(A) op(B):
 *   d op(A) = g op(B)ᵀ   and   d op(B) = op(A)ᵀ g, transposed back where the operand was.
 */
export function matmul(a: Tensor, b: Tensor, o: Pick<GemmOptions, 'transA' | 'transB'> = {}): Tensor {
  if (a.rank !== b.rank) throw new Error(`matmul with autograd takes operands of equal rank, got ${a.describe()} and ${b.describe()}`);
  const tA = !!o.transA, tB = !!o.transB;
  return traced('matmul', [a, b], record(gemm(a, b, o), 'matmul', [a, b], (g) => [
    a.requiresGrad ? (tA ? gemm(b, g, { transA: tB, transB: true }) : gemm(g, b, { transB: !tB })) : null,
    b.requiresGrad ? (tB ? gemm(g, a, { transA: true, transB: tA }) : gemm(a, g, { transA: !tA })) : null,
  ], [a.requiresGrad ? b : null, b.requiresGrad ? a : null]), { transA: tA, transB: tB });
}

/**
 * x [N, in] times weight [out, in]ᵀ plus bias [out]: PyTorch's nn.Linear layout. `relu` fuses
 * max(0, ·). In mixed precision the three GEMMs read f16 copies of their operands (as conv2d).
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor, relu = false): Tensor {
  if (x.rank !== 2 || weight.rank !== 2 || x.shape[1] !== weight.shape[1]) {
    throw new Error(`linear: input ${x.describe()} does not fit weight ${weight.describe()} (expects [N, ${weight.shape[1]}])`);
  }
  const { mixed, xo, wo } = operands(x, weight);
  const out = traced('linear', [x, weight, bias], gemm(xo, wo, { transB: true, bias, relu }), { relu });
  dropCopy(wo, weight);
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return record(out, relu ? 'linear+relu' : 'linear', inputs, (g) =>
    layerBackward(out, g, relu, mixed, (go, gz, unscale) => [
      x.requiresGrad ? withWeight(weight, mixed, (wb) => gemm(go, wb, { alpha: unscale })) : null,
      weight.requiresGrad ? gemm(go, xo, { transA: true, alpha: unscale }) : null,
      bias?.requiresGrad ? reduce('sum', gz, [0]) : null,
    ]),
  [xo, relu ? out : null]);
}

/**
 * The mixed-precision path's gradient scale: an output gradient's f16 copy holds `scale` x its
 * values, and the kernels that read it multiply their results by 1/scale, so that small gradients
 * stay out of f16's subnormal range (under 2^-14). A GradientScaler (engine.gradientScaling)
 * adapts it and flags overflows; without one it is fixed at 1024 (headroom up to |g| = 64).
 */
export const MIXED_GRADIENT_SCALE = 1024;

/**
 * What a convolution or a linear layer computes with: f16 copies of x and w in mixed precision
 * (x itself, viewed, when it is an f16 activation already). The weight's copy is dropped right
 * after the forward pass (dropCopy) and cast again in backward (withWeight): a cast costs a
 * pass over the weights, keeping it would cost their size in f16 for the whole step (VGG's
 * classifier: 240 MB).
 */
function operands(x: Tensor, w: Tensor): { mixed: boolean; xo: Tensor; wo: Tensor } {
  const mixed = x.engine.mixedPrecision;
  return { mixed, xo: mixed ? castTensor(x, 'f16') : x, wo: mixed ? castTensor(w, 'f16') : w };
}

/** fn of the weight as the kernels read it in this precision (an f16 copy, freed afterwards). */
function withWeight(w: Tensor, mixed: boolean, fn: (wo: Tensor) => Tensor): Tensor {
  const wo = mixed ? castTensor(w, 'f16') : w;
  const result = fn(wo);
  dropCopy(wo, w);
  return result;
}

/**
 * A convolution's or linear layer's backward from its output gradient g: masked by the fused
 * ReLU (out > 0) into gz, and in mixed precision read by the kernels as a scaled f16 copy `go`
 * (the casts flag an overflow); `unscale` is what the kernels multiply their results by.
 */
function layerBackward(out: Tensor, g: Tensor, relu: boolean, mixed: boolean, grads: (go: Tensor, gz: Tensor, unscale: number) => (Tensor | null)[]): (Tensor | null)[] {
  const gz = relu ? ew.binary('relu_grad', out, g) : g;
  const { scale, flag } = out.engine.gradientScaling ?? { scale: MIXED_GRADIENT_SCALE };
  const go = mixed ? castTensor(gz, 'f16', scale, flag) : gz;
  const result = grads(go, gz, mixed ? 1 / scale : 1);
  if (relu) gz.dispose();
  if (mixed) go.dispose();
  return result;
}

// ------------------------------------------------------------ losses

/**
 * Mean softmax cross-entropy of logits [N, C] against labels [N] (class index; negative = none),
 * with label smoothing `smoothing` (0: none).
 */
export function softmaxCrossEntropy(logits: Tensor, labels: Tensor, smoothing = 0): Tensor {
  const z = widened(logits);
  const { loss, sums } = L.softmaxCrossEntropy(z, labels, smoothing);
  return record(loss, 'softmaxCrossEntropy', [logits], (g) => [L.softmaxCrossEntropyBackward(z, labels, sums, g, smoothing)], [z, labels, sums]);
}

/** Weighted BCE on logits; targets 1 / 0, negative = unknown (masked). */
export function bceWithLogits(logits: Tensor, targets: Tensor, weights: L.BceWeights = { positive: 1, negative: 1 }): Tensor {
  const z = widened(logits);
  const { loss, sums } = L.bceWithLogits(z, targets, weights);
  return record(loss, 'bceWithLogits', [logits], (g) => [L.bceWithLogitsBackward(z, targets, weights, sums, g)], [z, targets, sums]);
}

/** Masked mean squared error; mask has one weight per plane of pred (e.g. [N, 8] for heatmaps). */
export function mse(pred: Tensor, target: Tensor, mask?: Tensor): Tensor {
  const m = mask ?? pred.engine.full([1], 1);
  const p = widened(pred);
  const { loss, sums } = L.mse(p, target, m);
  return record(loss, 'mse', [pred], (g) => [L.mseBackward(p, target, m, sums, g)], [p, target, m, sums]);
}

/** Masked mean absolute error; mask has one weight per plane of pred (e.g. [N, 8] for [N, 8, 2] points). */
export function l1(pred: Tensor, target: Tensor, mask?: Tensor): Tensor {
  const m = mask ?? pred.engine.full([1], 1);
  const p = widened(pred);
  const { loss, sums } = L.mse(p, target, m, true);
  return record(loss, 'l1', [pred], (g) => [L.mseBackward(p, target, m, sums, g, true)], [p, target, m, sums]);
}

/**
 * Soft-argmax of heatmap logits [N, K, H, W]: the expected position under each plane's softmax,
 * [N, K, 2] as fractions of the width and height (integral regression, Sun et al. 2018).
 */
export function softArgmax(x: Tensor): Tensor {
  const z = widened(x);
  const f = Sa.softArgmax(z);
  return record(f.coords, 'softArgmax', [x], (g) => [Sa.softArgmaxBackward(z, f, g)], [z, f.stats, f.coords]);
}

// ------------------------------------------------------------ convolutions

export type { ConvGeometry } from '../engine/conv.js';

/**
 * conv2d(x [N, C, H, W], w [K, C, KH, KW]) + bias [K]. `relu` fuses max(0, ·) into the
 * convolution's epilogue (its gradient mask is out > 0). In mixed precision the three passes read
 * f16 copies of x, w and the (scaled) output gradient and accumulate in f32, and the output is an
 * f16 activation; gradients and the master weights stay f32.
 */
export function conv2d(x: Tensor, w: Tensor, bias?: Tensor, g: C.ConvGeometry = { stride: 1, pad: 0 }, relu = false): Tensor {
  const { mixed, xo, wo } = operands(x, w);
  const out = traced('conv2d', [x, w, bias], C.conv2d(xo, wo, bias, g, { relu, outHalf: mixed }), { stride: g.stride, pad: g.pad, relu });
  dropCopy(wo, w);
  const inputs = bias ? [x, w, bias] : [x, w];
  return record(out, relu ? 'conv2d+relu' : 'conv2d', inputs, (gy) =>
    layerBackward(out, gy, relu, mixed, (go, gz, unscale) => [
      x.requiresGrad ? withWeight(w, mixed, (wb) => C.conv2dGradInput(go, wb, x.shape, g, undefined, undefined, unscale)) : null,
      w.requiresGrad ? C.conv2dGradWeight(go, xo, w.shape, g, undefined, unscale) : null,
      bias?.requiresGrad ? reduce('sum', gz, [0, 2, 3]) : null,
    ]),
  [xo, relu ? out : null]);
}

/**
 * Transposed convolution (PyTorch's ConvTranspose2d): x [N, Cin, H, W], w [Cin, Cout, KH, KW]. In
 * mixed precision it reads f16 copies and writes f16, as conv2d; its input gradient (a plain
 * convolution of the f32 gradient) is computed in f32.
 */
export function convTranspose2d(x: Tensor, w: Tensor, bias?: Tensor, g: C.ConvGeometry = { stride: 1, pad: 0 }): Tensor {
  const { mixed, xo, wo } = operands(x, w);
  const out = traced('convTranspose2d', [x, w, bias], C.convTranspose2d(xo, wo, bias, g, mixed), { stride: g.stride, pad: g.pad });
  dropCopy(wo, w);
  const inputs = bias ? [x, w, bias] : [x, w];
  return record(out, 'convTranspose2d', inputs, (gy) =>
    layerBackward(out, gy, false, mixed, (go, gz, unscale) => [
      x.requiresGrad ? C.convTranspose2dGradInput(gz, w, g) : null,
      w.requiresGrad ? C.convTranspose2dGradWeight(go, xo, w.shape, g, unscale) : null,
      bias?.requiresGrad ? reduce('sum', gz, [0, 2, 3]) : null,
    ]),
  [xo]);
}

// ------------------------------------------------------------ normalization

/**
 * BatchNorm2d. Training mode uses (and records) batch statistics and updates the running ones;
 * eval mode uses the running statistics, which are then constants for the gradient. `relu`
 * fuses a following ReLU into the same kernels (forward and backward).
 */
export function batchNorm2d(x: Tensor, s: Nm.BatchNormState, training: boolean, relu = false, residual?: Tensor): Tensor {
  if (residual) return batchNormJoin(x, s, training, relu, residual);
  const f = Nm.batchNorm(x, s, training, relu);
  // Traced in eval mode only (training-mode statistics are not a graph of this pass's constants).
  if (!training) traced('batchNorm2d', [x, s.gamma, s.beta, s.runningMean, s.runningVar], f.y, { eps: s.eps, relu });
  return record(f.y, relu ? 'batchNorm2d+relu' : 'batchNorm2d', [x, s.gamma, s.beta], (gy) => {
    const r = Nm.batchNormBackward(gy, x, f, s, training, relu);
    return [r.dx, r.dgamma, r.dbeta];
  }, [x, f.mean, f.invstd, relu ? f.y : null]);
}

/**
 * BatchNorm2d(x) + residual, then ReLU with `relu`: a residual join (ResNet's bn3 + identity,
 * RepVGG's branch sums) in the BatchNorm's own pass, so that the normalized values - which no
 * backward reads - never take memory of their own. In eval mode it is the two ops (BatchNorm,
 * then add or addRelu), as an exported graph has them.
 */
function batchNormJoin(x: Tensor, s: Nm.BatchNormState, training: boolean, relu: boolean, residual: Tensor): Tensor {
  if (!training) {
    const y = batchNorm2d(x, s, false);
    return relu ? addRelu(y, residual) : add(y, residual);
  }
  const f = Nm.batchNorm(x, s, true, relu, residual);
  return record(f.y, relu ? 'batchNorm2d+add+relu' : 'batchNorm2d+add', [x, s.gamma, s.beta, residual], (gy) => {
    // The join's gradient (masked by the ReLU) goes to the residual as it is, and through BatchNorm.
    const g = relu ? ew.binary('relu_grad', f.y, gy) : gy.view(gy.shape);
    const r = Nm.batchNormBackward(g, x, f, s, true, false);
    return [r.dx, r.dgamma, r.dbeta, g];
  }, [x, f.mean, f.invstd, relu ? f.y : null]);
}

// ------------------------------------------------------------ pooling, resizing, channels

export function maxPool2d(x: Tensor, g: S.PoolGeometry): Tensor {
  const { y, argmax } = S.maxPool(x, g);
  traced('maxPool2d', [x], y, { kernel: g.kernel, stride: g.stride, pad: g.pad });
  return record(y, 'maxPool2d', [x], (gy) => [S.maxPoolBackward(gy, argmax, x, g)], [argmax]);
}

export function avgPool2d(x: Tensor, g: S.PoolGeometry): Tensor {
  return traced('avgPool2d', [x], record(S.avgPool(x, g), 'avgPool2d', [x], (gy) => [S.avgPoolBackward(gy, x, g)]), { kernel: g.kernel, stride: g.stride, pad: g.pad });
}

/** Adaptive average pooling to [OH, OW] (identity when the size already matches). */
export function adaptiveAvgPool2d(x: Tensor, OH: number, OW: number): Tensor {
  if (x.shape[2] === OH && x.shape[3] === OW) return reshape(x, x.shape);
  return traced('adaptiveAvgPool2d', [x], record(S.adaptiveAvgPool(x, OH, OW), 'adaptiveAvgPool2d', [x], (gy) => [S.adaptiveAvgPoolBackward(gy, x)]), { size: [OH, OW] });
}

/** Mean over H and W: [N, C, H, W] -> [N, C]. */
export function globalAvgPool(x: Tensor): Tensor {
  if (x.rank !== 4) throw new Error(`global average pooling takes NCHW, got ${x.describe()}`);
  return mean(x, [2, 3]);
}

/** Bilinear resize (align_corners=False) to [OH, OW]. */
export function resizeBilinear(x: Tensor, OH: number, OW: number): Tensor {
  return traced('resizeBilinear', [x], record(S.resizeBilinear(x, OH, OW), 'resizeBilinear', [x], (gy) => [S.resizeBilinearBackward(gy, x.shape)]), { size: [OH, OW] });
}

/** Concatenation along channels. */
export function concatChannels(xs: readonly Tensor[]): Tensor {
  const offsets: number[] = [];
  let offset = 0;
  for (const x of xs) {
    offsets.push(offset);
    offset += x.shape[1]!;
  }
  const out = traced('concatChannels', xs, S.concatChannels(xs));
  return record(out, 'concatChannels', xs, (gy) => xs.map((x, i) => (x.requiresGrad ? S.sliceChannels(gy, offsets[i]!, x.shape[1]!) : null)));
}

/** Max over the channel axis, keeping it: [N, C, H, W] -> [N, 1, H, W]. */
export function maxOverChannels(x: Tensor): Tensor {
  return max(x, [1], true);
}

/** Inverted dropout in training mode (identity otherwise); `seed` makes the mask reproducible. */
export function dropout(x: Tensor, p: number, seed: number, training: boolean): Tensor {
  if (!training || p === 0) return reshape(x, x.shape);
  const xf = widened(x);
  const { y, mask } = S.dropout(xf, p, seed);
  dropCopy(xf, x);
  return record(y, 'dropout', [x], (gy) => [ew.binary('mul', gy, mask)], [mask]);
}

// ------------------------------------------------------------ SSIM

/** 1 - mean SSIM between heatmaps x and targets y, with one mask weight per heatmap (or one in all). */
export function ssimLoss(x: Tensor, y: Tensor, mask?: Tensor, o: Ss.SsimOptions = {}): Tensor {
  const m = mask ?? x.engine.full([1], 1);
  const z = widened(x);
  const f = Ss.ssimLoss(z, y, m, o);
  return record(f.loss, 'ssimLoss', [x], (g) => [Ss.ssimLossBackward(z, y, f, g, o)], [z, y, f.sums, ...f.d]);
}
