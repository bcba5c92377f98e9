// Learning-rate schedules, per step (runtime-agnostic and pure: the trainer asks for the rate of
// each step, so a resumed run gets exactly the rates an uninterrupted one would).
export type ScheduleName = 'exp' | 'cosine' | 'onecycle';
export const SCHEDULES: readonly ScheduleName[] = ['exp', 'cosine', 'onecycle'];

export interface ScheduleConfig {
  schedule: ScheduleName;
  /** The peak rate. */
  lr: number;
  /** `exp`: the factor applied after every epoch. */
  lrDecay: number;
  /** Linear warm-up from ~0 over this many epochs (`exp` and `cosine`; `onecycle` has its own). */
  warmupEpochs: number;
  epochs: number;
}

/** OneCycle's shape, as torch.optim.lr_scheduler.OneCycleLR's defaults. */
export const ONE_CYCLE = { rise: 0.3, startDivisor: 25, endDivisor: 1e4 };

const cosineBetween = (from: number, to: number, t: number) => to + ((from - to) * (1 + Math.cos(Math.PI * Math.min(1, Math.max(0, t))))) / 2;

/**
 * The rate for step `batch` of epoch `epoch` (both from 0) with `perEpoch` steps an epoch.
 * - exp: lr * lrDecay^epoch (the thesis's per-epoch decay);
 * - cosine: from lr down to 0 along half a cosine over the run;
 * - onecycle: from lr/25 up to lr over the first 30% (cosine), then down to lr/25e4 (Smith 2018).
 * Warm-up (exp, cosine) multiplies by the share of the warm-up done, counting this step.
 */
export function learningRate(c: ScheduleConfig, epoch: number, batch: number, perEpoch: number): number {
  const t = epoch + batch / Math.max(1, perEpoch); // epochs done before this step
  const progress = t / Math.max(1e-9, c.epochs);
  if (c.schedule === 'onecycle') {
    const peak = c.lr, start = peak / ONE_CYCLE.startDivisor, end = start / ONE_CYCLE.endDivisor;
    return progress < ONE_CYCLE.rise ? cosineBetween(start, peak, progress / ONE_CYCLE.rise) : cosineBetween(peak, end, (progress - ONE_CYCLE.rise) / (1 - ONE_CYCLE.rise));
  }
  const base = c.schedule === 'cosine' ? cosineBetween(c.lr, 0, progress) : c.lr * c.lrDecay ** epoch;
  if (c.warmupEpochs > 0 && t < c.warmupEpochs) return (base * (t + 1 / Math.max(1, perEpoch))) / c.warmupEpochs;
  return base;
}
