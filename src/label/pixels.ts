// Pixels for the networks, runtime-agnostic (a browser runs this too): crop to a box and resize
// with antialiased bicubic sampling (PIL's BICUBIC, the thesis's preprocessing), flip, ImageNet
// normalization, and the landmark geometry that goes with them.

export interface RgbaImage {
  width: number;
  height: number;
  /** RGBA, 4 bytes a pixel. */
  data: Uint8Array | Uint8ClampedArray;
}

/** The fixed landmark order; DeepFashion's 4, 6 or 8 points are mapped into it. */
export const LANDMARK_SLOTS = ['left collar', 'right collar', 'left sleeve', 'right sleeve', 'left waistline', 'right waistline', 'left hem', 'right hem'] as const;
/** Left/right partners, swapped by a horizontal flip. */
export const MIRROR = [1, 0, 3, 2, 5, 4, 7, 6];

export const IMAGENET_MEAN = [0.485, 0.456, 0.406];
export const IMAGENET_STD = [0.229, 0.224, 0.225];

/** Keys' cubic kernel with a = -0.5 (PIL's and PyTorch's bicubic). */
function cubic(x: number): number {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0;
}

/**
 * For each output coordinate along one axis, the source indices and weights that sample
 * [start, start + length) into `size` outputs; the kernel widens when shrinking (antialiasing).
 */
function taps(start: number, length: number, size: number, limit: number): { index: Int32Array; weight: Float32Array; n: number } {
  const scale = length / size;
  const support = 2 * Math.max(1, scale);
  const n = Math.ceil(support) * 2 + 1;
  const index = new Int32Array(size * n), weight = new Float32Array(size * n);
  for (let o = 0; o < size; o++) {
    const center = start + (o + 0.5) * scale;
    const lo = Math.floor(center - support), stretch = Math.max(1, scale);
    let total = 0;
    for (let k = 0; k < n; k++) {
      const i = lo + k;
      const w = cubic((i + 0.5 - center) / stretch);
      index[o * n + k] = Math.min(Math.max(i, 0), limit - 1);
      weight[o * n + k] = w;
      total += w;
    }
    for (let k = 0; k < n; k++) weight[o * n + k]! /= total || 1;
  }
  return { index, weight, n };
}

export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

/**
 * Crops `box` (clamped to the image by edge replication) and resizes it to size x size, returning
 * normalized CHW floats; `flip` mirrors horizontally.
 */
export function cropResize(img: RgbaImage, box: Box, size: number, flip: boolean): Float32Array {
  const tx = taps(box.x, box.w, size, img.width);
  const ty = taps(box.y, box.h, size, img.height);
  // Horizontal pass over the rows the vertical pass will read.
  let rowLo = img.height, rowHi = 0;
  for (let i = 0; i < ty.index.length; i++) (rowLo = Math.min(rowLo, ty.index[i]!)), (rowHi = Math.max(rowHi, ty.index[i]!));
  const rows = rowHi - rowLo + 1;
  const mid = new Float32Array(rows * size * 3);
  for (let r = 0; r < rows; r++) {
    const src = (rowLo + r) * img.width * 4;
    for (let o = 0; o < size; o++) {
      let cr = 0, cg = 0, cb = 0;
      for (let k = 0; k < tx.n; k++) {
        const w = tx.weight[o * tx.n + k]!, p = src + tx.index[o * tx.n + k]! * 4;
        cr += w * img.data[p]!;
        cg += w * img.data[p + 1]!;
        cb += w * img.data[p + 2]!;
      }
      const m = (r * size + (flip ? size - 1 - o : o)) * 3;
      mid[m] = cr; mid[m + 1] = cg; mid[m + 2] = cb;
    }
  }
  const out = new Float32Array(3 * size * size);
  const plane = size * size;
  for (let oy = 0; oy < size; oy++) {
    for (let ox = 0; ox < size; ox++) {
      let cr = 0, cg = 0, cb = 0;
      for (let k = 0; k < ty.n; k++) {
        const w = ty.weight[oy * ty.n + k]!, m = ((ty.index[oy * ty.n + k]! - rowLo) * size + ox) * 3;
        cr += w * mid[m]!;
        cg += w * mid[m + 1]!;
        cb += w * mid[m + 2]!;
      }
      const at = oy * size + ox;
      out[at] = (Math.min(Math.max(cr / 255, 0), 1) - IMAGENET_MEAN[0]!) / IMAGENET_STD[0]!;
      out[plane + at] = (Math.min(Math.max(cg / 255, 0), 1) - IMAGENET_MEAN[1]!) / IMAGENET_STD[1]!;
      out[2 * plane + at] = (Math.min(Math.max(cb / 255, 0), 1) - IMAGENET_MEAN[2]!) / IMAGENET_STD[2]!;
    }
  }
  return out;
}

