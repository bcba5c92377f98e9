// The baselines every landmark and attribute figure is printed beside, computed from the training
// split of the same run: a network that does not beat them has learned nothing of use.
import { join } from 'node:path';
import { itemBox } from '../data/batch.js';
import { imageSize } from '../data/check.js';
import type { Dataset, Item } from '../data/dataset.js';
import { transformLandmarks } from '../label/pixels.js';
import { type EvalResult, MetricsAccumulator, type Vocabulary, landmarkErrors } from '../train/metrics.js';

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

/**
 * The garment type a landmark row describes, as the set of slots it names (a bit per slot, listed
 * points visible or not): upper body (collars, sleeves, hems), lower body (waistlines, hems) or
 * full body (all eight), as DeepFashion's clothes_type and its point count say.
 */
export function garmentLayout(landmarks: Float32Array): number {
  let mask = 0;
  for (let s = 0; s < 8; s++) if (landmarks[3 * s]! >= 0) mask |= 1 << s;
  return mask;
}

type Sums = { sum: Float64Array; count: Float64Array };
const emptySums = (): Sums => ({ sum: new Float64Array(16), count: new Float64Array(8) });

/**
 * The sums of x and y and the count of visible points per slot over `indices`, over all of them
 * and per garment type (garmentLayout), in one pass: each item's frame (an image header read for
 * items without a box) is found once.
 */
function visibleSums(ds: Dataset, indices: number[], size: number): { pooled: Sums; byType: Map<number, Sums> } {
  const pooled = emptySums(), byType = new Map<number, Sums>();
  for (const i of indices) {
    const lm = framedLandmarks(ds.root, ds.items[i]!, size);
    if (!lm) continue;
    const layout = garmentLayout(lm);
    let typed = byType.get(layout);
    if (!typed) byType.set(layout, (typed = emptySums()));
    for (let s = 0; s < 8; s++) {
      if (lm[3 * s] !== 0) continue;
      for (const t of [pooled, typed]) {
        t.sum[2 * s]! += lm[3 * s + 1]!; t.sum[2 * s + 1]! += lm[3 * s + 2]!; t.count[s]!++;
      }
    }
  }
  return { pooled, byType };
}

/** Means from sums and counts; a slot never seen takes `fallback(slot)`'s x, y. */
const meansOf = (t: Sums, fallback: (slot: number) => [number, number]) =>
  Float32Array.from(t.sum, (v, k) => (t.count[k >> 1]! ? v / t.count[k >> 1]! : fallback(k >> 1)[k & 1]!));

/**
 * Mean x, y per slot over the visible points of `indices`, in size x size pixels ([8, 2]):
 * - `pooled`: over every item, the centre for a slot never seen;
 * - `byType`: over each garment type's items (garmentLayout), the stronger baseline that knows
 *   whether a garment is worn on the upper body, the lower body or both (the 0.147 on
 *   deepfashion-fine is this one). A slot its type lacks takes the pooled mean, one it has but
 *   never saw visible the centre.
 */
export function landmarkMeans(ds: Dataset, indices: number[], size: number): { pooled: Float32Array; byType: Map<number, Float32Array> } {
  const centre = (size - 1) / 2;
  const sums = visibleSums(ds, indices, size);
  const pooled = meansOf(sums.pooled, () => [centre, centre]);
  const byType = new Map<number, Float32Array>();
  for (const [layout, t] of sums.byType) byType.set(layout, meansOf(t, (s) => (layout & (1 << s) ? [centre, centre] : [pooled[2 * s]!, pooled[2 * s + 1]!])));
  return { pooled, byType };
}

/** [8, 2] the pooled mean positions of `indices` (landmarkMeans). */
export function meanPositions(ds: Dataset, indices: number[], size: number): Float32Array {
  return landmarkMeans(ds, indices, size).pooled;
}

