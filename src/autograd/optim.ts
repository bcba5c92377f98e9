// Adam (or AdamW) over a list of parameters, with a learning rate the trainer may change every
// step and optional clipping of the gradients' global norm.
import { ADAM_COUNTER_SIZE, type AdamHyper, adamBegin, adamCounterValues, adamStep } from '../engine/adam.js';
import { accumulate, binary } from '../engine/elementwise.js';
import { reduce } from '../engine/reduce.js';
import type { Tensor } from '../engine/tensor.js';

/**
 * Which parameters weight decay applies to: weights of convolutions and linear layers (rank 2 and
 * up), not biases, BatchNorm's scales and shifts or learned scalars (rank 1), as is usual for AdamW.
 */
export const decaysByDefault = (p: Tensor) => p.rank >= 2;

/** The sum of squares of every tensor, [1] on the GPU (the squared global gradient norm). */
export function sumOfSquares(xs: readonly Tensor[]): Tensor {
  let total: Tensor | null = null;
  for (const x of xs) {
    const squared = binary('mul', x, x);
    const s = reduce('sum', squared, x.shape.map((_, i) => i));
    squared.dispose();
    if (!total) total = s;
    else (accumulate(total, s), s.dispose());
  }
  if (!total) throw new Error('sumOfSquares needs at least one tensor');
  return total;
}

export class Adam {
  readonly hyper: AdamHyper;
  readonly m: Tensor[];
  readonly v: Tensor[];
  /**
   * [t, 1 - beta1^t, 1 - beta2^t]: the steps taken (checkpoints save it) and the bias corrections,
   * on the GPU so that a skipped step (mixed precision) does not count and no step uploads them.
   */
  readonly counter: Tensor;

  /** Each parameter's weight decay: hyper.weightDecay where `decays` says so, else 0. */
  private readonly decay: boolean[];

  constructor(
    readonly params: readonly Tensor[],
    hyper: Partial<AdamHyper> = {},
    decays: (p: Tensor) => boolean = decaysByDefault,
  ) {
    this.hyper = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupled: false, maxGradNorm: 0, ...hyper };
    this.decay = params.map(decays);
    this.m = params.map((p) => p.engine.zeros(p.shape, `${p.name ?? 'param'}.adam_m`).keep());
    this.v = params.map((p) => p.engine.zeros(p.shape, `${p.name ?? 'param'}.adam_v`).keep());
    const engine = params[0]?.engine;
    if (!engine) throw new Error('Adam needs at least one parameter');
    this.counter = engine.tensor(adamCounterValues(0, this.hyper), [ADAM_COUNTER_SIZE], 'adam.counter').keep();
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
    const grads = this.params.flatMap((p) => (p.grad ? [p.grad] : []));
    const norm2 = this.hyper.maxGradNorm && grads.length ? sumOfSquares(grads) : undefined;
    adamBegin(this.counter, this.hyper, skipIf, norm2);
    norm2?.dispose();
    this.params.forEach((p, i) => {
      if (p.grad) adamStep(p, p.grad, this.m[i]!, this.v[i]!, this.hyper, this.counter, skipIf, this.decay[i] ? this.hyper.weightDecay : 0);
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
