// Garment boxes (SPEC 8.2.4): the box head learns the garment's box from whole photos, eval reports
// its IoU beside the whole photo's and can score the labels on predicted crops, and predict finds
// the garment before labelling it (or takes a list's boxes, or the whole photo). The box head's own
// epochs and graft-box are in boxes-training.test.ts: together the file took three minutes on two
// idle cores, too close to tap's 600-second limit on a loaded machine.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import t from 'tap';
import { tempDir } from './helpers/tmp.js';
import { ZOOM_GROWTH, ZOOM_SHIFT, drawFrame, drawZoomWindow, viewSeed } from '../src/data/augment.js';
import { boxInFrame, flipCoin, itemPhoto, loadBatch } from '../src/data/batch.js';
import { makeSplits, openDataset } from '../src/data/dataset.js';
import { datasetView } from '../src/data/loader.js';
import { synthesize } from '../src/data/synth.js';
import { cropResize, pixelBox, windowInside, windowToPhoto } from '../src/label/pixels.js';
import { locateGarments, refineGarments, wholeImage } from '../src/label/labels.js';
import { BOX_INPUT, ZOOM_MARGIN } from '../src/nets/locator.js';
import { createNet } from '../src/nets/models.js';
import { loadCheckpoint } from '../src/nets/weights.js';
import { THESIS_LOSS } from '../src/train/losses.js';
import { MetricsAccumulator, corners, iou } from '../src/train/metrics.js';
import { Trainer, predictBoxes } from '../src/train/step.js';
import { clothtag } from './helpers/cli.js';
import { gpuEngine } from './helpers/gpu.js';

const NO_VOCAB = { categories: [], attributes: [], attributeTypes: [], typeNames: {} };

t.test('IoU, corners, boxes in a window of the photo, and pixel boxes, on hand-computed cases', async (t) => {
  t.same(corners([0.5, 0.5, 0.2, 0.4]), [0.4, 0.3, 0.6, 0.7]);
  t.equal(iou([0, 0, 2, 2], [1, 1, 3, 3]), 1 / 7);
  t.equal(iou([0, 0, 1, 1], [0, 0, 1, 1]), 1);
  t.equal(iou([0, 0, 1, 1], [2, 2, 3, 3]), 0, 'disjoint');
  t.equal(iou([0, 0, NaN, 1], [0, 0, 1, 1]), 0, 'a NaN box scores nothing');
  const m = new MetricsAccumulator(NO_VOCAB);
  m.addBox([0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5]);
  m.addBox([0.25, 0.25, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5]);
  t.same(m.result().boxes, { iou: 0.5, iou_whole_image: 0.25, images: 2 }, 'mean IoU, and the whole photo as the baseline');
  const whole = { x: 0, y: 0, w: 200, h: 100 };
  t.same(boxInFrame([20, 10, 120, 60], whole, false), [0.35, 0.35, 0.5, 0.5]);
  t.same(boxInFrame([20, 10, 120, 60], whole, true), [0.65, 0.35, 0.5, 0.5], 'mirrored with the photo');
  const clipped = boxInFrame([0, 0, 200, 100], { x: 50, y: 25, w: 100, h: 50 }, false);
  t.same(clipped, [0.5, 0.5, 1, 1], 'a box larger than the window is clipped to it');
  t.same(drawFrame({ flip: true, minArea: 1, jitter: 0, rotate: 0, color: 0, frame: 1 }, 300, 200, 5, 7), { x: 0, y: 0, w: 300, h: 200 }, 'frame 1: the whole photo');
  const spec = { flip: true, minArea: 1, jitter: 0, rotate: 0, color: 0, frame: 0.8 };
  const a = drawFrame(spec, 300, 200, 5, 7);
  t.same(drawFrame(spec, 300, 200, 5, 7), a, 'the same window from the same (seed, item)');
  t.ok(a.w >= 240 && a.w <= 300 && a.x >= 0 && a.x + a.w <= 300 && a.y + a.h <= 200 + 1e-9 && Math.abs(a.w / 300 - a.h / 200) < 1e-9, `a window inside the photo, one scale both ways: ${JSON.stringify(a)}`);
  t.same(pixelBox([0.5, 0.5, 0.5, 0.5], 200, 100), [50, 25, 150, 75]);
  const tiny = pixelBox([0.999, 0.5, 0.001, 0.001], 200, 100);
  t.ok(tiny[2] - tiny[0] >= 1 && tiny[3] - tiny[1] >= 1 && tiny[2] <= 200 && tiny[0] === 199, `at least a pixel each way, inside the photo: ${tiny}`);
});

