// The training recipe: schedules, augmentation (reproducible, landmarks moved with every geometric
// change), landmark decoding, the mean-position baseline, and the first of train's recipe flags (the
// small-photo stem, FashionNet's trunk BatchNorm, the convolutions' init); the others are in
// recipe-flags.test.ts (the file took 105 seconds on two idle cores).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { tempDir } from './helpers/tmp.js';
import { AUGMENTS, drawAugment, itemRandom, jitterColor, rotateLandmarks, rotatePixels } from '../src/data/augment.js';
import { loadBatch } from '../src/data/batch.js';
import { makeSplits, openDataset } from '../src/data/dataset.js';
import { datasetView } from '../src/data/loader.js';
import { synthesize } from '../src/data/synth.js';
import { garmentLayout, landmarkMeans, meanPositionBaseline, meanPositions } from '../src/run/baselines.js';
import { parseSafetensors } from '../src/nets/safetensors.js';
import { defaultConvInit } from '../src/nets/models.js';
import { decodeLandmarks } from '../src/train/metrics.js';
import { DEFAULT_BETA1, ONE_CYCLE, adamBeta1, learningRate } from '../src/train/schedule.js';
import { pointFractions } from '../src/train/step.js';
import { clothtag } from './helpers/cli.js';
import { tinySet } from './helpers/training.js';

t.test('learning-rate schedules', async (t) => {
  const base = { lr: 0.01, lrDecay: 0.5, warmupEpochs: 0, epochs: 10 };
  t.equal(learningRate({ ...base, schedule: 'exp' }, 0, 5, 10), 0.01, 'exp: constant within an epoch');
  t.equal(learningRate({ ...base, schedule: 'exp' }, 2, 0, 10), 0.0025, 'exp: lr * decay^epoch');
  t.ok(Math.abs(learningRate({ ...base, schedule: 'cosine' }, 0, 0, 10) - 0.01) < 1e-12, 'cosine starts at lr');
  t.ok(Math.abs(learningRate({ ...base, schedule: 'cosine' }, 5, 0, 10) - 0.005) < 1e-12, 'half way: lr / 2');
  t.ok(learningRate({ ...base, schedule: 'cosine' }, 9, 9, 10) < 1e-4, 'near 0 at the end');
  const one = (e: number, b: number) => learningRate({ ...base, schedule: 'onecycle' }, e, b, 10);
  t.ok(Math.abs(one(0, 0) - 0.01 / ONE_CYCLE.startDivisor) < 1e-12, 'onecycle starts at lr / 25');
  t.ok(Math.abs(one(3, 0) - 0.01) < 1e-12, 'peaks at 30%');
  t.ok(one(9, 9) < one(6, 0) && one(6, 0) < one(3, 0) && one(1, 0) < one(2, 0), 'rises, then falls');
  const warm = (b: number) => learningRate({ ...base, schedule: 'exp', warmupEpochs: 1 }, 0, b, 4);
  t.same([warm(0), warm(1), warm(2), warm(3)], [0.0025, 0.005, 0.0075, 0.01], 'linear warm-up over the first epoch');
  t.equal(learningRate({ ...base, schedule: 'exp', warmupEpochs: 1 }, 1, 0, 4), 0.005, 'then the schedule');
});

