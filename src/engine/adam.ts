import { f32 } from './engine.js';
import type { Tensor } from './tensor.js';

export interface AdamHyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/**
 * One fused Adam update of `param` (and its moments m, v) in place; `step` counts from 1. With
 * `skipIf` (a [1] tensor), nothing changes when it holds a non-zero value (an f16 overflow).
 */
export function adamStep(param: Tensor, grad: Tensor, m: Tensor, v: Tensor, h: AdamHyper, step: number, skipIf?: Tensor): void {
  if (grad.size !== param.size) throw new Error(`gradient ${grad.describe()} does not match parameter ${param.describe()}`);
  const vec4 = param.size % 4 === 0;
  param.engine.run({
    kernel: 'adam',
    params: { VEC4: vec4, SKIPPABLE: !!skipIf },
    uniforms: [param.size, f32(h.lr), f32(h.beta1), f32(h.beta2), f32(h.eps), f32(h.weightDecay), f32(1 - h.beta1 ** step), f32(1 - h.beta2 ** step)],
    inputs: skipIf ? [grad, skipIf] : [grad],
    outputs: [param, m, v],
    workgroups: Math.ceil(param.size / (vec4 ? 4 : 1) / 256),
  });
}
