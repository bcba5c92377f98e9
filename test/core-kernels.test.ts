// Every core kernel against a float64 reference on random inputs, shapes chosen to miss the tile
// sizes (GEMM blocks 4x4 per invocation in 16x8 workgroups; reductions 256 per workgroup).
import t from 'tap';
import { ADAM_COUNTER_SIZE, adamBegin, adamCounterValues, adamStep } from '../src/engine/adam.js';
import { Adam, sumOfSquares } from '../src/autograd/optim.js';
import { BINARY, UNARY, accumulate, binary, unary, type BinaryOp, type UnaryOp } from '../src/engine/elementwise.js';
import { matmul } from '../src/engine/gemm.js';
import { reduce, reduceStrategy, reducesLeadingAxes } from '../src/engine/reduce.js';
import { assertClose } from './helpers/close.js';
import { gpuEngine } from './helpers/gpu.js';
import { randn, size, uniform } from './helpers/random.js';
import { binaryRef, matmulRef, reduceRef } from './helpers/reference.js';

const unaryRef: Record<UnaryOp, (x: number) => number> = {
  copy: (x) => x,
  neg: (x) => -x,
  relu: (x) => Math.max(x, 0),
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  exp: Math.exp,
  log: Math.log,
  square: (x) => x * x,
  sqrt: Math.sqrt,
  affine: (x) => 0.5 * x - 2,
};

const binaryRefs: Record<BinaryOp, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  max: Math.max,
  add_relu: (a, b) => Math.max(a + b, 0),
  axpby: (a, b) => 0.5 * a - 2 * b,
  relu_grad: (a, b) => (a > 0 ? b : 0),
  sigmoid_grad: (a, b) => b * a * (1 - a),
  scaled_b: (_a, b) => 0.5 * b,
  equal: (a, b) => (a === b ? 1 : 0),
};

t.test('unary ops', async (t) => {
  const e = await gpuEngine(t);
  // 1237 values: one per invocation; 1236: a vec4 per invocation.
  for (const n of [1237, 1236]) {
    const x = uniform(n, 1, 0.1, 3);
    const xt = e.tensor(x, [n]);
    for (const op of Object.keys(UNARY) as UnaryOp[]) {
      const out = await unary(op, xt, 0.5, -2).read();
      assertClose(t, out, Array.from(x, unaryRef[op]), `unary ${op} (${n} values)`, 1e-5, 1e-5);
    }
  }
  const signed = uniform(1236, 4, -2, 2);
  assertClose(t, await unary('relu', e.tensor(signed, [1236])).read(), Array.from(signed, unaryRef.relu), 'relu of signed values, vec4');
});

t.test('accumulate in place, vec4 and scalar', async (t) => {
  const e = await gpuEngine(t);
  for (const n of [1236, 1237]) {
    const a = uniform(n, 7), x = uniform(n, 8);
    const at = e.tensor(a, [n]);
    accumulate(at, e.tensor(x, [n]), -0.5);
    assertClose(t, await at.read(), Array.from(a, (v, i) => v - 0.5 * x[i]!), `acc += -0.5 x (${n} values)`, 1e-6, 1e-6);
  }
});

t.test('binary ops with broadcasting', async (t) => {
  const e = await gpuEngine(t);
  const cases: [number[], number[]][] = [
    [[5, 7], [5, 7]],
    [[2, 3, 5, 7], [3, 1, 1]],
    [[2, 3, 5, 7], [1]],
    [[4, 1, 3], [5, 1]],
    [[1, 9], [6, 1]],
    [[3, 70000], [70000]],
    [[4, 6], [4, 6]], // same shapes, a multiple of 4: vec4s
  ];
  for (const [as, bs] of cases) {
    const a = uniform(size(as), 2, 0.5, 2), b = uniform(size(bs), 3, 0.5, 2);
    const at = e.tensor(a, as), bt = e.tensor(b, bs);
    for (const op of Object.keys(BINARY) as BinaryOp[]) {
      const out = binary(op, at, bt, 0.5, -2);
      const expected = binaryRef(Float64Array.from(a), as, Float64Array.from(b), bs, out.shape as number[], binaryRefs[op]);
      assertClose(t, await out.read(), expected, `${op} ${JSON.stringify(as)} ${JSON.stringify(bs)}`, 1e-5, 1e-5);
      out.dispose();
    }
  }
  // The masks and clips with signed values, vec4 and scalar.
  for (const n of [24, 23]) {
    const a = uniform(n, 5, -2, 2), b = uniform(n, 6, -2, 2);
    const at = e.tensor(a, [n]), bt = e.tensor(b, [n]);
    for (const op of ['add_relu', 'relu_grad', 'max'] as const) {
      assertClose(t, await binary(op, at, bt).read(), Array.from(a, (v, i) => binaryRefs[op](v, b[i]!)), `${op} signed (${n} values)`, 1e-6, 1e-6);
    }
  }
  t.throws(() => binary('add', e.zeros([2, 3]), e.zeros([4])), /shapes \[2, 3\] and \[4\] do not broadcast/);
});

