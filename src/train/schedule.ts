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
  /**
   * `onecycle`: also cycle Adam's beta1 against the rate, 0.95 -> 0.85 -> 0.95 (Smith's cyclical
   * momentum, on by default in torch's OneCycleLR); otherwise beta1 stays 0.9.
   */
  cycleMomentum?: boolean;
}

/** OneCycle's shape, as torch.optim.lr_scheduler.OneCycleLR's defaults (momentum: Adam's beta1). */
export const ONE_CYCLE = { rise: 0.3, startDivisor: 25, endDivisor: 1e4, highMomentum: 0.95, lowMomentum: 0.85 };

/** Adam's beta1 where no schedule moves it (torch.optim.Adam's default). */
export const DEFAULT_BETA1 = 0.9;

const cosineBetween = (from: number, to: number, t: number) => to + ((from - to) * (1 + Math.cos(Math.PI * Math.min(1, Math.max(0, t))))) / 2;

/** Epochs done before step `batch` of epoch `epoch` (both from 0), with `perEpoch` steps an epoch. */
const epochsDone = (epoch: number, batch: number, perEpoch: number) => epoch + batch / Math.max(1, perEpoch);

/**
 * The rate for step `batch` of epoch `epoch` (both from 0) with `perEpoch` steps an epoch.
 * - exp: lr * lrDecay^epoch (the thesis's per-epoch decay);
 * - cosine: from lr down to 0 along half a cosine over the run;
 * - onecycle: from lr/25 up to lr over the first 30% (cosine), then down to lr/25e4 (Smith 2018).
 * Warm-up (exp, cosine) multiplies by the share of the warm-up done, counting this step.
 */
export function learningRate(c: ScheduleConfig, epoch: number, batch: number, perEpoch: number): number {
  const t = epochsDone(epoch, batch, perEpoch);
  const progress = t / Math.max(1e-9, c.epochs);
  if (c.schedule === 'onecycle') {
    const peak = c.lr, start = peak / ONE_CYCLE.startDivisor, end = start / ONE_CYCLE.endDivisor;
    return progress < ONE_CYCLE.rise ? cosineBetween(start, peak, progress / ONE_CYCLE.rise) : cosineBetween(peak, end, (progress - ONE_CYCLE.rise) / (1 - ONE_CYCLE.rise));
  }
  const base = c.schedule === 'cosine' ? cosineBetween(c.lr, 0, progress) : c.lr * c.lrDecay ** epoch;
  if (c.warmupEpochs > 0 && t < c.warmupEpochs) return (base * (t + 1 / Math.max(1, perEpoch))) / c.warmupEpochs;
  return base;
}

/**
 * Adam's beta1 for step `batch` of epoch `epoch`: with `onecycle` and cycleMomentum it falls from
 * 0.95 to 0.85 while the rate rises and climbs back while the rate falls (both along the rate's
 * cosines), so that the steps taken at the peak rate average fewer gradients; otherwise 0.9.
 */
export function adamBeta1(c: ScheduleConfig, epoch: number, batch: number, perEpoch: number): number {
  if (c.schedule !== 'onecycle' || !c.cycleMomentum) return DEFAULT_BETA1;
  const progress = epochsDone(epoch, batch, perEpoch) / Math.max(1e-9, c.epochs);
  const { highMomentum: high, lowMomentum: low, rise } = ONE_CYCLE;
  return progress < rise ? cosineBetween(high, low, progress / rise) : cosineBetween(low, high, (progress - rise) / (1 - rise));
}