/**
 * Moves landmarks (8 slots of visibility, x, y in image pixels) into the frame of `box` resized to
 * size x size, flipped when asked (x mirrored and left/right slots swapped). A point that falls
 * outside the crop becomes "truncated" (2).
 */
export function transformLandmarks(landmarks: Float32Array, box: Box, size: number, flip: boolean): Float32Array {
  const out = new Float32Array(24).fill(-1);
  for (let s = 0; s < 8; s++) {
    const v = landmarks[3 * s]!;
    if (v < 0) continue;
    let x = ((landmarks[3 * s + 1]! + 0.5 - box.x) * size) / box.w - 0.5;
    const y = ((landmarks[3 * s + 2]! + 0.5 - box.y) * size) / box.h - 0.5;
    if (flip) x = size - 1 - x;
    const d = flip ? MIRROR[s]! : s;
    const inside = x >= -0.5 && x < size - 0.5 && y >= -0.5 && y < size - 0.5;
    out[3 * d] = v === 0 && !inside ? 2 : v;
    out[3 * d + 1] = x;
    out[3 * d + 2] = y;
  }
  return out;
}

/** The inverse of transformLandmarks for one point: crop-frame pixels back to image pixels. */
export function toImagePixels(x: number, y: number, box: Box, size: number): [number, number] {
  return [((x + 0.5) * box.w) / size + box.x - 0.5, ((y + 0.5) * box.h) / size + box.y - 0.5];
}

/**
 * A w x h window centred on (cx, cy), moved (not cut) to lie inside a W x H photo; only a side
 * longer than the photo's is cut to it. Cutting would take the garment's edge out of view just
 * where the box head is to find it.
 */
export function windowInside(cx: number, cy: number, w: number, h: number, W: number, H: number): Box {
  const ww = Math.min(W, Math.max(1, w)), hh = Math.min(H, Math.max(1, h));
  return { x: Math.min(W - ww, Math.max(0, cx - ww / 2)), y: Math.min(H - hh, Math.max(0, cy - hh / 2)), w: ww, h: hh };
}

/** The box head's (cx, cy, w, h) fractions of a window of a W x H photo as fractions of the whole photo. */
export function windowToPhoto(b: ArrayLike<number>, window: Box, W: number, H: number): [number, number, number, number] {
  return [(window.x + b[0]! * window.w) / W, (window.y + b[1]! * window.h) / H, (b[2]! * window.w) / W, (b[3]! * window.h) / H];
}

/** The box head's (cx, cy, w, h) fractions as [x1, y1, x2, y2] pixels inside a W x H photo, at least a pixel each way. */
export function pixelBox(b: ArrayLike<number>, W: number, H: number): [number, number, number, number] {
  const x1 = b[0]! - b[2]! / 2, y1 = b[1]! - b[3]! / 2, x2 = b[0]! + b[2]! / 2, y2 = b[1]! + b[3]! / 2;
  const x = Math.min(W - 1, Math.max(0, x1 * W)), y = Math.min(H - 1, Math.max(0, y1 * H));
  return [x, y, Math.max(x + 1, Math.min(W, x2 * W)), Math.max(y + 1, Math.min(H, y2 * H))];
}
