// Differentiable ops: each one's forward (engine launchers) and its backward, side by side.
// This file is the one place where gradient rules live. A backward function receives
// d(loss)/d(output) and returns fresh tensors (views are fine) for each input.
import * as ew from '../engine/elementwise.js';
import { matmul as gemm, type GemmOptions } from '../engine/gemm.js';
import * as L from '../engine/loss.js';
import { normalizeAxes, reduce, sumToShape } from '../engine/reduce.js';
import { Tensor, resolveShape } from '../engine/tensor.js';
import { record } from './tape.js';

// ------------------------------------------------------------ elementwise

export function add(a: Tensor, b: Tensor): Tensor {
  return record(ew.binary('add', a, b), 'add', [a, b], (g) => [sumToShape(g, a.shape), sumToShape(g, b.shape)]);
}

export function sub(a: Tensor, b: Tensor): Tensor {
  return record(ew.binary('sub', a, b), 'sub', [a, b], (g) => [sumToShape(g, a.shape), reduced(ew.unary('neg', g), b.shape)]);
}

export function mul(a: Tensor, b: Tensor): Tensor {
  return record(ew.binary('mul', a, b), 'mul', [a, b], (g) => [
    a.requiresGrad ? reduced(ew.binary('mul', g, b), a.shape) : null,
    b.requiresGrad ? reduced(ew.binary('mul', g, a), b.shape) : null,
  ]);
}

/** x * s for a number s. */
export function scale(x: Tensor, s: number): Tensor {
  return record(ew.unary('affine', x, s, 0), 'scale', [x], (g) => [ew.unary('affine', g, s, 0)]);
}

/** Adds a per-channel bias [C] to x [N, C, ...] (or the last axis of a 2-d x). */
export function addBias(x: Tensor, bias: Tensor): Tensor {
  const channels = x.shape[1]!;
  if (bias.size !== channels) throw new Error(`bias ${bias.describe()} does not match ${channels} channels of ${x.describe()}`);
  const shaped = bias.view(x.rank === 2 ? [channels] : [channels, ...Array(x.rank - 2).fill(1)]);
  const out = ew.binary('add', x, shaped);
  shaped.dispose();
  const otherAxes = x.shape.map((_, i) => i).filter((i) => i !== 1);
  return record(out, 'addBias', [x, bias], (g) => [g.view(x.shape), reduce('sum', g, otherAxes)]);
}

export function relu(x: Tensor): Tensor {
  return record(ew.unary('relu', x), 'relu', [x], (g) => [ew.binary('relu_grad', x, g)]);
}

export function sigmoid(x: Tensor): Tensor {
  const y = ew.unary('sigmoid', x);
  return record(y, 'sigmoid', [x], (g) => [ew.binary('sigmoid_grad', y, g)]);
}

/** Sums g (the gradient of a broadcast result) down to `shape`, disposing g unless it is kept. */
function reduced(g: Tensor, shape: readonly number[], dispose = true): Tensor {
  const out = sumToShape(g, shape);
  if (dispose) g.dispose();
  return out;
}

// ------------------------------------------------------------ reductions

function keptShape(x: Tensor, axes: number[]): number[] {
  return x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

/** Broadcasts g (reduced over `axes`) back to x's shape, times alpha. */
function expand(g: Tensor, x: Tensor, axes: number[], alpha: number): Tensor {
  const gk = g.view(keptShape(x, axes));
  const out = ew.binary('scaled_b', x, gk, alpha);
  gk.dispose();
  return out;
}

export function sum(x: Tensor, axes: readonly number[], keepDims = false): Tensor {
  const ax = normalizeAxes(axes, x.rank, x);
  return record(reduce('sum', x, ax, keepDims), 'sum', [x], (g) => [expand(g, x, ax, 1)]);
}

export function mean(x: Tensor, axes: readonly number[], keepDims = false): Tensor {
  const ax = normalizeAxes(axes, x.rank, x);
  const count = ax.reduce((p, a) => p * x.shape[a]!, 1);
  return record(reduce('mean', x, ax, keepDims), 'mean', [x], (g) => [expand(g, x, ax, 1 / count)]);
}

/** Max over axes. The gradient goes to every element equal to the maximum. */
export function max(x: Tensor, axes: readonly number[], keepDims = false): Tensor {
  const ax = normalizeAxes(axes, x.rank, x);
  const out = reduce('max', x, ax, keepDims);
  return record(out, 'max', [x], (g) => {
    const m = out.view(keptShape(x, ax));
    const mask = ew.binary('equal', x, m);
    const gk = g.view(keptShape(x, ax));
    const dx = ew.binary('mul', mask, gk);
    for (const t of [m, mask, gk]) t.dispose();
    return [dx];
  });
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
  const out = x.view(resolveShape(shape, x.size, x));
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
  return record(gemm(a, b, o), 'matmul', [a, b], (g) => [
    a.requiresGrad ? (tA ? gemm(b, g, { transA: tB, transB: true }) : gemm(g, b, { transB: !tB })) : null,
    b.requiresGrad ? (tB ? gemm(g, a, { transA: true, transB: tA }) : gemm(a, g, { transA: !tA })) : null,
  ]);
}

/** x [N, in] times weight [out, in]ᵀ plus bias [out]: PyTorch's nn.Linear layout. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
  if (x.rank !== 2 || weight.rank !== 2 || x.shape[1] !== weight.shape[1]) {
    throw new Error(`linear: input ${x.describe()} does not fit weight ${weight.describe()} (expects [N, ${weight.shape[1]}])`);
  }
  const out = gemm(x, weight, { transB: true, bias });
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return record(out, 'linear', inputs, (g) => [
    x.requiresGrad ? gemm(g, weight) : null,
    weight.requiresGrad ? gemm(g, x, { transA: true }) : null,
    bias?.requiresGrad ? reduce('sum', g, [0]) : null,
  ]);
}

// ------------------------------------------------------------ losses

/** Mean softmax cross-entropy of logits [N, C] against labels [N] (class index; negative = none). */
export function softmaxCrossEntropy(logits: Tensor, labels: Tensor): Tensor {
  const { loss, sums } = L.softmaxCrossEntropy(logits, labels);
  return record(loss, 'softmaxCrossEntropy', [logits], (g) => [L.softmaxCrossEntropyBackward(logits, labels, sums, g)]);
}

/** Weighted BCE on logits; targets 1 / 0, negative = unknown (masked). */
export function bceWithLogits(logits: Tensor, targets: Tensor, weights: L.BceWeights = { positive: 1, negative: 1 }): Tensor {
  const { loss, sums } = L.bceWithLogits(logits, targets, weights);
  return record(loss, 'bceWithLogits', [logits], (g) => [L.bceWithLogitsBackward(logits, targets, weights, sums, g)]);
}

/** Masked mean squared error; mask has one weight per plane of pred (e.g. [N, 8] for heatmaps). */
export function mse(pred: Tensor, target: Tensor, mask?: Tensor): Tensor {
  const m = mask ?? pred.engine.full([1], 1);
  const { loss, sums } = L.mse(pred, target, m);
  return record(loss, 'mse', [pred], (g) => [L.mseBackward(pred, target, m, sums, g)]);
}
