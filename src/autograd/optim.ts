// Adam over a list of parameters, with a learning rate the trainer may change between epochs.
import { adamStep, type AdamHyper } from '../engine/adam.js';
import type { Tensor } from '../engine/tensor.js';

export class Adam {
  readonly hyper: AdamHyper;
  /** Steps taken so far (bias correction uses it; checkpoints save it). */
  step = 0;
  readonly m: Tensor[];
  readonly v: Tensor[];

  constructor(
    readonly params: readonly Tensor[],
    hyper: Partial<AdamHyper> = {},
  ) {
    this.hyper = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, ...hyper };
    this.m = params.map((p) => p.engine.zeros(p.shape, `${p.name ?? 'param'}.adam_m`).keep());
    this.v = params.map((p) => p.engine.zeros(p.shape, `${p.name ?? 'param'}.adam_v`).keep());
  }

  /**
   * Updates every parameter that has a gradient (all in the current command encoder). With
   * `skipIf`, the GPU leaves them all unchanged when it holds a non-zero value (mixed precision's
   * overflow flag); the step count still advances (the CPU cannot know without waiting).
   */
  update(skipIf?: Tensor): void {
    this.step++;
    this.params.forEach((p, i) => {
      if (p.grad) adamStep(p, p.grad, this.m[i]!, this.v[i]!, this.hyper, this.step, skipIf);
    });
  }

  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
  }
}
