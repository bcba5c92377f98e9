// Loss launchers. Each loss kernel writes a [2, n] "pair" (per-element loss, per-element count);
// one reduction sums both and loss_mean.wgsl divides, so every loss is a mean over what counts
// (masked rows, unknown attributes and invisible landmarks drop out of numerator and denominator).
import type { Engine } from './engine.js';
import { reduce } from './reduce.js';
import { Tensor, shapeString } from './tensor.js';

export interface LossResult {
  /** The scalar loss, shape [1]. */
  loss: Tensor;
  /** [sum of losses, count]: what the backward pass divides by. */
  sums: Tensor;
}

/** Sums a [2, n] pair and divides: the mean over what counts (shared by every loss, SSIM too). */
export function meanOfPair(engine: Engine, pair: Tensor): LossResult {
  const sums = reduce('sum', pair, [1]);
  pair.dispose();
  const loss = engine.empty([1]);
  engine.run({ kernel: 'loss_mean', inputs: { sums }, outputs: { loss }, workgroups: 1 });
  return { loss, sums };
}

const blocks = (n: number) => Math.ceil(n / 256);

/** Mean softmax cross-entropy; `smoothing` spreads that share of the target over all classes. */
export function softmaxCrossEntropy(logits: Tensor, labels: Tensor, smoothing = 0): LossResult {
  const [N, C] = logits.shape as [number, number];
  if (logits.rank !== 2 || labels.size !== N) {
    throw new Error(`softmax cross-entropy takes logits [N, C] and N labels, got ${logits.describe()} and ${labels.describe()}`);
  }
  const e = logits.engine;
  const pair = e.empty([2, N]);
  if (!(smoothing >= 0 && smoothing < 1)) throw new Error(`label smoothing must be in [0, 1), got ${smoothing}`);
  e.run({ kernel: 'xent', entry: 'forward', uniforms: { N, C, smoothing }, inputs: { logits, labels }, outputs: { pair }, workgroups: Math.ceil(N / 64) });
  return meanOfPair(e, pair);
}

export function softmaxCrossEntropyBackward(logits: Tensor, labels: Tensor, sums: Tensor, gradLoss: Tensor, smoothing = 0): Tensor {
  const [N, C] = logits.shape as [number, number];
  const dx = logits.engine.empty(logits.shape);
  logits.engine.run({ kernel: 'xent', entry: 'backward', uniforms: { N, C, smoothing }, inputs: { logits, labels, sums, grad_loss: gradLoss }, outputs: { dx }, workgroups: Math.ceil(N / 64) });
  return dx;
}

export interface BceWeights {
  positive: number;
  negative: number;
}

export function bceWithLogits(logits: Tensor, targets: Tensor, w: BceWeights): LossResult {
  if (logits.size !== targets.size) throw new Error(`BCE logits ${logits.describe()} and targets ${targets.describe()} differ in size`);
  const e = logits.engine;
  const pair = e.empty([2, logits.size]);
  e.run({ kernel: 'bce', entry: 'forward', uniforms: { n: logits.size, w_pos: w.positive, w_neg: w.negative }, inputs: { logits, targets }, outputs: { pair }, workgroups: blocks(logits.size) });
  return meanOfPair(e, pair);
}

export function bceWithLogitsBackward(logits: Tensor, targets: Tensor, w: BceWeights, sums: Tensor, gradLoss: Tensor): Tensor {
  const dx = logits.engine.empty(logits.shape);
  logits.engine.run({ kernel: 'bce', entry: 'backward', uniforms: { n: logits.size, w_pos: w.positive, w_neg: w.negative }, inputs: { logits, targets, sums, grad_loss: gradLoss }, outputs: { dx }, workgroups: blocks(logits.size) });
  return dx;
}

/** The plane size for a mask: how many elements of `pred` one mask value covers. */
export function maskPlane(pred: Tensor, mask: Tensor): number {
  if (mask.size === 0 || pred.size % mask.size !== 0) {
    throw new Error(`mask ${mask.describe()} does not divide prediction ${pred.describe()} into planes`);
  }
  return pred.size / mask.size;
}

/** Masked mean squared error (`l1`: mean absolute error) of pred against target (mse.wgsl). */
export function mse(pred: Tensor, target: Tensor, mask: Tensor, l1 = false): LossResult {
  if (pred.size !== target.size) throw new Error(`${l1 ? 'L1' : 'MSE'} prediction ${pred.describe()} and target ${target.describe()} differ (${shapeString(pred.shape)})`);
  const e = pred.engine;
  const pair = e.empty([2, pred.size]);
  e.run({ kernel: 'mse', entry: 'forward', params: { L1: l1 }, uniforms: { n: pred.size, plane: maskPlane(pred, mask) }, inputs: { pred, truth: target, mask }, outputs: { pair }, workgroups: blocks(pred.size) });
  return meanOfPair(e, pair);
}

export function mseBackward(pred: Tensor, target: Tensor, mask: Tensor, sums: Tensor, gradLoss: Tensor, l1 = false): Tensor {
  const dp = pred.engine.empty(pred.shape);
  pred.engine.run({ kernel: 'mse', entry: 'backward', params: { L1: l1 }, uniforms: { n: pred.size, plane: maskPlane(pred, mask) }, inputs: { pred, truth: target, mask, sums, grad_loss: gradLoss }, outputs: { dp }, workgroups: blocks(pred.size) });
  return dp;
}