t.test('one-cycle momentum: beta1 moves against the rate, as torch\'s OneCycleLR cycles it', async (t) => {
  const base = { lr: 0.01, lrDecay: 0.5, warmupEpochs: 0, epochs: 10 };
  const beta1 = (e: number, b: number) => adamBeta1({ ...base, schedule: 'onecycle', cycleMomentum: true }, e, b, 10);
  t.ok(Math.abs(beta1(0, 0) - 0.95) < 1e-12, 'starts at 0.95 while the rate is lowest');
  t.ok(Math.abs(beta1(3, 0) - 0.85) < 1e-12, '0.85 where the rate peaks (30%)');
  t.ok(Math.abs(beta1(1, 5) - (0.85 + 0.05 * (1 + Math.cos(Math.PI / 2)))) < 1e-12, 'half way up: the cosine\'s middle, 0.90');
  t.ok(Math.abs(beta1(10, 0) - 0.95) < 1e-12, 'back to 0.95 at the end');
  t.ok(beta1(1, 0) > beta1(2, 0) && beta1(6, 0) > beta1(4, 0) && beta1(9, 9) > beta1(6, 0), 'falls, then climbs');
  // While the rate rises, beta1 falls along the same cosine: the share of the way each has gone is equal.
  const rate = (e: number, b: number) => learningRate({ ...base, schedule: 'onecycle' }, e, b, 10);
  for (let step = 0; step <= 30; step++) {
    const [e, b] = [Math.floor(step / 10), step % 10];
    const rateShare = (rate(e, b) - rate(0, 0)) / (0.01 - rate(0, 0)), beta1Share = (0.95 - beta1(e, b)) / 0.1;
    if (Math.abs(rateShare - beta1Share) > 1e-9) t.fail(`step ${step}: beta1 has gone ${beta1Share} of its way, the rate ${rateShare}`);
  }
  t.equal(adamBeta1({ ...base, schedule: 'onecycle' }, 3, 0, 10), DEFAULT_BETA1, 'without cycleMomentum: 0.9 throughout');
  t.equal(adamBeta1({ ...base, schedule: 'cosine', cycleMomentum: true }, 3, 0, 10), DEFAULT_BETA1, 'other schedules: 0.9');
});

t.test('augmentation: reproducible per (seed, item), landmarks moved with the pixels', async (t) => {
  const box = { x: 10, y: 20, w: 100, h: 200 };
  const a = drawAugment(AUGMENTS.strong, box, itemRandom(7, 3)), b = drawAugment(AUGMENTS.strong, box, itemRandom(7, 3));
  t.same(a, b, 'the same seed and item give the same draw');
  t.not(JSON.stringify(a), JSON.stringify(drawAugment(AUGMENTS.strong, box, itemRandom(8, 3))), 'another epoch seed another');
  for (let i = 0; i < 50; i++) {
    const d = drawAugment(AUGMENTS.strong, box, itemRandom(1, i));
    if (!(d.box.x >= box.x - 1e-9 && d.box.y >= box.y - 1e-9 && d.box.x + d.box.w <= box.x + box.w + 1e-9 && d.box.y + d.box.h <= box.y + box.h + 1e-9 && d.box.w * d.box.h >= 0.35 * box.w * box.h * 0.99)) {
      t.fail(`crop ${JSON.stringify(d.box)} leaves the box or is under 35% of it`);
    }
    if (Math.abs(d.angle) > (10 * Math.PI) / 180 + 1e-12) t.fail(`angle ${d.angle} over 10 degrees`);
  }
  t.same(drawAugment(AUGMENTS.flip, box, itemRandom(1, 1)), { box, angle: 0, brightness: 1, contrast: 1, saturation: 1 }, 'flip-only draws nothing else');

  // A single bright pixel and a landmark on it stay together under rotation.
  const S = 21, px = new Float32Array(3 * S * S);
  for (let c = 0; c < 3; c++) px[c * S * S + 4 * S + 15] = 10;
  const lm = new Float32Array(24).fill(-1);
  lm.set([0, 15, 4], 0);
  const angle = (25 * Math.PI) / 180;
  const rotated = rotatePixels(px, S, angle), moved = rotateLandmarks(lm, S, angle);
  let best = 0, at = 0;
  for (let i = 0; i < S * S; i++) if (rotated[i]! > best) (best = rotated[i]!), (at = i);
  t.ok(Math.hypot((at % S) - moved[1]!, Math.floor(at / S) - moved[2]!) < 1, `the pixel lands at the point (${at % S}, ${Math.floor(at / S)} vs ${moved[1]!.toFixed(2)}, ${moved[2]!.toFixed(2)})`);
  t.equal(rotateLandmarks(Float32Array.from([0, 0, 0, ...new Array(21).fill(-1)]), S, Math.PI / 4)[0], 2, 'a corner point rotated out of the frame is truncated');

  const gray = new Float32Array(3 * 4).fill(0.5);
  jitterColor(gray, 2, { brightness: 1, contrast: 1, saturation: 1 });
  t.same(Array.from(gray), new Array(12).fill(0.5), 'factors of 1 leave pixels alone');
});

