// Data: list parsers on bad input, the synthesized dataset, landmark geometry, real data layouts.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { tempDir } from './helpers/tmp.js';
import jpeg from 'jpeg-js';
import { loadBatch } from '../src/data/batch.js';
import { checkDataset } from '../src/data/check.js';
import { MIRROR, makeSplits, openDataset } from '../src/data/dataset.js';
import { cropResize, decodeImage, landmarkHeatmaps, toImagePixels, transformLandmarks } from '../src/data/image.js';
import { datasetView } from '../src/data/loader.js';
import { SYNTH_ATTRIBUTES, SYNTH_CATEGORIES, synthesize } from '../src/data/synth.js';

const SHARED = join(import.meta.dirname, '..', '..', 'shared', 'data');
const fine = join(SHARED, 'deepfashion-fine');
const small = join(SHARED, 'clothing-small');
const { existsSync } = await import('node:fs');

t.test('list parsers report every bad line as file:line and keep the good rows', async (t) => {
  const root = tempDir(t, 'clothtag-lists-');
  mkdirSync(join(root, 'Anno'));
  mkdirSync(join(root, 'Eval'));
  writeFileSync(join(root, 'Anno/list_category_cloth.txt'), '2\ncategory_name category_type\nTee 1\nFaux Fur Coat 3\n');
  writeFileSync(join(root, 'Anno/list_category_img.txt'), '4\nimage_name category_label\nimg/a.jpg 1\nimg/b.jpg 2\nimg/c.jpg 7\nimg/d.jpg\n');
  writeFileSync(join(root, 'Anno/list_attr_cloth.txt'), '3\nattribute_name attribute_type\nfloral 1\nfaux leather 2\nabc\n');
  writeFileSync(join(root, 'Anno/list_bbox.txt'), '2\nimage_name x_1 y_1 x_2 y_2\nimg/a.jpg 1 2 30 40\nimg/b.jpg 50 50 10 10\n');
  writeFileSync(join(root, 'Eval/list_eval_partition.txt'), '3\nimage_name evaluation_status\nimg/a.jpg train\nimg/b.jpg val\nimg/c.jpg holiday\n');
  const ds = await openDataset(root);
  const problems = ds.problems.items.map((p) => `${p.where}: ${p.message}`);
  const has = (re: RegExp) => t.ok(problems.some((p) => re.test(p)), `reports ${re}`);
  has(/list_category_img.txt:5: category label 7 is not between 1 and 2/);
  has(/list_category_img.txt:6: expected a category label/);
  has(/list_attr_cloth.txt:5: expected "name type"/);
  has(/list_attr_cloth.txt:1: says 3 rows but 3 follow|list_attr_cloth.txt:5/);
  has(/list_bbox.txt:4: box 50 50 10 10 is empty/);
  has(/list_eval_partition.txt:5: expected "image_name train\|val\|test", got "img\/c.jpg holiday"/);
  t.same(ds.categories, ['Tee', 'Faux Fur Coat'], 'names with spaces keep them: the type is the last token');
  t.same(ds.attributeNames, ['floral', 'faux leather']);
  t.equal(ds.items.find((i) => i.path === 'img/a.jpg')!.category, 0);
  t.same(ds.items.find((i) => i.path === 'img/a.jpg')!.bbox, [1, 2, 30, 40]);
  t.equal(ds.items.find((i) => i.path === 'img/b.jpg')!.bbox, null, 'the empty box is left out');
  t.ok(ds.tasks.category && !ds.tasks.attributes && ds.tasks.bbox && !ds.tasks.landmarks, 'tasks are what the lists support');
  await t.rejects(openDataset(join(root, 'nope')), /no such folder/);
  const empty = tempDir(t, 'clothtag-empty-');
  await t.rejects(openDataset(empty), /neither the DeepFashion layout/);
});

