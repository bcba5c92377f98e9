import t from 'tap';
import * as ops from '../src/autograd/ops.js';
import { backward, record } from '../src/autograd/tape.js';
import { gpuEngine } from './helpers/gpu.js';

t.test('shared subexpressions get their gradients summed once', async (t) => {
  const e = await gpuEngine(t);
  const x = e.tensor([1, -2, 3], [3], 'x');
  x.requiresGrad = true;
  // y = relu(x) is used three times: z = sum(y * y + y) -> dz/dx = (2y + 1) * [x > 0]
  const y = ops.relu(x);
  const z = ops.sumAll(ops.add(ops.mul(y, y), y));
  backward(z);
  t.same(Array.from(await x.grad!.read()), [3, 0, 7]);
  t.same(Array.from(await z.read()), [1 + 1 + 9 + 3]);

  // x + x: both operands are the same tensor
  x.grad!.dispose();
  x.grad = null;
  backward(ops.sumAll(ops.add(x, x)));
  t.same(Array.from(await x.grad!.read()), [2, 2, 2]);
});

t.test('gradients accumulate across backward calls until cleared', async (t) => {
  const e = await gpuEngine(t);
  const w = e.tensor([0.5, -1], [2], 'w');
  w.requiresGrad = true;
  const a = e.tensor([1, 2], [2]);
  const b = e.tensor([1, 2], [2]);
  backward(ops.sumAll(ops.add(w, a))); // the grad is a view shared with a's
  backward(ops.sumAll(ops.mul(w, b)));
  t.same(Array.from(await w.grad!.read()), [2, 3]);
  t.notOk(a.grad, 'constants get no gradient');
});

t.test('no-grad mode records nothing', async (t) => {
  const e = await gpuEngine(t);
  const w = e.tensor([1, 2], [2]);
  w.requiresGrad = true;
  const out = e.noGrad(() => ops.mul(w, w));
  t.notOk(out.requiresGrad);
  t.equal(out.node, null);
  t.throws(() => backward(ops.sumAll(out)), /does not depend on anything that requires grad/);
});

t.test('a training step returns every intermediate buffer to the pool', async (t) => {
  const e = await gpuEngine(t);
  const w = e.tensor(Float32Array.from({ length: 64 * 32 }, (_, i) => Math.sin(i)), [32, 64], 'w').keep();
  w.requiresGrad = true;
  const step = () =>
    e.tidy(() => {
      const x = e.full([8, 64], 0.1);
      const h = ops.relu(ops.linear(x, w));
      const loss = ops.mean(ops.mul(h, h), [0, 1]);
      backward(loss);
      w.grad!.dispose();
      w.grad = null;
    });
  step();
  const allocated = e.stats.allocatedBytes;
  const created = e.stats.buffersCreated;
  for (let i = 0; i < 3; i++) step();
  await e.sync();
  t.equal(e.stats.allocatedBytes, allocated, 'no buffer stays allocated after a step');
  t.equal(e.stats.buffersCreated, created, 'later steps create no buffers: the pool serves them');
});

t.test('backward needs a scalar', async (t) => {
  const e = await gpuEngine(t);
  const w = e.tensor([1, 2], [2]);
  w.requiresGrad = true;
  t.throws(() => backward(ops.mul(w, w)), /needs a scalar/);
});

t.test("backward frees each intermediate gradient once it is passed on: the step's high-water mark", async (t) => {
  const e = await gpuEngine(t);
  // A chain of 12 ReLUs over 256 KiB tensors: the forward pass keeps all 12 activations either
  // way; backward, done eagerly, holds about two gradients at a time - without the eager free
  // (tape.ts: g.dispose() after node.backward), all 12 until the enclosing tidy() ends.
  const depth = 12, shape = [256, 256], bytes = 256 * 256 * 4;
  e.tidy(() => {
    const x = e.full(shape, 0.5);
    x.requiresGrad = true;
    let y = x;
    for (let i = 0; i < depth; i++) y = ops.relu(y);
    const loss = ops.sumAll(y);
    e.resetPeak();
    const before = e.stats.allocatedBytes;
    backward(loss);
    const extra = e.stats.peakBytes - before;
    t.ok(extra <= 4 * bytes, `backward's peak is ${(extra / bytes).toFixed(1)} tensors above the forward pass (at most 4; ${depth} without eager freeing)`);
    x.grad?.dispose();
  });
  t.ok(e.stats.peakBytes >= e.stats.allocatedBytes, 'the high-water mark is never below what is live');
});

t.test('the tape undoes broadcasting for every op, and names a backward that gives a wrong shape', async (t) => {
  const e = await gpuEngine(t);
  // A custom op whose backward hands back the output's gradient as it is, [2, 3], for inputs
  // [2, 3] and [3] (a broadcast row) and [1, 1]: the tape sums each down to its input.
  const a = e.tensor(new Float32Array(6).fill(1), [2, 3]), row = e.tensor(new Float32Array([1, 2, 3]), [3]), one = e.tensor(new Float32Array([1]), [1, 1]);
  for (const x of [a, row, one]) x.requiresGrad = true;
  const out = record(e.zeros([2, 3]), 'custom', [a, row, one], (g) => [g.view(g.shape), g.view(g.shape), g.view(g.shape)]);
  backward(out, e.tensor(Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]));
  t.same([...(await a.grad!.read())], [1, 2, 3, 4, 5, 6], 'same shape: as is');
  t.same([...(await row.grad!.read())], [5, 7, 9], 'a broadcast row: summed over the rows');
  t.same([...(await one.grad!.read())], [21], '[1, 1]: summed over everything');
  t.same(row.grad!.shape, [3]);
  const bad = e.tensor(new Float32Array(6), [3, 2]);
  bad.requiresGrad = true;
  const wrong = record(e.zeros([2, 3]), 'wrong_op', [bad], (g) => [g.view(g.shape)]);
  t.throws(() => backward(wrong, e.full([2, 3], 1)), /backward of wrong_op gave a gradient .*\[2, ?3\].* for input .*\[3, ?2\]/);
});