t.test('augmented batches keep landmarks on the garment, deterministically', async (t) => {
  const out = tempDir(t, 'clothtag-aug-');
  synthesize(out, { images: 12, size: 64, seed: 5 });
  const ds = await openDataset(out);
  const view = datasetView(ds);
  const spec = { size: 48, augment: true, augmentation: AUGMENTS.light, heatmaps: true };
  const a = loadBatch(view, [0, 1, 2, 3], spec, 11), b = loadBatch(view, [0, 1, 2, 3], spec, 11);
  t.same(Array.from(a.images.subarray(0, 100)), Array.from(b.images.subarray(0, 100)), 'same seed: same pixels');
  t.same(Array.from(a.landmarks!), Array.from(b.landmarks!), 'same seed: same landmarks');
  const c = loadBatch(view, [0, 1, 2, 3], spec, 12);
  t.not(JSON.stringify(Array.from(c.landmarks!)), JSON.stringify(Array.from(a.landmarks!)), 'another seed: other points');
  const plain = loadBatch(view, [0, 1, 2, 3], { ...spec, augmentation: AUGMENTS.flip }, 11);
  let visible = 0, near = 0;
  for (let s = 0; s < 32; s++) {
    if (a.landmarks![3 * s] !== 0 || plain.landmarks![3 * s] !== 0) continue;
    visible++;
    // Light augmentation moves a point by at most the jitter and a 10-degree turn: well under 12 px at 48.
    if (Math.hypot(a.landmarks![3 * s + 1]! - plain.landmarks![3 * s + 1]!, a.landmarks![3 * s + 2]! - plain.landmarks![3 * s + 2]!) < 12) near++;
  }
  t.ok(visible > 0 && near === visible, `every visible point stays near its unaugmented place (${near}/${visible})`);
  const fr = pointFractions(Float32Array.from([0, 0, 47, 1, 23.5, 23.5]), 48);
  t.same(Array.from(fr), Array.from(Float32Array.of(0.5 / 48, 47.5 / 48, 0.5, 0.5)), 'pixel centres as fractions of the frame');
});

t.test('landmark decoding: soft-argmax with confidence, peaks with sub-pixel refinement, flat maps', async (t) => {
  const S = 16, plane = S * S;
  const maps = new Float32Array(8 * plane).fill(0);
  maps[5 * S + 9] = 30; // plane 0: a sharp peak at (9, 5)
  // plane 1 flat; plane 2: two equal neighbours (x 3 and 4, y 7): the peak refines to 3.5
  maps[2 * plane + 7 * S + 3] = 1; maps[2 * plane + 7 * S + 4] = 1;
  const soft = decodeLandmarks(maps, 1, S, 'softargmax');
  t.ok(Math.abs(soft.points[0]! - 9) < 1e-3 && Math.abs(soft.points[1]! - 5) < 1e-3, 'soft-argmax of a sharp peak is the peak');
  t.ok(soft.confidence[0]! > 0.99, 'and sure of it');
  t.ok(Math.abs(soft.points[2]! - 7.5) < 1e-3 && soft.confidence[1]! < 0.2, `a flat map: the centre, unsure (${soft.confidence[1]!.toFixed(3)})`);
  const peak = decodeLandmarks(maps, 1, S, 'peak');
  t.same([peak.points[0], peak.points[1]], [9, 5], 'peak');
  t.equal(peak.confidence[1], 0, 'a flat map has no peak: confidence 0, not pixel 0 with full marks');
  t.same([peak.points[4], peak.points[5]], [3.5, 7], 'sub-pixel refinement between equal neighbours');
});

