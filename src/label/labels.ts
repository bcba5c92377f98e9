// From a network's outputs to labels a person reads: category top-5 with probabilities, attributes
// above a threshold and the top-k of each type, landmarks in the original image's pixels.
// Runtime-agnostic: `clothtag predict` and the browser page both use labelImages().
import type { ClothNet } from '../nets/models.js';
import type { LandmarkDecode } from '../train/losses.js';
import { type Vocabulary, topK } from '../train/metrics.js';
import { readBatch } from '../train/read.js';
import { predictBoxes } from '../train/step.js';
import { BOX_INPUT, ZOOM_MARGIN } from '../nets/locator.js';
import { type Box, LANDMARK_SLOTS, type RgbaImage, cropResize, pixelBox, toImagePixels, windowInside, windowToPhoto } from './pixels.js';

export interface Labels {
  width: number;
  height: number;
  category?: { name: string; p: number }[];
  attributes?: { above: { name: string; p: number }[]; by_type: Record<string, { name: string; p: number }[]> };
  /**
   * Every slot with its point in the original image's pixels and the map's confidence; `sure` is
   * false below LabelOptions.landmarkThreshold: the point is a guess (an invisible landmark, a
   * slot this garment does not have, or a map that has not settled) and is drawn hollow.
   */
  landmarks?: { slot: string; x: number; y: number; confidence: number; sure: boolean }[];
}

export interface LabelOptions {
  /** Attributes at or above this probability are listed. */
  threshold: number;
  /** How many attributes of each type to list. */
  perType: number;
  /** Landmarks below this confidence are marked unsure (see Labels.landmarks). */
  landmarkThreshold?: number;
  /** Also read each crop's mirror image and average the two (test-time flips; twice the cost). */
  mirror?: boolean;
}

export const DEFAULT_LABELING: LabelOptions = { threshold: 0.5, perType: 3, landmarkThreshold: 0.5 };

const round = (x: number, digits = 3) => Number(x.toFixed(digits));

/** The whole image as the box, when no bounding box is known. */
export function wholeImage(img: RgbaImage): Box {
  return { x: 0, y: 0, w: img.width, h: img.height };
}

/**
 * What a network says about one photo, unformatted: every category's and attribute's probability,
 * the landmarks in the photo's pixels with their confidence, and (when asked) the photo's
 * embedding, L2-normalized (the catalog index stores these).
 */
export interface RawLabels {
  category?: Float32Array;
  attributes?: Float32Array;
  /** The logits behind them (the catalog stores these: float32 probabilities tie at 1.0). */
  categoryLogits?: Float32Array;
  attributeLogits?: Float32Array;
  landmarks?: { x: number; y: number; confidence: number }[];
  embedding?: Float32Array;
}

/**
 * Runs the network on a batch of photos, each cropped to its box, at `size` x `size`. `mirror`
 * also reads each crop's mirror image and averages the two (readBatch): the probabilities, the
 * landmarks and the embedding are then the same for a photo and its flipped copy (the catalog
 * index's choice, and `predict --mirror`), at twice the cost.
 */
