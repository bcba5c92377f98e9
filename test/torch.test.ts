// PyTorch checkpoints in: fixtures written by Debian's python3-torch (scripts/make-torch-fixtures.py)
// read back value for value - every dtype widened to float32, strided and offset tensors, the
// legacy format, a wrapped training checkpoint - a pickle that would run a command refused, and a
// trunk loaded with --pretrained FILE.pth. torchvision's ResNet-50 and VGG-16 name lists check
// that their real state dicts load by their own names. bench net's PyTorch replicas (bench/torch_cpu.py)
// are the same networks.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { tempDir } from './helpers/tmp.js';
import { torchCpuStep } from '../bench/net.js';
import { PickleError, unpickle } from '../src/interop/pickle.js';
import { readTorchCheckpoint } from '../src/interop/torch.js';
import { NET_NAMES, createNet } from '../src/nets/models.js';
import { parseSafetensors } from '../src/nets/safetensors.js';
import { isTrunkName } from '../src/nets/weights.js';
import { clothtag } from './helpers/cli.js';
import { gpuEngine } from './helpers/gpu.js';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'torch');
const fixture = (name: string) => new Uint8Array(readFileSync(join(FIXTURES, name)));
/** The fixtures' values: (i % 17 - 8) * scale (scripts/make-torch-fixtures.py). */
const ramp = (n: number, scale: number) => Array.from({ length: n }, (_, i) => ((i % 17) - 8) * scale);

function checkDtypes(t: Test, tensors: ReturnType<typeof readTorchCheckpoint>): void {
  const get = (k: string) => {
    const v = tensors.get(k);
    if (!v) throw new Error(`${k} missing`);
    return { shape: v.shape, data: Array.from(v.data) };
  };
  t.same(get('f32'), { shape: [2, 3], data: ramp(6, 0.25) });
  t.same(get('f16'), { shape: [5], data: ramp(5, 0.125) }, 'float16 widened');
  t.same(get('bf16'), { shape: [5], data: ramp(5, 0.5) }, 'bfloat16 widened');
  t.same(get('f64').data.map((v) => Math.fround(v)), ramp(4, 0.1).map((v) => Math.fround(v)), 'float64 narrowed');
  t.same(get('i64').data, [0, 1000, 2000]);
  t.same(get('u8').data, [0, 60, 120, 180]);
  // base = ramp(12) as [3, 4]; its transpose [4, 3] reads column by column.
  const base = ramp(12, 0.25);
  t.same(get('transposed'), { shape: [4, 3], data: [0, 1, 2, 3].flatMap((c) => [0, 1, 2].map((r) => base[r * 4 + c]!)) }, 'a non-contiguous tensor through its strides');
  t.same(get('sliced'), { shape: [4], data: ramp(10, 0.5).slice(3, 7) }, 'a storage offset');
  t.same(get('shared'), { shape: [2, 5], data: ramp(10, 0.5) }, 'two tensors on one storage');
  t.same(get('scalar'), { shape: [], data: [2.5] });
  t.same(get('param').data, ramp(3, 1), 'an nn.Parameter');
}

t.test('torch.save files read value for value: dtypes, strides, offsets, shared storage, the legacy format', async (t) => {
  checkDtypes(t, readTorchCheckpoint(fixture('dtypes.pth'), 'dtypes.pth'));
  checkDtypes(t, readTorchCheckpoint(fixture('dtypes-legacy.pth'), 'dtypes-legacy.pth'));
  const wrapped = readTorchCheckpoint(fixture('checkpoint.pth'), 'checkpoint.pth');
  t.ok(wrapped.has('f32') && !wrapped.has('module.f32'), "a checkpoint's state_dict is found and DataParallel's module. prefix dropped");
});

t.test('a pickle that would run code is refused by name, and nothing runs', async (t) => {
  const marker = '/tmp/clothtag-pickle-ran';
  rmSync(marker, { force: true });
  t.throws(() => readTorchCheckpoint(fixture('malicious.pth'), 'malicious.pth'), /malicious.pth \(.*data.pkl\): refusing to load the global posix.system/);
  t.notOk(existsSync(marker), 'the command did not run');
  // Hand-made pickles: a GLOBAL the reader does not know, and an opcode that builds arbitrary objects.
  const globalPickle = new Uint8Array([0x80, 0x02, 0x63, ...new TextEncoder().encode('builtins\neval\n'), 0x2e]);
  t.throws(() => unpickle(globalPickle, { globals: {} }, 'g.pkl'), PickleError);
  t.throws(() => unpickle(new Uint8Array([0x80, 0x02, 0x69]), { globals: {} }, 'inst.pkl'), /opcode 0x69 is not read/);
  t.throws(() => unpickle(new Uint8Array([0x80, 0x02, 0x58, 0xff, 0xff, 0xff, 0x7f]), { globals: {} }, 'short.pkl'), /short.pkl: the pickle ends early/);
  const r = clothtag(['convert', join(FIXTURES, 'malicious.pth'), join(tmpdir(), 'never.safetensors')]);
  t.equal(r.code, 1);
  t.match(r.stderr, /refusing to load the global posix.system/);
});

