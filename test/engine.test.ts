import t from 'tap';
import { foldWorkgroups, sizeClass } from '../src/engine/engine.js';
import * as ops from '../src/autograd/ops.js';
import { gpuEngine } from './helpers/gpu.js';

t.test('tensors round-trip, views share storage, pool reuses buffers', async (t) => {
  const e = await gpuEngine(t);
  const x = e.tensor([1, 2, 3, 4, 5, 6], [2, 3], 'x');
  t.same(Array.from(await x.read()), [1, 2, 3, 4, 5, 6]);
  const v = x.view([3, -1]);
  t.same(v.shape, [3, 2]);
  t.equal(v.storage, x.storage, 'a view does not copy');
  t.throws(() => x.view([4, 2]), /cannot view tensor "x" \[2, 3\]/);
  x.dispose();
  t.same(Array.from(await v.read()), [1, 2, 3, 4, 5, 6], 'the view keeps the buffer alive');
  v.dispose();
  const created = e.stats.buffersCreated;
  const y = e.zeros([2, 3]);
  t.equal(e.stats.buffersCreated, created, 'a same-size tensor reuses the pooled buffer');
  t.same(Array.from(await y.read()), [0, 0, 0, 0, 0, 0]);
  const z = e.full([1000], 2.5);
  t.ok((await z.read()).every((v) => v === 2.5));
  t.throws(() => e.tensor([1, 2, 3], [2, 2], 'w'), /3 values given for tensor "w" of shape \[2, 2\]/);
  t.throws(() => e.empty([2, -3], 'bad'), /impossible shape \[2, -3\] for tensor "bad"/);
});

t.test('tidy disposes what a scope made except its result', async (t) => {
  const e = await gpuEngine(t);
  const before = e.stats.allocatedBytes;
  const kept = e.tidy(() => {
    e.zeros([64]);
    e.zeros([128]);
    return e.full([32], 1);
  });
  t.ok(!kept.disposed);
  t.equal(e.stats.allocatedBytes - before, sizeClass(32 * 4), 'only the result stays allocated');
  kept.dispose();
  t.equal(e.stats.allocatedBytes, before);
});

t.test('one submission per step: dispatches are recorded, not submitted', async (t) => {
  const e = await gpuEngine(t);
  const x = e.zeros([16]);
  e.flush();
  const submits = e.stats.submits;
  for (let i = 0; i < 10; i++) e.fill(x, i);
  t.equal(e.stats.submits, submits, 'nothing submitted while recording');
  t.same(Array.from(await x.read()).slice(0, 2), [9, 9]);
  t.equal(e.stats.submits, submits + 1, 'the read submits the whole step at once');
});

t.test('readMany: several tensors in one copy-back, with the work before it, in one submission', async (t) => {
  const e = await gpuEngine(t);
  const a = e.tensor([1, 2, 3], [3]), b = e.zeros([0]), c = e.full([2, 2], 7);
  e.flush();
  const submits = e.stats.submits;
  e.fill(a, 5);
  const reading = e.readMany([a, b, c]);
  a.dispose(); // the copies are recorded already: the tensors may go back to the pool at once
  t.equal(e.stats.submits, submits + 1, 'one submission for the fill and the copies');
  const [va, vb, vc] = await reading;
  t.same(Array.from(va!), [5, 5, 5]);
  t.equal(vb!.length, 0);
  t.same(Array.from(vc!), [7, 7, 7, 7]);
});

t.test('pure helpers', async (t) => {
  t.same(foldWorkgroups(10), [10, 1, 1]);
  const [x, y] = foldWorkgroups(200000);
  t.ok(x <= 65535 && x * y >= 200000);
  t.equal(sizeClass(1), 256);
  t.equal(sizeClass(65537) % 4, 0);
  t.ok(sizeClass(1_000_000) >= 1_000_000 && sizeClass(1_000_000) < 1_000_000 * 1.13);
});

t.test('timestamp profiling names each kernel', async (t) => {
  const e = await gpuEngine(t);
  t.ok(e.hasTimestamps, 'lavapipe has timestamp-query');
  const x = e.zeros([1 << 16]);
  const timings = await e.profileKernels(() => {
    e.fill(x, 1);
    e.fill(x, 2);
  });
  t.equal(timings.length, 2);
  t.equal(timings[0]!.kernel, 'fill');
  t.ok(timings.every((k) => k.ms >= 0 && k.ms < 1000));
});

