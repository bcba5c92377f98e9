// A training step's memory: what backward saves (savedBytes), the tape freeing the graph as it
// goes (backward's `release`), dry runs that count without allocating (countOnly), and the step's
// peak against its analytic floor for all five networks at 224x224 (bench fit).
import t from 'tap';
import { largestBatch, stepMemory } from '../bench/fit.js';
import { type NetBenchOptions, benchNet } from '../bench/net.js';
import * as ops from '../src/autograd/ops.js';
import { backward, savedBytes } from '../src/autograd/tape.js';
import { NET_NAMES, createNet } from '../src/nets/models.js';
import { syntheticBatch } from '../src/run/tune.js';
import { THESIS_LOSS } from '../src/train/losses.js';
import { Trainer } from '../src/train/step.js';
import { gpuEngine } from './helpers/gpu.js';
import { randn } from './helpers/random.js';

t.test('savedBytes counts what each backward reads, once per buffer, parameters excepted', async (t) => {
  const e = await gpuEngine(t);
  e.tidy(() => {
    const x = e.tensor(randn(12, 1), [3, 4], 'x');
    x.requiresGrad = true;
    const w = e.tensor(randn(12, 2), [3, 4], 'w');
    w.requiresGrad = true;
    // relu saves its input x (48 bytes); mul saves both operands: the relu's output (48) and w (a
    // parameter: the optimizer's state counts it); add and sumAll save nothing.
    const y = ops.relu(x);
    const z = ops.sumAll(ops.add(ops.mul(y, w), y));
    t.equal(savedBytes(z), 48 + 48);
    // y = relu(x) saved twice by mul (once per operand): one buffer, counted once, beside relu's x.
    t.equal(savedBytes(ops.sumAll(ops.mul(y, y))), 48 + 48);
  });
});

t.test('backward with release frees the graph as it goes, and gives the same gradients', async (t) => {
  const e = await gpuEngine(t);
  const grads = async (release: boolean) =>
    e.tidyAsync(async () => {
      const x = e.tensor(randn(2 * 3 * 6 * 6, 3), [2, 3, 6, 6], 'x');
      const w1 = e.tensor(randn(4 * 3 * 9, 4, 0.3), [4, 3, 3, 3], 'w1').keep();
      const w2 = e.tensor(randn(4 * 4 * 9, 5, 0.3), [4, 4, 3, 3], 'w2').keep();
      for (const p of [w1, w2]) p.requiresGrad = true;
      const s = (c: number) => ({ gamma: e.full([c], 1).keep(), beta: e.zeros([c]).keep(), runningMean: e.zeros([c]).keep(), runningVar: e.full([c], 1).keep(), eps: 1e-5, momentum: 0.1 });
      const [s1, s2] = [s(4), s(4)];
      const h = ops.batchNorm2d(ops.conv2d(x, w1, undefined, { stride: 1, pad: 1 }), s1, true, true);
      const y = ops.batchNorm2d(ops.conv2d(h, w2, undefined, { stride: 1, pad: 1 }), s2, true, true, h);
      const loss = ops.sumAll(ops.mul(y, y));
      const floor = savedBytes(loss);
      const before = e.stats.allocatedBytes;
      backward(loss, undefined, release ? { release: { keep: [] } } : {});
      const freed = before - e.stats.allocatedBytes;
      const values = [await w1.grad!.read(), await w2.grad!.read(), await loss.read()];
      for (const p of [w1, w2, s1.gamma, s1.beta, s1.runningMean, s1.runningVar, s2.gamma, s2.beta, s2.runningMean, s2.runningVar]) {
        p.grad?.dispose();
        p.dispose();
      }
      return { values, freed, floor, lossAlive: !loss.disposed };
    });
  const kept = await grads(false), released = await grads(true);
  for (let i = 0; i < 3; i++) t.same(Array.from(released.values[i]!), Array.from(kept.values[i]!), `gradient ${i} unchanged by release`);
  t.ok(released.lossAlive, 'the root stays');
  // Everything saved went back during backward (the gradients created meanwhile are far smaller).
  t.ok(released.freed - kept.freed >= released.floor - 4096, `release freed ${released.freed - kept.freed} more bytes (saved: ${released.floor})`);
});

