// Training end to end on synthesized data: metrics, learning, exact resume, eval and predict
// (landmarks in landmarks.test.ts).
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { type TrainConfig, runTraining, selectionScore } from '../src/run/train.js';
import { createNet } from '../src/nets/models.js';
import { syntheticBatch } from '../src/run/tune.js';
import { THESIS_LOSS } from '../src/train/losses.js';
import { Trainer } from '../src/train/step.js';
import { parseSafetensors } from '../src/nets/safetensors.js';
import { MetricsAccumulator, decodeLandmarks, formatEval } from '../src/train/metrics.js';
import { mostFrequentAttributes } from '../src/run/baselines.js';
import type { Dataset } from '../src/data/dataset.js';
import { clothtag } from './helpers/cli.js';
import { gpuEngine } from './helpers/gpu.js';
import { quiet, trainingFixture } from './helpers/training.js';

const SMALL = join(import.meta.dirname, '..', '..', 'shared', 'data', 'clothing-small');

t.test('metrics on hand-computed cases', async (t) => {
  const vocab = { categories: ['a', 'b', 'c', 'd'], attributes: ['x1', 'x2', 'y1', 'y2', 'y3', 'y4'], attributeTypes: [1, 1, 2, 2, 2, 2], typeNames: { 1: 'texture', 2: 'fabric' } };
  const m = new MetricsAccumulator(vocab);
  m.addCategory([0.1, 0.9, 0.5, 0.2], 1); // rank 0: top-1 hit
  m.addCategory([0.1, 0.9, 0.5, 0.2], 2); // rank 1: top-3 hit
  m.addCategory([0.1, 0.9, 0.5, 0.2], 0); // rank 3: misses top-3, hits top-5
  m.addCategory([0.1, 0.9, 0.5, 0.2], -1); // unknown: not counted
  // image 1: positives x1, y3. Scores rank: y1 .9, x1 .8, y2 .7, y3 .6, x2 .5, y4 .1
  m.addAttributes([0.8, 0.5, 0.9, 0.7, 0.6, 0.1], [1, 0, 0, 0, 1, 0]);
  // image 2: positives x2, y4 (y4 ranked last); unknown y1
  m.addAttributes([0.1, 0.9, 0.8, 0.2, 0.3, 0.0], [0, 1, -1, 0, 0, 1]);
  m.addLandmarks([3, 4, 0, 0, ...new Array(12).fill(0)], [0, 0, 0, 2, 5, 5, ...new Array(18).fill(-1)], 10); // second point truncated
  m.countImages(4);
  const r = m.result();
  t.same(r.category, { top1: 1 / 3, top3: 2 / 3, top5: 1 });
  // per image, top-3 overall: image 1 top3 = y1, x1, y2 -> found x1 (1 of 2); image 2 top3 = x2, y1, y3 -> found x2 (1 of 2)
  t.equal(r.attributes!.per_image.top3.all, 0.5);
  // top-5: image 1 adds y3 -> 2/2; image 2 top5 adds y2(.2), x1(.1)... scores x1 .1, y2 .2 -> x2,y1,y3,y2,x1: found x2 only -> 1/2
  t.equal(r.attributes!.per_image.top5.all, 0.75);
  // per type, top-3: texture of image 1 ranks x1, x2 -> x1 found (1/1); image 2: x2 found (1/1) -> 1
  t.equal(r.attributes!.per_image.top3.texture, 1);
  // fabric image 1: y1 .9, y2 .7, y3 .6 -> y3 found -> 1; image 2: y1 .8, y3 .3, y2 .2 -> y4 missed -> 0 => 0.5
  t.equal(r.attributes!.per_image.top3.fabric, 0.5);
  // per attribute, top-3 overall: x1 1/1, x2 1/1, y3 0/1, y4 0/1 -> mean 0.5
  t.equal(r.attributes!.per_attribute.top3.all, 0.5);
  // per attribute, fabric, top-3: y3 1/1, y4 0/1 -> 0.5
  t.equal(r.attributes!.per_attribute.top3.fabric, 0.5);
  // top-1 within each type: texture x1 (image 1) and x2 (image 2) both true -> 1; fabric ranks y1
  // first in both, absent in image 1 and unknown in image 2 -> 0 (an unknown answer is no hit)
  t.same(r.attributes!.per_type_top1, { texture: 1, fabric: 0 });
  t.notOk('all' in r.attributes!.per_type_top1!, 'no top-1 over all types: an image has one answer per type, not one in all');
  const attrText = formatEval({ images: 2, attributes: { ...r.attributes!, most_frequent: { per_image: { top3: { all: 0.25, texture: 0.5, fabric: 0.75 }, top5: { all: 0.5 } }, per_type_top1: { texture: 0.5, fabric: 0.25 } } } });
  t.match(attrText, /top-1 in its type\s+-\s+100\.0\s+0\.0\n/, 'each type\'s top-1, none for all');
  t.match(attrText, /most frequent answers of the training split \(baseline\):\n\s+per_image\s+@3\s+25\.0\s+50\.0\s+75\.0\n\s+per_image\s+@5\s+50\.0\s+-\s+-\n\s+top-1 in its type\s+-\s+50\.0\s+25\.0/);
  // The baseline: items 0 and 1 train (x1 twice, y2 and y3 once), item 2 is scored by those counts.
  const listed = { attributes: Int8Array.from([1, -1, -1, 1, -1, -1, 1, -1, -1, -1, 1, -1, -1, 1, 0, 1, -1, -1]) } as unknown as Dataset;
  const base = mostFrequentAttributes(listed, vocab, [0, 1], [2])!.attributes!;
  // ranked x1 (2), y2 (1, before y3 on a tie), y3, x2, y1: top-3 finds y2 of x2, y2; top-5 both
  t.same([base.per_image.top3.all, base.per_image.top5.all], [0.5, 1]);
  t.same(base.per_type_top1, { texture: 0, fabric: 1 }, 'each type answered with its most frequent member');
  t.equal(mostFrequentAttributes({ attributes: null } as unknown as Dataset, vocab, [0], [0]), null, 'no attributes, no baseline');
  t.equal(r.landmarks!.nme, 0.5, 'one visible point, 5 pixels off in a 10-pixel image');
  t.same(r.landmarks!.per_point, { 'left collar': 0.5 }, 'per point: only the slot that had a visible point');
  // Per point against in all: the overall NME weighs points, the per-point figures slots.
  const lm = new MetricsAccumulator(vocab);
  lm.addLandmarks([3, 4, 0, 0, ...new Array(12).fill(0)], [0, 0, 0, 0, 0, 1, ...new Array(18).fill(-1)], 10); // 0.5 and 0.1
  lm.addLandmarks([0, 0, 6, 8, ...new Array(12).fill(0)], [-1, 0, 0, 0, 6, 8, ...new Array(18).fill(-1)], 10); // right collar exact
  const both = lm.result().landmarks!;
  t.ok(Math.abs(both.nme - 0.6 / 3) < 1e-12, `three points: ${both.nme}`);
  t.same(Object.keys(both.per_point!), ['left collar', 'right collar']);
  t.ok(Math.abs(both.per_point!['left collar']! - 0.5) < 1e-12 && Math.abs(both.per_point!['right collar']! - 0.05) < 1e-12, JSON.stringify(both.per_point));
  const text = formatEval({ images: 2, landmarks: { ...both, mean_position_nme: 0.3, mean_position_per_point: { 'left collar': 0.25 } } });
  t.match(text, /landmark error \(NME, distance \/ image size\): 0\.2000\s+\(mean-position baseline 0\.3000\)/);
  t.match(text, /collar\s+0\.5000 \(0\.2500\)\s+0\.0500\n/, 'left with its baseline, right without one');
  t.match(text, /sleeve\s+-\s+-/, 'a slot with no visible point');
  const typed = formatEval({ images: 2, landmarks: { ...both, mean_position_nme: 0.3, mean_position_per_point: { 'left collar': 0.25 }, mean_position_by_type_nme: 0.25, mean_position_by_type_per_point: { 'left collar': 0.2 } } });
  t.match(typed, /\(mean-position baseline 0\.3000; per garment type 0\.2500\)/, 'and the per-type baseline beside it');
  t.match(typed, /collar\s+0\.5000 \(0\.2500, 0\.2000\)\s+0\.0500\n/, 'per point: pooled, then per type');
  const saturated = { images: 1, category: { top1: 0.69, top3: 1, top5: 1 } };
  const better = { images: 1, category: { top1: 0.83, top3: 0.986, top5: 0.986 } };
  t.ok(selectionScore(better) > selectionScore(saturated), 'weights/best prefers top-1 when top-3 saturates');
  const peaks = decodeLandmarks(Float32Array.from({ length: 8 * 9 }, (_, i) => (i === 5 ? 1 : 0)), 1, 3, 'peak');
  t.same(Array.from(peaks.points.slice(0, 2)), [2, 1], 'a heatmap peak at flat index 5 of a 3x3 map is (2, 1)');
});

