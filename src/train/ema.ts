// An exponential moving average of a network's weights (Polyak averaging), kept on the GPU and
// updated inside each training step's submission; evaluation and the saved weights/best can use
// it in place of the live weights. BatchNorm's running statistics are averaged too (as timm's
// ModelEmaV2 averages the whole state), so the averaged network is consistent with itself.
import { accumulate, unary } from '../engine/elementwise.js';
import type { Tensor } from '../engine/tensor.js';
import type { Module } from '../nets/module.js';

export class WeightAverage {
  /** The live tensors (every part of every state entry) and their averages, in the same order. */
  readonly live: Tensor[];
  readonly average: Tensor[];

  constructor(
    net: Module,
    /** Each step: average += (1 - decay) * (live - average). */
    readonly decay: number,
  ) {
    if (!(decay > 0 && decay < 1)) throw new Error(`the weight average's decay must be in (0, 1), got ${decay}`);
    this.live = net.stateEntries().flatMap((e) => e.parts);
    this.average = this.live.map((t) => unary('copy', t).keep());
  }

  /** Moves the average towards the live weights (recorded into the current submission). */
  update(): void {
    this.live.forEach((t, i) => accumulate(this.average[i]!, t, 1 - this.decay, true));
  }

  /** Runs `fn` with the averaged weights in the network, then puts the live ones back. */
  async swapped<T>(fn: () => Promise<T>): Promise<T> {
    const backup = this.live.map((t) => unary('copy', t));
    this.live.forEach((t, i) => accumulate(t, this.average[i]!, 1, true));
    try {
      return await fn();
    } finally {
      this.live.forEach((t, i) => accumulate(t, backup[i]!, 1, true));
      for (const b of backup) b.dispose();
    }
  }

  dispose(): void {
    for (const t of this.average) t.dispose();
  }
}
