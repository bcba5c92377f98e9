// The baselines every landmark and attribute figure is printed beside, computed from the training
// split of the same run: a network that does not beat them has learned nothing of use.
import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { itemBox } from '../data/batch.js';
import type { Dataset, Item } from '../data/dataset.js';
import { headerSize } from '../data/image.js';
import { transformLandmarks } from '../label/pixels.js';

/** An item's landmarks in the frame of its box resized to size x size (no augmentation), or null. */
function framedLandmarks(root: string, item: Item, size: number): Float32Array | null {
  if (!item.landmarks) return null;
  let width = 0, height = 0;
  if (!item.bbox) {
    // Without a box the frame is the whole image: its size from the file's header.
    const head = new Uint8Array(64 * 1024);
    let fd: number | null = null;
    try {
      fd = openSync(join(root, item.path), 'r');
      const got = readSync(fd, head, 0, head.length, 0);
      const dims = headerSize(head.subarray(0, got));
      if (!dims) return null;
      ({ width, height } = dims);
    } catch {
      return null;
    } finally {
      if (fd !== null) closeSync(fd);
    }
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
  /** [8, 2] mean x, y per slot over the training split's visible points, in size x size pixels. */
  mean: Float32Array;
  /** NME of predicting `mean` for every image of the evaluated split (visible points). */
  nme: number;
  points: number;
}

/**
 * Predicting every landmark at its mean position over the training split (normalized to the box):
 * the landmark figure a network must beat. NME as MetricsAccumulator.addLandmarks computes it.
 */
export function meanPositionBaseline(ds: Dataset, train: number[], evaluated: number[], size: number): MeanPositionBaseline | null {
  const mean = meanPositions(ds, train, size);
  let total = 0, points = 0;
  for (const i of evaluated) {
    const lm = framedLandmarks(ds.root, ds.items[i]!, size);
    if (!lm) continue;
    for (let s = 0; s < 8; s++) {
      if (lm[3 * s] !== 0) continue;
      total += Math.hypot(mean[2 * s]! - lm[3 * s + 1]!, mean[2 * s + 1]! - lm[3 * s + 2]!) / size;
      points++;
    }
  }
  return points ? { mean, nme: total / points, points } : null;
}
