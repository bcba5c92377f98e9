// Adam's kernels (kernels/adam.wgsl): the per-step counter and the fused per-parameter update.
import { perInvocation } from './elementwise.js';
import { f32 } from './engine.js';
import type { Tensor } from './tensor.js';

export interface AdamHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

const uniformsOf = (n: number, h: AdamHyper) => [n, f32(h.lr), f32(h.beta1), f32(h.beta2), f32(h.eps), f32(h.weightDecay)];

/** [t, 1 - beta1^t, 1 - beta2^t, 0]: Adam's step count and bias corrections, kept on the GPU. */
export function adamCounterValues(t: number, h: Pick<AdamHyper, 'beta1' | 'beta2'>): Float32Array {
  return Float32Array.from([t, 1 - h.beta1 ** t, 1 - h.beta2 ** t, 0]);
}

/**
 * Advances `counter` to the next step (t + 1 and its bias corrections) on the GPU; with `skipIf`
 * (a [1] tensor), leaves it alone when that holds a non-zero value (an f16 overflow).
 */
export function adamBegin(counter: Tensor, h: AdamHyper, skipIf?: Tensor): void {
  counter.engine.run({
    kernel: 'adam',
    entry: 'begin',
    params: { VEC4: false, SKIPPABLE: !!skipIf },
    uniforms: uniformsOf(1, h),
    inputs: skipIf ? [skipIf] : [],
    outputs: [counter],
    workgroups: 1,
  });
}

/**
 * One fused Adam update of `param` (and its moments m, v) in place, with the bias corrections of
 * the step `counter` holds (adamBegin). With `skipIf`, nothing changes while it is non-zero.
 */
export function adamStep(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, h: AdamHyper, counter: Tensor, skipIf?: Tensor): void {
  if (grad.size !== param.size) throw new Error(`gradient ${grad.describe()} does not match parameter ${param.describe()}`);
  const per = perInvocation(param.size);
  param.engine.run({
    kernel: 'adam',
    params: { VEC4: per === 4, SKIPPABLE: !!skipIf },
    uniforms: uniformsOf(param.size, h),
    inputs: skipIf ? [grad, counter, skipIf] : [grad, counter],
    outputs: [param, m, v],
    workgroups: Math.ceil(param.size / per / 256),
  });
}