export async function rawLabels(net: ClothNet, images: { img: RgbaImage; box: Box }[], size: number, decode: LandmarkDecode = 'peak', o: { embedding?: boolean; mirror?: boolean } = {}): Promise<RawLabels[]> {
  const n = images.length;
  if (!n) return [];
  const plane = 3 * size * size;
  const pixels = new Float32Array(n * plane);
  images.forEach((p, i) => pixels.set(cropResize(p.img, p.box, size, false), i * plane));
  const read = await readBatch(net, pixels, n, size, decode, { mirror: o.mirror, features: o.embedding });
  const row = (values: Float32Array, i: number) => values.subarray((i * values.length) / n, ((i + 1) * values.length) / n);
  return images.map((p, i) => {
    const r: RawLabels = {};
    if (read.category) r.category = row(read.category, i).slice();
    if (read.attributes) r.attributes = row(read.attributes, i).slice();
    if (read.categoryLogits) r.categoryLogits = row(read.categoryLogits, i).slice();
    if (read.attributeLogits) r.attributeLogits = row(read.attributeLogits, i).slice();
    if (read.landmarks) {
      const { points, confidence } = read.landmarks;
      r.landmarks = LANDMARK_SLOTS.map((_, s) => {
        const [x, y] = toImagePixels(points[(i * 8 + s) * 2]!, points[(i * 8 + s) * 2 + 1]!, p.box, size);
        return { x, y, confidence: confidence[i * 8 + s]! };
      });
    }
    if (read.features) {
      const v = row(read.features, i);
      const norm = Math.hypot(...v) || 1;
      r.embedding = v.map((x) => x / norm);
    }
    return r;
  });
}

/** Labels a batch of images (each with its box) with a trained network at `size` x `size`. */
export async function labelImages(net: ClothNet, vocab: Vocabulary, images: { img: RgbaImage; box: Box }[], size: number, o: LabelOptions = DEFAULT_LABELING, decode: LandmarkDecode = 'peak'): Promise<Labels[]> {
  const raw = await rawLabels(net, images, size, decode, { mirror: o.mirror });
  const sureAt = o.landmarkThreshold ?? DEFAULT_LABELING.landmarkThreshold!;
  return images.map((p, i) => {
    const { category, attributes, landmarks } = raw[i]!;
    const r: Labels = { width: p.img.width, height: p.img.height };
    if (category && vocab.categories.length) {
      const probs = Array.from(category);
      r.category = topK(probs, probs.map((_, c) => c), Math.min(5, probs.length)).map((c) => ({ name: vocab.categories[c]!, p: round(probs[c]!) }));
    }
    if (attributes && vocab.attributes.length) {
      const probs = Array.from(attributes);
      const all = probs.map((_, a) => a);
      const above = all.filter((a) => probs[a]! >= o.threshold).sort((a, b) => probs[b]! - probs[a]!);
      const byType: Record<string, { name: string; p: number }[]> = {};
      for (const [t, name] of Object.entries(vocab.typeNames)) {
        const members = all.filter((a) => vocab.attributeTypes[a] === Number(t));
        byType[name] = topK(probs, members, o.perType).map((a) => ({ name: vocab.attributes[a]!, p: round(probs[a]!) }));
      }
      r.attributes = { above: above.map((a) => ({ name: vocab.attributes[a]!, p: round(probs[a]!) })), by_type: byType };
    }
    if (landmarks) {
      r.landmarks = LANDMARK_SLOTS.map((slot, s) => {
        const { x, y, confidence } = landmarks[s]!;
        return { slot, x: round(x, 1), y: round(y, 1), confidence: round(confidence), sure: confidence >= sureAt };
      });
    }
    return r;
  });
}

/**
 * The looks the box head takes unless told otherwise: two where it was trained with windows around
 * the garment (config.boxRefine), else one.
 */
export function defaultLooks(net: ClothNet): number {
  return net.config.boxRefine ? 2 : 1;
}

/** The most looks `--box-looks` takes (each one more pass of the box head). */
export const MAX_LOOKS = 4;

/**
 * The garment's box in each photo, as the network's box head finds it on the whole photo (the
 * first of labelling's two passes on uncropped photos), in the photo's pixels. A head trained
 * with windows around the garment (config.boxRefine) then takes its later looks (refineGarments):
 * `looks` in all, defaultLooks unless given.
 */
export async function locateGarments(net: ClothNet, images: RgbaImage[], looks = defaultLooks(net)): Promise<Box[]> {
  checkLooks(net, looks);
  let found = await lookAt(net, images, images.map(wholeImage));
  for (let k = 1; k < looks; k++) found = await refineGarments(net, images, found);
  return found;
}