const { tmp, data, base, recipe } = trainingFixture(t, 'clothtag-train-');

t.test('a training step is one submission with its loss readback, and allocates nothing once warm', async (t) => {
  const e = await gpuEngine(t);
  for (const name of ['cloth_resnet_a', 'new_fashionnet'] as const) {
    const net = createNet(e, { net: name, categories: 50, attributes: 1000, width: 0.125, seed: 1 });
    const trainer = new Trainer(net, { ...THESIS_LOSS, landmarkLoss: name === 'new_fashionnet' ? 'ssim' : 'mse' }, 1e-4);
    const batch = syntheticBatch(net, 3, 32);
    const runStep = async (k: number) => {
      const terms = trainer.step(batch, k);
      const [total] = await e.readMany([terms.total]);
      for (const x of new Set(Object.values(terms))) x?.dispose();
      return total![0]!;
    };
    await runStep(0);
    await runStep(1);
    const submits = e.stats.submits, created = e.stats.buffersCreated;
    const loss = await runStep(2);
    t.ok(Number.isFinite(loss), `${name}: loss ${loss.toFixed(3)}`);
    t.equal(e.stats.submits - submits, 1, `${name}: forward, backward, Adam and the loss readback in one submission`);
    t.equal(e.stats.buffersCreated - created, 0, `${name}: no buffer created after warm-up`);
    trainer.dispose();
    net.dispose();
  }
});

