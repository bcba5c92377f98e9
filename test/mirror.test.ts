// Test-time flips (eval --mirror, predict --mirror, the catalog index): each crop is read with its
// mirror image and the two readings averaged, the mirror's points put back by the same convention
// the training flips use (transformLandmarks). Checked: that convention on hand-made points, and on
// a network, that a photo and its mirror image get mirrored answers.
import t from 'tap';
import { MIRROR, transformLandmarks } from '../src/label/pixels.js';
import { createNet } from '../src/nets/models.js';
import { averageWithMirror, readBatch } from '../src/train/read.js';
import { decodeLandmarks } from '../src/train/metrics.js';
import { disposeAll, mirrorImages, predictBatch } from '../src/train/step.js';
import { gpuEngine } from './helpers/gpu.js';
import { randomizeBatchNorms } from './helpers/nets.js';
import { randn } from './helpers/random.js';

t.test('mirrorImages reverses each row of each channel; twice is the identity', async (t) => {
  const n = 2, size = 5;
  const x = randn(n * 3 * size * size, 1);
  const m = mirrorImages(x, n, size);
  t.equal(m[0], x[4]);
  t.equal(m[(1 * 3 + 2) * 25 + 3 * 5 + 1], x[(1 * 3 + 2) * 25 + 3 * 5 + 3], 'image 1, channel 2, row 3, column 1 <- column 3');
  t.same(Array.from(mirrorImages(m, n, size)), Array.from(x));
});

t.test('averageWithMirror puts a mirrored reading back by the training flips\' convention', async (t) => {
  // A garment's 8 points (visibility, x, y in a 40 x 30 photo), read in a 16 x 16 crop: the
  // "mirrored reading" is exactly what training would label the flipped crop with.
  const truth = new Float32Array([0, 5, 3, 0, 30, 4, 0, 2, 12, 0, 37, 11, 0, 9, 20, 0, 28, 21, 0, 12, 28, 0, 26, 27]);
  const box = { x: 1, y: 0, w: 38, h: 30 }, size = 16;
  const plain = transformLandmarks(truth, box, size, false), flipped = transformLandmarks(truth, box, size, true);
  const reading = (l: Float32Array, confidence: number[]) => ({
    points: Float32Array.from({ length: 16 }, (_, k) => l[3 * (k >> 1) + 1 + (k & 1)]!),
    confidence: Float32Array.from(confidence),
  });
  const conf = [0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.6, 0.4];
  const back = averageWithMirror(reading(plain, conf), reading(flipped, MIRROR.map((s) => conf[s]!)), 1, size);
  for (let k = 0; k < 16; k++) t.ok(Math.abs(back.points[k]! - plain[3 * (k >> 1) + 1 + (k & 1)]!) < 1e-5, `coordinate ${k}: ${back.points[k]} against ${plain[3 * (k >> 1) + 1 + (k & 1)]}`);
  t.same(Array.from(back.confidence).map((c) => +c.toFixed(5)), conf, 'each slot keeps its own confidence');
  // A reading whose mirror disagrees is averaged: slot 0 at x 2 and, mirrored back, x 4 -> 3.
  const a = { points: new Float32Array(16).fill(2), confidence: new Float32Array(8).fill(1) };
  const b = { points: new Float32Array(16).fill(size - 1 - 4), confidence: new Float32Array(8) };
  const avg = averageWithMirror(a, b, 1, size);
  t.equal(avg.points[0], 3);
  t.equal(avg.confidence[0], 0.5);
});

t.test('readBatch: probabilities and points as predictBatch gives them; with mirror, a photo and its mirror image get mirrored answers', async (t) => {
  const e = await gpuEngine(t);
  const n = 3, size = 32;
  const net = createNet(e, { net: 'new_fashionnet', categories: 5, attributes: 7, width: 0.125, seed: 2, landmarkPrior: true });
  randomizeBatchNorms(e, net, 4);
  const x = randn(n * 3 * size * size, 9);

  const plain = await readBatch(net, x, n, size, 'softargmax', { features: true });
  const out = predictBatch(net, x, n, size, { features: true });
  const [category, heatmaps, features] = await Promise.all([out.category!.read(), out.heatmaps!.read(), out.features!.read()]);
  disposeAll([out.category, out.attributes, out.heatmaps, out.features]);
  const sums = Array.from({ length: n }, (_, i) => plain.category!.subarray(5 * i, 5 * i + 5).reduce((s, p) => s + p, 0));
  t.ok(sums.every((s) => Math.abs(s - 1) < 1e-5), `category probabilities sum to 1: ${sums.map((s) => s.toFixed(6))}`);
  t.ok(plain.attributes!.every((p) => p > 0 && p < 1), 'attribute probabilities in (0, 1)');
  const ranks = (v: Float32Array) => Array.from(v.subarray(0, 5)).map((_, c, r) => r.filter((o) => o > r[c]!).length);
  t.same(ranks(plain.category!), ranks(category), 'softmax keeps the logits\' order');
  t.same(Array.from(plain.categoryLogits!), Array.from(category), 'and the logits themselves, which rankings use');
  t.same(Array.from(plain.landmarks!.points), Array.from(decodeLandmarks(heatmaps, n, size, 'softargmax').points));
  t.same(Array.from(plain.features!), Array.from(features));

  const direct = await readBatch(net, x, n, size, 'softargmax', { mirror: true, features: true });
  const ofMirror = await readBatch(net, mirrorImages(x, n, size), n, size, 'softargmax', { mirror: true, features: true });
  const close = (a: Float32Array, b: Float32Array, tol: number) => a.every((v, k) => Math.abs(v - b[k]!) <= tol);
  t.ok(close(direct.category!, ofMirror.category!, 1e-5), 'the same category probabilities');
  t.ok(close(direct.attributeLogits!, ofMirror.attributeLogits!, 1e-4), 'the same attribute logits');
  const logits = await readBatch(net, mirrorImages(x, n, size), n, size, 'softargmax');
  t.ok(close(direct.attributeLogits!, plain.attributeLogits!.map((v, k) => (v + logits.attributeLogits![k]!) / 2), 1e-6), 'the mean of the two readings\' logits');
  t.ok(close(direct.attributes!, ofMirror.attributes!, 1e-5), 'the same attribute probabilities');
  t.ok(close(direct.features!, ofMirror.features!, 1e-4), 'the same pooled features');
  let worst = 0;
  for (let i = 0; i < n; i++) {
    for (let s = 0; s < 8; s++) {
      const p = i * 8 + s, m = i * 8 + MIRROR[s]!;
      worst = Math.max(worst, Math.abs(direct.landmarks!.points[2 * p]! - (size - 1 - ofMirror.landmarks!.points[2 * m]!)), Math.abs(direct.landmarks!.points[2 * p + 1]! - ofMirror.landmarks!.points[2 * m + 1]!));
      t.ok(Math.abs(direct.landmarks!.confidence[p]! - ofMirror.landmarks!.confidence[m]!) < 1e-5, `confidence of slot ${s} is its mirror slot's`);
    }
  }
  t.ok(worst < 1e-3, `each point is its mirror slot's point mirrored (worst ${worst.toExponential(2)} pixels)`);
  t.notSame(Array.from(direct.landmarks!.points), Array.from(plain.landmarks!.points), 'and the mirror reading changed something');
  net.dispose();
});
