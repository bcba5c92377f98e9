// The baselines every landmark and attribute figure is printed beside, computed from the training
// split of the same run: a network that does not beat them has learned nothing of use.
import { join } from 'node:path';
import { itemBox } from '../data/batch.js';
import { imageSize } from '../data/check.js';
import type { Dataset, Item } from '../data/dataset.js';
import { transformLandmarks } from '../label/pixels.js';
import { type EvalResult, landmarkErrors } from '../train/metrics.js';

/** An item's landmarks in the frame of its box resized to size x size (no augmentation), or null. */
function framedLandmarks(root: string, item: Item, size: number): Float32Array | null {
  if (!item.landmarks) return null;
  let width = 0, height = 0;
  if (!item.bbox) {
    // Without a box the frame is the whole image: its size from the file's header.
    let dims: { width: number; height: number } | null = null;
    try {
      dims = imageSize(join(root, item.path));
    } catch {
      return null; // unreadable: it counts nowhere, as in evaluation
    }
    if (!dims) return null;
    ({ width, height } = dims);
  }
  return transformLandmarks(item.landmarks, itemBox(item, width, height), size, false);
}

/** [8, 2] mean x, y per slot over the visible points of `indices`, in size x size pixels (the centre for a slot never seen). */
export function meanPositions(ds: Dataset, indices: number[], size: number): Float32Array {
  const sum = new Float64Array(16), count = new Float64Array(8);
  for (const i of indices) {
    const lm = framedLandmarks(ds.root, ds.items[i]!, size);
    if (!lm) continue;
    for (let s = 0; s < 8; s++) {
      if (lm[3 * s] !== 0) continue;
      sum[2 * s]! += lm[3 * s + 1]!; sum[2 * s + 1]! += lm[3 * s + 2]!; count[s]!++;
    }
  }
  return Float32Array.from(sum, (v, k) => (count[k >> 1]! ? v / count[k >> 1]! : (size - 1) / 2));
}

export interface MeanPositionBaseline {
  /** NME of predicting `mean` for every image of the evaluated split (visible points). */
  nme: number;
  /** The same per slot (LANDMARK_SLOTS names; slots with no visible point absent). */
  per_point: Record<string, number>;
  points: number;
}

/**
 * Predicting every landmark at `mean` (meanPositions of the training split, normalized to the box)
 * on the images `evaluated`: the landmark figure a network must beat. NME as
 * MetricsAccumulator.addLandmarks computes it; null when no visible point is there to score.
 */
export function meanPositionBaseline(ds: Dataset, mean: Float32Array, evaluated: number[], size: number): MeanPositionBaseline | null {
  const sum = new Float64Array(8), count = new Float64Array(8);
  for (const i of evaluated) {
    const lm = framedLandmarks(ds.root, ds.items[i]!, size);
    if (!lm) continue;
    for (let s = 0; s < 8; s++) {
      if (lm[3 * s] !== 0) continue;
      sum[s]! += Math.hypot(mean[2 * s]! - lm[3 * s + 1]!, mean[2 * s + 1]! - lm[3 * s + 2]!) / size;
      count[s]!++;
    }
  }
  const errors = landmarkErrors(sum, count);
  return errors ? { ...errors, points: count.reduce((a, b) => a + b, 0) } : null;
}

/** Puts the baseline beside an evaluation's landmark figures (in all and per point); nothing without either. */
export function attachMeanPosition(r: EvalResult | null, baseline: MeanPositionBaseline | null): void {
  if (r?.landmarks && baseline) Object.assign(r.landmarks, { mean_position_nme: baseline.nme, mean_position_per_point: baseline.per_point });
}