t.test('a short training run on synthetic garments learns far above chance', async (t) => {
  const e = await gpuEngine(t);
  const r = await runTraining(e, join(tmp, 'learn'), base, quiet, false);
  const top1 = r.lastEval!.category!.top1;
  t.ok(top1 >= 0.5, `category top-1 ${(100 * top1).toFixed(1)}% on validation (chance: ${(100 / 6).toFixed(1)}%)`);
  t.ok(r.lastEval!.attributes!.per_image.top3.all! > 0.4, `attribute recall@3 ${(100 * r.lastEval!.attributes!.per_image.top3.all!).toFixed(1)}%`);
  for (const f of ['config.json', 'metrics.csv', 'steps.csv', 'loss.png', 'metrics.png', 'weights/last.safetensors', 'weights/best.safetensors', 'weights/last.state.safetensors', 'weights/vocabulary.json']) {
    t.ok(existsSync(join(tmp, 'learn', f)), f);
  }
  t.equal(readFileSync(join(tmp, 'learn', 'metrics.csv'), 'utf8').trim().split('\n').length, 7, 'a metrics row per epoch');
});

t.test('mixed precision (f16 operands, scaled gradients) trains as well', async (t) => {
  const e = await gpuEngine(t);
  if (!e.hasF16) return void t.pass('skipped: this adapter has no shader-f16');
  const logs: string[] = [];
  const r = await runTraining(e, join(tmp, 'mixed'), { ...base, epochs: 4, precision: 'mixed' }, { log: (s) => logs.push(s) }, false);
  t.equal(e.mixedPrecision, false, 'the engine is back in f32 after the run');
  t.ok(r.stepLosses.every(Number.isFinite), `${r.stepLosses.length} finite losses`);
  const top1 = r.lastEval!.category!.top1;
  t.ok(top1 >= 0.4, `category top-1 ${(100 * top1).toFixed(1)}% after 4 epochs (chance: ${(100 / 6).toFixed(1)}%)`);
  const skipped = logs.filter((l) => l.includes('overflowed f16'));
  t.ok(skipped.length <= 3, `${skipped.length} steps skipped for f16 overflow`);
  // The gradient scale is saved with the state, and a resumed run continues from it: its count of
  // clean steps goes on from where it was instead of starting again.
  const scaleOf = () => JSON.parse(parseSafetensors(readFileSync(join(tmp, 'mixed', 'weights', 'last.state.safetensors'))).metadata.gradient_scale!) as { scale: number; cleanSteps: number };
  const saved = scaleOf();
  t.ok(saved.scale > 0 && saved.cleanSteps > 0, `saved: scale ${saved.scale}, ${saved.cleanSteps} clean steps`);
  await runTraining(e, join(tmp, 'mixed'), { ...base, epochs: 5, precision: 'mixed' }, quiet, true);
  const resumed = scaleOf();
  const perEpoch = r.stepLosses.length / 4;
  t.ok(resumed.cleanSteps === saved.cleanSteps + perEpoch || resumed.scale !== saved.scale, `resumed: ${resumed.cleanSteps} clean steps (${saved.cleanSteps} + ${perEpoch}), scale ${resumed.scale}`);
});