t.test('mean-position baseline: from the training split, scored on another', async (t) => {
  const out = tempDir(t, 'clothtag-base-');
  synthesize(out, { images: 40, size: 64, seed: 9 });
  const ds = await openDataset(out);
  const splits = makeSplits(ds, 'official', 0);
  const b = meanPositionBaseline(ds, meanPositions(ds, splits.train, 64), splits.val, 64)!;
  t.ok(b && b.points > 0, `${b.points} visible points scored`);
  t.ok(b.nme > 0.01 && b.nme < 0.5, `NME ${b.nme.toFixed(4)} is a plausible baseline`);
  const perPoint = Object.values(b.per_point);
  t.ok(perPoint.length >= 2 && Math.min(...perPoint) <= b.nme && b.nme <= Math.max(...perPoint), `per point ${JSON.stringify(b.per_point)} around ${b.nme}`);
  const self = meanPositionBaseline(ds, meanPositions(ds, splits.val, 64), splits.val, 64)!;
  t.ok(self.nme <= b.nme + 1e-9, 'the mean of the scored split itself is at least as good (the mean minimizes squared, near-minimizes plain distance)');
});

t.test('the per-garment-type baseline: each point at its own type\'s mean (upper, lower or full body)', async (t) => {
  // Upper-body rows (collars, sleeves, hems) and lower-body rows (waistlines, hems) whose hems sit
  // in different places: the pooled mean puts every hem between the two, each type's mean on it.
  const root = tempDir(t, 'clothtag-types-');
  mkdirSync(join(root, 'Anno'));
  mkdirSync(join(root, 'Eval'));
  const upper = (dx: number) => `1 1 0 ${30 + dx} 10 0 ${70 + dx} 10 0 ${10 + dx} 40 0 ${90 + dx} 40 0 ${20 + dx} 90 0 ${80 + dx} 90`;
  const lower = (dx: number) => `2 1 0 ${25 + dx} 10 0 ${75 + dx} 10 0 ${20 + dx} 50 0 ${80 + dx} 50`;
  const rows = [['a', upper(0), 'train'], ['b', upper(2), 'train'], ['c', lower(0), 'train'], ['d', lower(2), 'train'], ['e', upper(3), 'val'], ['f', lower(3), 'val']];
  writeFileSync(join(root, 'Anno/list_bbox.txt'), `${rows.length}\nimage_name x_1 y_1 x_2 y_2\n${rows.map(([n]) => `img/${n}.jpg 0 0 100 100`).join('\n')}\n`);
  writeFileSync(join(root, 'Anno/list_landmarks.txt'), `${rows.length}\nimage_name clothes_type variation_type [landmark_visibility landmark_location_x landmark_location_y]\n${rows.map(([n, lm]) => `img/${n}.jpg ${lm}`).join('\n')}\n`);
  writeFileSync(join(root, 'Eval/list_eval_partition.txt'), `${rows.length}\nimage_name evaluation_status\n${rows.map(([n, , split]) => `img/${n}.jpg ${split}`).join('\n')}\n`);
  const ds = await openDataset(root);
  const splits = makeSplits(ds, 'official', 0);
  const at = (name: string) => ds.items.findIndex((i) => i.path === `img/${name}.jpg`);
  t.equal(garmentLayout(ds.items[at('a')]!.landmarks!), 0b11001111, 'upper body: collars, sleeves, hems');
  t.equal(garmentLayout(ds.items[at('c')]!.landmarks!), 0b11110000, 'lower body: waistlines, hems');
  const { pooled, byType } = landmarkMeans(ds, splits.train, 100);
  t.same([...byType.keys()].sort((x, y) => x - y), [0b11001111, 0b11110000], 'one set of means per type the training split has');
  // Each type's left hem: x 21 (upper, dx 0 and 2) and 21 (lower); y 90 and 50 (pixel centres: +0.5 - 0.5).
  t.same(Array.from(byType.get(0b11001111)!.subarray(12, 14)), [21, 90], 'the upper body\'s left hem');
  t.same(Array.from(byType.get(0b11110000)!.subarray(12, 14)), [21, 50], 'the lower body\'s left hem');
  t.same(Array.from(pooled.subarray(12, 14)), [21, 70], 'the pooled left hem lies between them');
  const b = meanPositionBaseline(ds, pooled, splits.val, 100, byType)!;
  // Every validation point is 2 pixels right of its type's mean: 0.02 of the frame.
  t.ok(Math.abs(b.by_type_nme! - 0.02) < 1e-6, `per type ${b.by_type_nme}`);
  t.ok(Math.abs(b.by_type_per_point!['left hem']! - 0.02) < 1e-6 && b.per_point['left hem']! > 0.15, `left hem: ${b.by_type_per_point!['left hem']} per type, ${b.per_point['left hem']} pooled`);
  t.ok(b.nme > 0.05, `pooled ${b.nme.toFixed(4)}: the hems are 20 pixels off`);
  t.equal(meanPositionBaseline(ds, pooled, splits.val, 100)!.by_type_nme, undefined, 'absent without per-type means');
});

