// Issue #12, as a careful and a hostile user: paths that leave a dataset, files that are not files,
// outputs over inputs, NaN weights, dead-end runs, lists that lie, metadata that costs memory,
// raw JavaScript errors, and held-out sets without a training split. Each test names the promise.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { tempDir } from './helpers/tmp.js';
import { openDataset } from '../src/data/dataset.js';
import { synthesize } from '../src/data/synth.js';
import { parseSafetensors, serializeSafetensors } from '../src/nets/safetensors.js';
import { MetricsAccumulator, topK } from '../src/train/metrics.js';
import { CLI, clothtag } from './helpers/cli.js';

const tmp = tempDir(t, 'clothtag-reliability-');
const data = join(tmp, 'synth');
synthesize(data, { images: 40, size: 48, seed: 3 });
const TINY = ['--net', 'cloth_resnet_a', '--width', '0.125', '--img-size', '32', '--batch-size', '4', '--workers', '0'];
// One small trained checkpoint for the tests that label and evaluate.
const trained = clothtag(['train', '--data', data, ...TINY, '--epochs', '1', '--steps-per-epoch', '2', '--val-limit', '8', '--out', join(tmp, 'run')]);
const checkpoint = join(tmp, 'run', 'weights', 'last.safetensors');
const photo = (k = 0) => {
  const dirs = readdirSync(join(data, 'img')).sort();
  const dir = join(data, 'img', dirs[k % dirs.length]!);
  return join(dir, readdirSync(dir).sort()[0]!);
};

/** A copy of the synthesized set whose category list gets `rows` appended (count line fixed). */
function withCategoryRows(name: string, rows: string[]): string {
  const root = join(tmp, name);
  cpSync(data, root, { recursive: true });
  const file = join(root, 'Anno', 'list_category_img.txt');
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  const body = [...lines.slice(2), ...rows];
  writeFileSync(file, `${body.length}\n${lines[1]}\n${body.join('\n')}\n`);
  return root;
}

t.before(() => {
  if (trained.code !== 0) throw new Error(`training the shared checkpoint failed: ${trained.stderr}`);
});

t.test('list paths stay inside the dataset; FIFOs, devices and folders are refused by type, never opened', async (t) => {
  const root = withCategoryRows('escape', ['../../../../../../dev/zero 1', '../../../../../../etc/passwd 1', '/etc/hosts 1', 'img/fifo.jpg 1', 'img/folder.jpg 1']);
  // mkfifo has no Node API; coreutils has it on every machine this runs on.
  t.equal(spawnSync('mkfifo', [join(root, 'img', 'fifo.jpg')]).status, 0, 'mkfifo');
  mkdirSync(join(root, 'img', 'folder.jpg'));
  const check = clothtag(['data', 'check', root], { timeout: 60_000 });
  t.equal(check.code, 1, 'problems found: exit 1');
  t.match(check.stdout, /list_category_img.txt:\d+: \.\.\/\.\.\/\.\.\/\.\.\/\.\.\/\.\.\/dev\/zero leaves the dataset folder/);
  t.match(check.stdout, /list_category_img.txt:\d+: \.\.\/\.\.\/\.\.\/\.\.\/\.\.\/\.\.\/etc\/passwd leaves the dataset folder/);
  t.match(check.stdout, /list_category_img.txt:\d+: \/etc\/hosts is an absolute path/);
  t.match(check.stdout, /img\/fifo.jpg is a FIFO, not a file/);
  t.match(check.stdout, /img\/folder.jpg is a folder, not a file/);
  const ds = await openDataset(root);
  t.notOk(ds.items.some((it) => it.path.includes('..') || it.path.startsWith('/')), 'escaping rows are left out of the dataset');
  // Training skips the FIFO instead of hanging on it.
  const train = clothtag(['train', '--data', root, ...TINY, '--epochs', '1', '--split', 'random:0.9', '--out', join(tmp, 'fifo-run')], { timeout: 240_000 });
  t.equal(train.code, 0, train.stderr);
  t.match(train.stdout, /skipped \(unreadable\): img\/fifo.jpg is a FIFO, not a file/);
  const predict = clothtag(['predict', join(root, 'img', 'fifo.jpg'), '/dev/zero', '--checkpoint', checkpoint], { timeout: 60_000 });
  t.equal(predict.code, 1, 'labelled nothing: exit 1');
  t.match(predict.stdout, /could not label .*fifo.jpg: is a FIFO, not a file/);
  t.match(predict.stdout, /could not label \/dev\/zero: is a device, not a file/);
  const checkpointFifo = clothtag(['predict', photo(), '--checkpoint', join(root, 'img', 'fifo.jpg')], { timeout: 60_000 });
  t.equal(checkpointFifo.code, 1);
  t.match(checkpointFifo.stderr, /fifo.jpg is a FIFO, not a file/);
});

