// Every differentiable core op: GPU autograd gradient vs central differences of a float64 reference.
import t from 'tap';
import * as ops from '../src/autograd/ops.js';
import { gpuEngine } from './helpers/gpu.js';
import { gradcheck } from './helpers/gradcheck.js';
import { columnSelector, groupLabels, groupSoftmaxLoss } from '../src/train/losses.js';
import { randn, uniform } from './helpers/random.js';
import { assertClose } from './helpers/close.js';
import { binaryRef, bceRef, l1Ref, matmulRef, mseRef, reduceRef, softArgmaxRef, softmaxXentRef } from './helpers/reference.js';

t.test('elementwise ops with broadcasting', async (t) => {
  const e = await gpuEngine(t);
  const pairs: [number[], number[]][] = [[[3, 5], [3, 5]], [[2, 3, 4, 5], [3, 1, 1]], [[4, 7], [7]], [[3, 1], [1, 5]]];
  for (const [as, bs] of pairs) {
    const os = ops.add(e.zeros(as), e.zeros(bs)).shape as number[];
    await gradcheck(t, e, { name: `add ${as}+${bs}`, inputs: [{ shape: as }, { shape: bs }], gpu: ([a, b]) => ops.add(a!, b!), ref: ([a, b]) => binaryRef(a!, as, b!, bs, os, (x, y) => x + y) });
    await gradcheck(t, e, { name: `sub ${as}-${bs}`, inputs: [{ shape: as }, { shape: bs }], gpu: ([a, b]) => ops.sub(a!, b!), ref: ([a, b]) => binaryRef(a!, as, b!, bs, os, (x, y) => x - y) });
    await gradcheck(t, e, { name: `mul ${as}*${bs}`, inputs: [{ shape: as }, { shape: bs }], gpu: ([a, b]) => ops.mul(a!, b!), ref: ([a, b]) => binaryRef(a!, as, b!, bs, os, (x, y) => x * y) });
  }
  await gradcheck(t, e, { name: 'scale', inputs: [{ shape: [3, 7] }], gpu: ([x]) => ops.scale(x!, -1.5), ref: ([x]) => x!.map((v) => -1.5 * v) });
  await gradcheck(t, e, { name: 'relu', inputs: [{ shape: [5, 9] }], gpu: ([x]) => ops.relu(x!), ref: ([x]) => x!.map((v) => Math.max(v, 0)) });
  await gradcheck(t, e, { name: 'relu (vec4 path)', inputs: [{ shape: [4, 6] }], gpu: ([x]) => ops.relu(x!), ref: ([x]) => x!.map((v) => Math.max(v, 0)) });
  for (const shape of [[3, 5], [2, 3, 4, 2]]) {
    await gradcheck(t, e, {
      name: `addRelu ${shape} (a residual join and its ReLU)`,
      inputs: [{ shape }, { shape }],
      gpu: ([a, b]) => ops.addRelu(a!, b!),
      ref: ([a, b]) => a!.map((v, i) => Math.max(v + b![i]!, 0)),
    });
  }
  await gradcheck(t, e, { name: 'exp', inputs: [{ shape: [4, 6] }], gpu: ([x]) => ops.exp(x!), ref: ([x]) => x!.map(Math.exp) });
  await gradcheck(t, e, { name: 'sigmoid', inputs: [{ shape: [5, 9] }], gpu: ([x]) => ops.sigmoid(x!), ref: ([x]) => x!.map((v) => 1 / (1 + Math.exp(-v))) });
  for (const shape of [[2, 3, 4, 5], [3, 7]]) {
    const C = shape[1]!;
    await gradcheck(t, e, {
      name: `addBias ${shape}`,
      inputs: [{ shape }, { shape: [C] }],
      gpu: ([x, b]) => ops.addBias(x!, b!),
      ref: ([x, b]) => binaryRef(x!, shape, b!, shape.length === 2 ? [C] : [C, 1, 1], shape, (p, q) => p + q),
    });
  }
});

