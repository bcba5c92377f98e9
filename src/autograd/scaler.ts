// Dynamic gradient scaling for mixed precision. The output gradients that convolutions and linear
// layers read as f16 copies are multiplied by `scale` on the way in (and the results divided by
// it): small gradients then stay out of f16's subnormal range. A scaled value beyond f16's range
// sets the overflow flag on the GPU; Adam then leaves every parameter as it is for that step, and
// when the flag is read back (with the step's losses) the scale halves. After `growthInterval`
// clean steps in a row it doubles again. The same policy as PyTorch's GradScaler, except that the
// check rides on the casts the step makes anyway, and the skip happens on the GPU with no wait.
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/tensor.js';

export interface ScalerOptions {
  initial: number;
  growthInterval: number;
  min: number;
  max: number;
}

export const DEFAULT_SCALER: ScalerOptions = { initial: 2 ** 10, growthInterval: 200, min: 1, max: 2 ** 16 };

export class GradientScaler {
  scale: number;
  /** [1]: non-zero once a gradient cast of the current step overflowed f16. */
  readonly flag: Tensor;
  /** Steps booked since the last overflow, and the overflows so far. */
  cleanSteps = 0;
  overflows = 0;
  readonly options: ScalerOptions;

  constructor(readonly engine: Engine, options: Partial<ScalerOptions> = {}) {
    this.options = { ...DEFAULT_SCALER, ...options };
    this.scale = this.options.initial;
    this.flag = engine.zeros([1], 'mixed_precision.overflow').keep();
  }

  /** Clears the flag for a new step (recorded, not submitted). */
  begin(): void {
    this.engine.fill(this.flag, 0);
  }

  /**
   * Books a step's outcome, read back from `flag` (any non-zero bits mean an overflow): halves the
   * scale after an overflow, doubles it after growthInterval clean steps. Returns whether that
   * step's update was skipped.
   */
  book(flagValue: number): boolean {
    if (flagValue !== 0) {
      this.overflows++;
      this.cleanSteps = 0;
      this.scale = Math.max(this.options.min, this.scale / 2);
      return true;
    }
    if (++this.cleanSteps >= this.options.growthInterval) {
      this.cleanSteps = 0;
      this.scale = Math.min(this.options.max, this.scale * 2);
    }
    return false;
  }

  dispose(): void {
    this.flag.dispose();
  }
}
