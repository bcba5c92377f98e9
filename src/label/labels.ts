// From a network's outputs to labels a person reads: category top-5 with probabilities, attributes
// above a threshold and the top-k of each type, landmarks in the original image's pixels.
// Runtime-agnostic: `clothtag predict` and the browser page both use labelImages().
import type { ClothNet } from '../nets/models.js';
import { type Vocabulary, heatmapPeaks, topK } from '../train/metrics.js';
import { disposeAll, predictBatch } from '../train/step.js';
import { type Box, LANDMARK_SLOTS, type RgbaImage, cropResize, toImagePixels } from './pixels.js';

export interface Labels {
  width: number;
  height: number;
  category?: { name: string; p: number }[];
  attributes?: { above: { name: string; p: number }[]; by_type: Record<string, { name: string; p: number }[]> };
  landmarks?: { slot: string; x: number; y: number; confidence: number }[];
}

export interface LabelOptions {
  /** Attributes at or above this probability are listed. */
  threshold: number;
  /** How many attributes of each type to list. */
  perType: number;
}

export const DEFAULT_LABELING: LabelOptions = { threshold: 0.5, perType: 3 };

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
export async function labelImages(net: ClothNet, vocab: Vocabulary, images: { img: RgbaImage; box: Box }[], size: number, o: LabelOptions = DEFAULT_LABELING): Promise<Labels[]> {
  const n = images.length;
  if (!n) return [];
  const pixels = new Float32Array(n * 3 * size * size);
  images.forEach((p, i) => pixels.set(cropResize(p.img, p.box, size, false), i * 3 * size * size));
  const out = predictBatch(net, pixels, n, size);
  const [cat, attrs, heat] = await Promise.all([out.category?.read(), out.attributes?.read(), out.heatmaps?.read()]);
  disposeAll([out.category, out.attributes, out.heatmaps]);
  const peaks = heat ? heatmapPeaks(heat, n, size) : null;
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
        return { slot, x: round(x, 1), y: round(y, 1), confidence: round(peaks.peaks[i * 8 + s]!) };
      });
    }
    return r;
  });
}

/** A checkpoint's vocabulary and training size, from its metadata. */
export function checkpointLabeling(extra: Record<string, string> | undefined, source: string): { vocab: Vocabulary; size: number } {
  const vocab = JSON.parse(extra?.vocabulary ?? 'null') as Vocabulary | null;
  if (!vocab) throw new Error(`${source} has no vocabulary in its metadata (was it written by clothtag train?)`);
  return { vocab, size: Number(JSON.parse(extra?.training ?? '{}').imgSize ?? 224) };
}