t.test('profiles attribute each dispatch to the layer that recorded it, forward and backward', async (t) => {
  const e = await gpuEngine(t);
  const { createNet } = await import('../src/nets/models.js');
  const { layerBlock, layerProfile } = await import('../bench/net.js');
  const ops = await import('../src/autograd/ops.js');
  const { backward } = await import('../src/autograd/tape.js');
  const net = createNet(e, { net: 'cloth_resnet_a', categories: 4, attributes: 0, width: 0.125, seed: 1 });
  const x = e.full([2, 3, 32, 32], 0.5);
  const timings = await e.profileKernels(() =>
    e.tidy(() => {
      const out = net.forward(x);
      backward(ops.sum(out.category!, [0, 1]));
    }),
  );
  const scopes = new Set(timings.map((k) => k.scope));
  for (const s of ['conv1', 'bn1', 'layer1.0.conv1', 'layer1.0.bn1', 'layer4.2.conv3', 'category']) {
    t.ok(scopes.has(s), `forward of ${s} attributed`);
    t.ok(scopes.has(`${s} (backward)`), `backward of ${s} attributed`);
  }
  t.ok(timings.every((k) => k.ms >= 0), 'every dispatch timed');
  t.equal(layerBlock('layer2.3.conv1 (backward)'), 'layer2.3');
  t.equal(layerBlock('features.10'), 'features.10');
  t.equal(layerBlock('category'), 'category');
  t.match(layerBlock(''), /outside any layer/);
  const blocks = layerProfile(timings, layerBlock);
  const total = timings.reduce((s, k) => s + k.ms, 0);
  t.ok(Math.abs(blocks.reduce((s, b) => s + b.forward + b.backward, 0) - total) < 1e-6 * Math.max(1, total), 'the blocks add up to the step');
  t.ok(blocks.find((b) => b.key === 'layer1.0')!.backward > 0, 'layer1.0 has backward time');
  net.dispose();
});

t.test('modes are scoped: engine.with sets them for a call and restores them however it ends', async (t) => {
  const e = await gpuEngine(t);
  t.same(e.modes, { mixedPrecision: false, gradientScaling: null, countOnly: false, traceShapes: null, grad: true }, 'the defaults');
  const dispatches = e.stats.dispatches;
  const counted = e.with({ countOnly: true }, () => {
    e.zeros([8]).dispose();
    // Nested: the inner call changes grad only, and the outer countOnly holds inside it.
    return e.noGrad(() => [e.modes.countOnly, e.modes.grad]);
  });
  t.same(counted, [true, false], 'nested modes combine');
  t.equal(e.stats.dispatches, dispatches + 1, 'the fill was counted');
  t.same([e.countOnly, e.modes.grad], [false, true], 'both restored on return');
  t.throws(() => e.with({ countOnly: true }, () => {
    throw new Error('boom');
  }), /boom/);
  t.equal(e.countOnly, false, 'restored when fn throws');
  let resolve!: () => void;
  const pending = e.with({ grad: false }, () => new Promise<void>((r) => (resolve = r)));
  t.equal(e.modes.grad, false, 'an async fn keeps its modes until its promise settles');
  resolve();
  await pending;
  t.equal(e.modes.grad, true, 'and loses them then');
  const traced: unknown[] = [];
  e.with({ traceShapes: (s) => void traced.push(s) }, () => e.tidy(() => ops.matmul(e.zeros([2, 3]), e.zeros([3, 4]))));
  t.equal(traced.length, 1, 'the launchers report shapes while traceShapes is set');
  t.equal(e.traceShapes, null);
  if (!e.hasF16) t.throws(() => e.with({ mixedPrecision: true }, () => 0), /needs the adapter's shader-f16/);
});

t.test('grad mode belongs to the engine: autograd records nothing inside engine.noGrad', async (t) => {
  const e = await gpuEngine(t);
  const w = e.tensor([1, 2], [2]);
  w.requiresGrad = true;
  t.ok(ops.mul(w, w).requiresGrad, 'recorded outside');
  const inside = e.noGrad(() => ops.mul(w, w));
  t.equal(inside.node, null, 'nothing recorded inside');
  t.ok(ops.mul(w, w).requiresGrad, 'recorded again after');
});