t.test('why heatmaps collapsed: MSE against a sparse Gaussian prefers a flat map to a near miss', async (t) => {
  const { landmarkHeatmaps, heatmapSigma } = await import('../src/data/image.js');
  const { mseRef, softArgmaxRef } = await import('./helpers/reference.js');
  const S = 64, plane = S * S;
  const at = (x: number, y: number) => {
    const lm = new Float32Array(24).fill(-1);
    lm.set([0, x, y], 0);
    return landmarkHeatmaps(lm, S).heatmaps.subarray(0, plane);
  };
  const target = at(30, 30);
  const mse = (p: Float32Array) => mseRef(Float64Array.from(p), target, [1]);
  const flat = mse(new Float32Array(plane));
  const miss = mse(at(34, 30)); // the right shape, 4 pixels (NME 0.06) away
  t.ok(miss > flat, `sigma ${heatmapSigma(S)}: a peak 4 px off scores worse (${miss.toExponential(3)}) than a flat map (${flat.toExponential(3)})`);
  t.ok(mse(at(31, 30)) < flat, 'only a peak within about one sigma beats flat: the gradient towards the point is local');
  // Soft-argmax regression: the loss is the distance itself, so every step towards the point pays.
  const logits = (x: number) => Float64Array.from(at(x, 30), (v) => 8 * v);
  const distance = (x: number) => Math.abs(softArgmaxRef(logits(x), 1, S, S)[0]! - 30.5 / S);
  const far = [50, 45, 40, 35, 31].map(distance);
  t.ok(far.every((d, i) => i === 0 || d < far[i - 1]!), `soft-argmax error falls all the way in (${far.map((d) => d.toFixed(3)).join(' > ')})`);
});

t.test('--stem-stride 1 trains, is kept in config.json and the checkpoint, and evaluates; other values are refused', async (t) => {
  const { dir, data, common } = tinySet(t, 'clothtag-stem-', 'cloth_repvgg', '0.125');
  const run = join(dir, 'run');
  const train = clothtag(['train', ...common, '--epochs', '1', '--steps-per-epoch', '1', '--stem-stride', '1', '--out', run]);
  t.equal(train.code, 0, train.stderr);
  t.equal(JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')).stemStride, 1, 'config.json');
  const checkpoint = join(run, 'weights', 'last.safetensors');
  t.equal(JSON.parse(parseSafetensors(readFileSync(checkpoint)).metadata.config!).stemStride, 1, 'the checkpoint');
  const ev = clothtag(['eval', '--checkpoint', checkpoint, '--data', data, '--workers', '0']);
  t.equal(ev.code, 0, ev.stderr);
  const bad = clothtag(['train', ...common, '--stem-stride', '3', '--out', join(dir, 'bad')]);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--stem-stride is 1 or 2, got 3/);
});

