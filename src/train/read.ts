// What a network says about a batch of images, as probabilities and points rather than raw
// tensors: the one reading that `eval`, `predict` and the catalog index share. With `mirror`
// each image is also read as its mirror image (test-time flips) and the two readings are
// averaged (the logits, then the probabilities made from them; the mirror's points mapped back
// first: x -> size - 1 - x, left and right slots swapped): the answers no longer depend on which
// way the garment faces, at twice the cost.
import type { ClothNet } from '../nets/models.js';
import { type LandmarkDecode, groupColumns } from './losses.js';
import { type DecodedLandmarks, decodeLandmarks } from './metrics.js';
import { disposeAll, mirrorImages, predictBatch } from './step.js';
import { MIRROR } from '../label/pixels.js';

export interface BatchReading {
  /**
   * [n, C] category logits (with mirror, the two readings' mean) and their softmax. Rankings use
   * the logits: in float32 a sigmoid is exactly 1 from a logit of about 17, a softmax exactly 0
   * some 100 below the top, and ties there would rank by index.
   */
  categoryLogits?: Float32Array;
  category?: Float32Array;
  /**
   * [n, A] attribute logits (with mirror, the mean) and their sigmoid. A head with groups
   * (NetConfig.attributeGroups) is read as a softmax within each group, and its logits are given
   * as the sigmoid logits of those probabilities (groupSoftmaxAsLogits), so that every reader
   * (rankings, thresholds, the catalog) treats both kinds of head alike.
   */
  attributeLogits?: Float32Array;
  attributes?: Float32Array;
  /** Points in the pixels of the size x size input, with their confidence. */
  landmarks?: DecodedLandmarks;
  /** [n, F] the pooled trunk features (asked for with `features`). */
  features?: Float32Array;
}

/**
 * Landmarks read from mirrored inputs, put back in the unmirrored frame and averaged with the
 * direct reading: slot s takes the mirror's slot MIRROR[s] (its left is our right) at x mirrored.
 */
export function averageWithMirror(direct: DecodedLandmarks, mirrored: DecodedLandmarks, n: number, size: number): DecodedLandmarks {
  const points = new Float32Array(n * 16), confidence = new Float32Array(n * 8);
  for (let i = 0; i < n; i++) {
    for (let s = 0; s < 8; s++) {
      const p = i * 8 + s, m = i * 8 + MIRROR[s]!;
      points[2 * p] = (direct.points[2 * p]! + (size - 1 - mirrored.points[2 * m]!)) / 2;
      points[2 * p + 1] = (direct.points[2 * p + 1]! + mirrored.points[2 * m + 1]!) / 2;
      confidence[p] = (direct.confidence[p]! + mirrored.confidence[m]!) / 2;
    }
  }
  return { points, confidence };
}

function softmaxRows(logits: Float32Array, width: number): Float32Array {
  const out = new Float32Array(logits.length);
  for (let r = 0; r < logits.length / width; r++) {
    let max = -Infinity, sum = 0;
    for (let c = 0; c < width; c++) max = Math.max(max, logits[r * width + c]!);
    for (let c = 0; c < width; c++) sum += out[r * width + c] = Math.exp(logits[r * width + c]! - max);
    for (let c = 0; c < width; c++) out[r * width + c]! /= sum;
  }
  return out;
}

/**
 * Logits [n, A] of a head trained with a softmax within each group, turned into the logits whose
 * sigmoid is that softmax: z = log p - log(1 - p), computed from log p = x - logsumexp(group) in
 * float64 so that p near 1 keeps its order. Clamped to +-1e4, where any sigmoid reads certain.
 */
export function groupSoftmaxAsLogits(logits: Float32Array, groups: readonly number[]): Float32Array {
  const A = groups.length, out = new Float32Array(logits.length);
  const members = groupColumns(groups);
  for (let r = 0; r < logits.length / A; r++) {
    for (const cols of members) {
      let max = -Infinity, sum = 0;
      for (const a of cols) max = Math.max(max, logits[r * A + a]!);
      for (const a of cols) sum += Math.exp(logits[r * A + a]! - max);
      for (const a of cols) {
        const logP = logits[r * A + a]! - max - Math.log(sum);
        const z = logP - Math.log(-Math.expm1(logP));
        out[r * A + a] = Math.max(-1e4, Math.min(1e4, z));
      }
    }
  }
  return out;
}

const sigmoid = (logits: Float32Array) => logits.map((x) => 1 / (1 + Math.exp(-x)));
const average = (a: Float32Array, b: Float32Array) => a.map((x, k) => (x + b[k]!) / 2);

type Logits = Omit<BatchReading, 'category' | 'attributes'>;

async function readOnce(net: ClothNet, images: Float32Array, n: number, size: number, decode: LandmarkDecode, features: boolean): Promise<Logits> {
  const out = predictBatch(net, images, n, size, { features });
  try {
    const [category, attributes, heatmaps, pooled] = await Promise.all([out.category?.read(), out.attributes?.read(), out.heatmaps?.read(), out.features?.read()]);
    return {
      categoryLogits: category && net.config.categories ? category : undefined,
      attributeLogits: attributes && net.config.attributes ? attributes : undefined,
      landmarks: heatmaps ? decodeLandmarks(heatmaps, n, size, decode) : undefined,
      features: pooled,
    };
  } finally {
    disposeAll([out.category, out.attributes, out.heatmaps, out.features]);
  }
}

/** Reads a batch of images [n, 3, size, size] (eval mode), with their mirror images when asked. */
export async function readBatch(net: ClothNet, images: Float32Array, n: number, size: number, decode: LandmarkDecode, o: { mirror?: boolean; features?: boolean } = {}): Promise<BatchReading> {
  let read = await readOnce(net, images, n, size, decode, !!o.features);
  if (o.mirror) {
    // Two passes rather than one of twice the batch: mirroring costs no more device memory.
    const mirrored = await readOnce(net, mirrorImages(images, n, size), n, size, decode, !!o.features);
    const both = (a?: Float32Array, b?: Float32Array) => (a && b ? average(a, b) : undefined);
    read = {
      categoryLogits: both(read.categoryLogits, mirrored.categoryLogits),
      attributeLogits: both(read.attributeLogits, mirrored.attributeLogits),
      landmarks: read.landmarks && mirrored.landmarks ? averageWithMirror(read.landmarks, mirrored.landmarks, n, size) : undefined,
      features: both(read.features, mirrored.features),
    };
  }
  const groups = net.config.attributeGroups;
  if (groups && read.attributeLogits) read = { ...read, attributeLogits: groupSoftmaxAsLogits(read.attributeLogits, groups) };
  return {
    ...read,
    category: read.categoryLogits && softmaxRows(read.categoryLogits, net.config.categories),
    attributes: read.attributeLogits && sigmoid(read.attributeLogits),
  };
}
