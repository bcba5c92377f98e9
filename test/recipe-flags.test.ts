// The training recipe's flags, continued from recipe.test.ts (split so that neither file nears tap's
// 600-second limit on a loaded machine): cyclical momentum, FashionNet's own rate, the landmark
// branches' width and skips, and the softmax within each attribute type.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { openDataset } from '../src/data/dataset.js';
import { parseSafetensors } from '../src/nets/safetensors.js';
import { NET_NAMES } from '../src/nets/models.js';
import { defaultLr } from '../src/run/train.js';
import { clothtag } from './helpers/cli.js';
import { gpuEngine } from './helpers/gpu.js';
import { randn } from './helpers/random.js';
import { tinySet } from './helpers/training.js';
import { loadCheckpoint } from '../src/nets/weights.js';
import { readBatch } from '../src/train/read.js';

t.test('--cycle-momentum on moves Adam\'s beta1 with the one-cycle rate, is kept in config.json; without a cycle it is refused', async (t) => {
  const set = tinySet(t, 'clothtag-momentum-', 'cloth_repvgg', '0.125');
  const dir = set.dir;
  const common = [...set.common, '--epochs', '1', '--steps-per-epoch', '2', '--seed', '3'];
  const weights = new Map<string, ReturnType<typeof parseSafetensors>['tensors']>();
  for (const setting of ['on', 'off']) {
    const run = join(dir, setting);
    const train = clothtag(['train', ...common, '--cycle-momentum', setting, '--out', run]);
    t.equal(train.code, 0, train.stderr);
    t.equal(JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')).cycleMomentum, setting === 'on', `config.json: ${setting}`);
    weights.set(setting, parseSafetensors(readFileSync(join(run, 'weights', 'last.safetensors'))).tensors);
  }
  // Adam's first step does not depend on beta1 (its bias correction cancels it); the second does.
  const moved = [...weights.get('on')!].filter(([name, v]) => v.data.some((x, i) => x !== weights.get('off')!.get(name)!.data[i]));
  t.ok(moved.length > 0, `two steps with beta1 cycled end elsewhere than with beta1 0.9 (${moved.length} tensors differ)`);
  const exp = clothtag(['train', ...common, '--schedule', 'exp', '--cycle-momentum', 'on', '--out', join(dir, 'bad')]);
  t.equal(exp.code, 2);
  t.match(exp.stderr, /--cycle-momentum on cycles beta1 with the one-cycle rate; --schedule exp has no cycle/);
  const word = clothtag(['train', ...common, '--cycle-momentum', 'yes', '--out', join(dir, 'bad')]);
  t.equal(word.code, 2);
  t.match(word.stderr, /--cycle-momentum/);
});

t.test('FashionNet (a VGG without BatchNorm) trains at 2e-3 unless told, the others at 3e-3; --lr overrides it; config.json records the rate', async (t) => {
  t.equal(defaultLr('fashionnet'), 2e-3);
  for (const net of NET_NAMES.filter((n) => n !== 'fashionnet')) t.equal(defaultLr(net), 3e-3, net);
  const set = tinySet(t, 'clothtag-lr-', 'fashionnet', '0.0625');
  const dir = set.dir;
  const common = [...set.common, '--epochs', '1', '--steps-per-epoch', '1', '--val-limit', '4', '--wb', '0'];
  for (const [flags, want] of [[[], 2e-3], [['--lr', '4e-3'], 4e-3]] as const) {
    const run = join(dir, flags.length ? 'told' : 'default');
    const train = clothtag(['train', ...common, ...flags, '--out', run]);
    t.equal(train.code, 0, train.stderr);
    t.equal(JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')).lr, want, `${flags.join(' ') || 'no --lr'}: config.json says ${want}`);
    // One step of a one-cycle run starts at a 25th of the peak: the rate the step used is the run's.
    const metrics = readFileSync(join(run, 'metrics.csv'), 'utf8').trim().split('\n');
    const stepLr = Number(metrics[1]!.split(',')[metrics[0]!.split(',').indexOf('lr')]);
    t.ok(Math.abs(stepLr - want / 25) < want * 1e-3, `${flags.join(' ') || 'no --lr'}: the step's rate ${stepLr} is ${want} / 25`);
  }
});

t.test('--head-width and --landmark-skips (on with soft-argmax unless told) train a landmark network with wider branches joined to the trunk\'s finer maps, are kept in config.json and the checkpoint; nonsense is refused', async (t) => {
  const set = tinySet(t, 'clothtag-head-', 'new_fashionnet', '0.0625');
  const { dir, data } = set;
  const run = join(dir, 'run');
  const common = [...set.common, '--landmark-loss', 'softargmax'];
  const train = clothtag(['train', ...common, '--epochs', '1', '--steps-per-epoch', '1', '--head-width', '0.25', '--out', run]);
  t.equal(train.code, 0, train.stderr);
  const saved = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8'));
  t.equal(saved.headWidth, 0.25, 'config.json');
  t.equal(saved.landmarkSkips, true, 'config.json: the skips, the soft-argmax recipe\'s default');
  t.equal(saved.loss.wl, 20, 'config.json: soft-argmax\'s own landmark weight when --wl is not given');
  t.equal(saved.lr, 3e-3, 'config.json: the default rate of the networks with BatchNorm');
  const checkpoint = join(run, 'weights', 'last.safetensors');
  const { tensors, metadata } = parseSafetensors(readFileSync(checkpoint));
  t.equal(JSON.parse(metadata.config!).headWidth, 0.25, 'the checkpoint');
  t.equal(JSON.parse(metadata.config!).landmarkSkips, true, 'the checkpoint: the skips');
  t.same(tensors.get('landmarks.0.weight')?.shape.slice(0, 1), [8], 'its landmark branch is a quarter wide (32 x 0.25 channels)');
  // layer1's 64 x 4 x 0.0625 channels to the first upsampling's 64 x 0.25; the stem's 4 to the second's 8.
  t.same(tensors.get('landmarks.skip0.weight')?.shape, [16, 16, 1, 1], 'the join of layer1');
  t.same(tensors.get('landmarks.skip1.weight')?.shape, [8, 4, 1, 1], 'the join of the stem');
  const ev = clothtag(['eval', '--checkpoint', checkpoint, '--data', data, '--workers', '0']);
  t.equal(ev.code, 0, ev.stderr);
  for (const value of ['0', 'wide']) {
    const bad = clothtag(['train', ...common, '--head-width', value, '--out', join(dir, 'bad')]);
    t.equal(bad.code, 2, `--head-width ${value}`);
    t.match(bad.stderr, new RegExp(`--head-width takes a positive number, got "${value}"`));
  }
  // The thesis's objectives keep the thesis's branch unless told; --landmark-skips off drops the joins.
  for (const [flags, want] of [[['--landmark-loss', 'mse'], false], [['--landmark-skips', 'off'], false], [['--landmark-loss', 'mse', '--landmark-skips', 'on'], true]] as const) {
    const other = join(dir, `run-${flags.join('')}`);
    const r = clothtag(['train', ...common, ...flags, '--epochs', '1', '--steps-per-epoch', '1', '--val-limit', '4', '--out', other]);
    t.equal(r.code, 0, r.stderr);
    const otherConfig = JSON.parse(readFileSync(join(other, 'config.json'), 'utf8'));
    t.equal(otherConfig.landmarkSkips, want, `${flags.join(' ')}: config.json says ${want}`);
    t.equal(otherConfig.loss.wl, (flags as readonly string[]).includes('mse') ? 2000 : 20, `${flags.join(' ')}: the objective's own landmark weight (the thesis's 2000 for MSE)`);
    t.equal(parseSafetensors(readFileSync(join(other, 'weights', 'last.safetensors'))).tensors.has('landmarks.skip0.weight'), want, `${flags.join(' ')}: the checkpoint ${want ? 'has' : 'has no'} joins`);
  }
  const word = clothtag(['train', ...common, '--landmark-skips', 'yes', '--out', join(dir, 'bad')]);
  t.equal(word.code, 2, '--landmark-skips yes');
  t.match(word.stderr, /--landmark-skips/);
  const plain = clothtag(['train', ...common.map((v) => (v === 'new_fashionnet' ? 'cloth_repvgg' : v)), '--landmark-skips', 'on', '--out', join(dir, 'bad')]);
  t.equal(plain.code, 2, '--landmark-skips on a network without landmarks');
  t.match(plain.stderr, /--landmark-skips on is for the landmark networks \(fashionnet, new_fashionnet\); cloth_repvgg has no landmark branch/);
});

t.test('--attribute-loss softmax trains a cross-entropy within each attribute type (Ws 1 unless told), keeps the types in the checkpoint, and labelling reads each type as a softmax; nonsense is refused', async (t) => {
  const { dir, data, common } = tinySet(t, 'clothtag-attrsoftmax-', 'cloth_repvgg', '0.125');
  const run = join(dir, 'run');
  const train = clothtag(['train', ...common, '--epochs', '1', '--steps-per-epoch', '2', '--attribute-loss', 'softmax', '--wb', '0', '--out', run]);
  t.equal(train.code, 0, train.stderr);
  const config = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8'));
  t.equal(config.loss.attributeLoss, 'softmax', 'config.json');
  t.equal(config.loss.ws, 1, 'the softmax loss weighs 1 unless --ws says');
  const checkpoint = join(run, 'weights', 'last.safetensors');
  const types = (await openDataset(data)).attributeTypes;
  t.ok(types.length > 1 && new Set(types).size > 1, 'the synthetic set has attributes of several types');
  t.same(JSON.parse(parseSafetensors(readFileSync(checkpoint)).metadata.config!).attributeGroups, types, 'the checkpoint\'s head has the types as its groups');
  const ev = clothtag(['eval', '--checkpoint', checkpoint, '--data', data, '--workers', '0']);
  t.equal(ev.code, 0, ev.stderr);
  t.match(ev.stdout, /recall/);
  // Labelling: each type's probabilities sum to 1.
  const e = await gpuEngine(t);
  const { net } = await loadCheckpoint(e, readFileSync(checkpoint), checkpoint);
  const read = await readBatch(net, randn(2 * 3 * 32 * 32, 3), 2, 32, 'peak');
  for (let i = 0; i < 2; i++) {
    for (const type of new Set(types)) {
      const sum = types.reduce((s, ty, a) => (ty === type ? s + read.attributes![i * types.length + a]! : s), 0);
      t.ok(Math.abs(sum - 1) < 1e-5, `photo ${i}, type ${type}: the probabilities sum to 1 (${sum})`);
    }
  }
  net.dispose();
  const weighed = join(dir, 'weighed');
  t.equal(clothtag(['train', ...common, '--epochs', '1', '--steps-per-epoch', '1', '--val-limit', '4', '--attribute-loss', 'softmax', '--ws', '3', '--wb', '0', '--out', weighed]).code, 0);
  t.equal(JSON.parse(readFileSync(join(weighed, 'config.json'), 'utf8')).loss.ws, 3, '--ws still sets the weight');
  const bad = clothtag(['train', ...common, '--attribute-loss', 'hinge', '--out', join(dir, 'bad')]);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--attribute-loss is bce, softmax; got hinge/);
});