t.test('GEMM, both operands either way, odd and batched shapes', async (t) => {
  const e = await gpuEngine(t);
  const shapes = [
    [1, 1, 1],
    [3, 5, 7],
    [17, 33, 9],
    [64, 64, 64],
    [65, 31, 130],
    [2, 1000, 50],
  ];
  for (const [M, N, K] of shapes as [number, number, number][]) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const a = randn(M * K, M + N), b = randn(K * N, K + 1);
        const at = e.tensor(a, transA ? [K, M] : [M, K]);
        const bt = e.tensor(b, transB ? [N, K] : [K, N]);
        const out = matmul(at, bt, { transA, transB });
        const ref = matmulRef(Float64Array.from(a), Float64Array.from(b), M, N, K, transA, transB);
        assertClose(t, await out.read(), ref, `gemm ${M}x${N}x${K} tA=${transA} tB=${transB}`, 1e-4, 1e-4);
        for (const x of [at, bt, out]) x.dispose();
      }
    }
  }
  // bias epilogue and alpha
  const a = randn(6 * 5, 9), b = randn(5 * 7, 10), bias = randn(7, 11);
  const out = matmul(e.tensor(a, [6, 5]), e.tensor(b, [5, 7]), { bias: e.tensor(bias, [7]), alpha: 0.5 });
  const ref = matmulRef(Float64Array.from(a), Float64Array.from(b), 6, 7, 5).map((v, i) => 0.5 * v + bias[i % 7]!);
  assertClose(t, await out.read(), ref, 'gemm with alpha and bias', 1e-4, 1e-4);
  // batched, with a shared right operand
  const B = 3, M = 5, N = 6, K = 7;
  const ab = randn(B * M * K, 12), bb = randn(K * N, 13);
  const outB = matmul(e.tensor(ab, [B, M, K]), e.tensor(bb, [K, N]));
  const refB = new Float64Array(B * M * N);
  for (let i = 0; i < B; i++) refB.set(matmulRef(Float64Array.from(ab.subarray(i * M * K, (i + 1) * M * K)), Float64Array.from(bb), M, N, K), i * M * N);
  assertClose(t, await outB.read(), refB, 'batched gemm', 1e-4, 1e-4);
  t.throws(() => matmul(e.zeros([2, 3]), e.zeros([4, 5])), /do not fit/);
});

t.test('reductions over any axes, all three strategies', async (t) => {
  const e = await gpuEngine(t);
  t.equal(reduceStrategy(1, 100000), 'per_workgroup');
  t.equal(reduceStrategy(100000, 10), 'per_thread');
  t.equal(reduceStrategy(100000, 10, true), 'leading');
  t.equal(reduceStrategy(100, 10, true), 'per_thread', 'too few outputs to fill the invocations');
  t.equal(reducesLeadingAxes([8, 300], [0]), true, 'split-K partials');
  t.equal(reducesLeadingAxes([8, 1, 300], [0, 1]), true);
  t.equal(reducesLeadingAxes([1, 8, 300], [1]), true, 'size-1 axes do not count');
  t.equal(reducesLeadingAxes([8, 300], [1]), false);
  t.equal(reducesLeadingAxes([2, 3, 5, 7], [0, 2, 3]), false, 'a conv bias gradient is not leading');
  const cases: [number[], number[]][] = [
    [[7], [0]],
    [[3, 5], [1]],
    [[3, 5], [0]],
    [[2, 3, 5, 7], [0, 2, 3]],
    [[2, 3, 5, 7], [1]],
    [[4, 3, 17, 19], [0, 2, 3]], // a bias gradient: per_workgroup
    [[3, 1000], [1]],
    [[100000], [0]],
    [[5, 1000], [0]], // leading, vec4 (1000 outputs)
    [[3, 2, 301], [0, 1]], // leading, scalar (301 outputs)
    [[1, 7, 260], [1]], // leading, scalar, behind a size-1 axis
  ];
  // Workgroup sums with subgroup operations where the device has them, and without.
  const subgroups = e.useSubgroups;
  for (const useSubgroups of subgroups ? [true, false] : [false]) {
    e.useSubgroups = useSubgroups;
    for (const [shape, axes] of cases) {
      const x = randn(size(shape), size(shape));
      const xt = e.tensor(x, shape);
      for (const op of ['sum', 'mean', 'max'] as const) {
        const out = reduce(op, xt, axes, true);
        t.same(out.shape, shape.map((d, i) => (axes.includes(i) ? 1 : d)));
        const ref = reduceRef(Float64Array.from(x), shape, axes, op);
        assertClose(t, await out.read(), ref, `${op} ${JSON.stringify(shape)} over ${JSON.stringify(axes)}${useSubgroups ? ' (subgroups)' : ''}`, 1e-3, 1e-4);
        out.dispose();
      }
    }
  }
  e.useSubgroups = subgroups;
  t.same(reduce('sum', e.zeros([2, 3, 4]), [1]).shape, [2, 4], 'without keepDims the axes go');
});

