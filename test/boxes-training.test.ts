// Garment boxes, continued from boxes.test.ts (split so that neither file nears tap's 600-second
// limit on a loaded machine): the box head trained on alone after the labels (--box-epochs), and
// one checkpoint's box head grafted onto another's labels (graft-box).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { tempDir } from './helpers/tmp.js';
import { loadBatch } from '../src/data/batch.js';
import { openDataset } from '../src/data/dataset.js';
import { datasetView } from '../src/data/loader.js';
import { synthesize } from '../src/data/synth.js';
import { BOX_INPUT } from '../src/nets/locator.js';
import { createNet } from '../src/nets/models.js';
import { readState } from '../src/nets/weights.js';
import { parseSafetensors, serializeSafetensors } from '../src/nets/safetensors.js';
import { DEFAULT_TRAIN, type TrainConfig, runTraining } from '../src/run/train.js';
import { THESIS_LOSS } from '../src/train/losses.js';
import { Trainer } from '../src/train/step.js';
import { clothtag } from './helpers/cli.js';
import { gpuEngine } from './helpers/gpu.js';

t.test('train --box-epochs: the box head trains on alone after the labels, on an optimizer and a schedule of its own', async (t) => {
  const e = await gpuEngine(t);
  const dir = tempDir(t, 'clothtag-boxepochs-');
  const data = join(dir, 'data');
  synthesize(data, { images: 60, size: 96, seed: 2 });
  const ds = await openDataset(data);
  const n = 16;
  const batch = loadBatch(datasetView(ds), Array.from({ length: n }, (_, i) => i), { size: 32, augment: true, heatmaps: false, photoSize: BOX_INPUT, boxZoom: 0.5 }, 0);
  const equal = (a: Float32Array, b: Float32Array) => a.length === b.length && a.every((x, i) => x === b[i]);
  const release = (terms: object) => {
    for (const x of new Set(Object.values(terms))) x?.dispose();
  };
  // The box head's own optimizer, at the same rate, gives exactly the weights one optimizer gives
  // (Adam's update of a tensor reads only that tensor's gradient and moments).
  const states: Awaited<ReturnType<typeof readState>>[] = [];
  for (const own of [false, true]) {
    const net = createNet(e, { net: 'cloth_resnet_a', categories: ds.categories.length, attributes: ds.attributeNames.length, width: 0.125, seed: 3, box: true });
    const trainer = new Trainer(net, { ...THESIS_LOSS, wb: 1 }, 3e-3, { weightDecay: 0.05, decoupled: true }, { boxOptimizer: own });
    t.equal(trainer.boxOptimizer?.params.length, own ? net.boxParameters().length : undefined);
    for (let k = 0; k < 2; k++) release(trainer.step({ n, ...batch }, k));
    const state = await readState(net);
    states.push(state);
    if (own) {
      // A step of the box head alone: only box_locator.* moves; the labelling network, BatchNorm's
      // running statistics included, stays bit for bit (no forward pass, no update, no decay).
      const terms = trainer.step({ n, ...batch }, 2, undefined, { labels: false });
      t.same(Object.keys(terms).sort(), ['box', 'total'], 'the box term alone');
      release(terms);
      const after = await readState(net);
      const moved = [...after].filter(([name, v]) => !equal(v.data, state.get(name)!.data)).map(([name]) => name);
      t.ok(moved.length > 0 && moved.every((name) => name.startsWith('box_locator.')), `${moved.length} tensors moved, all the box head's`);
      t.ok(moved.some((name) => name.includes('running_mean')), 'its own BatchNorm statistics among them');
    } else {
      t.throws(() => trainer.step({ n, ...batch }, 2, undefined, { labels: false }), /needs its own optimizer/);
    }
    trainer.dispose();
    net.dispose();
  }
  const differing = [...states[0]!].filter(([name, v]) => !equal(v.data, states[1]!.get(name)!.data)).map(([name]) => name);
  t.same(differing, [], 'one optimizer or two: the same weights after two steps');

  // A run: one epoch of everything, then two of the box head alone on its own one-cycle schedule.
  const run = join(dir, 'run');
  const flags = ['--data', data, '--net', 'cloth_resnet_a', '--width', '0.125', '--img-size', '32', '--batch-size', '16', '--steps-per-epoch', '2', '--val-limit', '8', '--workers', '0'];
  const r = clothtag(['train', ...flags, '--epochs', '1', '--box-epochs', '3', '--out', run]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /epoch 1\/3: loss [\s\S]*epoch 2\/3 \(box head alone\): loss [\s\S]*epoch 3\/3 \(box head alone\): loss .*box IoU/);
  const csv = readFileSync(join(run, 'metrics.csv'), 'utf8').trim().split('\n').map((l) => l.split(','));
  const [header, ...rows] = csv;
  const col = (name: string) => rows.map((row) => row[header!.indexOf(name)]!);
  t.equal(rows.length, 3, 'three epochs');
  t.same(col('lr').map((v) => v !== ''), [true, false, false], 'the labels\' rate only while they train');
  const boxRates = col('box_lr').map(Number);
  t.ok(boxRates.every((v) => v > 0) && boxRates[2]! < boxRates[1]!, `the box head's one-cycle over its three epochs: ${boxRates.join(', ')}`);
  t.same(col('val_category_top1').slice(1), [col('val_category_top1')[0], col('val_category_top1')[0]], 'the labels\' figures unchanged after their epoch');
  t.equal(JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')).boxEpochs, 3);
  const best = parseSafetensors(readFileSync(join(run, 'weights', 'best.safetensors')));
  const last = parseSafetensors(readFileSync(join(run, 'weights', 'last.safetensors')));
  t.equal(best.metadata.epoch, '1', 'weights/best: the labels of the best labelling epoch');
  t.equal(best.metadata.box_epoch, '3', 'and the box head of the last epoch');
  const unlike = [...last.tensors].filter(([name, v]) => !equal(v.data, best.tensors.get(name)!.data)).map(([name]) => name);
  t.same(unlike, [], 'weights/best is weights/last: the labelling weights did not move after epoch 1, the box head is the last epoch\'s');
  // The labels are where epoch 1 left them: the same as a run of that one epoch alone (whose box head differs).
  const alone = clothtag(['train', ...flags, '--epochs', '1', '--out', join(dir, 'alone')]);
  t.equal(alone.code, 0, alone.stderr);
  const one = parseSafetensors(readFileSync(join(dir, 'alone', 'weights', 'last.safetensors')));
  const labelsDiffer = [...one.tensors].filter(([name, v]) => !name.startsWith('box_locator.') && !equal(v.data, last.tensors.get(name)!.data));
  t.same(labelsDiffer.map(([name]) => name), [], 'the labelling weights are those of one epoch');
  t.ok([...one.tensors].some(([name, v]) => name.startsWith('box_locator.') && !equal(v.data, last.tensors.get(name)!.data)), 'the box head trained on');

  // Stopped in the box head's epochs and resumed: the same losses as the uninterrupted run.
  const config: TrainConfig = { ...DEFAULT_TRAIN, data, net: 'cloth_resnet_a', width: 0.125, imgSize: 32, batchSize: 16, epochs: 1, boxEpochs: 3, stepsPerEpoch: 2, valLimit: 8, workers: 0, loss: { ...THESIS_LOSS, wb: 1 }, clipNorm: 1 };
  const whole = await runTraining(e, join(dir, 'whole'), config, { log: () => {} }, false);
  t.equal(whole.stepLosses.length, 6);
  let steps = 0;
  const first = await runTraining(e, join(dir, 'split'), config, { log: () => {}, shouldStop: () => ++steps === 3 }, false);
  t.ok(first.interrupted);
  const state = parseSafetensors(readFileSync(join(dir, 'split', 'weights', 'last.state.safetensors')));
  t.ok(state.tensors.has('box.m.0') && Number(state.metadata.box_adam_step) === 3, `the box head's moments and its ${state.metadata.box_adam_step} steps are saved`);
  const second = await runTraining(e, join(dir, 'split'), config, { log: () => {} }, true);
  t.same([...first.stepLosses, ...second.stepLosses], whole.stepLosses, 'resumed in the box head\'s epochs: the same losses');

  // Refused: fewer box epochs than epochs, no box head to train, not a whole number.
  const fewer = clothtag(['train', ...flags, '--epochs', '3', '--box-epochs', '2', '--out', join(dir, 'bad')]);
  t.not(fewer.code, 0);
  t.match(fewer.stderr, /--box-epochs 2 is fewer than --epochs 3/);
  const headless = clothtag(['train', ...flags, '--epochs', '1', '--box-epochs', '2', '--wb', '0', '--out', join(dir, 'bad')]);
  t.not(headless.code, 0);
  t.match(headless.stderr, /--box-epochs needs a box head, and this run has none \(--wb 0\)/);
  const fraction = clothtag(['train', ...flags, '--box-epochs', '2.5', '--out', join(dir, 'bad')]);
  t.not(fraction.code, 0);
  t.match(fraction.stderr, /--box-epochs/);
});

t.test('graft-box: one checkpoint\'s labels with another\'s box head, which finds the same boxes there; mismatches are refused by name', async (t) => {
  const dir = tempDir(t, 'clothtag-graft-');
  const data = join(dir, 'data');
  synthesize(data, { images: 16, size: 64, seed: 5 });
  const common = ['--data', data, '--img-size', '32', '--batch-size', '4', '--epochs', '1', '--steps-per-epoch', '2', '--workers', '0'];
  const trainRun = (name: string, extra: string[]) => {
    const r = clothtag(['train', ...common, ...extra, '--out', join(dir, name)]);
    t.equal(r.code, 0, r.stderr);
    return join(dir, name, 'weights', 'last.safetensors');
  };
  // The labels from a one-look RepVGG; the box head from a FashionNet trained for two looks.
  const labels = trainRun('labels', ['--net', 'cloth_repvgg', '--width', '0.125', '--box-zoom', '0', '--seed', '1']);
  const boxes = trainRun('boxes', ['--net', 'fashionnet', '--width', '0.0625', '--seed', '2']);
  const out = join(dir, 'grafted.safetensors');
  const graft = clothtag(['graft-box', '--from', boxes, '--into', labels, '--out', out]);
  t.equal(graft.code, 0, graft.stderr);
  t.match(graft.stdout, /grafted\.safetensors: .*labels.* labelling network with .*boxes.*'s garment-box head \(\d+ tensors, trained 1 epochs; two looks by default\)/);
  const [a, b, c] = [labels, boxes, out].map((f) => parseSafetensors(readFileSync(f)));
  const same = (x: Float32Array, y: Float32Array) => x.length === y.length && x.every((v, i) => v === y[i]);
  const names = [...c!.tensors.keys()];
  t.same(names.sort(), [...a!.tensors.keys()].sort(), 'the labelling network\'s tensors, no more, no fewer');
  t.ok(names.every((n) => same(c!.tensors.get(n)!.data, (n.startsWith('box_locator.') ? b! : a!).tensors.get(n)!.data)), 'box_locator.* from --from, everything else from --into, bit for bit');
  t.equal(JSON.parse(c!.metadata.config!).boxRefine, true, 'the looks come with the head');
  t.equal(JSON.parse(c!.metadata.config!).net, 'cloth_repvgg');
  t.equal(c!.metadata.box_from, boxes);
  t.equal(c!.metadata.vocabulary, a!.metadata.vocabulary, 'the labels\' vocabulary and training record stay');
  // The grafted checkpoint finds, photo for photo, the boxes the box head's own network finds.
  const photos = [join(data, 'img', readFileSync(join(data, 'Anno', 'list_bbox.txt'), 'utf8').split('\n')[2]!.split(/\s+/)[0]!.replace(/^img\//, ''))];
  const boxOf = (checkpoint: string) => {
    const r = clothtag(['predict', ...photos, '--checkpoint', checkpoint, '--jsonl', join(dir, 'p.jsonl')]);
    t.equal(r.code, 0, r.stderr);
    return (JSON.parse(readFileSync(join(dir, 'p.jsonl'), 'utf8').trim()) as { box: number[] }).box;
  };
  t.same(boxOf(out), boxOf(boxes), 'the same box as the head\'s own checkpoint gives');
  // Refusals.
  const noBox = trainRun('nobox', ['--net', 'cloth_repvgg', '--width', '0.125', '--wb', '0']);
  const intoNone = clothtag(['graft-box', '--from', boxes, '--into', noBox, '--out', join(dir, 'x.safetensors')]);
  t.equal(intoNone.code, 1);
  t.match(intoNone.stderr, /nobox.* has no garment-box head to replace/);
  const fromNone = clothtag(['graft-box', '--from', noBox, '--into', labels, '--out', join(dir, 'x.safetensors')]);
  t.match(fromNone.stderr, /nobox.* has no garment-box head \(box_locator\.\*\): it was trained without boxes/);
  const bent = new Map(b!.tensors);
  bent.set('box_locator.box.weight', { shape: [4, 7], data: new Float32Array(28) });
  writeFileSync(join(dir, 'bent.safetensors'), serializeSafetensors(bent, b!.metadata));
  const mismatch = clothtag(['graft-box', '--from', join(dir, 'bent.safetensors'), '--into', labels, '--out', join(dir, 'x.safetensors')]);
  t.match(mismatch.stderr, /box_locator\.box\.weight is \[4,7\] in .*bent\.safetensors but \[4,\d+\] in .*: the two heads are not the same network/);
  const over = clothtag(['graft-box', '--from', boxes, '--into', labels, '--out', labels]);
  t.equal(over.code, 2);
  t.match(over.stderr, /--out .* is one of the inputs/);
  t.notOk(existsSync(join(dir, 'x.safetensors')), 'nothing written by a refused graft');
  const missing = clothtag(['graft-box', '--from', boxes, '--out', join(dir, 'x.safetensors')]);
  t.equal(missing.code, 2);
});