t.test('synthesized dataset: all seven lists, learnable labels that round-trip through the loader', async (t) => {
  const out = tempDir(t, 'clothtag-synth-');
  const s = synthesize(out, { images: 60, size: 64, seed: 3 });
  t.equal(s.images, 60);
  for (const f of ['Anno/list_category_cloth.txt', 'Anno/list_category_img.txt', 'Anno/list_attr_cloth.txt', 'Anno/list_attr_img.txt', 'Anno/list_bbox.txt', 'Anno/list_landmarks.txt', 'Eval/list_eval_partition.txt']) {
    t.ok(existsSync(join(out, f)), f);
  }
  const again = tempDir(t, 'clothtag-synth-');
  synthesize(again, { images: 60, size: 64, seed: 3 });
  const { readFileSync } = await import('node:fs');
  t.equal(readFileSync(join(again, 'Anno/list_landmarks.txt'), 'utf8'), readFileSync(join(out, 'Anno/list_landmarks.txt'), 'utf8'), 'deterministic for a seed');
  const ds = await openDataset(out);
  t.same(ds.problems.items, [], 'no problems');
  t.same(ds.tasks, { category: true, attributes: true, bbox: true, landmarks: true });
  t.same(ds.categories, SYNTH_CATEGORIES.map(([n]) => n));
  t.equal(ds.attributeNames.length, SYNTH_ATTRIBUTES.length);
  t.match(ds.items[0]!.path, /^img\/\w+_\d\d\/img_\d{8}\.jpg$/, 'the full release layout img/<Item>/img_XXXXXXXX.jpg');
  const report = checkDataset(ds);
  t.equal(report.problems.length, 0);
  t.ok(report.usable);
  // Exactly one texture and one dye per image.
  const A = ds.attributeNames.length;
  for (let i = 0; i < ds.items.length; i++) {
    const on = (type: number) => ds.attributeTypes.filter((ty, a) => ty === type && ds.attributes![i * A + a] === 1).length;
    if (on(1) !== 1 || on(2) !== 1) t.fail(`image ${i}: ${on(1)} textures, ${on(2)} dyes`);
  }
  const splits = makeSplits(ds, 'official', 0);
  t.equal(splits.train.length + splits.val.length + splits.test.length, 60);
  const random = makeSplits(ds, 'random:0.7:50', 1);
  t.equal(random.train.length, 35);
  t.equal(random.val.length, 15);
  t.same(makeSplits(ds, 'random:0.7:50', 1), random, 'deterministic for a seed');
  t.throws(() => makeSplits(ds, 'random:1.5', 0), /between 0 and 1/);
  t.throws(() => makeSplits(ds, 'half', 0), /"official" or "random:RATIO\[:COUNT\]"/);

  const batch = loadBatch(datasetView(ds), [0, 1, 2], { size: 32, augment: true, heatmaps: true }, 0);
  t.equal(batch.images.length, 3 * 3 * 32 * 32);
  t.equal(batch.heatmaps!.length, 3 * 8 * 32 * 32);
  t.ok(batch.images.every(Number.isFinite));
  t.same(batch.broken, []);
});

t.test('attribute labels are parsed once, then read from the cache', async (t) => {
  const out = tempDir(t, 'clothtag-cache-data-');
  synthesize(out, { images: 20, size: 32, seed: 5 });
  process.env.CLOTHTAG_CACHE = tempDir(t, 'clothtag-cache-');
  const first = await openDataset(out);
  const { readdirSync } = await import('node:fs');
  t.equal(readdirSync(process.env.CLOTHTAG_CACHE).filter((f) => f.startsWith('attr-')).length, 2, 'labels and names cached');
  const second = await openDataset(out);
  t.same(Array.from(second.attributes!), Array.from(first.attributes!), 'the cached labels are the parsed ones');
  delete process.env.CLOTHTAG_CACHE;
});

t.test('landmark geometry under crop, resize and flip', async (t) => {
  // An image with a bright dot at (70, 30), a box from (50, 10) to (90, 50), resized to 20x20.
  const W = 120, H = 80;
  const data = new Uint8Array(W * H * 4).fill(0);
  for (let i = 3; i < data.length; i += 4) data[i] = 255;
  for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) data.fill(255, ((30 + dy) * W + 70 + dx) * 4, ((30 + dy) * W + 70 + dx) * 4 + 3);
  const img = { width: W, height: H, data };
  const box = { x: 50, y: 10, w: 40, h: 40 };
  const lm = new Float32Array(24).fill(-1);
  lm.set([0, 70, 30], 3 * 2); // left sleeve, visible
  lm.set([1, 88, 12], 3 * 3); // right sleeve, occluded
  lm.set([0, 10, 70], 3 * 6); // left hem, outside the box
  for (const flip of [false, true]) {
    const moved = transformLandmarks(lm, box, 20, flip);
    const slot = flip ? MIRROR[2]! : 2;
    const [x, y] = [moved[3 * slot + 1]!, moved[3 * slot + 2]!];
    t.equal(moved[3 * slot], 0, 'still visible');
    // (70 + 0.5 - 50) * 20 / 40 - 0.5 = 9.75; flipped: 19 - 9.75 = 9.25
    t.ok(Math.abs(x - (flip ? 9.25 : 9.75)) < 1e-5 && Math.abs(y - 9.75) < 1e-5, `${flip ? 'flipped' : 'plain'} point at (${x}, ${y})`);
    t.equal(moved[3 * (flip ? MIRROR[3]! : 3)], 1, 'occluded stays occluded (and swaps sides when flipped)');
    t.equal(moved[3 * (flip ? MIRROR[6]! : 6)], 2, 'a point outside the crop becomes truncated');
    // The picture agrees: the brightest pixel of the resized crop is where the point went.
    const pixels = cropResize(img, box, 20, flip);
    let best = 0;
    for (let i = 1; i < 400; i++) if (pixels[i]! > pixels[best]!) best = i;
    t.ok(Math.abs((best % 20) - x) <= 1 && Math.abs(Math.floor(best / 20) - y) <= 1, `brightest pixel (${best % 20}, ${Math.floor(best / 20)}) near the landmark`);
    const { heatmaps, mask } = landmarkHeatmaps(moved, 20);
    t.equal(mask[slot], 1);
    t.equal(mask[flip ? MIRROR[3]! : 3], 0, 'occluded landmarks are not supervised');
    let peak = 0;
    for (let i = 1; i < 400; i++) if (heatmaps[slot * 400 + i]! > heatmaps[slot * 400 + peak]!) peak = i;
    t.ok(Math.abs((peak % 20) - x) <= 0.5 + 1e-6 && Math.abs(Math.floor(peak / 20) - y) <= 0.5 + 1e-6, 'heatmap peak at the landmark');
  }
  const [bx, by] = toImagePixels(9.75, 9.75, box, 20);
  t.ok(Math.abs(bx - 70) < 1e-6 && Math.abs(by - 30) < 1e-6, 'back to image pixels');
});