t.test('dropValues frees an intermediate at once and keeps it in the graph', async (t) => {
  const e = await gpuEngine(t);
  await e.tidyAsync(async () => {
    const x = e.tensor([1, -2, 3, -4], [4], 'x');
    x.requiresGrad = true;
    const a = ops.scale(x, 2); // read by the add only; no backward reads it
    const before = e.stats.allocatedBytes;
    const y = ops.relu(ops.add(a, x));
    a.dropValues();
    t.equal(e.stats.allocatedBytes, before + 2 * 256 - 256, 'its buffer went back to the pool');
    await t.rejects(a.read(), /read after its values were dropped/);
    backward(ops.sumAll(y));
    t.same(Array.from(await x.grad!.read()), [3, 0, 3, 0], 'and the gradient still flows through it');
  });
});

t.test('a fixed-shape training step reuses the same buffers every time: no buffer and no bind group is created after the first', async (t) => {
  const e = await gpuEngine(t);
  const net = createNet(e, { net: 'cloth_repvgg', categories: 50, attributes: 1000, width: 1 / 16, seed: 1 });
  const trainer = new Trainer(net, { ...THESIS_LOSS }, 1e-4);
  const batch = syntheticBatch(net, 4, 32);
  const counts: [number, number][] = [];
  for (let k = 0; k < 4; k++) {
    const terms = trainer.step(batch, k);
    await terms.total.read();
    for (const x of new Set(Object.values(terms))) x?.dispose();
    counts.push([e.stats.buffersCreated, e.stats.bindGroupsCreated]);
  }
  t.same(counts[3], counts[0], `buffers and bind groups created by the end of steps 1-4: ${JSON.stringify(counts)}`);
  trainer.dispose();
  net.dispose();
});

t.test('a dry run (countOnly) counts a training step as a real one allocates it', async (t) => {
  const e = await gpuEngine(t);
  const shape = { net: 'cloth_resnet_a', width: 1 / 16, size: 32, batch: 4, precision: 'f32' } as const;
  const dry = stepMemory(e, shape);
  const buffersBefore = e.stats.buffersCreated;
  stepMemory(e, shape);
  t.equal(e.stats.buffersCreated, buffersBefore, 'a dry run creates no buffers');

  const base = e.stats.allocatedBytes;
  const net = createNet(e, { net: shape.net, categories: 50, attributes: 1000, width: shape.width, seed: 1 });
  const trainer = new Trainer(net, { ...THESIS_LOSS }, 1e-4);
  const batch = syntheticBatch(net, shape.batch, shape.size);
  let saved = 0;
  for (let k = 0; k < 2; k++) {
    if (k === 1) e.resetPeak();
    const terms = trainer.step(batch, k, k === 1 ? (total) => (saved = savedBytes(total)) : undefined);
    await terms.total.read();
    for (const x of new Set(Object.values(terms))) x?.dispose();
  }
  t.equal(dry.peakBytes, e.stats.peakBytes - base, 'the same peak as the real step');
  t.equal(dry.activationBytes, saved, 'the same saved activations');
  trainer.dispose();
  net.dispose();
  t.equal(e.stats.allocatedBytes, base, 'the step and its state freed everything');

  const counted = e.with({ countOnly: true }, () => e.zeros([4]));
  await t.rejects(counted.read(), /made in a dry run \(countOnly\)/);
  counted.dispose();
});