t.test('reductions', async (t) => {
  const e = await gpuEngine(t);
  const shape = [2, 3, 5, 7];
  for (const axes of [[0], [1], [0, 2, 3], [3], [0, 1, 2, 3]]) {
    await gradcheck(t, e, { name: `sum over ${axes}`, inputs: [{ shape }], gpu: ([x]) => ops.sum(x!, axes), ref: ([x]) => reduceRef(x!, shape, axes, 'sum') });
    await gradcheck(t, e, { name: `mean over ${axes}`, inputs: [{ shape }], gpu: ([x]) => ops.mean(x!, axes, true), ref: ([x]) => reduceRef(x!, shape, axes, 'mean') });
    await gradcheck(t, e, { name: `max over ${axes}`, inputs: [{ shape }], gpu: ([x]) => ops.max(x!, axes), ref: ([x]) => reduceRef(x!, shape, axes, 'max') });
  }
  await gradcheck(t, e, { name: 'reshape then sum', inputs: [{ shape: [4, 6] }], gpu: ([x]) => ops.sum(ops.reshape(x!, [2, -1, 3]), [1]), ref: ([x]) => reduceRef(x!, [2, 4, 3], [1], 'sum') });
});

t.test('matmul and linear', async (t) => {
  const e = await gpuEngine(t);
  for (const [M, N, K] of [[3, 5, 7], [9, 4, 6], [1, 1, 1]] as [number, number, number][]) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        await gradcheck(t, e, {
          name: `matmul ${M}x${N}x${K} tA=${transA} tB=${transB}`,
          inputs: [{ shape: transA ? [K, M] : [M, K] }, { shape: transB ? [N, K] : [K, N] }],
          gpu: ([a, b]) => ops.matmul(a!, b!, { transA, transB }),
          ref: ([a, b]) => matmulRef(a!, b!, M, N, K, transA, transB),
        });
      }
    }
  }
  await gradcheck(t, e, {
    name: 'linear 5x7 -> 3',
    inputs: [{ shape: [5, 7] }, { shape: [3, 7] }, { shape: [3] }],
    gpu: ([x, w, b]) => ops.linear(x!, w!, b!),
    ref: ([x, w, b]) => matmulRef(x!, w!, 5, 3, 7, false, true).map((v, i) => v + b![i % 3]!),
  });
  await gradcheck(t, e, {
    name: 'linear 5x7 -> 3 with the fused ReLU',
    inputs: [{ shape: [5, 7] }, { shape: [3, 7] }, { shape: [3] }],
    gpu: ([x, w, b]) => ops.linear(x!, w!, b!, true),
    ref: ([x, w, b]) => matmulRef(x!, w!, 5, 3, 7, false, true).map((v, i) => Math.max(0, v + b![i % 3]!)),
  });
});

