// The five networks at narrow widths and small sizes: shapes, gradients through whole nets,
// RepVGG re-parameterization, safetensors and weight-loading errors.
import t from 'tap';
import * as ops from '../src/autograd/ops.js';
import { backward } from '../src/autograd/tape.js';
import type { Tensor } from '../src/engine/tensor.js';
import { type Context, Conv2d, RepVGGBlock } from '../src/nets/layers.js';
import { Init } from '../src/nets/module.js';
import { type ClothNet, NET_NAMES, type NetOutput, createNet, defaultConvInit } from '../src/nets/models.js';
import { parseSafetensors, serializeSafetensors } from '../src/nets/safetensors.js';
import { loadCheckpoint, loadState, readState, saveCheckpoint } from '../src/nets/weights.js';
import { gpuEngine } from './helpers/gpu.js';
import { randn } from './helpers/random.js';
import { randomizeBatchNorms } from './helpers/nets.js';

const W = 1 / 16;

function relativeError(a: Float32Array, b: Float32Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

async function outputs(o: NetOutput): Promise<Float32Array> {
  const parts = await Promise.all([o.category, o.attributes, o.heatmaps].filter((x): x is Tensor => !!x).map((x) => x.read()));
  return Float32Array.from(parts.flatMap((p) => Array.from(p)));
}

t.test('every network: output shapes at narrow width, any size from 32, missing heads not built', async (t) => {
  const e = await gpuEngine(t);
  for (const name of NET_NAMES) {
    for (const size of [32, 64]) {
      const net = createNet(e, { net: name, categories: 5, attributes: 7, width: W, seed: 1 });
      const out = e.tidy(() => net.forward(e.tensor(randn(2 * 3 * size * size, size), [2, 3, size, size])));
      t.same(out.category?.shape, [2, 5], `${name} ${size}: category logits`);
      t.same(out.attributes?.shape, [2, 7], `${name} ${size}: attribute logits`);
      if (net.hasLandmarks) t.same(out.heatmaps?.shape, [2, 8, size, size], `${name} ${size}: heatmaps the size of the input`);
      else t.notOk(out.heatmaps);
      const values = await outputs(out);
      t.ok(values.every(Number.isFinite), `${name} ${size}: finite outputs`);
      for (const x of [out.category, out.attributes, out.heatmaps]) x?.dispose();
      net.dispose();
    }
    const attrsOnly = createNet(e, { net: name, categories: 0, attributes: 6, width: W });
    t.notOk(attrsOnly.stateEntries().some((s) => s.name.startsWith('category')), `${name}: no category head without categories`);
    const out = e.tidy(() => e.noGrad(() => attrsOnly.setTraining(false).forward(e.full([1, 3, 64, 64], 0.1))));
    t.notOk(out.category);
    t.same(out.attributes?.shape, [1, 6]);
    attrsOnly.dispose();
  }
  const resnet = createNet(e, { net: 'cloth_resnet_a', categories: 3, attributes: 0, width: W });
  t.throws(() => resnet.forward(e.zeros([1, 3, 16, 16])), /from 32 to 448; got 16x16/);
  t.throws(() => resnet.forward(e.zeros([1, 1, 64, 64])), /takes images \[N, 3, H, W\]/);
  for (const name of ['fashionnet', 'new_fashionnet'] as const) {
    const net = createNet(e, { net: name, categories: 3, attributes: 0, width: W });
    for (const [h, w] of [[100, 100], [40, 72]] as const) {
      const out = e.tidy(() => e.noGrad(() => net.forward(e.zeros([1, 3, h, w]))));
      t.same(out.heatmaps!.shape, [1, 8, h, w], `${name} at ${h}x${w}: heatmaps the size of the input`);
      t.ok((await out.heatmaps!.read()).every(Number.isFinite));
    }
  }
  t.doesNotThrow(() => e.tidy(() => resnet.forward(e.zeros([1, 3, 100, 100]))), 'ResNet takes any size');
  t.throws(() => createNet(e, { net: 'resnet9' as never, categories: 1, attributes: 0, width: 1 }), /unknown network "resnet9"/);
});

t.test('gradients through whole narrow networks match finite differences (spot checks)', async (t) => {
  const e = await gpuEngine(t);
  // The last two: the landmark branch joined to the trunk's finer maps (landmarkSkips).
  // The last: FashionNet's VGG trunk with a BatchNorm after each convolution (vggBatchNorm).
  const cases = [['cloth_repvgg', false], ['new_fashionnet', false], ['cloth_resnet_b', false], ['fashionnet', false], ['new_fashionnet', true], ['fashionnet', true], ['fashionnet', false, true]] as const;
  for (const [name, landmarkSkips, vggBatchNorm] of cases) {
    const net = createNet(e, { net: name, categories: 4, attributes: 5, width: W, seed: 3, ...(landmarkSkips ? { landmarkSkips } : {}), ...(vggBatchNorm ? { vggBatchNorm } : {}) });
    net.setTraining(false); // BatchNorm as fixed affine maps: a smooth function of the weights
    randomizeBatchNorms(e, net, 10);
    const x = e.tensor(randn(2 * 3 * 32 * 32, 5), [2, 3, 32, 32]).keep();
    const weights: Record<string, Float32Array> = {};
    const lossOf = (o: NetOutput) => {
      let loss: Tensor | null = null;
      for (const [k, v] of Object.entries(o) as [string, Tensor][]) {
        weights[k] ??= randn(v.size, k.length);
        const term = ops.sumAll(ops.mul(v, e.tensor(weights[k]!, v.shape)));
        loss = loss ? ops.add(loss, term) : term;
      }
      return loss!;
    };
    const entries = net.stateEntries().filter((s) => s.trainable);
    // A few parameters spread over the network: first conv, a middle one, a head bias, a branch.
    // With skips: both joins, and the trunk's first convolution, which reaches the heatmaps through them too.
    const picks = landmarkSkips
      ? [entries[0]!, ...entries.filter((s) => /^landmarks\.skip[01]\.weight$/.test(s.name))]
      : vggBatchNorm
        ? entries.filter((s) => /^features\.(1|41)\.(weight|bias)$/.test(s.name)) // the first and last BatchNorms' scales and shifts
        : [entries[0]!, entries[Math.floor(entries.length / 3)]!, entries[Math.floor((2 * entries.length) / 3)]!, entries[entries.length - 1]!];
    if (landmarkSkips) t.equal(picks.length, 3, `${name}: both joins are parameters`);
    if (vggBatchNorm) t.equal(picks.length, 4, `${name}: the trunk's BatchNorms are parameters`);
    const grads = await e.tidyAsync(async () => {
      backward(lossOf(net.forward(x)));
      const g = await Promise.all(picks.map((p) => p.parts[0]!.grad!.read()));
      for (const p of net.parameters()) {
        p.grad?.dispose();
        p.grad = null;
      }
      return g;
    });
    for (const [k, pick] of picks.entries()) {
      const p = pick.parts[0]!;
      const values = await p.read();
      // The coordinate with the largest gradient: a real signal, not a dead ReLU path.
      const g = grads[k]!;
      const index = g.reduce((best, v, i) => (Math.abs(v) > Math.abs(g[best]!) ? i : best), 0);
      const evalAt = async (v: number) => {
        const copy = values.slice();
        copy[index] = v;
        e.write(p, copy);
        return e.tidyAsync(async () => (await e.noGrad(() => lossOf(net.forward(x))).read())[0]!);
      };
      // float32 forward passes through many ReLUs: the finite difference errs by the kinks it
      // crosses (in proportion to the step) and by rounding (in inverse proportion). A coordinate
      // with a large gradient gets a small step; the rounding bound is added to the tolerance.
      // Weights that start small (PyTorch's init puts RepVGG's near +-0.05) put kinks closer, so a
      // step a tenth as large is tried too: a true gradient matches one of the two, a wrong one
      // neither.
      const analytic = g[index]!;
      // A join the forward pass skipped would pass the comparison with zeros on both sides.
      if (landmarkSkips) t.ok(analytic !== 0, `${name} with skips: ${pick.name} reaches the loss`);
      const center = await evalAt(values[index]!);
      const numerics: number[] = [];
      let ok = false;
      for (const scale of [1, 0.1]) {
        const h = scale * (Math.abs(analytic) > 10 ? 2e-4 : 2e-3) * Math.max(1, Math.abs(values[index]!));
        const numeric = ((await evalAt(values[index]! + h)) - (await evalAt(values[index]! - h))) / (2 * h);
        const rounding = (4 * Math.abs(center) * 1.2e-7) / h;
        numerics.push(numeric);
        ok ||= Math.abs(numeric - analytic) <= 0.05 * Math.abs(numeric) + rounding + 1e-3;
      }
      e.write(p, values);
      t.ok(ok, `${name}${landmarkSkips ? ' with skips' : ''}${vggBatchNorm ? ' with BatchNorm' : ''} d/d ${pick.name}[${index}]: autograd ${analytic.toPrecision(5)}, finite differences ${numerics.map((n) => n.toPrecision(5)).join(' / ')}`);
    }
    x.dispose();
    net.dispose();
  }
});

t.test('RepVGG re-parameterization keeps eval outputs (single blocks)', async (t) => {
  const e = await gpuEngine(t);
  const c: Context = { engine: e, init: new Init(7) };
  for (const [inC, outC, stride, label] of [[8, 8, 1, 'identity branch'], [8, 8, 2, 'stride 2'], [6, 10, 1, 'channel change'], [3, 5, 2, 'stride 2 and channel change']] as const) {
    const block = new RepVGGBlock(c, 'b', inC, outC, stride).setTraining(false);
    randomizeBatchNorms(e, block, inC * 10 + outC);
    const x = e.tensor(randn(2 * inC * 9 * 11, 1), [2, inC, 9, 11]).keep();
    const before = await e.tidy(() => e.noGrad(() => block.forward(x))).read();
    await block.reparameterize();
    t.ok(block.deployed);
    t.ok(block.stateEntries().every((s) => s.name.startsWith('b.rbr_reparam')), 'only the fused convolution remains');
    const after = await e.tidy(() => e.noGrad(() => block.forward(x))).read();
    const err = relativeError(after, before);
    t.ok(err <= 1e-4, `${label}: relative error ${err.toExponential(2)}`);
    block.dispose();
    x.dispose();
  }
});

t.test('RepVGG re-parameterization keeps eval outputs (whole networks)', async (t) => {
  const e = await gpuEngine(t);
  for (const name of ['cloth_repvgg', 'new_fashionnet'] as const) {
    const net = createNet(e, { net: name, categories: 6, attributes: 9, width: W, seed: 5 }).setTraining(false);
    randomizeBatchNorms(e, net, 100);
    const x = e.tensor(randn(2 * 3 * 64 * 64, 2), [2, 3, 64, 64]).keep();
    const before = await e.tidyAsync(async () => outputs(e.noGrad(() => net.forward(x))));
    const paramsBefore = net.parameterCount();
    const expectedDeploy = net.deployParameterCount();
    await net.reparameterize();
    t.equal(net.parameterCount(), expectedDeploy, `${name}: deploy parameter count predicted (${paramsBefore} -> ${expectedDeploy})`);
    const after = await e.tidyAsync(async () => outputs(e.noGrad(() => net.forward(x))));
    const err = relativeError(after, before);
    t.ok(err <= 1e-4, `${name}: relative error ${err.toExponential(2)} over ${after.length} outputs`);
    // A deployed checkpoint loads back as deployed.
    const bytes = await saveCheckpoint(net);
    const { net: back, meta } = await loadCheckpoint(e, bytes, 'deployed.safetensors');
    t.ok(meta.deployed);
    back.setTraining(false);
    const again = await e.tidyAsync(async () => outputs(e.noGrad(() => back.forward(x))));
    t.ok(relativeError(again, after) < 1e-6, `${name}: deployed checkpoint round trip`);
    back.dispose();
    net.dispose();
    x.dispose();
  }
});

t.test('eval without gradients folds each BatchNorm into its convolution: the same outputs, fewer passes', async (t) => {
  const e = await gpuEngine(t);
  for (const name of ['cloth_resnet_a', 'cloth_repvgg', 'fashionnet'] as const) {
    const net = createNet(e, { net: name, categories: 6, attributes: 9, width: W, seed: 7 }).setTraining(false);
    randomizeBatchNorms(e, net, 200);
    const x = e.tensor(randn(2 * 3 * 64 * 64, 3), [2, 3, 64, 64]).keep();
    // With gradients enabled the layers run one by one; without, the BatchNorms are folded.
    const d0 = e.stats.dispatches;
    const separate = await e.tidyAsync(async () => outputs(net.forward(x)));
    const d1 = e.stats.dispatches;
    const folded = await e.tidyAsync(async () => outputs(e.noGrad(() => net.forward(x))));
    const d2 = e.stats.dispatches;
    const err = relativeError(folded, separate);
    t.ok(err <= 1e-4, `${name}: relative error ${err.toExponential(2)} over ${folded.length} outputs`);
    if (name === 'fashionnet') t.equal(d2 - d1, d1 - d0, 'fashionnet (VGG, no BatchNorm): nothing to fold');
    else t.ok(d2 - d1 < d1 - d0, `${name}: ${d1 - d0} dispatches separate, ${d2 - d1} folded`);
    net.dispose();
    x.dispose();
  }
});

t.test('safetensors: round trip, a file written byte by byte, and bad files', async (t) => {
  const tensors = new Map([
    ['a.weight', { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }],
    ['b', { shape: [], data: Float32Array.from([7.5]) }],
  ]);
  const bytes = serializeSafetensors(tensors, { note: 'hi' });
  const back = parseSafetensors(bytes);
  t.same(back.metadata, { note: 'hi' });
  t.same(back.tensors.get('a.weight')!.shape, [2, 3]);
  t.same(Array.from(back.tensors.get('a.weight')!.data), [1, 2, 3, 4, 5, 6]);
  t.same(Array.from(back.tensors.get('b')!.data), [7.5]);
  t.equal((8 + Number(new DataView(bytes.buffer).getBigUint64(0, true))) % 8, 0, 'data starts 8-byte aligned');

  // By hand: header {"w":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"n":{"dtype":"I64",...}}
  const header = '{"w":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"n":{"dtype":"I64","shape":[1],"data_offsets":[4,12]}}';
  const file = new Uint8Array(8 + header.length + 12);
  file[0] = header.length; // little-endian u64
  for (let i = 0; i < header.length; i++) file[8 + i] = header.charCodeAt(i);
  const d = 8 + header.length;
  file.set([0x00, 0x3c, 0x00, 0xc0], d); // F16 1.0 and -2.0
  file.set([42, 0, 0, 0, 0, 0, 0, 0], d + 4); // I64 42
  const parsed = parseSafetensors(file, 'hand.safetensors');
  t.same(Array.from(parsed.tensors.get('w')!.data), [1, -2]);
  t.same(Array.from(parsed.tensors.get('n')!.data), [42]);

  t.throws(() => parseSafetensors(new Uint8Array(4), 'tiny.bin'), /tiny.bin: 4 bytes is too short/);
  t.throws(() => parseSafetensors(new TextEncoder().encode('not a safetensors file at all'), 'x.txt'), /x.txt: header length/);
  const truncated = bytes.slice(0, bytes.length - 4);
  t.throws(() => parseSafetensors(truncated, 'cut.safetensors'), /cut.safetensors: tensor "b" .* do not fit/);
});

t.test('weights: checkpoint round trip, and a wrong file lists what is wrong', async (t) => {
  const e = await gpuEngine(t);
  const net = createNet(e, { net: 'cloth_resnet_a', categories: 4, attributes: 6, width: W, seed: 9 }).setTraining(false);
  randomizeBatchNorms(e, net, 3);
  const x = e.tensor(randn(3 * 32 * 32, 4), [1, 3, 32, 32]).keep();
  const ref = await e.tidyAsync(async () => outputs(e.noGrad(() => net.forward(x))));
  const bytes = await saveCheckpoint(net, { vocabulary: '["a"]' });
  const { net: back, meta } = await loadCheckpoint(e, bytes, 'ckpt.safetensors');
  t.same(meta.config, net.config);
  t.equal(meta.extra?.vocabulary, '["a"]');
  back.setTraining(false);
  t.same(Array.from(await e.tidyAsync(async () => outputs(e.noGrad(() => back.forward(x))))), Array.from(ref), 'same outputs after reload');
  t.ok(parseSafetensors(bytes).tensors.has('layer1.0.conv2.weight'), 'torchvision names');

  const state = await readState(net);
  state.delete('layer4.2.bn3.running_var');
  state.set('fc.weight', { shape: [1000, 128], data: new Float32Array(128000) });
  state.set('conv1.weight', { shape: [4, 3, 5, 5], data: new Float32Array(300) });
  let message = '';
  try {
    loadState(net, state, 'strict', 'wrong.safetensors');
  } catch (err) {
    message = (err as Error).message;
  }
  t.match(message, /wrong.safetensors does not fit this network/);
  t.match(message, /missing \(1\): layer4.2.bn3.running_var \[\d+\]/);
  t.match(message, /wrong shape \(1\): conv1.weight: file \[4,3,5,5\], network \[4,3,7,7\]/);
  t.match(message, /unexpected \(1\): fc.weight/);
  // --pretrained: ImageNet classifier and num_batches_tracked are ignored, heads keep their init.
  const imagenet = await readState(net);
  for (const k of [...imagenet.keys()]) if (!/^(conv1|bn1|layer)/.test(k)) imagenet.delete(k);
  imagenet.set('fc.weight', { shape: [1000, 128], data: new Float32Array(128000) });
  imagenet.set('bn1.num_batches_tracked', { shape: [], data: Float32Array.of(5) });
  const fresh = createNet(e, { net: 'cloth_resnet_a', categories: 4, attributes: 6, width: W, seed: 10 });
  const r = loadState(fresh, imagenet, 'pretrained', 'resnet50-imagenet.safetensors');
  t.same(r.ignored, ['fc.weight'], 'the ImageNet classifier is ignored');
  imagenet.delete('layer2.1.conv1.weight');
  t.throws(() => loadState(fresh, imagenet, 'pretrained', 'partial.safetensors'), /missing \(1\): layer2.1.conv1.weight/);
  t.rejects(loadCheckpoint(e, serializeSafetensors(new Map()), 'plain.safetensors'), /not a clothtag checkpoint/);
  back.dispose();
  fresh.dispose();
  net.dispose();
  x.dispose();
});

t.test('parameter counts at full width are those of the standard trunks', async (t) => {
  const e = await gpuEngine(t);
  const counts: Record<string, [number, number]> = {};
  // Nothing runs; tensors are still created.
  e.with({ countOnly: true }, () => {
    for (const name of ['cloth_resnet_a', 'cloth_repvgg'] as const) {
      const net: ClothNet = createNet(e, { net: name, categories: 1000, attributes: 0, width: 1 });
      counts[name] = [net.parameterCount(), net.deployParameterCount()];
      net.dispose();
    }
  });
  t.equal(counts.cloth_resnet_a![0], 25_557_032, 'ResNet-50 with a 1000-class head has torchvision resnet50\'s 25,557,032 parameters');
  t.equal(counts.cloth_repvgg![1], 8_309_384, 'RepVGG-A0 with a 1000-class head, deployed, has the paper\'s 8.30M');
  t.equal(counts.cloth_repvgg![0], 9_108_968, 'and 9,108,968 in its training form (the BatchNorms of three branches)');
});

t.test('module hooks read an activation and a gradient by layer path, and are removed', async (t) => {
  const e = await gpuEngine(t);
  const net = createNet(e, { net: 'cloth_resnet_a', categories: 3, attributes: 2, width: 1 / 16, seed: 5 });
  net.setTraining(false);
  const shapes: number[][] = [];
  const removeForward = net.find('layer2.0').onForward((out) => shapes.push([...(out as Tensor).shape]));
  let gradient: Promise<Float32Array[]> | null = null;
  const removeBackward = net.find('category').onBackward((g) => {
    gradient = e.readMany([g]); // recorded now: g is freed once the hook returns
  });
  const x = e.tensor(randn(2 * 3 * 32 * 32, 8), [2, 3, 32, 32]).keep();
  e.tidy(() => {
    const out = net.forward(x);
    backward(ops.sumAll(out.category!));
  });
  t.same(shapes, [[2, 32, 4, 4]], "layer2.0's output: 2 images, 512/16 channels, 32/8 pixels");
  t.ok(gradient, 'the backward hook ran');
  t.same(Array.from((await gradient!)[0]!), [1, 1, 1, 1, 1, 1], 'd sum(logits) / d logits = 1 everywhere');
  for (const p of net.parameters()) {
    p.grad?.dispose();
    p.grad = null;
  }
  removeForward();
  removeBackward();
  gradient = null;
  e.tidy(() => backward(ops.sumAll(net.forward(x).category!)));
  t.equal(shapes.length, 1, 'a removed forward hook is not called');
  t.equal(gradient, null, 'nor a removed backward hook');
  t.throws(() => net.find('layer9'), /no module at "layer9"/);
  for (const p of net.parameters()) p.grad?.dispose();
  x.dispose();
  net.dispose();
});

t.test('stem stride 1: every trunk keeps twice the resolution with the same weights, and a checkpoint remembers it', async (t) => {
  const e = await gpuEngine(t);
  // The last module of each trunk, whose output is the map the heads pool.
  const lastOfTrunk: Record<string, string> = { cloth_resnet_a: 'layer4.2', cloth_resnet_b: 'layer4.2', cloth_repvgg: 'stage4.0', fashionnet: 'features.28', new_fashionnet: 'layer4.2' };
  const x = e.tensor(randn(2 * 3 * 64 * 64, 3), [2, 3, 64, 64]).keep();
  for (const name of NET_NAMES) {
    const sides: number[] = [];
    const names: string[][] = [];
    for (const stemStride of [2, 1] as const) {
      const net = createNet(e, { net: name, categories: 3, attributes: 4, width: W, seed: 2, stemStride }).setTraining(false);
      names.push(net.stateEntries().map((s) => `${s.name}[${s.shape.join(',')}]`));
      const remove = net.find(lastOfTrunk[name]!).onForward((out) => sides.push((out as Tensor).shape[3]!));
      const out = e.tidy(() => e.noGrad(() => net.forward(x)));
      t.same(out.category?.shape, [2, 3], `${name}, stem stride ${stemStride}: category logits`);
      if (net.hasLandmarks) t.same(out.heatmaps?.shape, [2, 8, 64, 64], `${name}, stem stride ${stemStride}: heatmaps the size of the input`);
      t.ok((await outputs(out)).every(Number.isFinite), `${name}, stem stride ${stemStride}: finite`);
      for (const y of [out.category, out.attributes, out.heatmaps]) y?.dispose();
      remove();
      if (stemStride === 1 && name === 'cloth_repvgg') {
        const bytes = await saveCheckpoint(net, {});
        const { net: back, meta } = await loadCheckpoint(e, bytes, 'stride1.safetensors');
        t.equal(meta.config.stemStride, 1, 'the checkpoint records the stem stride');
        const again: number[] = [];
        back.find('stage4.0').onForward((o) => again.push((o as Tensor).shape[3]!));
        e.tidy(() => e.noGrad(() => back.setTraining(false).forward(x)));
        t.same(again, [4], 'and the reloaded network runs with it');
        back.dispose();
        const { tensors, metadata } = parseSafetensors(bytes);
        const lying = serializeSafetensors(tensors, { ...metadata, config: JSON.stringify({ ...meta.config, stemStride: 3 }) });
        await t.rejects(loadCheckpoint(e, lying, 'lying.safetensors'), /lying.safetensors: its metadata's stemStride must be 1 or 2, got 3/);
      }
      net.dispose();
    }
    // FashionNet's VGG ends in a max-pool outside any module: its last convolution is read instead.
    const expected = name === 'fashionnet' ? [4, 8] : [2, 4];
    t.same(sides, expected, `${name}: the trunk's last map is ${expected[1]} pixels wide with stem stride 1, ${expected[0]} with 2`);
    t.same(names[1], names[0], `${name}: the same tensors, names and shapes (checkpoints and ImageNet weights load either way)`);
  }
  t.throws(() => createNet(e, { net: 'cloth_repvgg', categories: 3, attributes: 0, width: W, stemStride: 4 as never }), /stem stride must be 1 or 2, got 4/);
  x.dispose();
});

t.test('conv init: PyTorch\'s default (uniform in 1/sqrt(fan_in), biases too) or torchvision\'s fan-out normal; the box head keeps its own; a checkpoint remembers it', async (t) => {
  const e = await gpuEngine(t);
  const std = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0) / v.length);
  for (const name of ['cloth_repvgg', 'new_fashionnet'] as const) {
    const states: Map<string, Float32Array>[] = [];
    for (const convInit of ['fan-out', 'pytorch'] as const) {
      const net = createNet(e, { net: name, categories: 3, attributes: 4, width: 0.25, seed: 5, box: true, convInit });
      const state = new Map([...(await readState(net))].map(([k, v]) => [k, v.data as Float32Array]));
      states.push(state);
      let checked = 0, biases = 0;
      for (const m of net.modules()) {
        if (!(m instanceof Conv2d) || m.path.startsWith('box_locator.')) continue;
        const w = state.get(`${m.path}.weight`)!;
        const fanIn = m.inChannels * m.kernel * m.kernel, fanOut = m.outChannels * m.kernel * m.kernel;
        if (convInit === 'pytorch') {
          const bound = 1 / Math.sqrt(fanIn);
          t.ok(w.every((v) => Math.abs(v) <= bound), `${name} ${m.path}: inside +-1/sqrt(fan_in)`);
          if (w.length >= 2000) t.ok(Math.abs(std(w) / (bound / Math.sqrt(3)) - 1) < 0.1, `${name} ${m.path}: a uniform's spread (${std(w).toFixed(4)} against ${(bound / Math.sqrt(3)).toFixed(4)})`);
        } else if (w.length >= 2000) {
          t.ok(Math.abs(std(w) / Math.sqrt(2 / fanOut) - 1) < 0.1, `${name} ${m.path}: Kaiming normal over fan_out (${std(w).toFixed(4)} against ${Math.sqrt(2 / fanOut).toFixed(4)})`);
        }
        const b = state.get(`${m.path}.bias`);
        if (b) {
          biases++;
          if (convInit === 'pytorch') t.ok(b.some((v) => v !== 0) && b.every((v) => Math.abs(v) <= 1 / Math.sqrt(fanIn)), `${name} ${m.path}: bias uniform in +-1/sqrt(fan_in)`);
          else t.ok(b.every((v) => v === 0), `${name} ${m.path}: bias 0`);
        }
        checked++;
      }
      t.ok(checked > 10, `${name} (${convInit}): ${checked} convolutions checked`);
      if (name === 'new_fashionnet') t.ok(biases > 0, `${name}: its branches' biased convolutions checked (${biases})`);
      if (convInit === 'pytorch') {
        const bytes = await saveCheckpoint(net, {});
        const { net: back, meta } = await loadCheckpoint(e, bytes, 'pytorch-init.safetensors');
        t.equal(meta.config.convInit, 'pytorch', `${name}: the checkpoint records the init`);
        back.dispose();
        if (name === 'cloth_repvgg') {
          const { tensors, metadata } = parseSafetensors(bytes);
          const lying = serializeSafetensors(tensors, { ...metadata, config: JSON.stringify({ ...meta.config, convInit: 'xavier' }) });
          await t.rejects(loadCheckpoint(e, lying, 'lying.safetensors'), /lying.safetensors: its metadata's convInit must be one of fan-out, pytorch, got xavier/);
        }
      }
      net.dispose();
    }
    const [fanOut, pytorch] = states as [Map<string, Float32Array>, Map<string, Float32Array>];
    // Unless told, each network starts as the code it was published with: cloth_repvgg as the official RepVGG (PyTorch's default), the others as torchvision's.
    const plain = createNet(e, { net: name, categories: 3, attributes: 4, width: 0.25, seed: 5, box: true });
    const own = [...(await readState(plain))];
    // The default is resolved once, in createNet, and kept: the checkpoint names it.
    t.equal(plain.config.convInit, defaultConvInit(name), `${name}: the built network's config names its default init`);
    const recorded = JSON.parse(parseSafetensors(await saveCheckpoint(plain)).metadata.config ?? '{}');
    t.equal(recorded.convInit, defaultConvInit(name), `${name}: so does its checkpoint`);
    plain.dispose();
    const expected = name === 'cloth_repvgg' ? pytorch : fanOut;
    t.equal(defaultConvInit(name), name === 'cloth_repvgg' ? 'pytorch' : 'fan-out', `${name}: its default init`);
    t.ok(own.every(([k, v]) => (v.data as Float32Array).every((x, i) => x === expected.get(k)![i])), `${name}: without convInit it starts as ${defaultConvInit(name)} does, bit for bit`);
    const box = [...fanOut.keys()].filter((k) => k.startsWith('box_locator.'));
    t.ok(box.length > 0 && box.every((k) => fanOut.get(k)!.every((v, i) => v === pytorch.get(k)![i])), `${name}: the box head starts bit for bit the same either way (${box.length} tensors)`);
    t.ok([...fanOut.keys()].some((k) => k.endsWith('.weight') && !k.startsWith('box_locator.') && fanOut.get(k)!.some((v, i) => v !== pytorch.get(k)![i])), `${name}: the labelling network's convolutions differ`);
  }
  t.throws(() => createNet(e, { net: 'cloth_repvgg', categories: 3, attributes: 0, width: W, convInit: 'xavier' as never }), /conv init must be one of fan-out, pytorch, got xavier/);
});

t.test('landmark skips: the branch joins the trunk\'s two finer maps at any input size, only its joins are added, and a checkpoint remembers them', async (t) => {
  const e = await gpuEngine(t);
  for (const name of ['fashionnet', 'new_fashionnet'] as const) {
    const entries = (config: { landmarkSkips?: boolean }) => {
      const net = createNet(e, { net: name, categories: 3, attributes: 4, width: 1 / 8, seed: 1, headWidth: 1 / 4, ...config });
      const all = new Map(net.stateEntries().map((s) => [s.name, s.shape.join(',')]));
      net.dispose();
      return all;
    };
    const plain = entries({}), joined = entries({ landmarkSkips: true });
    const added = [...joined.keys()].filter((n) => !plain.has(n));
    // New FashionNet: layer1 (64 x 4 x 1/8 = 32 channels) and the stem (8); FashionNet: conv3_3 (32) and conv2_2 (16);
    // into the branch's first and second upsamplings (64 and 32 x 1/4: 16 and 8 channels).
    const finer = name === 'new_fashionnet' ? [32, 8] : [32, 16];
    t.same(added.sort(), ['landmarks.skip0.weight', 'landmarks.skip1.weight'], `${name}: two 1x1 joins, no bias (the upsampling has one)`);
    t.equal(joined.get('landmarks.skip0.weight'), `16,${finer[0]},1,1`, `${name}: the first join`);
    t.equal(joined.get('landmarks.skip1.weight'), `8,${finer[1]},1,1`, `${name}: the second join`);
    t.same([...plain].filter(([n, shape]) => joined.get(n) !== shape), [], `${name}: every other tensor as without them`);
    const net = createNet(e, { net: name, categories: 3, attributes: 4, width: 1 / 8, seed: 1, landmarkSkips: true }).setTraining(false);
    // 44: the trunk's strided layers round up (22, 11, 6) where the branch doubles (12): the join resizes.
    for (const size of [32, 44]) {
      const x = e.tensor(randn(2 * 3 * size * size, size), [2, 3, size, size]);
      const out = e.tidy(() => e.noGrad(() => net.forward(x)));
      t.same(out.heatmaps?.shape, [2, 8, size, size], `${name} at ${size}x${size}: heatmaps the size of the input`);
      t.ok((await out.heatmaps!.read()).every(Number.isFinite), `${name} at ${size}x${size}: finite`);
      for (const y of [out.category, out.attributes, out.heatmaps, x]) y?.dispose();
    }
    const x = e.tensor(randn(2 * 3 * 32 * 32, 7), [2, 3, 32, 32]);
    const before = e.tidy(() => e.noGrad(() => net.forward(x)));
    const bytes = await saveCheckpoint(net, {});
    const { net: back, meta } = await loadCheckpoint(e, bytes, 'skips.safetensors');
    t.equal(meta.config.landmarkSkips, true, `${name}: the checkpoint records the skips`);
    const after = e.tidy(() => e.noGrad(() => back.setTraining(false).forward(x)));
    t.same(await after.heatmaps!.read(), await before.heatmaps!.read(), `${name}: the reloaded network gives the same heatmaps`);
    const { tensors, metadata } = parseSafetensors(bytes);
    const without = serializeSafetensors(tensors, { ...metadata, config: JSON.stringify({ ...meta.config, landmarkSkips: false }) });
    await t.rejects(loadCheckpoint(e, without, 'without.safetensors'), /landmarks\.skip0\.weight/, `${name}: a checkpoint whose metadata drops the skips names the tensors left over`);
    const word = serializeSafetensors(tensors, { ...metadata, config: JSON.stringify({ ...meta.config, landmarkSkips: 'yes' }) });
    await t.rejects(loadCheckpoint(e, word, 'word.safetensors'), /word.safetensors: its metadata's landmarkSkips must be true or false, got "yes"/);
    for (const y of [before.category, before.attributes, before.heatmaps, after.category, after.attributes, after.heatmaps, x]) y?.dispose();
    back.dispose();
    net.dispose();
  }
  t.throws(() => createNet(e, { net: 'cloth_resnet_a', categories: 3, attributes: 0, width: W, landmarkSkips: true }), /landmark skips need a landmark network \(fashionnet, new_fashionnet\), not cloth_resnet_a/);
});

t.test('VGG BatchNorm (FashionNet): torchvision vgg16_bn\'s layers and names, normalized activations, and a checkpoint remembers it (its gradients: the finite-difference test above)', async (t) => {
  const e = await gpuEngine(t);
  const names = (config: { vggBatchNorm?: boolean }) => {
    const net = createNet(e, { net: 'fashionnet', categories: 3, attributes: 4, width: W, seed: 1, ...config });
    const all = net.stateEntries().filter((s) => s.name.startsWith('features.')).map((s) => s.name);
    net.dispose();
    return all;
  };
  // torchvision's vgg16_bn: conv, bn, relu per layer, max-pools at 6, 13, 23, 33, 43.
  const convs = [0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40];
  const want = convs.flatMap((i) => [`features.${i}.weight`, `features.${i}.bias`, `features.${i + 1}.weight`, `features.${i + 1}.bias`, `features.${i + 1}.running_mean`, `features.${i + 1}.running_var`]);
  t.same(names({ vggBatchNorm: true }).sort(), want.sort(), 'the trunk\'s tensors are vgg16_bn\'s, by name');
  t.same(names({}).filter((n) => n.endsWith('running_mean')), [], 'without it: no BatchNorm (the thesis\'s VGG-16)');
  // At full width the trunk holds vgg16_bn's features: VGG-16's 14,714,688 weights and 2 x 4,224 BatchNorm scales and shifts.
  let count = 0;
  e.with({ countOnly: true }, () => {
    const full = createNet(e, { net: 'fashionnet', categories: 3, attributes: 0, width: 1, vggBatchNorm: true });
    count = full.stateEntries().filter((s) => s.trainable && s.name.startsWith('features.')).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
    full.dispose();
  });
  t.equal(count, 14_723_136, 'at width 1: torchvision vgg16_bn.features\' 14,723,136 parameters');

  const x = e.tensor(randn(4 * 3 * 64 * 64, 9), [4, 3, 64, 64]).keep();
  for (const stemStride of [2, 1] as const) {
    const net = createNet(e, { net: 'fashionnet', categories: 3, attributes: 4, width: W, seed: 2, stemStride, vggBatchNorm: true, landmarkSkips: true });
    // In training the first BatchNorm normalizes its convolution's output over the batch (its
    // scale 1 and shift 0 as it starts), and its ReLU follows: features.1 gives relu((y - mean) /
    // sqrt(var + eps)) of features.0's y, per channel. So the BatchNorm is in the path, not just in the state.
    const kept: Tensor[] = [];
    const sides: number[] = [];
    const removeConv = net.find('features.0').onForward((out) => kept.push((out as Tensor).keep()));
    const removeFirst = net.find('features.1').onForward((out) => kept.push((out as Tensor).keep()));
    const removeLast = net.find('features.40').onForward((out) => sides.push((out as Tensor).shape[3]!));
    const out = e.tidy(() => e.noGrad(() => net.setTraining(true).forward(x)));
    t.same(out.heatmaps?.shape, [4, 8, 64, 64], `stem stride ${stemStride}: heatmaps the size of the input`);
    t.ok((await outputs(out)).every(Number.isFinite), `stem stride ${stemStride}: finite`);
    t.same(sides, [stemStride === 2 ? 4 : 8], `stem stride ${stemStride}: conv5_3's map is ${stemStride === 2 ? 4 : 8} wide`);
    t.equal(kept.length, 2, 'features.0 and features.1 each ran once');
    const [y, normed] = await Promise.all(kept.map((k) => k.read()));
    const channels = kept[0]!.shape[1]!, plane = 64 * 64, N = 4;
    let worst = 0;
    for (let ch = 0; ch < channels; ch++) {
      const at = (n: number, i: number) => (n * channels + ch) * plane + i;
      let sum = 0, sq = 0;
      for (let n = 0; n < N; n++) for (let i = 0; i < plane; i++) sum += y![at(n, i)]!;
      const mean = sum / (N * plane);
      for (let n = 0; n < N; n++) for (let i = 0; i < plane; i++) sq += (y![at(n, i)]! - mean) ** 2;
      const scale = 1 / Math.sqrt(sq / (N * plane) + 1e-5);
      for (let n = 0; n < N; n++) for (let i = 0; i < plane; i++) worst = Math.max(worst, Math.abs(normed![at(n, i)]! - Math.max(0, (y![at(n, i)]! - mean) * scale)));
    }
    t.ok(worst < 1e-3, `stem stride ${stemStride}: features.1 is the ReLU of features.0 normalized over the batch, channel by channel (worst difference ${worst.toExponential(2)})`);
    for (const k of kept) k.dispose();
    removeConv();
    removeFirst();
    removeLast();
    for (const y of [out.category, out.attributes, out.heatmaps]) y?.dispose();
    net.dispose();
  }

  const net = createNet(e, { net: 'fashionnet', categories: 3, attributes: 4, width: W, seed: 4, vggBatchNorm: true }).setTraining(false);
  randomizeBatchNorms(e, net, 11);
  const before = e.tidy(() => e.noGrad(() => net.forward(x)));
  const bytes = await saveCheckpoint(net, {});
  const { net: back, meta } = await loadCheckpoint(e, bytes, 'vggbn.safetensors');
  t.equal(meta.config.vggBatchNorm, true, 'the checkpoint records it');
  const after = e.tidy(() => e.noGrad(() => back.setTraining(false).forward(x)));
  t.same(await after.attributes!.read(), await before.attributes!.read(), 'the reloaded network gives the same outputs (its BatchNorms\' statistics with it)');
  const { tensors, metadata } = parseSafetensors(bytes);
  const without = serializeSafetensors(tensors, { ...metadata, config: JSON.stringify({ ...meta.config, vggBatchNorm: false }) });
  await t.rejects(loadCheckpoint(e, without, 'without.safetensors'), /features\.1\./, 'a checkpoint whose metadata drops it names the tensors that no longer fit');
  const word = serializeSafetensors(tensors, { ...metadata, config: JSON.stringify({ ...meta.config, vggBatchNorm: 'yes' }) });
  await t.rejects(loadCheckpoint(e, word, 'word.safetensors'), /word.safetensors: its metadata's vggBatchNorm must be true or false, got "yes"/);
  for (const y of [before.category, before.attributes, before.heatmaps, after.category, after.attributes, after.heatmaps, x]) y?.dispose();
  back.dispose();
  net.dispose();
  t.throws(() => createNet(e, { net: 'new_fashionnet', categories: 3, attributes: 0, width: W, vggBatchNorm: true }), /vggBatchNorm is FashionNet's \(a VGG trunk\), not new_fashionnet's/);
});

t.test('head width: the landmark and attention branches take their own width, the trunk keeps its own, and a checkpoint remembers it', async (t) => {
  const e = await gpuEngine(t);
  const x = e.tensor(randn(2 * 3 * 32 * 32, 5), [2, 3, 32, 32]).keep();
  for (const name of ['fashionnet', 'new_fashionnet'] as const) {
    const shapes = (config: { headWidth?: number }) => {
      const net = createNet(e, { net: name, categories: 3, attributes: 4, width: 1 / 8, seed: 1, ...config });
      const all = new Map(net.stateEntries().map((s) => [s.name, s.shape.join(',')]));
      net.dispose();
      return all;
    };
    const narrow = shapes({}), wide = shapes({ headWidth: 1 / 2 });
    const branch = (n: string) => n.startsWith('landmarks.') || n.startsWith('attention.');
    const changed = [...narrow.keys()].filter((n) => narrow.get(n) !== wide.get(n));
    t.ok(changed.length > 0 && changed.every(branch), `${name}: only branch tensors change shape (${changed.length} of them)`);
    const rest = [...narrow.keys()].filter((n) => !branch(n));
    t.same(rest.map((n) => wide.get(n)), rest.map((n) => narrow.get(n)), `${name}: the trunk and heads are the same`);
    // The branch's first layer, a 1x1 from the trunk's features to 32 x width channels: 4 at width 1/8, 16 at 1/2.
    t.equal(narrow.get('landmarks.0.weight')!.split(',')[0], '4', `${name}: the branch at the trunk's width 1/8`);
    t.equal(wide.get('landmarks.0.weight')!.split(',')[0], '16', `${name}: the branch at head width 1/2`);
    t.same(shapes({ headWidth: 1 / 8 }), narrow, `${name}: head width equal to the width is the network without one`);
  }
  const net = createNet(e, { net: 'new_fashionnet', categories: 3, attributes: 4, width: 1 / 8, seed: 1, headWidth: 1 / 2 }).setTraining(false);
  const before = e.tidy(() => e.noGrad(() => net.forward(x)));
  t.same(before.heatmaps?.shape, [2, 8, 32, 32], 'heatmaps the size of the input');
  const bytes = await saveCheckpoint(net, {});
  const { net: back, meta } = await loadCheckpoint(e, bytes, 'head.safetensors');
  t.equal(meta.config.headWidth, 1 / 2, 'the checkpoint records the head width');
  const after = e.tidy(() => e.noGrad(() => back.setTraining(false).forward(x)));
  t.same(await after.heatmaps!.read(), await before.heatmaps!.read(), 'and the reloaded network gives the same heatmaps');
  for (const y of [before.category, before.attributes, before.heatmaps, after.category, after.attributes, after.heatmaps]) y?.dispose();
  const { tensors, metadata } = parseSafetensors(bytes);
  const lying = serializeSafetensors(tensors, { ...metadata, config: JSON.stringify({ ...meta.config, headWidth: 0 }) });
  await t.rejects(loadCheckpoint(e, lying, 'lying.safetensors'), /lying.safetensors: its metadata's headWidth must be in \(0, 4\], got 0/);
  const grouped = serializeSafetensors(tensors, { ...metadata, config: JSON.stringify({ ...meta.config, attributeGroups: [1, 2] }) });
  await t.rejects(loadCheckpoint(e, grouped, 'grouped.safetensors'), /grouped.safetensors: its metadata's attributeGroups must list a group for each of the 4 attributes, got \[1,2\]/);
  t.throws(() => createNet(e, { net: 'fashionnet', categories: 3, attributes: 0, width: W, headWidth: -1 }), /head width must be in \(0, 4\], got -1/);
  back.dispose();
  net.dispose();
  x.dispose();
});
