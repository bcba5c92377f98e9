// Landmarks trained end to end on synthesized garments: soft-argmax regression learns a batch to a
// small error, a short run starts at the mean-position baseline, and predict and eval report what
// a person checks (sure/unsure points, the contact sheet, the baseline beside NME). Apart from
// train.test.ts so that neither file nears tap's time limit on a loaded machine.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import t from 'tap';
import { decodeImage } from '../src/data/image.js';
import { MIRROR } from '../src/label/pixels.js';
import { loadBatch } from '../src/data/batch.js';
import { openDataset } from '../src/data/dataset.js';
import { datasetView } from '../src/data/loader.js';
import { createNet } from '../src/nets/models.js';
import { runTraining } from '../src/run/train.js';
import { THESIS_LOSS } from '../src/train/losses.js';
import { MetricsAccumulator, decodeLandmarks } from '../src/train/metrics.js';
import { Trainer, disposeAll, predictBatch } from '../src/train/step.js';
import { clothtag } from './helpers/cli.js';
import { gpuEngine } from './helpers/gpu.js';
import { quiet, trainingFixture } from './helpers/training.js';

const { tmp, data, base, recipe } = trainingFixture(t, 'clothtag-landmarks-');

t.test("contact sheet captions: the folder (an ImageFolder's true class) and the file's name, cut to 48 characters", async (t) => {
  const { sheetCaption } = await import('../src/run/predict.js');
  t.equal(sheetCaption('../shared/data/clothing-small/val/pants/081b5ec1.jpg'), 'pants/081b5ec1.jpg');
  t.equal(sheetCaption('photo.jpg'), 'photo.jpg', 'no folder given: the name alone');
  t.equal(sheetCaption('/abs/longsleeve/0c6472ac-e3f8-443b-a884-2e60562c35b1.jpg'), 'longsleeve/0c6472ac-e3f8-443b-a884-2e60562c35...', 'the folder survives the cut');
});