t.test('--vgg-bn on trains FashionNet with a BatchNorm after each trunk convolution, is kept in config.json and the checkpoint, and evaluates; other networks and values are refused', async (t) => {
  const { dir, data, common } = tinySet(t, 'clothtag-vggbn-', 'fashionnet', '0.0625');
  const run = join(dir, 'run');
  const train = clothtag(['train', ...common, '--epochs', '1', '--steps-per-epoch', '1', '--vgg-bn', 'on', '--out', run]);
  t.equal(train.code, 0, train.stderr);
  t.equal(JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')).vggBatchNorm, true, 'config.json');
  const checkpoint = join(run, 'weights', 'last.safetensors');
  const { tensors, metadata } = parseSafetensors(readFileSync(checkpoint));
  t.equal(JSON.parse(metadata.config!).vggBatchNorm, true, 'the checkpoint');
  t.ok(tensors.has('features.41.running_var'), 'the checkpoint holds the last BatchNorm\'s statistics (vgg16_bn\'s features.41)');
  const ev = clothtag(['eval', '--checkpoint', checkpoint, '--data', data, '--workers', '0']);
  t.equal(ev.code, 0, ev.stderr);
  const off = join(dir, 'off');
  t.equal(clothtag(['train', ...common, '--epochs', '1', '--steps-per-epoch', '1', '--val-limit', '4', '--vgg-bn', 'off', '--out', off]).code, 0);
  t.notOk(JSON.parse(readFileSync(join(off, 'config.json'), 'utf8')).vggBatchNorm, '--vgg-bn off: the thesis\'s VGG');
  t.notOk(parseSafetensors(readFileSync(join(off, 'weights', 'last.safetensors'))).tensors.has('features.1.running_mean'), '--vgg-bn off: no BatchNorm in the checkpoint');
  const other = clothtag(['train', ...common.map((v) => (v === 'fashionnet' ? 'new_fashionnet' : v)), '--vgg-bn', 'on', '--out', join(dir, 'bad')]);
  t.equal(other.code, 2, '--vgg-bn on a network without a VGG trunk');
  t.match(other.stderr, /--vgg-bn on is for fashionnet, whose trunk is VGG-16; new_fashionnet has none/);
  const word = clothtag(['train', ...common, '--vgg-bn', 'yes', '--out', join(dir, 'bad')]);
  t.equal(word.code, 2, '--vgg-bn yes');
  t.match(word.stderr, /--vgg-bn/);
});

t.test('--conv-init pytorch starts the convolutions as PyTorch does, is kept in config.json (the default too) and the checkpoint; other values are refused', async (t) => {
  const set = tinySet(t, 'clothtag-init-', 'cloth_repvgg', '0.125');
  const dir = set.dir;
  const common = [...set.common, '--epochs', '1', '--steps-per-epoch', '1'];
  const stem = new Map<string, Float32Array>();
  for (const init of ['fan-out', 'pytorch']) {
    const run = join(dir, init);
    const train = clothtag(['train', ...common, '--conv-init', init, '--out', run]);
    t.equal(train.code, 0, train.stderr);
    t.equal(JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')).convInit, init, `${init}: config.json`);
    const { tensors, metadata } = parseSafetensors(readFileSync(join(run, 'weights', 'last.safetensors')));
    t.equal(JSON.parse(metadata.config!).convInit, init, `${init}: the checkpoint's network`);
    stem.set(init, tensors.get('stage0.rbr_dense.conv.weight')!.data as Float32Array);
  }
  const spread = (v: Float32Array) => Math.max(...v.map(Math.abs));
  t.ok(spread(stem.get('pytorch')!) < spread(stem.get('fan-out')!), `the stem's weights start smaller with PyTorch's init (largest ${spread(stem.get('pytorch')!).toFixed(3)} against ${spread(stem.get('fan-out')!).toFixed(3)})`);
  // Without the flag the run writes down the network's default, so config.json says how it started
  // even if a later version defaults otherwise.
  const defaulted = join(dir, 'default');
  const train = clothtag(['train', ...common, '--out', defaulted]);
  t.equal(train.code, 0, train.stderr);
  t.equal(JSON.parse(readFileSync(join(defaulted, 'config.json'), 'utf8')).convInit, defaultConvInit('cloth_repvgg'), 'no flag: config.json records the network\'s default');
  const bad = clothtag(['train', ...common, '--conv-init', 'xavier', '--out', join(dir, 'bad')]);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--conv-init is fan-out, pytorch; got xavier/);
});