t.test('the second look: windows around the box, in training and in labelling, on hand-computed cases', async (t) => {
  t.same(windowInside(50, 50, 40, 20, 200, 100), { x: 30, y: 40, w: 40, h: 20 }, 'centred where it fits');
  t.same(windowInside(10, 95, 40, 20, 200, 100), { x: 0, y: 80, w: 40, h: 20 }, 'moved inside at the edges, not cut');
  t.same(windowInside(100, 50, 300, 20, 200, 100), { x: 0, y: 40, w: 200, h: 20 }, 'a side longer than the photo\'s is cut to it');
  t.same(windowToPhoto([0.5, 0.5, 0.5, 0.5], { x: 10, y: 20, w: 100, h: 50 }, 200, 100), [0.3, 0.45, 0.25, 0.25], 'fractions of the window to fractions of the photo');
  t.same(windowToPhoto([0.3, 0.6, 0.2, 0.4], { x: 0, y: 0, w: 200, h: 100 }, 200, 100), [0.3, 0.6, 0.2, 0.4], 'the whole photo as the window: unchanged');

  const box = { x: 100, y: 80, w: 60, h: 120 };
  t.equal(drawZoomWindow(0, box, 400, 300, 1, 2), null, 'share 0: never');
  const windows = Array.from({ length: 200 }, (_, i) => drawZoomWindow(1, box, 400, 300, 1, i)!);
  t.same(drawZoomWindow(1, box, 400, 300, 1, 7), windows[7], 'the same window from the same (seed, item)');
  t.not(JSON.stringify(windows[7]), JSON.stringify(windows[8]), 'another item, another window');
  const [lo, hi] = ZOOM_GROWTH;
  for (const w of windows) {
    const ok = w.w >= lo * box.w - 1e-9 && w.w <= hi * box.w + 1e-9 && w.h >= lo * box.h - 1e-9 && w.h <= hi * box.h + 1e-9
      && Math.abs(w.x + w.w / 2 - (box.x + box.w / 2)) <= ZOOM_SHIFT * box.w + 1e-9 && Math.abs(w.y + w.h / 2 - (box.y + box.h / 2)) <= ZOOM_SHIFT * box.h + 1e-9;
    if (!ok) t.fail(`window ${JSON.stringify(w)} around ${JSON.stringify(box)}`);
  }
  const half = Array.from({ length: 400 }, (_, i) => drawZoomWindow(0.5, box, 400, 300, 3, i)).filter((w) => w).length;
  t.ok(half > 160 && half < 240, `share 0.5: ${half} of 400 photos zoomed`);

  // loadBatch: with boxZoom 1 in training, every photo with a box is the window, the target box in it.
  const dir = tempDir(t, 'clothtag-zoom-');
  synthesize(join(dir, 'data'), { images: 8, size: 96, seed: 6 });
  const ds = await openDataset(join(dir, 'data'));
  const view = datasetView(ds);
  const indices = Array.from({ length: 8 }, (_, i) => i);
  const spec = { size: 16, augment: true, augmentation: { flip: false, minArea: 1, jitter: 0, rotate: 0, color: 0, frame: 1 }, heatmaps: false, photoSize: BOX_INPUT };
  const plain = loadBatch(view, indices, spec, 4), zoomed = loadBatch(view, indices, { ...spec, boxZoom: 1 }, 4);
  for (const i of indices) {
    const item = ds.items[i]!, img = itemPhoto(view, i)!;
    const [x1, y1, x2, y2] = item.bbox!;
    const w = drawZoomWindow(1, { x: x1, y: y1, w: x2 - x1, h: y2 - y1 }, img.width, img.height, 4, i)!;
    t.same(Array.from(zoomed.boxes!.subarray(4 * i, 4 * i + 4)), Array.from(new Float32Array(boxInFrame(item.bbox!, w, false))), `item ${i}: the box in its window`);
    t.same(zoomed.photos!.subarray(i * 3 * BOX_INPUT * BOX_INPUT, (i + 1) * 3 * BOX_INPUT * BOX_INPUT), cropResize(img, w, BOX_INPUT, false), `item ${i}: the window's pixels`);
    t.same(Array.from(plain.boxes!.subarray(4 * i, 4 * i + 4)), Array.from(new Float32Array(boxInFrame(item.bbox!, wholeImage(img), false))), `item ${i}: without boxZoom, the whole photo`);
  }
  const evalBatch = loadBatch(view, indices, { ...spec, augment: false, boxZoom: 1 }, 4);
  t.same(evalBatch.boxes, plain.boxes, 'evaluation batches are never zoomed: the first look is at the whole photo');

  // boxFrame: the head's window of the photo, chosen apart from the crops' augmentation (here none).
  const framed = loadBatch(view, indices, { ...spec, boxFrame: 0.8 }, 4);
  t.same(framed.images, plain.images, 'boxFrame leaves the crops as they were');
  let smaller = 0;
  for (const i of indices) {
    const item = ds.items[i]!, img = itemPhoto(view, i)!;
    const w = drawFrame({ ...spec.augmentation, frame: 0.8 }, img.width, img.height, 4, i);
    t.ok(w.w >= 0.8 * img.width - 1e-9 && w.w <= img.width && w.x >= 0 && w.x + w.w <= img.width + 1e-9, `item ${i}: a window of 80-100% of the photo (${w.w.toFixed(1)} of ${img.width})`);
    t.same(Array.from(framed.boxes!.subarray(4 * i, 4 * i + 4)), Array.from(new Float32Array(boxInFrame(item.bbox!, w, false))), `item ${i}: the box in that window`);
    if (w.w < img.width - 1) smaller++;
  }
  t.ok(smaller >= 6, `the windows are drawn, not whole photos (${smaller} of 8 smaller)`);
  t.same(loadBatch(view, indices, { ...spec, augment: false, boxFrame: 0.8 }, 4).boxes, plain.boxes, 'evaluation batches ignore boxFrame: the whole photo');

  // boxViews: each item's photo V times in a row; view 0 is the one-view batch's, the others are
  // drawn from their own seed (flip, window, colours), and evaluation batches keep one view.
  const frames = { flip: true, minArea: 1, jitter: 0, rotate: 0, color: 0, frame: 0.8 };
  const viewSpec = { ...spec, augmentation: frames, boxZoom: 0.5 };
  const one = loadBatch(view, indices, viewSpec, 4), three = loadBatch(view, indices, { ...viewSpec, boxViews: 3 }, 4);
  const P3 = 3 * BOX_INPUT * BOX_INPUT;
  t.equal(three.photos!.length, 8 * 3 * P3, '[n * 3, 3, P, P] photos');
  t.equal(three.boxMask!.length, 24);
  t.same(three.images, one.images, 'the crops are the one-view batch\'s');
  let moved = 0;
  for (const i of indices) {
    const item = ds.items[i]!, img = itemPhoto(view, i)!;
    const [x1, y1, x2, y2] = item.bbox!;
    t.same(three.photos!.subarray(3 * i * P3, (3 * i + 1) * P3), one.photos!.subarray(i * P3, (i + 1) * P3), `item ${i}: view 0 is the one-view batch's photo`);
    t.same(Array.from(three.boxes!.subarray(12 * i, 12 * i + 4)), Array.from(one.boxes!.subarray(4 * i, 4 * i + 4)), `item ${i}: and its box`);
    for (const v of [1, 2]) {
      const s = viewSeed(4, v), flip = flipCoin(s, i);
      const w = drawZoomWindow(0.5, { x: x1, y: y1, w: x2 - x1, h: y2 - y1 }, img.width, img.height, s, i) ?? drawFrame(frames, img.width, img.height, s, i);
      const row = 3 * i + v;
      t.same(Array.from(three.boxes!.subarray(4 * row, 4 * row + 4)), Array.from(new Float32Array(boxInFrame(item.bbox!, w, flip))), `item ${i}, view ${v}: the box in its own window, flipped with it`);
      t.same(three.photos!.subarray(row * P3, (row + 1) * P3), cropResize(img, w, BOX_INPUT, flip), `item ${i}, view ${v}: that window's pixels`);
      t.equal(three.boxMask![row], 1);
      if (three.boxes!.subarray(4 * row, 4 * row + 4).some((x, k) => x !== three.boxes![12 * i + k])) moved++;
    }
  }
  t.ok(moved >= 12, `the extra views are other draws than view 0 (${moved} of 16 differ)`);
  t.same(loadBatch(view, indices, { ...viewSpec, boxViews: 3 }, 4).boxes, three.boxes, 'the same views from the same seed');
  t.equal(loadBatch(view, indices, { ...viewSpec, augment: false, boxViews: 3 }, 4).boxMask!.length, 8, 'evaluation batches: one view');
  t.throws(() => loadBatch(view, indices, { ...viewSpec, boxViews: 0 }, 4), /boxViews must be a whole number of views, 1 or more; got 0/);

  // Labelling: a head with boxRefine re-reads the window ZOOM_MARGIN times its first box.
  const e = await gpuEngine(t);
  const net = createNet(e, { net: 'cloth_resnet_a', categories: 0, attributes: 2, width: 0.125, seed: 3, box: true, boxRefine: true });
  // Non-zero box weights, so that the answer depends on what the head sees.
  const W = net.stateEntries().find((s) => s.name === 'box_locator.box.weight')!.parts[0]!;
  e.write(W, Float32Array.from({ length: W.size }, (_, k) => 0.05 * Math.sin(k)));
  const images = indices.map((i) => itemPhoto(view, i)!);
  const wholes = new Float32Array(images.length * 3 * BOX_INPUT * BOX_INPUT);
  images.forEach((img, i) => wholes.set(cropResize(img, wholeImage(img), BOX_INPUT, false), i * 3 * BOX_INPUT * BOX_INPUT));
  const looked = await predictBoxes(net, wholes, images.length);
  const first = images.map((img, i) => {
    const [x1, y1, x2, y2] = pixelBox(looked.subarray(4 * i, 4 * i + 4), img.width, img.height);
    return { x: x1, y: y1, w: x2 - x1, h: y2 - y1 };
  });
  const twice = await locateGarments(net, images);
  const byHand = await refineGarments(net, images, first);
  t.same(twice, byHand, 'locateGarments: the first look at the whole photo, then the second');
  t.notSame(twice, first, 'the second look moves the box');
  const img = images[0]!, b = first[0]!;
  const win = windowInside(b.x + b.w / 2, b.y + b.h / 2, b.w * ZOOM_MARGIN, b.h * ZOOM_MARGIN, img.width, img.height);
  const [cx, cy, bw, bh] = await predictBoxes(net, cropResize(img, win, BOX_INPUT, false), 1);
  // The window's fractions, by hand: x1 = window.x + (cx - w/2) window.w, and so on.
  const [X1, Y1, X2, Y2] = [win.x + (cx! - bw! / 2) * win.w, win.y + (cy! - bh! / 2) * win.h, win.x + (cx! + bw! / 2) * win.w, win.y + (cy! + bh! / 2) * win.h];
  const r = byHand[0]!;
  t.ok(Math.abs(r.x - Math.max(0, X1)) < 1e-3 && Math.abs(r.x + r.w - Math.min(img.width, X2)) < 1e-3 && Math.abs(r.y - Math.max(0, Y1)) < 1e-3 && Math.abs(r.y + r.h - Math.min(img.height, Y2)) < 1e-3, `the second look read from the window ${JSON.stringify(win)}`);
  // A mirrored photo still gets the mirrored box after two looks.
  const mirrored = { ...img, data: new Uint8Array(img.data.length) };
  for (let y = 0; y < img.height; y++) for (let x = 0; x < img.width; x++) mirrored.data.set(img.data.subarray(4 * (y * img.width + x), 4 * (y * img.width + x) + 4), 4 * (y * img.width + img.width - 1 - x));
  const [m] = await locateGarments(net, [mirrored]);
  const a = twice[0]!;
  t.ok(Math.abs(m!.x - (img.width - a.x - a.w)) < 0.05 && Math.abs(m!.w - a.w) < 0.05 && Math.abs(m!.y - a.y) < 0.05, `mirrored: ${JSON.stringify(m)} against ${JSON.stringify(a)}`);
  net.dispose();
});