t.test('resume continues exactly: the same losses as an uninterrupted run', async (t) => {
  const e = await gpuEngine(t);
  for (const [name, extra] of [['thesis', {}], ['recipe', recipe]] as const) {
    const small: TrainConfig = { ...base, ...extra, net: 'fashionnet', width: 0.0625, imgSize: 32, batchSize: 8, epochs: 2, stepsPerEpoch: 3, valLimit: 8 };
    const whole = await runTraining(e, join(tmp, `whole-${name}`), small, quiet, false);
    t.equal(whole.stepLosses.length, 6);
    if (name === 'thesis') {
      // Run for one epoch, then extended to two (--resume --epochs 2): per-epoch decay does not
      // depend on the length of the run. (A one-cycle or cosine rate does: the recipe is stopped instead.)
      const first = await runTraining(e, join(tmp, `split-${name}`), { ...small, epochs: 1 }, quiet, false);
      const second = await runTraining(e, join(tmp, `split-${name}`), small, quiet, true);
      t.same([...first.stepLosses, ...second.stepLosses], whole.stepLosses, `${name}: extended at the epoch boundary`);
    }
    let atBoundary = 0;
    const first = await runTraining(e, join(tmp, `boundary-${name}`), small, { log: () => {}, shouldStop: () => ++atBoundary === 3 }, false);
    const second = await runTraining(e, join(tmp, `boundary-${name}`), small, quiet, true);
    t.same([...first.stepLosses, ...second.stepLosses], whole.stepLosses, `${name}: stopped at the epoch boundary`);
    // Stopped in the middle of an epoch (as Ctrl-C does), then resumed.
    let steps = 0;
    const stopped = await runTraining(e, join(tmp, `mid-${name}`), small, { log: () => {}, shouldStop: () => ++steps === 4 }, false);
    t.ok(stopped.interrupted);
    const rest = await runTraining(e, join(tmp, `mid-${name}`), small, quiet, true);
    t.same([...stopped.stepLosses, ...rest.stepLosses], whole.stepLosses, `${name}: mid-epoch, augmentation and schedule included`);
  }
});

