// Evaluation over a split with the DeepFashion protocol (metrics in src/train/metrics.ts).
import type { BatchLoader } from '../data/loader.js';
import type { ClothNet } from '../nets/models.js';
import type { LandmarkDecode } from '../train/losses.js';
import { type Box, type RgbaImage, pixelBox } from '../label/pixels.js';
import { checkLooks, defaultLooks, refineGarments, wholeImage } from '../label/labels.js';
import { boxInFrame } from '../data/batch.js';
import { type EvalResult, MetricsAccumulator, type Vocabulary } from '../train/metrics.js';
import { readBatch } from '../train/read.js';
import { predictBoxes } from '../train/step.js';

export async function evaluate(
  net: ClothNet,
  loader: BatchLoader,
  indices: number[],
  vocab: Vocabulary,
  o: {
    batchSize: number;
    size: number;
    decode: LandmarkDecode;
    /** Also read each crop's mirror image and average the two (test-time flips; twice the cost). */
    mirror?: boolean;
    /** Filled with each item's box as the box head finds it, [x1, y1, x2, y2] pixels (eval --boxes predicted). */
    foundBoxes?: Map<number, [number, number, number, number]>;
    /**
     * An item's whole photo (null: unreadable), for the box head's second look where it has one
     * (config.boxRefine): the loader's photos are already shrunk to BOX_INPUT.
     */
    photo?: (index: number) => RgbaImage | null;
    /** The box head's looks with `photo` (defaultLooks unless given; eval --box-looks). */
    looks?: number;
  },
  onProgress?: (done: number, total: number) => void,
): Promise<EvalResult> {
  const looks = o.looks ?? defaultLooks(net);
  if (net.hasBox) checkLooks(net, looks);
  const acc = new MetricsAccumulator(vocab);
  const chunks: number[][] = [];
  for (let i = 0; i < indices.length; i += o.batchSize) chunks.push(indices.slice(i, i + o.batchSize));
  let next = chunks.length ? loader.load(chunks[0]!, 0) : null;
  let done = 0;
  for (let c = 0; c < chunks.length; c++) {
    const batch = await next!;
    next = c + 1 < chunks.length ? loader.load(chunks[c + 1]!, 0) : null;
    const n = batch.indices.length;
    const { categoryLogits: category, attributeLogits: attributes, landmarks } = await readBatch(net, batch.images, n, o.size, o.decode, { mirror: o.mirror });
    if (net.hasBox && batch.photos && batch.boxMask && batch.photoSizes) {
      // The box head on the whole photos (a loader with photoSize), against the true boxes.
      let boxes = await predictBoxes(net, batch.photos, n);
      if (looks > 1 && o.photo) boxes = await laterLooks(net, batch.indices, boxes, batch.photoSizes, o.photo, looks - 1);
      for (let i = 0; i < n; i++) {
        const box = boxes.subarray(4 * i, 4 * i + 4);
        if (batch.boxMask[i]) acc.addBox(box, batch.boxes!.subarray(4 * i, 4 * i + 4));
        const [W, H] = [batch.photoSizes[2 * i]!, batch.photoSizes[2 * i + 1]!];
        if (W && H) o.foundBoxes?.set(batch.indices[i]!, pixelBox(box, W, H)); // an unreadable photo counts nowhere
      }
    }
    const peaks = landmarks?.points;
    // Broken images carry no labels (category -1, attributes and landmarks unknown): they count nowhere.
    for (let i = 0; i < n; i++) {
      const C = vocab.categories.length, A = vocab.attributes.length;
      if (category && C) acc.addCategory(category.subarray(i * C, (i + 1) * C), batch.category[i]!);
      if (attributes && A && batch.attributes) acc.addAttributes(attributes.subarray(i * A, (i + 1) * A), batch.attributes.subarray(i * A, (i + 1) * A));
      if (peaks && batch.landmarks) acc.addLandmarks(peaks.subarray(i * 16, (i + 1) * 16), batch.landmarks.subarray(i * 24, (i + 1) * 24), o.size);
    }
    acc.countImages(n - batch.broken.length);
    done += n;
    onProgress?.(done, indices.length);
  }
  // The result says how it was read, so that no caller has to.
  return o.mirror ? { ...acc.result(), mirror: true } : acc.result();
}

/** The first look's boxes (cx, cy, w, h fractions of each photo) after `more` looks (refineGarments), as fractions again. */
async function laterLooks(net: ClothNet, indices: number[], boxes: Float32Array, sizes: Float32Array, photo: (index: number) => RgbaImage | null, more: number): Promise<Float32Array> {
  const out = boxes.slice();
  const images: RgbaImage[] = [], first: Box[] = [], at: number[] = [];
  indices.forEach((index, i) => {
    const [W, H] = [sizes[2 * i]!, sizes[2 * i + 1]!];
    const img = W && H ? photo(index) : null;
    if (!img) return;
    const [x1, y1, x2, y2] = pixelBox(boxes.subarray(4 * i, 4 * i + 4), img.width, img.height);
    images.push(img), first.push({ x: x1, y: y1, w: x2 - x1, h: y2 - y1 }), at.push(i);
  });
  let found = first;
  for (let k = 0; k < more; k++) found = await refineGarments(net, images, found);
  // Back to fractions of the photo as the true boxes were made (the loader's boxInFrame).
  found.forEach((b, k) => out.set(boxInFrame([b.x, b.y, b.x + b.w, b.y + b.h], wholeImage(images[k]!), false), 4 * at[k]!));
  return out;
}