t.test('losses', async (t) => {
  const e = await gpuEngine(t);
  const N = 6, C = 5;
  const labels = Float32Array.from([0, 4, 2, -1, 3, 1]); // row 3 has no label
  await gradcheck(t, e, {
    name: 'softmax cross-entropy (one row masked)',
    inputs: [{ shape: [N, C] }, { shape: [N], data: labels, noGrad: true }],
    gpu: ([x, l]) => ops.softmaxCrossEntropy(x!, l!),
    ref: ([x]) => Float64Array.of(softmaxXentRef(x!, labels, N, C)),
  });
  await gradcheck(t, e, {
    name: 'softmax cross-entropy with label smoothing 0.1',
    inputs: [{ shape: [N, C] }, { shape: [N], data: labels, noGrad: true }],
    gpu: ([x, l]) => ops.softmaxCrossEntropy(x!, l!, 0.1),
    ref: ([x]) => Float64Array.of(softmaxXentRef(x!, labels, N, C, 0.1)),
  });
  // The softmax attribute loss: 7 attributes in groups of 3, 1 and 3 (group 1's last photo unmarked).
  const groups = [1, 1, 3, 2, 3, 1, 3];
  const marks = Float32Array.from([1, 0, 0, 1, 0, 0, 1, /**/ 0, 1, 1, 1, 0, 0, 0, /**/ 0, 0, 0, 0, 1, 0, 0, /**/ 0, 0, -1, 1, 0, 0, 1, /**/ -1, 0, 1, 1, 0, 0, 0]);
  const byGroup = groupLabels(marks, 5, groups);
  await gradcheck(t, e, {
    name: 'softmax within attribute groups (5 photos, groups of 3, 1 and 3, unmarked photos masked)',
    inputs: [{ shape: [5, 7] }],
    gpu: ([x]) => groupSoftmaxLoss(x!, byGroup.map((g) => ({ select: e.tensor(columnSelector(7, g.columns), [7, g.columns.length]), labels: e.tensor(g.labels, [5]) }))),
    ref: ([x]) => Float64Array.of(byGroup.reduce((total, g) => {
      const k = g.columns.length;
      const sub = Float64Array.from({ length: 5 * k }, (_, i) => x![Math.floor(i / k) * 7 + g.columns[i % k]!]!);
      return total + softmaxXentRef(sub, g.labels, 5, k);
    }, 0)),
  });
  const targets = Float32Array.from({ length: 4 * 7 }, (_, i) => [1, 0, -1, 0, 0][i % 5]!);
  await gradcheck(t, e, {
    name: 'weighted BCE with logits (unknowns masked)',
    inputs: [{ shape: [4, 7] }, { shape: [4, 7], data: targets, noGrad: true }],
    gpu: ([x, y]) => ops.bceWithLogits(x!, y!, { positive: 1, negative: 0.1 }),
    ref: ([x]) => Float64Array.of(bceRef(x!, targets, 1, 0.1)),
  });
  const target = uniform(2 * 3 * 4 * 5, 9);
  const mask = Float32Array.from([1, 0, 1, 1, 1, 0]); // per heatmap plane [2, 3]
  await gradcheck(t, e, {
    name: 'masked MSE',
    inputs: [{ shape: [2, 3, 4, 5] }, { shape: [2, 3, 4, 5], data: target, noGrad: true }, { shape: [2, 3], data: mask, noGrad: true }],
    gpu: ([p, y, m]) => ops.mse(p!, y!, m!),
    ref: ([p]) => Float64Array.of(mseRef(p!, target, mask)),
  });
  // Offsets keep every |p - t| away from the kink at 0, where the finite difference is undefined.
  const points = uniform(2 * 3 * 2, 10, 0, 1);
  const offsets = Float32Array.from(points, (v, i) => v + (i % 2 ? 0.05 : -0.07));
  await gradcheck(t, e, {
    name: 'masked L1 on points',
    inputs: [{ shape: [2, 3, 2], data: offsets }, { shape: [2, 3, 2], data: points, noGrad: true }, { shape: [2, 3], data: mask, noGrad: true }],
    gpu: ([p, y, m]) => ops.l1(p!, y!, m!),
    ref: ([p]) => Float64Array.of(l1Ref(p!, points, mask)),
  });
});

t.test('soft-argmax: expected pixel centres, odd and even planes, and its gradient', async (t) => {
  const e = await gpuEngine(t);
  for (const [N, K, H, W] of [[2, 3, 5, 7], [1, 2, 16, 16], [1, 1, 23, 19]] as const) {
    await gradcheck(t, e, {
      name: `soft-argmax [${N}, ${K}, ${H}, ${W}]`,
      inputs: [{ shape: [N, K, H, W], data: randn(N * K * H * W, H + W, 2) }],
      gpu: ([x]) => ops.softArgmax(x!),
      ref: ([x]) => softArgmaxRef(x!, N * K, H, W),
    });
  }
  // A peaked plane gives its peak; a flat one gives the centre of the map.
  const peaked = new Float32Array(2 * 9 * 11);
  peaked[4 * 11 + 8] = 40;
  const xy = await e.tidyAsync(() => ops.softArgmax(e.tensor(peaked, [1, 2, 9, 11])).read());
  assertClose(t, xy, [8.5 / 11, 4.5 / 9, 0.5, 0.5], 'peak and flat plane', 1e-5, 1e-5);
});
