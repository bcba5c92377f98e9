// Training augmentation inside the garment's box, reproducible from (seed, item): the same epoch
// seed gives the same crops, angles and colours in any order and on any thread, which is what
// keeps --resume exact. Every geometric change moves the landmarks with it, and a point pushed out
// of the frame becomes "truncated" (2), so it is no longer supervised.
import { type Box, IMAGENET_MEAN, IMAGENET_STD, windowInside } from '../label/pixels.js';
import { xorshift32 } from './dataset.js';

export interface AugmentSpec {
  /** Random horizontal flips (left/right landmark slots swapped). */
  flip: boolean;
  /** Random resized crop inside the box: smallest share of the box's area (1: off). */
  minArea: number;
  /** Box jitter: each side scaled by up to this fraction, the centre moved by up to it (0: off). */
  jitter: number;
  /** Largest rotation, degrees, either way (0: off). */
  rotate: number;
  /** Brightness, contrast and saturation factors drawn from [1 - color, 1 + color] (0: off). */
  color: number;
  /**
   * The box head's whole photo: the smallest side of a random window of it, as a share of the
   * photo's (scale and translation jitter; the garment's box moves with it and is clipped; 1: off).
   */
  frame: number;
}

/**
 * `flip`: flips only (the thesis's preprocessing). `light`: flips, box jitter, small rotations and
 * colour, keeping the whole garment in view (for landmark networks, whose points a crop would cut
 * off). `strong`: flips, random resized crops down to 35% of the box, rotations and colour.
 */
export const AUGMENTS = {
  none: { flip: false, minArea: 1, jitter: 0, rotate: 0, color: 0, frame: 1 },
  flip: { flip: true, minArea: 1, jitter: 0, rotate: 0, color: 0, frame: 1 },
  light: { flip: true, minArea: 1, jitter: 0.1, rotate: 10, color: 0.2, frame: 0.8 },
  strong: { flip: true, minArea: 0.35, jitter: 0, rotate: 10, color: 0.3, frame: 0.8 },
} as const satisfies Record<string, AugmentSpec>;
export type AugmentName = keyof typeof AUGMENTS;
export const AUGMENT_NAMES = Object.keys(AUGMENTS) as AugmentName[];

/** A hash of (seed, index, stream): independent, order-free random streams per item. */
function mix(seed: number, index: number, stream: number): number {
  let h = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35) ^ Math.imul(stream + 7, 0x27d4eb2f)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d) >>> 0;
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b) >>> 0;
  h ^= h >>> 16;
  return h >>> 0 || 1;
}

/**
 * The seed of the box head's extra view `view` of every photo (`train --box-views`): view 0 is the
 * batch's own seed (the view a run without extra views draws), each other an independent stream.
 */
export function viewSeed(seed: number, view: number): number {
  return view === 0 ? seed : mix(seed, view, 4);
}

/** Uniform numbers in [0, 1) for one item of one epoch (the shuffle's generator, seeded per item). */
export function itemRandom(seed: number, index: number): () => number {
  return xorshift32(mix(seed, index, 1));
}

/** The window of the whole photo the box head sees (AugmentSpec.frame), from the item's own stream. */
export function drawFrame(spec: AugmentSpec, width: number, height: number, seed: number, index: number): Box {
  if (spec.frame >= 1) return { x: 0, y: 0, w: width, h: height };
  const rand = xorshift32(mix(seed, index, 2));
  const side = spec.frame + (1 - spec.frame) * rand();
  const w = width * side, h = height * side;
  return { x: (width - w) * rand(), y: (height - h) * rand(), w, h };
}

/** The range of the box head's training windows' growth over the true box, each side drawn on its own. */
export const ZOOM_GROWTH = [1.1, 1.6] as const;
/** How far a training window's centre moves from the true box's, as a share of the box's side. */
export const ZOOM_SHIFT = 0.1;

/**
 * The box head's second look in training (`train --box-zoom SHARE`): for that share of the photos
 * with a box, a window around the true box instead of the whole photo, each side ZOOM_GROWTH times
 * the box's and the centre moved by up to ZOOM_SHIFT of it, kept inside the photo; null for the
 * others. From the item's own stream, so a resumed run draws the same windows.
 */
export function drawZoomWindow(share: number, box: Box, width: number, height: number, seed: number, index: number): Box | null {
  if (share <= 0) return null;
  const rand = xorshift32(mix(seed, index, 3));
  if (rand() >= share) return null;
  const [lo, hi] = ZOOM_GROWTH;
  const w = box.w * (lo + (hi - lo) * rand()), h = box.h * (lo + (hi - lo) * rand());
  const cx = box.x + box.w / 2 + (2 * rand() - 1) * ZOOM_SHIFT * box.w, cy = box.y + box.h / 2 + (2 * rand() - 1) * ZOOM_SHIFT * box.h;
  return windowInside(cx, cy, w, h, width, height);
}

export interface Draw {
  box: Box;
  /** Rotation in radians, counter-clockwise on the screen (y down): points move by R(angle). */
  angle: number;
  brightness: number;
  contrast: number;
  saturation: number;
}