t.test('fused Adam step against the formula', async (t) => {
  const e = await gpuEngine(t);
  for (const n of [1001, 1000]) { // one value an invocation, and a vec4
  const p = randn(n, 1), g = randn(n, 2), m = randn(n, 3, 0.1), v = uniform(n, 4, 0, 0.1);
  const h = { lr: 0.01, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.01 };
  const pt = e.tensor(p, [n]), mt = e.tensor(m, [n]), vt = e.tensor(v, [n]);
  // The counter after two steps; begin() makes it the third (t = 3 and its bias corrections).
  const counter = e.tensor(adamCounterValues(2, h), [ADAM_COUNTER_SIZE]);
  adamBegin(counter, h);
  assertClose(t, await counter.read(), Array.from(adamCounterValues(3, h)), `adam counter advanced (${n})`, 1e-7, 1e-6);
  adamStep(pt, e.tensor(g, [n]), mt, vt, h, counter);
  const refP = new Float64Array(n), refM = new Float64Array(n), refV = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const gi = g[i]! + h.weightDecay * p[i]!;
    refM[i] = h.beta1 * m[i]! + (1 - h.beta1) * gi;
    refV[i] = h.beta2 * v[i]! + (1 - h.beta2) * gi * gi;
    refP[i] = p[i]! - (h.lr * (refM[i]! / (1 - h.beta1 ** 3))) / (Math.sqrt(refV[i]! / (1 - h.beta2 ** 3)) + h.eps);
  }
  assertClose(t, await mt.read(), refM, `adam m (${n})`, 1e-6, 1e-5);
  assertClose(t, await vt.read(), refV, `adam v (${n})`, 1e-6, 1e-5);
  assertClose(t, await pt.read(), refP, `adam param (${n})`, 1e-5, 1e-4);
  }
});

t.test('the weights\' moving average: a lerp per step, swapped in for evaluation and back', async (t) => {
  const e = await gpuEngine(t);
  const { WeightAverage } = await import('../src/train/ema.js');
  const { createNet } = await import('../src/nets/models.js');
  const net = createNet(e, { net: 'cloth_repvgg', categories: 3, attributes: 0, width: 0.0625, seed: 2 });
  const w = net.parameters()[0]!;
  const before = await w.read();
  const avg = new WeightAverage(net, 0.75);
  const moved = Float32Array.from(before, (v) => v + 1);
  e.write(w, moved);
  avg.update();
  assertClose(t, await avg.average[0]!.read(), Array.from(before, (v) => v + 0.25), 'average += (1 - decay) (live - average)', 1e-6, 1e-6);
  const seen = await avg.swapped(() => w.read());
  assertClose(t, seen, Array.from(before, (v) => v + 0.25), 'the average is in the network while swapped', 1e-6, 1e-6);
  assertClose(t, await w.read(), moved, 'and the live weights are back after', 0, 0);
  avg.dispose();
  net.dispose();
});