t.test('clothtag eval writes the protocol JSON; predict labels real photos and records broken files', async (t) => {
  const ckpt = join(tmp, 'learn', 'weights', 'best.safetensors');
  const ev = clothtag(['eval', '--checkpoint', ckpt, '--data', data, '--split', 'test', '--json', join(tmp, 'eval.json')]);
  t.equal(ev.code, 0, ev.stderr);
  t.match(ev.stdout, /category accuracy\s+top-1/);
  t.match(ev.stdout, /per_image\s+@3/);
  t.match(ev.stdout, /per_attribute\s+@5/);
  const json = JSON.parse(readFileSync(join(tmp, 'eval.json'), 'utf8'));
  t.same(Object.keys(json.category), ['top1', 'top3', 'top5']);
  t.same(Object.keys(json.attributes), ['per_image', 'per_attribute', 'per_type_top1', 'most_frequent']);
  t.match(ev.stdout, /top-1 in its type/);
  t.match(ev.stdout, /most frequent answers of the training split \(baseline\)/);
  t.same(Object.keys(json.attributes.most_frequent.per_type_top1), ['texture', 'fabric', 'shape', 'part', 'style']);
  t.same(Object.keys(json.attributes.per_image.top3), ['all', 'texture', 'fabric', 'shape', 'part', 'style']);
  t.ok(json.images > 0);

  // Photos: synthetic ones, real catalog photos where ../shared/data is present, and broken files.
  const photos = join(tmp, 'photos');
  mkdirSync(photos);
  const synthImgs = readdirSync(join(data, 'img')).slice(0, 2).map((d) => join(data, 'img', d, readdirSync(join(data, 'img', d))[0]!));
  const real = existsSync(SMALL) ? readdirSync(join(SMALL, 'val', 'dress')).slice(0, 3).map((f) => join(SMALL, 'val', 'dress', f)) : [];
  writeFileSync(join(photos, 'empty.jpg'), '');
  writeFileSync(join(photos, 'notes.jpg'), 'these are not pixels');
  writeFileSync(join(photos, 'cut.jpg'), readFileSync(synthImgs[0]!).subarray(0, 300));
  const inputs = [...synthImgs, ...real, photos, join(tmp, 'missing.jpg')];
  const pr = clothtag(['predict', ...inputs, '--checkpoint', ckpt, '--out', join(tmp, 'overlays'), '--jsonl', join(tmp, 'labels.jsonl')]);
  t.equal(pr.code, 0, pr.stderr);
  const good = synthImgs.length + real.length;
  t.match(pr.stdout, new RegExp(`labelled ${good} of ${good + 4} files; could not label 4`));
  const lines = readFileSync(join(tmp, 'labels.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.equal(lines.length, good + 4);
  const errors = lines.filter((l) => l.error).map((l) => l.error as string);
  t.ok(errors.some((e) => /empty file/.test(e)) && errors.some((e) => /not an image/.test(e)) && errors.some((e) => /broken or unsupported JPEG/.test(e)) && errors.some((e) => /no such file/.test(e)), errors.join('; '));
  const labelled = lines.filter((l) => !l.error);
  for (const l of labelled) {
    t.equal(l.category.length, 5, 'category top-5');
    t.ok(Math.abs(l.category.reduce((s: number, c: { p: number }) => s + c.p, 0) - 1) < 0.05 || l.category.length < 6, 'probabilities');
    t.same(Object.keys(l.attributes.by_type), ['texture', 'fabric', 'shape', 'part', 'style']);
    t.ok(existsSync(l.overlay), `overlay ${l.overlay}`);
  }
  if (real.length) t.ok(labelled.some((l) => l.width > 64), 'real photos are labelled at their own size');
});