t.test('decoding: JPEG, PNG, and clear errors for broken files', async (t) => {
  const rgba = new Uint8Array(8 * 6 * 4).fill(200);
  const j = decodeImage(new Uint8Array(jpeg.encode({ width: 8, height: 6, data: rgba }, 90).data), 'a.jpg');
  t.same([j.width, j.height], [8, 6]);
  t.throws(() => decodeImage(new Uint8Array(0), 'empty.jpg'), /empty.jpg: empty file/);
  t.throws(() => decodeImage(new TextEncoder().encode('hello'), 'notes.jpg'), /notes.jpg: not an image/);
  const truncated = new Uint8Array(jpeg.encode({ width: 64, height: 64, data: new Uint8Array(64 * 64 * 4).fill(90) }, 90).data).slice(0, 200);
  t.throws(() => decodeImage(truncated, 'cut.jpg'), /cut.jpg: broken or unsupported JPEG/);
  t.throws(() => decodeImage(Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]), 'bad.png'), /bad.png: broken or unsupported PNG/);
  const huge = new Uint8Array(33);
  huge.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]);
  new DataView(huge.buffer).setUint32(16, 60000);
  new DataView(huge.buffer).setUint32(20, 60000);
  t.throws(() => decodeImage(huge, 'poster.png'), /poster.png: 60000x60000 pixels is over the 50-megapixel limit/);
  const bigJpeg = new Uint8Array(jpeg.encode({ width: 16, height: 16, data: new Uint8Array(16 * 16 * 4) }, 50).data);
  // Patch the frame header (SOF0) to claim 20000 x 20000 pixels.
  for (let i = 2; i < bigJpeg.length - 8; i++) {
    if (bigJpeg[i] === 0xff && bigJpeg[i + 1] === 0xc0) {
      new DataView(bigJpeg.buffer).setUint16(i + 5, 20000);
      new DataView(bigJpeg.buffer).setUint16(i + 7, 20000);
      break;
    }
  }
  t.throws(() => decodeImage(bigJpeg, 'poster.jpg'), /poster.jpg: broken or unsupported JPEG \(maxResolutionInMP limit exceeded/);
});

t.test('real data: deepfashion-fine (no category lists) and clothing-small (ImageFolder)', { skip: !existsSync(fine) ? `${fine} is absent (real data lives in ../shared/data)` : false }, async (t) => {
  const ds = await openDataset(fine);
  t.same(ds.tasks, { category: false, attributes: true, bbox: true, landmarks: true }, 'a dataset without category files trains only the heads it supports');
  t.equal(ds.attributeNames.length, 26);
  t.same(Object.values(ds.typeNames), ['texture', 'sleeve', 'length', 'neckline', 'fabric', 'fit']);
  const splits = makeSplits(ds, 'official', 0);
  t.equal(splits.train.length, 4000);
  t.equal(splits.val.length, 1000);
  const b = loadBatch(datasetView(ds), splits.train.slice(0, 4), { size: 48, augment: false, heatmaps: true }, 0);
  t.same(b.broken, []);
  t.ok(b.images.every(Number.isFinite));
  const folder = await openDataset(small);
  t.equal(folder.layout, 'imagefolder');
  t.same(folder.categories, ['dress', 'hat', 'longsleeve', 'outwear', 'pants', 'shirt', 'shoes', 'shorts', 'skirt', 't-shirt']);
  const fs = makeSplits(folder, 'official', 0);
  t.ok(fs.train.length > 1000 && fs.val.length > 100, `train ${fs.train.length}, val ${fs.val.length}`);
});