t.test('soft-argmax regression localizes: a batch is learned to a small error; predict marks unsure points', async (t) => {
  const e = await gpuEngine(t);
  // Learning one batch is the quick check that the objective, its gradient and the decoding fit
  // together: the heatmap losses (MSE, SSIM) gave flat maps decoded to a corner (NME ~0.78). The
  // branch is joined to the trunk's finer maps, as `train` builds it for soft-argmax.
  const ds = await openDataset(data);
  const S = 48, n = 16;
  const batch = loadBatch(datasetView(ds), Array.from({ length: n }, (_, i) => i), { size: S, augment: false, heatmaps: false }, 0);
  const net = createNet(e, { net: 'new_fashionnet', categories: ds.categories.length, attributes: ds.attributeNames.length, width: 0.125, seed: 3, landmarkPrior: true, landmarkSkips: true });
  const trainer = new Trainer(net, { ...THESIS_LOSS, landmarkLoss: 'softargmax', wl: 20 }, 1e-2);
  const nme = async () => {
    const out = predictBatch(net, batch.images, n, S);
    const decoded = decodeLandmarks(await out.heatmaps!.read(), n, S, 'softargmax');
    disposeAll([out.category, out.attributes, out.heatmaps]);
    const acc = new MetricsAccumulator({ categories: [], attributes: [], attributeTypes: [], typeNames: {} });
    for (let i = 0; i < n; i++) acc.addLandmarks(decoded.points.subarray(i * 16, (i + 1) * 16), batch.landmarks!.subarray(i * 24, (i + 1) * 24), S);
    return acc.result().landmarks!.nme;
  };
  const before = await nme();
  for (let k = 0; k < 60; k++) {
    const terms = trainer.step({ n, ...batch }, k);
    await e.readMany([terms.total]);
    for (const x of new Set(Object.values(terms))) x?.dispose();
  }
  const after = await nme();
  t.ok(after < 0.08 && after < before / 3, `NME on the batch ${before.toFixed(4)} -> ${after.toFixed(4)} in 60 steps`);
  trainer.dispose();
  net.dispose();

  // A short run for a checkpoint: the prior starts at the training split's mean positions.
  const r = await runTraining(e, join(tmp, 'landmarks'), {
    ...base, ...recipe, augment: 'light', net: 'new_fashionnet', width: 0.125, imgSize: S, batchSize: 16, epochs: 2, lr: 1e-2,
  }, quiet, false);
  const lm = r.lastEval!.landmarks!;
  t.ok(lm.mean_position_nme !== undefined && lm.nme < 1.5 * lm.mean_position_nme, `validation NME ${lm.nme.toFixed(4)} starts near the mean-position baseline ${lm.mean_position_nme?.toFixed(4)}`);

  // predict: every slot with a confidence and a sure/unsure mark; the contact sheet.
  const photos = readdirSync(join(data, 'img')).slice(0, 3).map((d) => join(data, 'img', d, readdirSync(join(data, 'img', d))[0]!));
  const sheet = join(tmp, 'landmarks-sheet.png');
  const pr = clothtag(['predict', ...photos, '--checkpoint', join(tmp, 'landmarks', 'weights', 'last.safetensors'), '--jsonl', join(tmp, 'lm.jsonl'), '--sheet', sheet]);
  t.equal(pr.code, 0, pr.stderr);
  const rows = readFileSync(join(tmp, 'lm.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  for (const row of rows) {
    t.equal(row.landmarks.length, 8);
    t.ok(row.landmarks.every((l: { confidence: number; sure: boolean }) => l.confidence >= 0 && l.confidence <= 1 && typeof l.sure === 'boolean' && l.sure === l.confidence >= 0.5), 'confidence in [0, 1], sure at 0.5 and over');
  }
  const png = readFileSync(sheet);
  t.same(Array.from(png.subarray(1, 4)), [0x50, 0x4e, 0x47], 'the contact sheet is a PNG');
  t.match(pr.stdout, /contact sheet/);
  const ev = clothtag(['eval', '--checkpoint', join(tmp, 'landmarks', 'weights', 'last.safetensors'), '--data', data, '--split', 'test', '--json', join(tmp, 'lm-eval.json')]);
  t.equal(ev.code, 0, ev.stderr);
  t.match(ev.stdout, /landmark error \(NME, distance \/ image size\): \d\.\d{4}\s+\(mean-position baseline \d\.\d{4}; per garment type \d\.\d{4}\)/, 'eval prints the baselines beside NME');
  const evJson = JSON.parse(readFileSync(join(tmp, 'lm-eval.json'), 'utf8'));
  t.ok(evJson.landmarks.mean_position_nme > 0, 'and writes it in the JSON');
  t.ok(evJson.landmarks.mean_position_by_type_nme > 0, 'the per-type one too');
  t.match(ev.stdout, /per point\s+left\s+right\s+\(mean-position baselines: pooled, per garment type\)\n\s+collar\s+\d\.\d{4} \(\d\.\d{4}, \d\.\d{4}\)/, 'and per point');
  t.same(Object.keys(evJson.landmarks.per_point).sort(), Object.keys(evJson.landmarks.mean_position_per_point).sort(), 'each point beside its own baseline');

  // Test-time flips: eval --mirror says so and scores; predict --mirror gives a photo and its
  // mirror image mirrored answers (the same category, each point its mirror slot's point).
  const mirrored = clothtag(['eval', '--checkpoint', join(tmp, 'landmarks', 'weights', 'last.safetensors'), '--data', data, '--split', 'test', '--mirror', '--json', join(tmp, 'lm-eval-mirror.json')]);
  t.equal(mirrored.code, 0, mirrored.stderr);
  t.match(mirrored.stdout, /each crop averaged with its mirror image/);
  const mj = JSON.parse(readFileSync(join(tmp, 'lm-eval-mirror.json'), 'utf8'));
  t.ok(mj.mirror === true && mj.landmarks.nme > 0 && mj.landmarks.nme < 1, `eval --mirror NME ${mj.landmarks.nme}`);
  const img = decodeImage(readFileSync(photos[0]!), photos[0]!);
  const flipped = new PNG({ width: img.width, height: img.height });
  for (let y = 0; y < img.height; y++) for (let x = 0; x < img.width; x++) for (let c = 0; c < 4; c++) flipped.data[(y * img.width + x) * 4 + c] = img.data[(y * img.width + img.width - 1 - x) * 4 + c]!;
  const flippedFile = join(tmp, 'flipped.png');
  writeFileSync(flippedFile, PNG.sync.write(flipped));
  const pm = clothtag(['predict', photos[0]!, flippedFile, '--checkpoint', join(tmp, 'landmarks', 'weights', 'last.safetensors'), '--bbox', 'whole', '--mirror', '--jsonl', join(tmp, 'mirror.jsonl')]);
  t.equal(pm.code, 0, pm.stderr);
  const [a, b] = readFileSync(join(tmp, 'mirror.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.same(b.category.map((c: { name: string }) => c.name).slice(0, 2), a.category.map((c: { name: string }) => c.name).slice(0, 2), 'the same top categories');
  const slots = a.landmarks.map((l: { slot: string }) => l.slot);
  const worst = Math.max(...a.landmarks.map((l: { x: number; y: number }, s: number) => {
    const m = b.landmarks[MIRROR[s]!];
    t.equal(m.slot, slots[MIRROR[s]!]);
    return Math.max(Math.abs(l.x - (img.width - 1 - m.x)), Math.abs(l.y - m.y));
  }));
  t.ok(worst <= 0.5, `predict --mirror: the mirror image's points are the photo's, mirrored (worst ${worst} pixels)`);
});

