// Images in Node: JPEG (jpeg-js) and PNG (pngjs) decoding with clear errors, and heatmap targets.
// The pixel work shared with browsers (crop, resize, flip, landmarks) is in src/label/pixels.ts.
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import type { RgbaImage } from '../label/pixels.js';
import { readRegularFile } from './files.js';

export type { Box, RgbaImage } from '../label/pixels.js';
export { IMAGENET_MEAN, IMAGENET_STD, cropResize, toImagePixels, transformLandmarks } from '../label/pixels.js';

export class ImageError extends Error {
  override name = 'ImageError';
}

/** Images over this many pixels are refused (a decoded 100-megapixel photo takes 400 MB). */
export const MAX_PIXELS = 50_000_000;
/** Image files larger than this are refused before reading (a photo is a few MB). */
export const MAX_FILE_BYTES = 64 * 2 ** 20;

const isPng = (b: Uint8Array) => b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47;

/**
 * Width and height from a file's first bytes (a PNG's IHDR, a JPEG's SOF marker), without
 * decoding; null when they are not there.
 */
export function headerSize(b: Uint8Array): { width: number; height: number } | null {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length >= 24 && isPng(b)) return { width: view.getUint32(16), height: view.getUint32(20) };
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return null;
  let i = 2;
  while (i + 9 < b.length) {
    if (b[i] !== 0xff) return null;
    const marker = b[i + 1]!;
    // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC) carry the frame size.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) return { height: view.getUint16(i + 5), width: view.getUint16(i + 7) };
    i += 2 + view.getUint16(i + 2);
  }
  return null;
}

export function decodeImage(bytes: Uint8Array, name: string): RgbaImage {
  if (bytes.length === 0) throw new ImageError(`${name}: empty file`);
  if (bytes[0] === 0xff && bytes[1] === 0xd8) {
    try {
      const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: MAX_PIXELS / 1e6, maxMemoryUsageInMB: 1024 });
      if (!img.width || !img.height) throw new Error('no pixels');
      return { width: img.width, height: img.height, data: img.data };
    } catch (e) {
      throw new ImageError(`${name}: broken or unsupported JPEG (${(e as Error).message})`);
    }
  }
  if (isPng(bytes)) {
    // Refuse an enormous image from its header, before anything is allocated for it.
    const size = headerSize(bytes);
    if (size && size.width * size.height > MAX_PIXELS) throw new ImageError(`${name}: ${size.width}x${size.height} pixels is over the ${MAX_PIXELS / 1e6}-megapixel limit`);
    try {
      const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      if (png.width * png.height > MAX_PIXELS) throw new Error(`${png.width}x${png.height} is over ${MAX_PIXELS / 1e6} megapixels`);
      return { width: png.width, height: png.height, data: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength) };
    } catch (e) {
      throw new ImageError(`${name}: broken or unsupported PNG (${(e as Error).message})`);
    }
  }
  throw new ImageError(`${name}: not an image (neither JPEG nor PNG)`);
}

/** Reads and decodes an image file: regular files only, at most MAX_FILE_BYTES; errors name `label`. */
export function loadImageFile(path: string, label = path): RgbaImage {
  return decodeImage(readRegularFile(path, label, MAX_FILE_BYTES), label);
}

/** Heatmap width (the Gaussian's sigma) for a training size: 4 pixels at 224, never under 2 (a sparser target gives the branch almost nothing to learn from at CPU-scale sizes). */
export function heatmapSigma(size: number): number {
  return Math.max(2, (4 * size) / 224);
}

/** Gaussian heatmaps [8, size, size] at visible landmarks, and the mask of supervised slots. */
export function landmarkHeatmaps(landmarks: Float32Array, size: number): { heatmaps: Float32Array; mask: Float32Array } {
  const heatmaps = new Float32Array(8 * size * size);
  const mask = new Float32Array(8);
  const sigma = heatmapSigma(size), reach = Math.ceil(3 * sigma);
  for (let s = 0; s < 8; s++) {
    if (landmarks[3 * s] !== 0) continue;
    mask[s] = 1;
    const px = landmarks[3 * s + 1]!, py = landmarks[3 * s + 2]!;
    for (let y = Math.max(0, Math.floor(py - reach)); y <= Math.min(size - 1, Math.ceil(py + reach)); y++) {
      for (let x = Math.max(0, Math.floor(px - reach)); x <= Math.min(size - 1, Math.ceil(px + reach)); x++) {
        heatmaps[(s * size + y) * size + x] = Math.exp(-((x - px) ** 2 + (y - py) ** 2) / (2 * sigma * sigma));
      }
    }
  }
  return { heatmaps, mask };
}