t.test('clothtag convert and --pretrained FILE.pth: a trunk saved by torch (float16, torchvision names) loads', async (t) => {
  const dir = tempDir(t, 'clothtag-torch-');
  const out = join(dir, 'trunk.safetensors');
  const r = clothtag(['convert', join(FIXTURES, 'resnet-trunk-w16.pth'), out]);
  t.equal(r.code, 0, r.stderr);
  const { tensors } = parseSafetensors(readFileSync(out));
  const names = JSON.parse(readFileSync(join(FIXTURES, 'resnet-trunk-w16.json'), 'utf8')) as [string, number[]][];
  for (const [name, shape] of names.slice(0, 3)) t.same(tensors.get(name)?.shape, shape, `${name} [${shape}]`);
  t.ok(tensors.has('layer1.0.bn1.num_batches_tracked'), "torchvision's num_batches_tracked comes along (and is ignored when loading)");
  // Train from it: --pretrained takes the .pth directly.
  const data = join(dir, 'synth');
  t.equal(clothtag(['data', 'synth', data, '--images', '16', '--size', '32']).code, 0);
  const train = clothtag(['train', '--data', data, '--net', 'cloth_resnet_a', '--width', '0.0625', '--img-size', '32', '--batch-size', '4', '--epochs', '1', '--steps-per-epoch', '1', '--workers', '0', '--lr', '1e-12', '--pretrained', join(FIXTURES, 'resnet-trunk-w16.pth'), '--out', join(dir, 'run')]);
  t.equal(train.code, 0, train.stderr);
  t.match(train.stdout, new RegExp(`pretrained trunk: ${names.length} tensors from .*resnet-trunk-w16.pth`));
  const saved = parseSafetensors(readFileSync(join(dir, 'run', 'weights', 'last.safetensors'))).tensors;
  // conv1.weight: ramp / 64 through float16, unchanged by a step at lr 1e-12.
  const conv1 = saved.get('conv1.weight')!.data;
  t.ok(Math.abs(conv1[20]! - ramp(21, 1 / 64)[20]!) < 1e-6, `conv1.weight[20] = ${conv1[20]} is the file's`);
});

t.test("torchvision's ResNet-50, VGG-16 and VGG-16-BN state dicts fit our trunks by their own names", async (t) => {
  const e = await gpuEngine();
  const cases = [['cloth_resnet_a', 'torchvision-resnet50-names.json', false], ['fashionnet', 'torchvision-vgg16-names.json', false], ['fashionnet', 'torchvision-vgg16_bn-names.json', true]] as const;
  for (const [net, file, vggBatchNorm] of cases) {
    const theirs = new Map((JSON.parse(readFileSync(join(FIXTURES, file), 'utf8')) as [string, number[]][]).map(([k, s]) => [k, s]));
    const ours = createNet(e, { net, categories: 2, attributes: 2, width: 1, seed: 0, ...(vggBatchNorm ? { vggBatchNorm } : {}) });
    const trunk = ours.stateEntries().filter((s) => isTrunkName(s.name));
    const misfits = trunk.filter((s) => JSON.stringify(theirs.get(s.name)) !== JSON.stringify(s.shape)).map((s) => `${s.name} [${s.shape}] vs ${JSON.stringify(theirs.get(s.name))}`);
    t.same(misfits, [], `${net}: all ${trunk.length} trunk tensors are in ${file} with the same shapes`);
    // And the other way: every trunk tensor of theirs has a place in ours (a VGG-16-BN file into a VGG without BatchNorm would not).
    const mine = new Set(trunk.map((s) => s.name));
    const left = [...theirs.keys()].filter((k) => isTrunkName(k) && !k.endsWith('num_batches_tracked') && !mine.has(k));
    t.same(left, [], `${net}${vggBatchNorm ? ' with VGG BatchNorm' : ''}: nothing of ${file}'s trunk is left over`);
    ours.dispose();
  }
});