/** Refuses a number of looks the network's box head cannot take. */
export function checkLooks(net: ClothNet, looks: number): void {
  if (!(Number.isInteger(looks) && looks >= 1 && looks <= MAX_LOOKS)) throw new Error(`the box head takes 1 to ${MAX_LOOKS} looks, not ${looks}`);
  if (looks > 1 && !net.config.boxRefine) throw new Error(`${looks} looks: this box head was trained for one look (train --box-zoom 0, or before the second look existed)`);
}

/** Refuses `--box-looks` for a checkpoint (`source`) whose network has no box head, or looks its head cannot take. */
export function checkBoxLooks(net: ClothNet, looks: number, source: string): void {
  if (!net.hasBox) throw new Error(`--box-looks: ${source} has no garment-box head (it was trained without boxes)`);
  checkLooks(net, looks);
}

/**
 * The box head's second look: each photo's window ZOOM_MARGIN times the box found so far, about
 * its centre and moved inside the photo, read at BOX_INPUT again. The garment then fills most of
 * the head's input, and its edges are placed at about twice the resolution of the first look.
 */
export async function refineGarments(net: ClothNet, images: RgbaImage[], found: Box[]): Promise<Box[]> {
  const windows = images.map((img, i) => {
    const b = found[i]!;
    return windowInside(b.x + b.w / 2, b.y + b.h / 2, b.w * ZOOM_MARGIN, b.h * ZOOM_MARGIN, img.width, img.height);
  });
  return lookAt(net, images, windows);
}

/** The box head's boxes for the photos seen through windows of them, in the photos' pixels. */
async function lookAt(net: ClothNet, images: RgbaImage[], windows: Box[]): Promise<Box[]> {
  if (!images.length) return [];
  const P = BOX_INPUT;
  const photos = new Float32Array(images.length * 3 * P * P);
  images.forEach((img, i) => photos.set(cropResize(img, windows[i]!, P, false), i * 3 * P * P));
  const boxes = await predictBoxes(net, photos, images.length);
  return images.map((img, i) => {
    const [x1, y1, x2, y2] = pixelBox(windowToPhoto(boxes.subarray(4 * i, 4 * i + 4), windows[i]!, img.width, img.height), img.width, img.height);
    return { x: x1, y: y1, w: x2 - x1, h: y2 - y1 };
  });
}

/**
 * A checkpoint's vocabulary, training size and landmark decoding, from its metadata (checkpoints
 * written before the soft-argmax loss existed decode by the peak, as they were trained).
 */
export function checkpointLabeling(extra: Record<string, string> | undefined, source: string): { vocab: Vocabulary; size: number; decode: LandmarkDecode; split?: string } {
  const parse = <T>(text: string, what: string): T => {
    try {
      return JSON.parse(text) as T;
    } catch (e) {
      throw new Error(`${source}: the ${what} in its metadata is not valid JSON (${(e as Error).message})`);
    }
  };
  const vocab = parse<Vocabulary | null>(extra?.vocabulary ?? 'null', 'vocabulary');
  if (!vocab) throw new Error(`${source} has no vocabulary in its metadata (was it written by clothtag train?)`);
  if (!Array.isArray(vocab.categories) || !Array.isArray(vocab.attributes) || !Array.isArray(vocab.attributeTypes) || typeof vocab.typeNames !== 'object') {
    throw new Error(`${source}: the vocabulary in its metadata needs categories, attributes, attributeTypes and typeNames`);
  }
  const training = parse<{ imgSize?: number; landmarkDecode?: LandmarkDecode; split?: string }>(extra?.training ?? '{}', 'training record');
  const size = Number(training.imgSize ?? 224);
  if (!Number.isInteger(size) || size < 8 || size > 1024) throw new Error(`${source}: its metadata's training size ${training.imgSize} is not a size in pixels`);
  return { vocab, size, decode: training.landmarkDecode === 'softargmax' ? 'softargmax' : 'peak', split: training.split };
}