t.test('the box head learns boxes from whole photos: a batch is fitted far beyond the whole-photo baseline', async (t) => {
  const e = await gpuEngine(t);
  const dir = tempDir(t, 'clothtag-boxfit-');
  synthesize(join(dir, 'data'), { images: 16, size: 96, seed: 4 });
  const ds = await openDataset(join(dir, 'data'));
  const n = 16;
  const batch = loadBatch(datasetView(ds), Array.from({ length: n }, (_, i) => i), { size: 32, augment: false, heatmaps: false, photoSize: BOX_INPUT }, 0);
  const net = createNet(e, { net: 'cloth_resnet_a', categories: ds.categories.length, attributes: 0, width: 0.125, seed: 3, box: true });
  const trainer = new Trainer(net, { ...THESIS_LOSS, wb: 1 }, 3e-3);
  const meanIoU = async () => {
    const boxes = await predictBoxes(net, batch.photos!, n);
    const m = new MetricsAccumulator(NO_VOCAB);
    for (let i = 0; i < n; i++) m.addBox(boxes.subarray(4 * i, 4 * i + 4), batch.boxes!.subarray(4 * i, 4 * i + 4));
    return m.result().boxes!;
  };
  const before = await meanIoU();
  for (let k = 0; k < 60; k++) {
    const terms = trainer.step({ n, ...batch }, k);
    t.ok(terms.box, 'a box term in every step');
    for (const x of new Set(Object.values(terms))) x?.dispose();
  }
  const after = await meanIoU();
  t.ok(after.iou > 0.7 && after.iou > after.iou_whole_image + 0.2, `IoU on the batch ${before.iou.toFixed(3)} -> ${after.iou.toFixed(3)} in 60 steps (whole photo ${after.iou_whole_image.toFixed(3)})`);

  // A mirrored photo gets the mirrored box (predictBoxes reads each photo with its mirror image).
  const P = BOX_INPUT, mirrored = new Float32Array(batch.photos!.length);
  for (let row = 0; row < 3 * n * P; row++) for (let x = 0; x < P; x++) mirrored[row * P + x] = batch.photos![row * P + P - 1 - x]!;
  const [plain, flipped] = [await predictBoxes(net, batch.photos!, n), await predictBoxes(net, mirrored, n)];
  let worst = 0;
  for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(plain[4 * i]! - (1 - flipped[4 * i]!)), ...[1, 2, 3].map((k) => Math.abs(plain[4 * i + k]! - flipped[4 * i + k]!)));
  t.ok(worst < 1e-5, `a mirrored photo's box is the mirrored box (largest difference ${worst.toExponential(1)})`);
  trainer.dispose();
  net.dispose();
});