t.test("cloth_repvgg's trunk has the official RepVGG-A0 state names and shapes", async (t) => {
  // The official repository's construction (DingXiaoH/RepVGG, repvgg.py, read at 022edbe):
  // stage0 is one block 3 -> min(64, 64a); stages 1-4 are nn.Sequential of [2, 4, 14, 1] blocks of
  // 64a, 128a, 256a, 512b channels (A0: a = 0.75, b = 2.5), each stage's first block with stride 2;
  // a block has rbr_dense (3x3 conv + bn), rbr_1x1 (1x1 conv + bn) and, when its input and output
  // channels match at stride 1, rbr_identity (a BatchNorm).
  const expected = new Map<string, number[]>();
  const bn = (prefix: string, c: number) => {
    for (const k of ['weight', 'bias', 'running_mean', 'running_var']) expected.set(`${prefix}.${k}`, [c]);
  };
  const block = (prefix: string, cin: number, cout: number, stride: number) => {
    expected.set(`${prefix}.rbr_dense.conv.weight`, [cout, cin, 3, 3]);
    bn(`${prefix}.rbr_dense.bn`, cout);
    expected.set(`${prefix}.rbr_1x1.conv.weight`, [cout, cin, 1, 1]);
    bn(`${prefix}.rbr_1x1.bn`, cout);
    if (cin === cout && stride === 1) bn(`${prefix}.rbr_identity`, cin);
  };
  let planes = Math.min(64, 64 * 0.75);
  block('stage0', 3, planes, 2);
  [[64 * 0.75, 2], [128 * 0.75, 4], [256 * 0.75, 14], [512 * 2.5, 1]].forEach(([width, blocks], s) => {
    for (let k = 0; k < blocks!; k++) {
      block(`stage${s + 1}.${k}`, planes, width!, k === 0 ? 2 : 1);
      planes = width!;
    }
  });
  const e = await gpuEngine();
  const net = createNet(e, { net: 'cloth_repvgg', categories: 2, attributes: 2, width: 1, seed: 0 });
  const ours = new Map(net.stateEntries().filter((s) => isTrunkName(s.name)).map((s) => [s.name, [...s.shape]]));
  t.same([...ours.keys()].sort(), [...expected.keys()].sort(), `the same ${expected.size} names`);
  t.same([...expected].filter(([k, v]) => JSON.stringify(ours.get(k)) !== JSON.stringify(v)), [], 'the same shapes');
  net.dispose();
});

const probe = torchCpuStep({ net: 'cloth_repvgg', width: 1 / 16, size: 32, batch: 2, steps: 1 });
t.test("bench net's PyTorch CPU comparison builds the same five networks (bench/torch_cpu.py)", { skip: 'skipped' in probe ? `no PyTorch here: ${probe.skipped}` : false }, async (t) => {
  const e = await gpuEngine(t);
  for (const name of NET_NAMES) {
    const r = name === 'cloth_repvgg' ? probe : torchCpuStep({ net: name, width: 1 / 16, size: 32, batch: 2, steps: 1 });
    if ('skipped' in r) {
      t.fail(`${name}: ${r.skipped}`);
      continue;
    }
    const net = createNet(e, { net: name, categories: 50, attributes: 1000, width: 1 / 16 });
    t.equal(r.result.parameters, net.parameterCount(), `${name}: PyTorch's replica has our parameter count`);
    t.ok(r.result.imagesPerSecond > 0, `${name}: timed`);
    net.dispose();
  }
  // The landmark networks' branches at a width of their own (--head-width; bench/real_data_torch.py's too).
  for (const name of ['fashionnet', 'new_fashionnet'] as const) {
    const r = torchCpuStep({ net: name, width: 1 / 16, headWidth: 1 / 4, size: 32, batch: 2, steps: 1 });
    if ('skipped' in r) {
      t.fail(`${name}, head width 1/4: ${r.skipped}`);
      continue;
    }
    const net = createNet(e, { net: name, categories: 50, attributes: 1000, width: 1 / 16, headWidth: 1 / 4 });
    t.equal(r.result.parameters, net.parameterCount(), `${name}, head width 1/4: PyTorch's replica has our parameter count`);
    net.dispose();
  }
  // ... and joined to the trunk's finer maps (bench net --landmark-skips on), as the landmark job trains them.
  for (const name of ['fashionnet', 'new_fashionnet'] as const) {
    const r = torchCpuStep({ net: name, width: 1 / 16, headWidth: 1 / 4, landmarkSkips: true, size: 32, batch: 2, steps: 1 });
    if ('skipped' in r) {
      t.fail(`${name}, joined branch: ${r.skipped}`);
      continue;
    }
    const net = createNet(e, { net: name, categories: 50, attributes: 1000, width: 1 / 16, headWidth: 1 / 4, landmarkSkips: true });
    t.equal(r.result.parameters, net.parameterCount(), `${name}, branch joined to the trunk's finer maps: PyTorch's replica has our parameter count`);
    net.dispose();
  }
});

t.test("the box head's PyTorch replica (bench/box_locator_torch.py) is clothtag's", { skip: 'skipped' in probe ? `no PyTorch here: ${probe.skipped}` : false }, async (t) => {
  const python = [process.env.CLOTHTAG_PYTHON, '/usr/bin/python3', 'python3'].find((p) => p && spawnSync(p, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0)!;
  const r = spawnSync(python, ['-c', 'from box_locator_torch import Locator; print(sum(p.numel() for p in Locator().parameters()))'], { cwd: join(import.meta.dirname, '..', 'bench'), encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  const e = await gpuEngine(t);
  const net = createNet(e, { net: 'cloth_resnet_a', categories: 2, attributes: 0, width: 1 / 16, box: true });
  const ours = net.stateEntries().filter((s) => s.trainable && s.name.startsWith('box_locator.')).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
  t.equal(Number(r.stdout.trim()), ours, `the same ${ours} parameters`);
  net.dispose();
});