/** The random choices for one item: the box to crop, the angle and the colour factors. */
export function drawAugment(spec: AugmentSpec, box: Box, rand: () => number): Draw {
  let b = box;
  if (spec.minArea < 1) {
    // torchvision's RandomResizedCrop within the box: area share and log-uniform aspect ratio.
    const area = spec.minArea + (1 - spec.minArea) * rand();
    const ratio = Math.exp(Math.log(3 / 4) + (Math.log(4 / 3) - Math.log(3 / 4)) * rand());
    const w = Math.min(box.w, box.w * Math.sqrt(area * ratio)), h = Math.min(box.h, box.h * Math.sqrt(area / ratio));
    b = { x: box.x + (box.w - w) * rand(), y: box.y + (box.h - h) * rand(), w, h };
  }
  if (spec.jitter > 0) {
    const j = (r: number) => (2 * r - 1) * spec.jitter;
    const w = b.w * (1 + j(rand())), h = b.h * (1 + j(rand()));
    const cx = b.x + b.w / 2 + j(rand()) * b.w, cy = b.y + b.h / 2 + j(rand()) * b.h;
    b = { x: cx - w / 2, y: cy - h / 2, w, h };
  }
  const angle = ((2 * rand() - 1) * spec.rotate * Math.PI) / 180;
  const factor = () => 1 + (2 * rand() - 1) * spec.color;
  return { box: b, angle, brightness: factor(), contrast: factor(), saturation: factor() };
}

/**
 * Rotates normalized CHW pixels [3, S, S] about the centre by `angle` (bilinear; outside the frame
 * the dataset mean, i.e. 0 after normalization): a rotated copy.
 */
export function rotatePixels(src: Float32Array, S: number, angle: number): Float32Array {
  if (angle === 0) return src;
  const out = new Float32Array(src.length);
  const c = (S - 1) / 2, cos = Math.cos(angle), sin = Math.sin(angle);
  const plane = S * S;
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      // The source of output (x, y) is R(-angle) applied about the centre.
      const sx = cos * (x - c) + sin * (y - c) + c, sy = -sin * (x - c) + cos * (y - c) + c;
      const x0 = Math.floor(sx), y0 = Math.floor(sy), fx = sx - x0, fy = sy - y0;
      for (let ch = 0; ch < 3; ch++) {
        const at = (xx: number, yy: number) => (xx < 0 || yy < 0 || xx >= S || yy >= S ? 0 : src[ch * plane + yy * S + xx]!);
        out[ch * plane + y * S + x] = (1 - fy) * ((1 - fx) * at(x0, y0) + fx * at(x0 + 1, y0)) + fy * ((1 - fx) * at(x0, y0 + 1) + fx * at(x0 + 1, y0 + 1));
      }
    }
  }
  return out;
}

/** Rotates landmarks (8 x visibility, x, y in S x S pixels) with the pixels; out of frame = truncated. */
export function rotateLandmarks(lm: Float32Array, S: number, angle: number): Float32Array {
  if (angle === 0) return lm;
  const out = Float32Array.from(lm);
  const c = (S - 1) / 2, cos = Math.cos(angle), sin = Math.sin(angle);
  for (let s = 0; s < 8; s++) {
    if (lm[3 * s]! < 0) continue;
    const x = lm[3 * s + 1]! - c, y = lm[3 * s + 2]! - c;
    const nx = cos * x - sin * y + c, ny = sin * x + cos * y + c;
    out[3 * s + 1] = nx;
    out[3 * s + 2] = ny;
    const inside = nx >= -0.5 && nx < S - 0.5 && ny >= -0.5 && ny < S - 0.5;
    if (lm[3 * s] === 0 && !inside) out[3 * s] = 2;
  }
  return out;
}

/** Brightness, contrast and saturation on normalized CHW pixels, in place (torchvision's order). */
export function jitterColor(px: Float32Array, S: number, d: Pick<Draw, 'brightness' | 'contrast' | 'saturation'>): void {
  if (d.brightness === 1 && d.contrast === 1 && d.saturation === 1) return;
  const plane = S * S;
  const rgb = [0, 1, 2].map((ch) => Float32Array.from(px.subarray(ch * plane, (ch + 1) * plane), (v) => v * IMAGENET_STD[ch]! + IMAGENET_MEAN[ch]!));
  const gray = (i: number) => 0.299 * rgb[0]![i]! + 0.587 * rgb[1]![i]! + 0.114 * rgb[2]![i]!;
  let meanGray = 0;
  for (let i = 0; i < plane; i++) meanGray += gray(i) * d.brightness;
  meanGray /= plane;
  for (let i = 0; i < plane; i++) {
    for (const ch of [0, 1, 2]) rgb[ch]![i] = Math.min(1, Math.max(0, rgb[ch]![i]! * d.brightness));
    for (const ch of [0, 1, 2]) rgb[ch]![i] = Math.min(1, Math.max(0, (rgb[ch]![i]! - meanGray) * d.contrast + meanGray));
    const g = gray(i);
    for (const ch of [0, 1, 2]) rgb[ch]![i] = Math.min(1, Math.max(0, (rgb[ch]![i]! - g) * d.saturation + g));
  }
  for (const ch of [0, 1, 2]) for (let i = 0; i < plane; i++) px[ch * plane + i] = (rgb[ch]![i]! - IMAGENET_MEAN[ch]!) / IMAGENET_STD[ch]!;
}