t.test('AdamW (decoupled decay) and global-norm clipping against the formula', async (t) => {
  const e = await gpuEngine(t);
  const n = 37; // odd: one value an invocation
  const p = randn(n, 11), g = randn(n, 12), m = randn(n, 13, 0.1), v = uniform(n, 14, 0, 0.1);
  const norm = Math.hypot(...g);
  for (const maxGradNorm of [0, norm / 3, 2 * norm]) {
    const h = { lr: 0.02, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.05, decoupled: true, maxGradNorm };
    const pt = e.tensor(p, [n]), mt = e.tensor(m, [n]), vt = e.tensor(v, [n]), gt = e.tensor(g, [n]);
    const counter = e.tensor(adamCounterValues(0, h), [ADAM_COUNTER_SIZE]);
    adamBegin(counter, h, undefined, maxGradNorm ? sumOfSquares([gt]) : undefined);
    const clip = maxGradNorm && norm > maxGradNorm ? maxGradNorm / norm : 1;
    t.ok(Math.abs((await counter.read())[4]! - clip) < 1e-5, `clip factor ${clip.toFixed(3)} (max norm ${maxGradNorm.toFixed(2)}, norm ${norm.toFixed(2)})`);
    adamStep(pt, gt, mt, vt, h, counter);
    const refP = Array.from(p, (pi, i) => {
      const gi = clip * g[i]!;
      const mi = h.beta1 * m[i]! + (1 - h.beta1) * gi, vi = h.beta2 * v[i]! + (1 - h.beta2) * gi * gi;
      return pi - h.lr * ((mi / (1 - h.beta1)) / (Math.sqrt(vi / (1 - h.beta2)) + h.eps) + h.weightDecay * pi);
    });
    assertClose(t, await pt.read(), refP, `AdamW param, max norm ${maxGradNorm.toFixed(2)}`, 1e-5, 1e-4);
  }
  // The optimizer decays weights (rank >= 2) and leaves biases and BatchNorm's vectors (rank 1) alone.
  const w = e.tensor([1, 2, 3, 4], [2, 2]).keep(), b = e.tensor([1, 2], [2]).keep();
  const adam = new Adam([w, b], { lr: 0.1, weightDecay: 0.5, decoupled: true });
  w.grad = e.zeros([2, 2]);
  b.grad = e.zeros([2]);
  adam.update();
  assertClose(t, await w.read(), [0.95, 1.9, 2.85, 3.8], 'a zero gradient: weights decay by lr * wd', 1e-6, 1e-6);
  assertClose(t, await b.read(), [1, 2], 'biases do not decay', 1e-6, 1e-6);
  // A new rate takes effect at the next step without new uniforms for the parameters.
  adam.hyper.lr = 0.2;
  adam.update();
  assertClose(t, await b.read(), [1, 2], 'still no decay', 1e-6, 1e-6);
  t.ok(Math.abs((await adam.counter.read())[3]! - 0.2) < 1e-7, 'the counter holds the new rate');
});

t.test('Adam with beta1 moved between steps (a one-cycle schedule) against torch.optim.Adam\'s formula', async (t) => {
  const e = await gpuEngine(t);
  const n = 7, lr = 0.05, beta2 = 0.999, eps = 1e-8;
  const start = Array.from({ length: n }, (_, i) => 0.3 * i - 1);
  const grads = [Array.from({ length: n }, (_, i) => Math.sin(i + 1)), Array.from({ length: n }, (_, i) => 0.5 - 0.2 * i)];
  const p = e.tensor(start, [n]).keep();
  const adam = new Adam([p], { lr });
  // The reference: torch's bias correction 1 - beta1^t uses the current step's beta1.
  const ref = start.slice(), m = new Array<number>(n).fill(0), v = new Array<number>(n).fill(0);
  const beta1s = [0.95, 0.86];
  for (let step = 0; step < 2; step++) {
    const beta1 = beta1s[step]!, t1 = step + 1;
    for (let i = 0; i < n; i++) {
      const g = grads[step]![i]!;
      m[i] = beta1 * m[i]! + (1 - beta1) * g;
      v[i] = beta2 * v[i]! + (1 - beta2) * g * g;
      ref[i] = ref[i]! - (lr * (m[i]! / (1 - beta1 ** t1))) / (Math.sqrt(v[i]! / (1 - beta2 ** t1)) + eps);
    }
    adam.hyper.beta1 = beta1;
    p.grad = e.tensor(grads[step]!, [n]);
    adam.update();
    adam.zeroGrad();
    assertClose(t, await adam.m[0]!.read(), m, `m after step ${t1} (beta1 ${beta1})`, 1e-6, 1e-5);
    assertClose(t, await p.read(), ref, `parameters after step ${t1} (beta1 ${beta1})`, 1e-5, 1e-4);
  }
  t.ok(Math.abs((await adam.counter.read())[5]! - 0.86) < 1e-7, 'the counter holds the step\'s beta1');
  adam.dispose();
  p.dispose();
});
