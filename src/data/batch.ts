// Turning dataset items into training batches: decode, crop to the box, resize, flip, normalize,
// landmark targets. Runs inside the loader's worker threads (or in-process with --workers 0).
import { join } from 'node:path';
import { type AugmentSpec, AUGMENTS, drawAugment, drawFrame, drawZoomWindow, itemRandom, jitterColor, rotateLandmarks, rotatePixels, viewSeed } from './augment.js';
import type { Item, Tasks } from './dataset.js';
import { type Box, type RgbaImage, cropResize, landmarkHeatmaps, loadImageFile, transformLandmarks } from './image.js';

/** What a worker needs of a dataset: plain data, cheap to send to a thread. */
export interface DatasetView {
  root: string;
  items: Item[];
  attributes: Int8Array | null;
  attributeCount: number;
  tasks: Tasks;
}

export interface BatchSpec {
  size: number;
  /** Training augmentation: `augmentation`, or flips only when that is not given. */
  augment: boolean;
  augmentation?: AugmentSpec;
  /** Build Gaussian heatmap targets (networks with a landmark branch). */
  heatmaps: boolean;
  /** Also the whole photos at this size with the garment's box (the box head's input); 0 or absent: none. */
  photoSize?: number;
  /** With augment and photoSize: the share of photos shown as a window around their box instead (drawZoomWindow). */
  boxZoom?: number;
  /**
   * With augment and photoSize: each photo this many times, each view with its own flip, window
   * and colours (viewSeed), so that the box head sees that many photos a step (absent: 1).
   */
  boxViews?: number;
  /**
   * With augment and photoSize: the smallest side, as a share of the photo's, of the random window
   * of the whole photo the box head sees (AugmentSpec.frame for the head alone; absent: the
   * augmentation's own, so the crops' augmentation and the head's window can be chosen apart).
   */
  boxFrame?: number;
}

export interface Batch {
  indices: number[];
  size: number;
  images: Float32Array;
  /** [n] category index, -1 unknown. */
  category: Float32Array;
  /** [n, A] 1 / 0 / -1 unknown. */
  attributes: Float32Array | null;
  /** [n, 8, 3] (visibility, x, y) in the crop frame; visibility -1 where there is no point. */
  landmarks: Float32Array | null;
  heatmaps: Float32Array | null;
  /** [n, 8] 1 where a heatmap is supervised. */
  landmarkMask: Float32Array | null;
  /** Images that could not be read, with the reason (their labels are masked out). */
  broken: { path: string; reason: string }[];
  /**
   * [n * V, 3, P, P] the whole photos at spec.photoSize (or a window of each), V = spec.boxViews
   * views of each item in a row: the first flipped with the crop, the others drawn on their own.
   */
  photos?: Float32Array;
  /** [n * V, 4] the garment's box in each of `photos` as (cx, cy, w, h) fractions; with boxMask. */
  boxes?: Float32Array;
  /** [n * V] 1 where the item has a box. */
  boxMask?: Float32Array;
  /** [n, 2] each photo's width and height in pixels (0 for a broken one). */
  photoSizes?: Float32Array;
}

/** A per-item coin for flipping that depends only on (seed, item): reproducible and order-free. */
export function flipCoin(seed: number, index: number): boolean {
  let h = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d) >>> 0;
  h ^= h >>> 15;
  return (h & 1) === 1;
}

export function itemBox(item: Item, width: number, height: number): Box {
  if (!item.bbox) return { x: 0, y: 0, w: width, h: height };
  const [x1, y1, x2, y2] = item.bbox;
  return { x: x1, y: y1, w: Math.max(1, x2 - x1), h: Math.max(1, y2 - y1) };
}

/**
 * A box [x1, y1, x2, y2] in pixels as (cx, cy, w, h) fractions of a window of the photo, clipped to
 * the window, mirrored when the window is.
 */
export function boxInFrame(bbox: readonly number[], frame: Box, flip: boolean): [number, number, number, number] {
  const clip = (v: number) => Math.min(1, Math.max(0, v));
  let x1 = clip((bbox[0]! - frame.x) / frame.w), x2 = clip((bbox[2]! - frame.x) / frame.w);
  const y1 = clip((bbox[1]! - frame.y) / frame.h), y2 = clip((bbox[3]! - frame.y) / frame.h);
  if (flip) [x1, x2] = [1 - x2, 1 - x1];
  return [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1];
}