t.test('lists that lie: empty lists, repeated rows and binary rows are file:line problems', async (t) => {
  const root = join(tmp, 'lying');
  cpSync(data, root, { recursive: true });
  writeFileSync(join(root, 'Anno', 'list_attr_cloth.txt'), '');
  writeFileSync(join(root, 'Anno', 'list_bbox.txt'), '0\nimage_name x_1 y_1 x_2 y_2\n');
  const part = join(root, 'Eval', 'list_eval_partition.txt');
  const lines = readFileSync(part, 'utf8').trim().split('\n');
  const moved = lines[2]!.split(/\s+/)[0]!;
  const body = [...lines.slice(2), `${moved} test`];
  writeFileSync(part, `${body.length}\n${lines[1]}\n${body.join('\n')}\n`);
  const cat = join(root, 'Anno', 'list_category_img.txt');
  writeFileSync(cat, readFileSync(cat, 'utf8').replace(/\n$/, '\nimg/\u0001\u001b[31mred\u0007.jpg x\n'));
  const r = clothtag(['data', 'check', root]);
  t.equal(r.code, 1);
  t.match(r.stdout, /list_attr_cloth.txt:1: has no rows/);
  t.match(r.stdout, /list_bbox.txt:1: has no rows/);
  t.match(r.stdout, new RegExp(`list_eval_partition.txt:${body.length + 2}: ${moved.replace(/[.]/g, '\\.')} is listed again \\(first at line 3, as (train|val|test); this row says test\\)`));
  t.notMatch(r.stdout, /[\u0001\u0007\u001b]/, 'control characters are escaped');
  t.match(r.stdout, /img\/\\x01\\x1b\[31mred\\x07\.jpg/);
  t.notMatch(r.stdout, /tasks: .*bbox/, 'an empty box list gives no box task');
  // A count line of 10^12 is a problem of its line, not an allocation.
  const huge = join(tmp, 'huge');
  cpSync(data, huge, { recursive: true });
  const attr = join(huge, 'Anno', 'list_attr_img.txt');
  writeFileSync(attr, readFileSync(attr, 'utf8').replace(/^\d+/, '1000000000000'));
  const h = clothtag(['data', 'check', huge]);
  t.equal(h.code, 1);
  t.match(h.stdout, /list_attr_img.txt:1: says 1000000000000 rows but 40 follow/);
});

t.test('outputs never overwrite inputs; distinct inputs keep distinct outputs; data synth keeps a dataset', async (t) => {
  const dir = join(tmp, 'photos');
  mkdirSync(join(dir, 'a'), { recursive: true });
  mkdirSync(join(dir, 'b'), { recursive: true });
  cpSync(photo(0), join(dir, 'a', 'x.jpg'));
  cpSync(photo(1), join(dir, 'b', 'x.jpg'));
  cpSync(photo(2), join(dir, 'x.png'));
  const before = readFileSync(join(dir, 'x.png'));
  // Decoding x.png (a JPEG under a PNG name) works by content; its overlay must not replace it.
  const r = clothtag(['predict', dir, join(dir, 'a', 'x.jpg'), '--out', dir, '--jsonl', join(tmp, 'labels.jsonl'), '--checkpoint', checkpoint]);
  t.equal(r.code, 0, r.stderr);
  t.same(readFileSync(join(dir, 'x.png')), before, 'the input PNG is untouched');
  const rows = readFileSync(join(tmp, 'labels.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { file: string; overlay: string });
  t.equal(rows.length, 3, 'a file named twice is labelled once');
  t.equal(new Set(rows.map((x) => x.overlay)).size, 3, 'three overlays for three inputs');
  for (const row of rows) t.ok(existsSync(row.overlay) && row.overlay !== join(dir, 'x.png'), `${row.file} -> ${row.overlay}`);
  const clash = clothtag(['predict', join(dir, 'x.png'), '--jsonl', join(dir, 'x.png'), '--checkpoint', checkpoint]);
  t.equal(clash.code, 1);
  t.match(clash.stderr, /--jsonl .*x.png is one of the images to label/);
  const synth = clothtag(['data', 'synth', data, '--images', '8']);
  t.equal(synth.code, 2);
  t.match(synth.stderr, /exists and is not empty.*--force/);
  t.equal(clothtag(['data', 'synth', join(tmp, 'synth-again'), '--images', '8', '--size', '48']).code, 0);
  t.equal(clothtag(['data', 'synth', join(tmp, 'synth-again'), '--images', '8', '--size', '48', '--force']).code, 0);
});

t.test('no silent wrong answers: NaN weights are refused by name, a NaN is never a hit, nothing readable stops training', async (t) => {
  const { tensors, metadata } = parseSafetensors(readFileSync(checkpoint));
  const name = [...tensors.keys()].find((k) => k.endsWith('category.weight'))!;
  tensors.get(name)!.data.fill(NaN);
  // And one trunk tensor, which --pretrained reads (it leaves the heads alone).
  const trunk = [...tensors.keys()].find((k) => k.startsWith('conv1.') || k.startsWith('layer1.'))!;
  tensors.get(trunk)!.data[0] = Infinity;
  const nan = join(tmp, 'nan.safetensors');
  writeFileSync(nan, serializeSafetensors(tensors, metadata));
  const ev = clothtag(['eval', '--checkpoint', nan, '--data', data, '--workers', '0']);
  t.equal(ev.code, 1);
  t.match(ev.stderr, new RegExp(`non-finite weights .* ${name.replace(/\./g, '\\.')} \\(`));
  const pr = clothtag(['predict', photo(), '--checkpoint', nan]);
  t.equal(pr.code, 1);
  t.match(pr.stderr, /non-finite weights/);
  const pre = clothtag(['train', '--data', data, ...TINY, '--epochs', '1', '--pretrained', nan, '--out', join(tmp, 'nan-run')]);
  t.equal(pre.code, 1);
  t.match(pre.stderr, new RegExp(`non-finite weights .*${trunk.replace(/\./g, '\\.')} \\(1 of`));
  t.notOk(existsSync(join(tmp, 'nan-run')), 'no run folder is left behind');

  const m = new MetricsAccumulator({ categories: ['a', 'b', 'c'], attributes: ['x', 'y'], attributeTypes: [1, 1], typeNames: { 1: 't' } });
  m.addCategory([NaN, NaN, NaN], 0);
  m.addCategory([0, NaN, 1], 1);
  m.countImages(2);
  t.same(m.result().category, { top1: 0, top3: 0, top5: 0 }, 'NaN logits never score a hit');
  t.same(topK([NaN, 0.2, 0.1], [0, 1, 2], 2), [1, 2], 'NaN scores rank last');

  // Every image broken: an error, not "loss 0.0000".
  const broken = join(tmp, 'broken');
  cpSync(data, broken, { recursive: true });
  for (const d of readdirSync(join(broken, 'img'))) for (const f of readdirSync(join(broken, 'img', d))) writeFileSync(join(broken, 'img', d, f), 'not a jpeg');
  const tr = clothtag(['train', '--data', broken, ...TINY, '--epochs', '1', '--out', join(tmp, 'broken-run')]);
  t.equal(tr.code, 1);
  t.match(tr.stderr, /none of the 4 images of batch 1 \(epoch 1\) could be read/);
  // ImageFolder: data check opens the images.
  const folder = join(tmp, 'folder-broken');
  mkdirSync(join(folder, 'train', 'tee'), { recursive: true });
  cpSync(photo(), join(folder, 'train', 'tee', 'ok.jpg'));
  writeFileSync(join(folder, 'train', 'tee', 'bad.jpg'), 'garbage');
  const fc = clothtag(['data', 'check', folder]);
  t.equal(fc.code, 1);
  t.match(fc.stdout, /train\/tee\/bad.jpg: not a readable JPEG or PNG/);
});

t.test('runs are never a dead end: killed in epoch 1 they resume; resume refuses changed flags and changed data', async (t) => {
  const out = join(tmp, 'killed');
  // In-process (no stderr filter in between): the SIGKILL hits the training process itself.
  const child = spawn(process.execPath, [CLI, 'train', '--data', data, ...TINY, '--epochs', '2', '--out', out], { stdio: 'ignore', env: { ...process.env, CLOTHTAG_RAW_STDERR: '1' } });
  // SIGKILL as soon as the run exists (config.json is written last, after the first state).
  while (!existsSync(join(out, 'config.json')) && child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  const resumed = clothtag(['train', '--resume', out, '--epochs', '1']);
  t.equal(resumed.code, 0, resumed.stderr);
  t.match(resumed.stdout, /resuming .* at epoch 1, batch 0|has already trained 1 epochs/);
  t.ok(existsSync(join(out, 'weights', 'best.safetensors')));
  const relative = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as { data: string };
  t.equal(relative.data, data, 'config.json stores --data as an absolute path');

  // A run another live process holds (run.lock) is not trained twice at once.
  writeFileSync(join(out, 'run.lock'), `${process.pid}\n`);
  const twice = clothtag(['train', '--resume', out, '--epochs', '2']);
  t.equal(twice.code, 1);
  t.match(twice.stderr, new RegExp(`being trained by another clothtag \\(pid ${process.pid}\\)`));
  rmSync(join(out, 'run.lock'));
  const flags = clothtag(['train', '--resume', out, '--net', 'fashionnet', '--lr', '1']);
  t.equal(flags.code, 2);
  t.match(flags.stderr, /--net, --lr cannot change a run being resumed/);
  // The data's category list reordered: refused, with what differs.
  const moved = join(tmp, 'reordered');
  cpSync(data, moved, { recursive: true });
  const list = join(moved, 'Anno', 'list_category_cloth.txt');
  const rows = readFileSync(list, 'utf8').trim().split('\n');
  writeFileSync(list, [rows[0], rows[1], rows[3], rows[2], ...rows.slice(4)].join('\n') + '\n');
  const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  writeFileSync(join(out, 'config.json'), JSON.stringify({ ...config, data: moved }));
  const changed = clothtag(['train', '--resume', out, '--epochs', '3']);
  t.equal(changed.code, 1);
  t.match(changed.stderr, /has changed since .*: category 1 is "\w+" in the run and "\w+" in the data/);
  writeFileSync(join(out, 'weights', 'vocabulary.json'), '{"categories": [');
  writeFileSync(join(out, 'config.json'), JSON.stringify({ ...config }));
  const badVocab = clothtag(['train', '--resume', out, '--epochs', '3']);
  t.equal(badVocab.code, 1);
  t.match(badVocab.stderr, /vocabulary.json.*JSON/);
  writeFileSync(join(out, 'config.json'), '{"data": 3');
  const badConfig = clothtag(['train', '--resume', out]);
  t.equal(badConfig.code, 1);
  t.match(badConfig.stderr, /config.json is not valid JSON/);
});

t.test('metadata is checked against the tensors before anything is allocated; malformed headers are named', async (t) => {
  const { tensors, metadata } = parseSafetensors(readFileSync(checkpoint));
  const config = JSON.parse(metadata.config!);
  const lying = join(tmp, 'lying.safetensors');
  writeFileSync(lying, serializeSafetensors(tensors, { ...metadata, config: JSON.stringify({ ...config, categories: 1_000_000 }) }));
  const r = clothtag(['predict', photo(), '--checkpoint', lying]);
  t.equal(r.code, 1);
  t.match(r.stderr, /says 1000000 categories but its category head holds \d+/);
  const header = (json: string) => {
    const body = Buffer.from(json);
    const head = Buffer.alloc(8);
    head.writeBigUInt64LE(BigInt(body.length));
    return Buffer.concat([head, body]);
  };
  t.throws(() => parseSafetensors(header('null'), 'n.safetensors'), /n.safetensors: the header is not a JSON object/);
  t.throws(() => parseSafetensors(header('{"a": null}'), 'n.safetensors'), /tensor "a" has a malformed header entry/);
  t.throws(() => parseSafetensors(header('{"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}}'), 'n.safetensors'), /tensor "a" has shape \[-1\].*whole numbers >= 0/);
  t.throws(() => parseSafetensors(header('{"__metadata__": {"x": 1}}'), 'n.safetensors'), /__metadata__ must map names to strings/);
});

t.test('bad flags are named and leave nothing behind', async (t) => {
  const cases: [string[], RegExp][] = [
    [['train', '--data', data, ...TINY, '--img-size', '100000', '--out', join(tmp, 'x1')], /--img-size takes 32 to 1024 pixels/],
    [['train', '--data', data, ...TINY, '--seed', 'nan', '--out', join(tmp, 'x2')], /--seed takes a whole number/],
    [['predict', photo(), '--checkpoint', checkpoint, '--threshold', 'nan'], /--threshold takes a probability/],
  ];
  for (const [args, message] of cases) {
    const r = clothtag(args);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.stderr, message);
  }
  t.notOk(existsSync(join(tmp, 'x1')) || existsSync(join(tmp, 'x2')), 'no run folder for refused flags');
  const folder = clothtag(['train', '--data', data, ...TINY, '--pretrained', tmp, '--out', join(tmp, 'x3')]);
  t.equal(folder.code, 1);
  t.match(folder.stderr, new RegExp(`${tmp} is a folder, not a file`));
  t.notOk(existsSync(join(tmp, 'x3')), 'no run folder when --pretrained is unusable');
  // Boxes: empty or outside the image are refused for that file.
  const img = photo();
  const rel = img.slice(data.length + 1);
  const boxes = join(data, 'Anno', 'boxes-under-test.txt'); // beside the lists: rows name images from the dataset's root
  writeFileSync(boxes, `1\nimage_name x_1 y_1 x_2 y_2\n${rel} 10 10 10 20\n`);
  const empty = clothtag(['predict', img, '--checkpoint', checkpoint, '--bbox', boxes]);
  t.equal(empty.code, 1);
  t.match(empty.stdout, /box 10 10 10 20 .* is empty/);
  writeFileSync(boxes, `1\nimage_name x_1 y_1 x_2 y_2\n${rel} 0 0 5000 20\n`);
  const outside = clothtag(['predict', img, '--checkpoint', checkpoint, '--bbox', boxes]);
  t.equal(outside.code, 1);
  t.match(outside.stdout, /box 0 0 5000 20 .* is outside the 48x48 image/);
});

t.test('held-out sets alone: eval on test/ or val/ class folders, plain class folders, a test-only partition', async (t) => {
  const { metadata } = parseSafetensors(readFileSync(checkpoint));
  const categories = (JSON.parse(metadata.vocabulary!) as { categories: string[] }).categories;
  const folderSet = (name: string, sub: string) => {
    const root = join(tmp, name);
    // Two of the classes only, by name: eval maps them onto the checkpoint's vocabulary.
    for (const [k, c] of categories.slice(0, 2).entries()) {
      mkdirSync(join(root, sub, c), { recursive: true });
      cpSync(photo(k), join(root, sub, c, 'a.jpg'));
    }
    return root;
  };
  for (const [name, sub, split] of [['only-test', 'test', 'test'], ['only-val', 'val', 'val'], ['plain', '', 'test']] as const) {
    const r = clothtag(['eval', '--checkpoint', checkpoint, '--data', folderSet(name, sub), '--split', split, '--workers', '0']);
    t.equal(r.code, 0, `${name}: ${r.stderr}`);
    t.match(r.stdout, /category accuracy/);
  }
  const testOnly = join(tmp, 'test-only');
  cpSync(data, testOnly, { recursive: true });
  const part = join(testOnly, 'Eval', 'list_eval_partition.txt');
  const rows = readFileSync(part, 'utf8').trim().split('\n');
  const tests = rows.slice(2).filter((l) => l.endsWith(' test'));
  writeFileSync(part, `${tests.length}\n${rows[1]}\n${tests.join('\n')}\n`);
  const r = clothtag(['eval', '--checkpoint', checkpoint, '--data', testOnly, '--split', 'test', '--workers', '0']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /category accuracy/);
});

