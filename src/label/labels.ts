// From a network's outputs to labels a person reads: category top-5 with probabilities, attributes
// above a threshold and the top-k of each type, landmarks in the original image's pixels.
// Runtime-agnostic: `clothtag predict` and the browser page both use labelImages().
import type { ClothNet } from '../nets/models.js';
import type { LandmarkDecode } from '../train/losses.js';
import { type Vocabulary, decodeLandmarks, topK } from '../train/metrics.js';
import { disposeAll, predictBatch } from '../train/step.js';
import { type Box, LANDMARK_SLOTS, type RgbaImage, cropResize, toImagePixels } from './pixels.js';

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
}

export const DEFAULT_LABELING: LabelOptions = { threshold: 0.5, perType: 3, landmarkThreshold: 0.5 };

const round = (x: number, digits = 3) => Number(x.toFixed(digits));

function softmax(xs: Float32Array): number[] {
  const m = Math.max(...xs);
  const e = Array.from(xs, (x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

/** The whole image as the box, when no bounding box is known. */
export function wholeImage(img: RgbaImage): Box {
  return { x: 0, y: 0, w: img.width, h: img.height };
}

/** Labels a batch of images (each with its box) with a trained network at `size` x `size`. */
export async function labelImages(net: ClothNet, vocab: Vocabulary, images: { img: RgbaImage; box: Box }[], size: number, o: LabelOptions = DEFAULT_LABELING, decode: LandmarkDecode = 'peak'): Promise<Labels[]> {
  const n = images.length;
  if (!n) return [];
  const pixels = new Float32Array(n * 3 * size * size);
  images.forEach((p, i) => pixels.set(cropResize(p.img, p.box, size, false), i * 3 * size * size));
  const out = predictBatch(net, pixels, n, size);
  const [cat, attrs, heat] = await Promise.all([out.category?.read(), out.attributes?.read(), out.heatmaps?.read()]);
  disposeAll([out.category, out.attributes, out.heatmaps]);
  const peaks = heat ? decodeLandmarks(heat, n, size, decode) : null;
  const sureAt = o.landmarkThreshold ?? DEFAULT_LABELING.landmarkThreshold!;
  const C = vocab.categories.length, A = vocab.attributes.length;
  return images.map((p, i) => {
    const r: Labels = { width: p.img.width, height: p.img.height };
    if (cat && C) {
      const probs = softmax(cat.subarray(i * C, (i + 1) * C));
      r.category = topK(probs, probs.map((_, c) => c), Math.min(5, C)).map((c) => ({ name: vocab.categories[c]!, p: round(probs[c]!) }));
    }
    if (attrs && A) {
      const probs = Array.from(attrs.subarray(i * A, (i + 1) * A), (x) => 1 / (1 + Math.exp(-x)));
      const all = probs.map((_, a) => a);
      const above = all.filter((a) => probs[a]! >= o.threshold).sort((a, b) => probs[b]! - probs[a]!);
      const byType: Record<string, { name: string; p: number }[]> = {};
      for (const [t, name] of Object.entries(vocab.typeNames)) {
        const members = all.filter((a) => vocab.attributeTypes[a] === Number(t));
        byType[name] = topK(probs, members, o.perType).map((a) => ({ name: vocab.attributes[a]!, p: round(probs[a]!) }));
      }
      r.attributes = { above: above.map((a) => ({ name: vocab.attributes[a]!, p: round(probs[a]!) })), by_type: byType };
    }
    if (peaks) {
      r.landmarks = LANDMARK_SLOTS.map((slot, s) => {
        const [x, y] = toImagePixels(peaks.points[(i * 8 + s) * 2]!, peaks.points[(i * 8 + s) * 2 + 1]!, p.box, size);
        const confidence = peaks.confidence[i * 8 + s]!;
        return { slot, x: round(x, 1), y: round(y, 1), confidence: round(confidence), sure: confidence >= sureAt };
      });
    }
    return r;
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