/** An item's whole photo, or null where it cannot be read (eval's second look at the garment's box). */
export function itemPhoto(view: DatasetView, index: number): RgbaImage | null {
  const item = view.items[index];
  if (!item) return null;
  try {
    return loadImageFile(join(view.root, item.path), item.path);
  } catch {
    return null; // a broken image counts nowhere (loadBatch has already said why)
  }
}

export function loadBatch(view: DatasetView, indices: number[], spec: BatchSpec, seed: number): Batch {
  const n = indices.length, S = spec.size, A = view.attributeCount;
  const plane = 3 * S * S;
  const b: Batch = {
    indices,
    size: S,
    images: new Float32Array(n * plane),
    category: new Float32Array(n).fill(-1),
    attributes: view.tasks.attributes ? new Float32Array(n * A).fill(-1) : null,
    landmarks: view.tasks.landmarks ? new Float32Array(n * 24).fill(-1) : null,
    heatmaps: view.tasks.landmarks && spec.heatmaps ? new Float32Array(n * 8 * S * S) : null,
    landmarkMask: view.tasks.landmarks ? new Float32Array(n * 8) : null,
    broken: [],
  };
  const P = spec.photoSize ?? 0;
  const V = P && spec.augment ? (spec.boxViews ?? 1) : 1;
  if (!(Number.isInteger(V) && V >= 1)) throw new Error(`boxViews must be a whole number of views, 1 or more; got ${V}`);
  if (P) {
    b.photos = new Float32Array(n * V * 3 * P * P);
    b.boxes = new Float32Array(n * V * 4);
    b.boxMask = new Float32Array(n * V);
    b.photoSizes = new Float32Array(n * 2);
  }
  indices.forEach((index, i) => {
    const item = view.items[index]!;
    let img;
    try {
      // List paths were checked to stay inside the root (lists.ts); a FIFO or device is refused unread.
      img = loadImageFile(join(view.root, item.path), item.path);
    } catch (e) {
      // A broken image trains nothing: zeros in, every label masked.
      b.broken.push({ path: item.path, reason: (e as Error).message });
      return;
    }
    const aug = spec.augment ? (spec.augmentation ?? AUGMENTS.flip) : AUGMENTS.none;
    const flip = aug.flip && flipCoin(seed, index);
    const box = itemBox(item, img.width, img.height);
    const draw = drawAugment(aug, box, itemRandom(seed, index));
    const pixels = rotatePixels(cropResize(img, draw.box, S, flip), S, draw.angle);
    jitterColor(pixels, S, draw);
    b.images.set(pixels, i * plane);
    if (P) {
      b.photoSizes!.set([img.width, img.height], 2 * i);
      const frameSpec = spec.augment && spec.boxFrame !== undefined ? { ...aug, frame: spec.boxFrame } : aug;
      for (let v = 0; v < V; v++) {
        // View 0 shares the crop's flip and colours; the others draw their own from viewSeed.
        const s = viewSeed(seed, v), row = i * V + v;
        const viewFlip = v === 0 ? flip : aug.flip && flipCoin(s, index);
        const colours = v === 0 ? draw : drawAugment(aug, box, itemRandom(s, index));
        const zoomed = spec.augment && item.bbox ? drawZoomWindow(spec.boxZoom ?? 0, box, img.width, img.height, s, index) : null;
        const frame = zoomed ?? drawFrame(frameSpec, img.width, img.height, s, index);
        const photo = cropResize(img, frame, P, viewFlip);
        jitterColor(photo, P, colours);
        b.photos!.set(photo, row * 3 * P * P);
        if (item.bbox) {
          b.boxes!.set(boxInFrame(item.bbox, frame, viewFlip), 4 * row);
          b.boxMask![row] = 1;
        }
      }
    }
    b.category[i] = item.category;
    if (b.attributes && view.attributes) {
      for (let a = 0; a < A; a++) {
        const v = view.attributes[index * A + a]!;
        b.attributes[i * A + a] = v === 1 ? 1 : v === -1 ? 0 : -1;
      }
    }
    if (b.landmarks && item.landmarks) {
      const moved = rotateLandmarks(transformLandmarks(item.landmarks, draw.box, S, flip), S, draw.angle);
      b.landmarks.set(moved, i * 24);
      const { heatmaps, mask } = landmarkHeatmaps(moved, b.heatmaps ? S : 0);
      b.landmarkMask!.set(mask, i * 8);
      b.heatmaps?.set(heatmaps, i * 8 * S * S);
    }
  });
  return b;
}