t.test('eval reports the box IoU and scores labels on predicted crops; predict finds the garment first', async (t) => {
  const dir = tempDir(t, 'clothtag-boxes-');
  const data = join(dir, 'data');
  synthesize(data, { images: 60, size: 96, seed: 2 });
  const run = join(dir, 'run');
  const train = clothtag(['train', '--data', data, '--net', 'cloth_resnet_a', '--width', '0.125', '--img-size', '32', '--batch-size', '16', '--epochs', '2', '--workers', '0', '--augment', 'light', '--out', run]);
  t.equal(train.code, 0, train.stderr);
  t.match(train.stdout, /box IoU \d\.\d+ \(whole photo \d\.\d+\)/, 'every epoch reports the box IoU beside the whole photo\'s');
  t.match(readFileSync(join(run, 'metrics.csv'), 'utf8').split('\n')[0]!, /,train_box,val_box_iou,box_lr$/);
  const checkpoint = join(run, 'weights', 'best.safetensors');
  const ev = clothtag(['eval', '--checkpoint', checkpoint, '--data', data, '--split', 'val', '--workers', '0', '--json', join(dir, 'eval.json')]);
  t.equal(ev.code, 0, ev.stderr);
  t.match(ev.stdout, /garment box mean IoU: \d\.\d+ {3}\(the whole photo as the box: \d\.\d+; \d+ photos\)/);
  const r = JSON.parse(readFileSync(join(dir, 'eval.json'), 'utf8')) as { boxes: { iou: number; iou_whole_image: number }; attributes: unknown };
  t.ok(r.boxes.iou > 0 && r.boxes.iou_whole_image > 0, `eval --json: "boxes": {"iou": ${r.boxes.iou.toFixed(3)}, "iou_whole_image": ${r.boxes.iou_whole_image.toFixed(3)}}`);
  // The figure is the second look's (training's default --box-zoom 0.5 gave the head boxRefine), as predict takes it.
  const e = await gpuEngine(t);
  const { net } = await loadCheckpoint(e, readFileSync(checkpoint), checkpoint);
  t.equal(net.config.boxRefine, true, 'trained with --box-zoom 0.5 (the default): a head that takes the second look');
  const ds = await openDataset(data);
  const val = makeSplits(ds, 'official', 0).val, view = datasetView(ds);
  const photos = val.map((i) => itemPhoto(view, i)!);
  const looked = await locateGarments(net, photos);
  const m = new MetricsAccumulator(NO_VOCAB);
  val.forEach((index, k) => {
    const { width: W, height: H } = photos[k]!, b = looked[k]!;
    m.addBox([(b.x + b.w / 2) / W, (b.y + b.h / 2) / H, b.w / W, b.h / H], boxInFrame(ds.items[index]!.bbox!, wholeImage(photos[k]!), false));
  });
  t.ok(Math.abs(m.result().boxes!.iou - r.boxes.iou) < 1e-4, `eval's IoU ${r.boxes.iou.toFixed(4)} is locateGarments' (${m.result().boxes!.iou.toFixed(4)})`);
  // --box-looks 1: the first look alone, the whole photos read once.
  const wholes = new Float32Array(photos.length * 3 * BOX_INPUT * BOX_INPUT);
  photos.forEach((img, k) => wholes.set(cropResize(img, wholeImage(img), BOX_INPUT, false), k * 3 * BOX_INPUT * BOX_INPUT));
  const firstLook = await predictBoxes(net, wholes, photos.length);
  const m1 = new MetricsAccumulator(NO_VOCAB);
  val.forEach((index, k) => m1.addBox(firstLook.subarray(4 * k, 4 * k + 4), boxInFrame(ds.items[index]!.bbox!, wholeImage(photos[k]!), false)));
  const once = clothtag(['eval', '--checkpoint', checkpoint, '--data', data, '--split', 'val', '--workers', '0', '--box-looks', '1', '--json', join(dir, 'eval-once.json')]);
  t.equal(once.code, 0, once.stderr);
  const onceIoU = (JSON.parse(readFileSync(join(dir, 'eval-once.json'), 'utf8')) as { boxes: { iou: number } }).boxes.iou;
  t.ok(Math.abs(onceIoU - m1.result().boxes!.iou) < 1e-4 && onceIoU !== r.boxes.iou, `--box-looks 1: ${onceIoU.toFixed(4)}, the first look's (${m1.result().boxes!.iou.toFixed(4)}), against two looks' ${r.boxes.iou.toFixed(4)}`);
  // --box-looks 3: one more look at the window around the second look's box, as locateGarments takes it.
  const thrice = await locateGarments(net, photos, 3);
  const m3 = new MetricsAccumulator(NO_VOCAB);
  val.forEach((index, k) => {
    const { width: W, height: H } = photos[k]!, b = thrice[k]!;
    m3.addBox([(b.x + b.w / 2) / W, (b.y + b.h / 2) / H, b.w / W, b.h / H], boxInFrame(ds.items[index]!.bbox!, wholeImage(photos[k]!), false));
  });
  t.notSame(thrice, looked, 'a third look moves the boxes');
  const three = clothtag(['eval', '--checkpoint', checkpoint, '--data', data, '--split', 'val', '--workers', '0', '--box-looks', '3', '--json', join(dir, 'eval-three.json')]);
  t.equal(three.code, 0, three.stderr);
  const threeIoU = (JSON.parse(readFileSync(join(dir, 'eval-three.json'), 'utf8')) as { boxes: { iou: number } }).boxes.iou;
  t.ok(Math.abs(threeIoU - m3.result().boxes!.iou) < 1e-4, `--box-looks 3: ${threeIoU.toFixed(4)}, locateGarments' three looks (${m3.result().boxes!.iou.toFixed(4)})`);
  const tooMany = clothtag(['eval', '--checkpoint', checkpoint, '--data', data, '--split', 'val', '--workers', '0', '--box-looks', '5']);
  t.not(tooMany.code, 0);
  t.match(tooMany.stderr, /--box-looks is a whole number of looks from 1 to 4, got "5"/);
  const predicted = clothtag(['eval', '--checkpoint', checkpoint, '--data', data, '--split', 'val', '--workers', '0', '--boxes', 'predicted', '--json', join(dir, 'eval-predicted.json')]);
  t.equal(predicted.code, 0, predicted.stderr);
  t.match(predicted.stdout, /labels on the boxes the network found[\s\S]*the same labels on the list's true boxes/);
  const p = JSON.parse(readFileSync(join(dir, 'eval-predicted.json'), 'utf8')) as { boxes: { iou: number }; attributes: unknown; true_boxes: { attributes: unknown } };
  t.equal(p.boxes.iou, r.boxes.iou, 'the same box IoU');
  t.same(p.true_boxes.attributes, (r as { attributes: unknown }).attributes, 'the true-box figures, as plain eval gives them');
  t.ok(p.attributes, 'and the attribute recall on the predicted crops');

  // predict: the box head finds the garment (no list given); --bbox whole turns it off; a list's box wins.
  const image = join(data, (readFileSync(join(data, 'Anno', 'list_bbox.txt'), 'utf8').split('\n')[2] ?? '').split(/\s+/)[0]!);
  const found = clothtag(['predict', image, '--checkpoint', checkpoint, '--out', join(dir, 'overlays')]);
  t.equal(found.code, 0, found.stderr);
  const row = JSON.parse(found.stdout.split('\n')[0]!) as { box: number[]; box_source: string; overlay: string };
  t.equal(row.box_source, 'predicted');
  t.ok(row.box.length === 4 && row.box[0]! >= 0 && row.box[2]! <= 96 && row.box[0]! < row.box[2]! && row.box[1]! < row.box[3]!, `a box inside the 96x96 photo: ${row.box}`);
  const overlay = PNG.sync.read(readFileSync(row.overlay));
  const [x1, y1] = row.box.map((v) => Math.round(v * (overlay.width / 96))) as [number, number];
  const at = (overlay.width * y1 + x1) * 4;
  t.same([...overlay.data.subarray(at, at + 3)], [40, 200, 60], 'the overlay draws the found box in green');
  const img0 = itemPhoto(view, ds.items.findIndex((it) => join(data, it.path) === image))!;
  const [three0] = await locateGarments(net, [img0], 3);
  const predicted3 = clothtag(['predict', image, '--checkpoint', checkpoint, '--box-looks', '3']);
  t.equal(predicted3.code, 0, predicted3.stderr);
  const box3 = (JSON.parse(predicted3.stdout.split('\n')[0]!) as { box: number[] }).box;
  t.same(box3, [three0!.x, three0!.y, three0!.x + three0!.w, three0!.y + three0!.h].map((v) => Math.round(v * 10) / 10), `predict --box-looks 3: the box of three looks (${box3})`);
  net.dispose();
  const whole = clothtag(['predict', image, '--checkpoint', checkpoint, '--bbox', 'whole']);
  t.same(JSON.parse(whole.stdout.split('\n')[0]!).box, [0, 0, 96, 96], '--bbox whole: the whole photo');
  const listed = clothtag(['predict', image, '--checkpoint', checkpoint, '--bbox', join(data, 'Anno', 'list_bbox.txt')]);
  t.equal((JSON.parse(listed.stdout.split('\n')[0]!) as { box_source: string }).box_source, 'list');
  const noZoom = clothtag(['train', '--data', data, '--net', 'cloth_resnet_a', '--width', '0.125', '--img-size', '32', '--batch-size', '16', '--epochs', '1', '--steps-per-epoch', '1', '--workers', '0', '--box-zoom', '0', '--box-views', '2', '--box-frame', '0.9', '--out', join(dir, 'nozoom')]);
  t.equal(noZoom.code, 0, noZoom.stderr);
  const oneLook = await loadCheckpoint(e, readFileSync(join(dir, 'nozoom', 'weights', 'last.safetensors')), 'nozoom');
  t.equal(oneLook.net.config.boxRefine, undefined, '--box-zoom 0: a head that looks once');
  const noZoomConfig = JSON.parse(readFileSync(join(dir, 'nozoom', 'config.json'), 'utf8'));
  t.equal(noZoomConfig.boxZoom, 0);
  t.equal(noZoomConfig.boxFrame, 0.9, '--box-frame 0.9 recorded, so --resume draws the same windows');
  t.equal(noZoomConfig.boxViews, 2, '--box-views 2 recorded (the step trained the head on two views of each photo)');
  const twoLooks = clothtag(['eval', '--checkpoint', join(dir, 'nozoom', 'weights', 'last.safetensors'), '--data', data, '--split', 'val', '--workers', '0', '--box-looks', '2']);
  t.not(twoLooks.code, 0);
  t.match(twoLooks.stderr, /--box-looks 2: .* box head was trained for one look/);
  const predictTwo = clothtag(['predict', image, '--checkpoint', join(dir, 'nozoom', 'weights', 'last.safetensors'), '--box-looks', '2']);
  t.not(predictTwo.code, 0);
  t.match(predictTwo.stderr, /2 looks: this box head was trained for one look/);
  oneLook.net.dispose();
  const badZoom = clothtag(['train', '--data', data, '--net', 'cloth_resnet_a', '--box-zoom', '1.5', '--out', join(dir, 'bad')]);
  t.not(badZoom.code, 0);
  t.match(badZoom.stderr, /--box-zoom is a share in \[0, 1\]/);
  const badFrame = clothtag(['train', '--data', data, '--net', 'cloth_resnet_a', '--box-frame', '0', '--out', join(dir, 'bad')]);
  t.not(badFrame.code, 0);
  t.match(badFrame.stderr, /--box-frame is the smallest side of the box head's window, a share in \(0, 1\] \(1: whole photos\), got "0"/);
  const badViews = clothtag(['train', '--data', data, '--net', 'cloth_resnet_a', '--box-views', '1.5', '--out', join(dir, 'bad')]);
  t.not(badViews.code, 0);
  t.match(badViews.stderr, /--box-views is a whole number of views from 1 to 8, got "1.5"/);
  // --wb 0 (or data without boxes): no box head, and --boxes predicted says why it cannot.
  const off = clothtag(['train', '--data', data, '--net', 'cloth_resnet_a', '--width', '0.125', '--img-size', '32', '--batch-size', '16', '--epochs', '1', '--steps-per-epoch', '1', '--workers', '0', '--wb', '0', '--out', join(dir, 'off')]);
  t.equal(off.code, 0, off.stderr);
  t.notMatch(off.stdout, /box IoU/);
  const noBox = clothtag(['eval', '--checkpoint', join(dir, 'off', 'weights', 'last.safetensors'), '--data', data, '--boxes', 'predicted', '--workers', '0']);
  t.not(noBox.code, 0);
  t.match(noBox.stderr, /--boxes predicted needs a network with a garment-box head/);
  // A landmark network: on predicted crops the landmark error and its mean-position baseline are
  // both scored in the crops the box head chose.
  const lm = clothtag(['train', '--data', data, '--net', 'new_fashionnet', '--width', '0.125', '--img-size', '32', '--batch-size', '16', '--epochs', '1', '--steps-per-epoch', '2', '--workers', '0', '--landmark-loss', 'softargmax', '--out', join(dir, 'lm')]);
  t.equal(lm.code, 0, lm.stderr);
  const lmEval = clothtag(['eval', '--checkpoint', join(dir, 'lm', 'weights', 'last.safetensors'), '--data', data, '--split', 'val', '--workers', '0', '--boxes', 'predicted', '--json', join(dir, 'lm.json')]);
  t.equal(lmEval.code, 0, lmEval.stderr);
  const lr = JSON.parse(readFileSync(join(dir, 'lm.json'), 'utf8')) as { landmarks: { nme: number; mean_position_nme: number }; true_boxes: { landmarks: { nme: number; mean_position_nme: number } } };
  t.ok([lr.landmarks.nme, lr.landmarks.mean_position_nme, lr.true_boxes.landmarks.nme, lr.true_boxes.landmarks.mean_position_nme].every(Number.isFinite), `NME on found crops ${lr.landmarks.nme.toFixed(3)} (baseline ${lr.landmarks.mean_position_nme.toFixed(3)}), on true boxes ${lr.true_boxes.landmarks.nme.toFixed(3)} (baseline ${lr.true_boxes.landmarks.mean_position_nme.toFixed(3)})`);
  t.not(lr.landmarks.mean_position_nme, lr.true_boxes.landmarks.mean_position_nme, 'each baseline in its own crops');
  const exported = clothtag(['export', '--checkpoint', checkpoint, '--onnx', join(dir, 'box.onnx'), '--part', 'box']);
  t.equal(exported.code, 0, exported.stderr);
  t.match(exported.stdout, /garment-box head, input photo Nx3x64x64 .* output box \[N, 4\][\s\S]*clothtag looks twice/);
  t.ok(existsSync(join(dir, 'box.onnx')), 'export --part box writes the box head as ONNX');
  const labels = clothtag(['export', '--checkpoint', checkpoint, '--onnx', join(dir, 'labels.onnx')]);
  t.match(labels.stdout, /export it on its own with --part box/, 'the label graph says where the box head went');
  const refused = clothtag(['export', '--checkpoint', join(dir, 'off', 'weights', 'last.safetensors'), '--onnx', join(dir, 'none.onnx'), '--part', 'box']);
  t.not(refused.code, 0);
  t.match(refused.stderr, /has no garment-box head/);
});
