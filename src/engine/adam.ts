// Adam's kernels (kernels/adam.wgsl): the per-step counter and the fused per-parameter update.
import { perInvocation } from './elementwise.js';
import type { Tensor } from './tensor.js';

export interface AdamHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** L2 decay added to the gradient (torch.optim.Adam), or with `decoupled` AdamW's decay. */
  weightDecay: number;
  /** AdamW (Loshchilov & Hutter): decay applied to the weights, apart from the adaptive step. */
  decoupled?: boolean;
  /** Clip the gradients' global norm to this (0: no clipping). */
  maxGradNorm?: number;
}

/** The counter's layout: [t, 1 - beta1^t, 1 - beta2^t, lr, clip factor, beta1, 0, 0]. */
export const ADAM_COUNTER_SIZE = 8;

/** The kernel's uniforms; `lr` and `beta1` are begin's alone (the updates read this step's from the counter). */
const uniformsOf = (n: number, lr: number, beta1: number, h: AdamHyper, weightDecay: number) =>
  ({ n, lr, beta1, beta2: h.beta2, eps: h.eps, weight_decay: weightDecay, max_norm: h.maxGradNorm ?? 0 });

/** Adam's step count, bias corrections, learning rate, clip factor and beta1, kept on the GPU. */
export function adamCounterValues(t: number, h: Pick<AdamHyper, 'beta1' | 'beta2' | 'lr'>): Float32Array {
  return Float32Array.from([t, 1 - h.beta1 ** t, 1 - h.beta2 ** t, h.lr, 1, h.beta1, 0, 0]);
}

/**
 * Advances `counter` to the next step (t + 1, its bias corrections, h.lr and h.beta1 as this
 * step's rate and first-moment decay, and the clip factor from `norm2`, the squared global
 * gradient norm, when given) on the GPU; with `skipIf` (a [1] tensor), leaves it alone when that
 * holds a non-zero value (an f16 overflow).
 */
export function adamBegin(counter: Tensor, h: AdamHyper, skipIf?: Tensor, norm2?: Tensor): void {
  if (counter.size !== ADAM_COUNTER_SIZE) throw new Error(`Adam's counter is [${ADAM_COUNTER_SIZE}], got ${counter.describe()}`);
  counter.engine.run({
    kernel: 'adam',
    entry: 'begin',
    params: { VEC4: false, SKIPPABLE: !!skipIf, CLIP: !!norm2, DECOUPLED: false },
    uniforms: uniformsOf(1, h.lr, h.beta1, h, 0),
    inputs: { begin_flag: skipIf, begin_norm2: norm2 },
    outputs: { begin_counter: counter },
    workgroups: 1,
  });
}

/**
 * One fused Adam update of `param` (and its moments m, v) in place, with the rate, beta1, clip
 * factor and bias corrections of the step `counter` holds (adamBegin), and `weightDecay` for this
 * parameter. With `skipIf`, nothing changes while it is non-zero.
 */
export function adamStep(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, h: AdamHyper, counter: Tensor, skipIf?: Tensor, weightDecay = h.weightDecay): void {
  if (grad.size !== param.size) throw new Error(`gradient ${grad.describe()} does not match parameter ${param.describe()}`);
  const per = perInvocation(param.size);
  param.engine.run({
    kernel: 'adam',
    params: { VEC4: per === 4, SKIPPABLE: !!skipIf, CLIP: false, DECOUPLED: !!h.decoupled },
    // The rate and beta1 are the counter's (set by begin): 0 here keeps these uniforms fixed
    // across steps, also where a schedule moves beta1.
    uniforms: uniformsOf(param.size, 0, 0, h, weightDecay),
    inputs: { grad, counter, flag: skipIf },
    outputs: { param, m, v },
    workgroups: Math.ceil(param.size / per / 256),
  });
}