export interface MeanPositionBaseline {
  /** NME of predicting `mean` for every image of the evaluated split (visible points). */
  nme: number;
  /** The same per slot (LANDMARK_SLOTS names; slots with no visible point absent). */
  per_point: Record<string, number>;
  points: number;
  /** With per-type means: the NME of predicting each point at its garment type's mean position, in all and per slot. */
  by_type_nme?: number;
  by_type_per_point?: Record<string, number>;
}

/**
 * Predicting every landmark at `mean` (meanPositions of the training split, normalized to the box)
 * on the images `evaluated`: the landmark figure a network must beat. NME as
 * MetricsAccumulator.addLandmarks computes it; null when no visible point is there to score.
 * With `byType` (landmarkMeans), also the NME of each garment type's own means (a type the
 * training split never had falls back to `mean`).
 */
export function meanPositionBaseline(ds: Dataset, mean: Float32Array, evaluated: number[], size: number, byType?: Map<number, Float32Array>): MeanPositionBaseline | null {
  const sum = new Float64Array(8), typedSum = new Float64Array(8), count = new Float64Array(8);
  for (const i of evaluated) {
    const lm = framedLandmarks(ds.root, ds.items[i]!, size);
    if (!lm) continue;
    const typed = byType?.get(garmentLayout(lm)) ?? mean;
    for (let s = 0; s < 8; s++) {
      if (lm[3 * s] !== 0) continue;
      sum[s]! += Math.hypot(mean[2 * s]! - lm[3 * s + 1]!, mean[2 * s + 1]! - lm[3 * s + 2]!) / size;
      typedSum[s]! += Math.hypot(typed[2 * s]! - lm[3 * s + 1]!, typed[2 * s + 1]! - lm[3 * s + 2]!) / size;
      count[s]!++;
    }
  }
  const errors = landmarkErrors(sum, count);
  if (!errors) return null;
  const typed = byType ? landmarkErrors(typedSum, count)! : null;
  return { ...errors, points: count.reduce((a, b) => a + b, 0), ...(typed ? { by_type_nme: typed.nme, by_type_per_point: typed.per_point } : {}) };
}

/** Puts the baseline beside an evaluation's landmark figures (in all and per point); nothing without either. */
export function attachMeanPosition(r: EvalResult | null, baseline: MeanPositionBaseline | null): void {
  if (r?.landmarks && baseline) {
    Object.assign(r.landmarks, { mean_position_nme: baseline.nme, mean_position_per_point: baseline.per_point });
    if (baseline.by_type_nme !== undefined) Object.assign(r.landmarks, { mean_position_by_type_nme: baseline.by_type_nme, mean_position_by_type_per_point: baseline.by_type_per_point });
  }
}

/**
 * Every image of `evaluated` scored with the attribute frequencies of `train` (the same ranking for
 * all): the attribute figures a network must beat. On deepfashion-fine, recall@3 / @5 per image
 * 36.7 / 52.8, and each type's top-1 is its most frequent answer's share. Null without attributes.
 */
export function mostFrequentAttributes(ds: Dataset, vocab: Vocabulary, train: number[], evaluated: number[]): EvalResult | null {
  if (!ds.attributes || !vocab.attributes.length || !train.length) return null;
  const A = vocab.attributes.length;
  const freq = new Float64Array(A);
  for (const i of train) for (let a = 0; a < A; a++) if (ds.attributes[i * A + a] === 1) freq[a]!++;
  const acc = new MetricsAccumulator(vocab);
  // The list's 1 / -1 / 0 as the metrics' present / absent / unknown.
  for (const i of evaluated) acc.addAttributes(freq, Array.from(ds.attributes.subarray(i * A, (i + 1) * A), (v) => (v === 1 ? 1 : v === -1 ? 0 : -1)));
  acc.countImages(evaluated.length);
  return acc.result();
}

/** Puts the most-frequent baseline (mostFrequentAttributes) beside an evaluation's attribute figures. */
export function attachMostFrequent(r: EvalResult | null, baseline: EvalResult | null): void {
  const b = baseline?.attributes;
  if (r?.attributes && b) r.attributes.most_frequent = { per_image: b.per_image, per_type_top1: b.per_type_top1 ?? {} };
}