t.test('every network trains at 224x224 (width 1, batch 8) within 1.3x of its analytic memory floor, f32 and mixed, and fits a budget', async (t) => {
  const e = await gpuEngine(t);
  for (const net of NET_NAMES) {
    const m = stepMemory(e, { net, width: 1, size: 224, batch: 8, precision: 'f32' });
    const ratio = m.peakBytes / m.floorBytes;
    t.ok(m.activationBytes > 0 && m.stateBytes > 0, `${net}: a floor of ${(m.floorBytes / 2 ** 20).toFixed(0)} MiB`);
    t.ok(ratio >= 1 && ratio <= 1.3, `${net}: peak / floor = ${ratio.toFixed(3)}`);
  }
  // Mixed precision keeps what backward saves in f16: about half the activations' bytes.
  for (const net of NET_NAMES) {
    const [f, m] = (['f32', 'mixed'] as const).map((precision) => stepMemory(e, { net, width: 1, size: 224, batch: 8, precision }));
    t.ok(m!.activationBytes <= 0.6 * f!.activationBytes, `${net}: saved activations ${(m!.activationBytes / 2 ** 20).toFixed(0)} MiB mixed, ${(f!.activationBytes / 2 ** 20).toFixed(0)} MiB f32`);
    t.ok(m!.peakBytes / m!.floorBytes <= 1.3, `${net} mixed: peak / floor = ${(m!.peakBytes / m!.floorBytes).toFixed(3)}`);
  }
  // The largest batch within a budget fits, and one more does not.
  const budget = 600 * 2 ** 20;
  const shape = { net: 'cloth_repvgg', width: 0.5, size: 128, precision: 'f32' } as const;
  const { batch } = largestBatch(e, shape, budget);
  t.ok(batch >= 2, `batch ${batch} fits in 600 MiB`);
  t.ok(stepMemory(e, { ...shape, batch }).peakBytes <= budget);
  t.ok(stepMemory(e, { ...shape, batch: batch + 1 }).peakBytes > budget);
  t.equal(largestBatch(e, shape, 2 ** 20).batch, 0, 'nothing fits in 1 MiB');
});

t.test('bench net reports the step against its memory floor and the adapter\'s FMA peak', async (t) => {
  const e = await gpuEngine(t);
  const lines: string[] = [];
  const r = (await benchNet(e, { net: 'cloth_repvgg', width: 1 / 16, size: 32, batch: 4, steps: 1, torch: false, log: (s) => lines.push(s) })) as Record<string, number>;
  t.ok(r.activationBytes! > 0 && r.floorBytes === r.stateBytes! + r.activationBytes!, 'floor = state + saved activations');
  t.ok(r.peakBytes! / r.floorBytes! <= 1.3, `peak / floor ${(r.peakBytes! / r.floorBytes!).toFixed(2)}`);
  t.ok(r.stepFlops! > 0 && r.fractionOfPeak! > 0 && r.fractionOfPeak! < 1, `${(100 * r.fractionOfPeak!).toFixed(1)}% of the FMA peak`);
  t.match(lines.join('\n'), /analytic floor of [\d.]+ MB = [\d.]+x/);
  t.match(lines.join('\n'), /% of this adapter's FMA peak/);
});

t.test('bench net times the landmark network as the landmark job trains it (its branches, joins and objective)', async (t) => {
  const e = await gpuEngine(t);
  const run = async (o: Partial<NetBenchOptions>) => {
    const lines: string[] = [];
    const r = await benchNet(e, { net: 'new_fashionnet', width: 1 / 16, size: 32, batch: 2, steps: 1, torch: false, log: (s) => lines.push(s), ...o });
    return { r: r as { landmarkLoss: string; landmarkSkips: boolean; headWidth: number; parameters: number; families: Record<string, { count: number }> }, text: lines.join('\n') };
  };
  const thesis = await run({});
  t.same([thesis.r.landmarkLoss, thesis.r.landmarkSkips, thesis.r.headWidth], ['ssim', false, 1 / 16], "the thesis's branch and objective unless told");
  const job = await run({ headWidth: 1 / 4, landmarkSkips: true, landmarkLoss: 'softargmax' });
  t.same([job.r.landmarkLoss, job.r.landmarkSkips, job.r.headWidth], ['softargmax', true, 1 / 4]);
  const built = (landmarkSkips: boolean) => {
    const net = createNet(e, { net: 'new_fashionnet', categories: 50, attributes: 1000, width: 1 / 16, headWidth: 1 / 4, landmarkSkips });
    const n = net.parameterCount();
    net.dispose();
    return n;
  };
  t.equal(job.r.parameters, built(true), 'the network timed is the joined one');
  t.ok(built(true) > built(false), 'the joins add weights');
  t.ok(job.r.families.losses!.count > 0, 'the soft-argmax counts as a loss');
  t.match(job.text, /branches 0\.25, joined to the trunk's finer maps, softargmax loss/);
});
