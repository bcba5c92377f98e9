// Adam over a list of parameters, with a learning rate the trainer may change between epochs.
import { type AdamHyper, adamBegin, adamCounterValues, adamStep } from '../engine/adam.js';
import type { Tensor } from '../engine/tensor.js';

export class Adam {
  readonly hyper: AdamHyper;
  readonly m: Tensor[];
  readonly v: Tensor[];
  /**
   * [t, 1 - beta1^t, 1 - beta2^t]: the steps taken (checkpoints save it) and the bias corrections,
   * on the GPU so that a skipped step (mixed precision) does not count and no step uploads them.
   */
  readonly counter: Tensor;

  constructor(
    readonly params: readonly Tensor[],
    hyper: Partial<AdamHyper> = {},
  ) {
    this.hyper = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, ...hyper };
    this.m = params.map((p) => p.engine.zeros(p.shape, `${p.name ?? 'param'}.adam_m`).keep());
    this.v = params.map((p) => p.engine.zeros(p.shape, `${p.name ?? 'param'}.adam_v`).keep());
    const engine = params[0]?.engine;
    if (!engine) throw new Error('Adam needs at least one parameter');
    this.counter = engine.tensor(adamCounterValues(0, this.hyper), [4], 'adam.counter').keep();
  }

  /** The steps taken (read back from the GPU). */
  async stepCount(): Promise<number> {
    return (await this.counter.read())[0]!;
  }

  /** Sets the steps taken (a resumed run): an upload, so between steps. */
  setStepCount(t: number): void {
    this.counter.engine.write(this.counter, adamCounterValues(t, this.hyper));
  }

  /**
   * Updates every parameter that has a gradient (all in the current command encoder). With
   * `skipIf`, the GPU leaves them all, and the step count, unchanged when it holds a non-zero
   * value (mixed precision's overflow flag).
   */
  update(skipIf?: Tensor): void {
    adamBegin(this.counter, this.hyper, skipIf);
    this.params.forEach((p, i) => {
      if (p.grad) adamStep(p, p.grad, this.m[i]!, this.v[i]!, this.hyper, this.counter, skipIf);
    });
  }

  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  dispose(): void {
    for (const t of [...this.m, ...this.v, this.counter]) t.dispose();
  }
}
