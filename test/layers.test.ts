// BatchNorm, pooling, resize, channel concatenation, max over channels, dropout and SSIM against
// float64 references, with gradients by finite differences.
import t from 'tap';
import * as ops from '../src/autograd/ops.js';
import type { Engine } from '../src/engine/engine.js';
import type { BatchNormState } from '../src/engine/norm.js';
import type { Tensor } from '../src/engine/tensor.js';
import { assertClose } from './helpers/close.js';
import { gpuEngine } from './helpers/gpu.js';
import { gradcheck } from './helpers/gradcheck.js';
import { randn, size, uniform } from './helpers/random.js';
import { adaptiveAvgPoolRef, batchNormRef, poolRef, reduceRef, resizeRef, ssimRef } from './helpers/reference.js';

function bnState(e: Engine, C: number, seed: number): BatchNormState {
  const s: BatchNormState = {
    gamma: e.tensor(uniform(C, seed, 0.5, 1.5), [C], 'gamma'),
    beta: e.tensor(randn(C, seed + 1), [C], 'beta'),
    runningMean: e.tensor(randn(C, seed + 2, 0.5), [C]),
    runningVar: e.tensor(uniform(C, seed + 3, 0.5, 2), [C]),
    eps: 1e-5,
    momentum: 0.1,
  };
  s.gamma.requiresGrad = true;
  s.beta.requiresGrad = true;
  return s;
}

// The BatchNorm kernels pick their reductions by adapter kind (one invocation or one workgroup per
// channel) and sum a workgroup with subgroup operations where the device has them: every
// BatchNorm test runs under both kinds' choices, with and without subgroups, on this adapter.
const PRETEND = { cpu: 'test/software/llvmpipe (pretend)', gpu: 'test/gpu/NVIDIA (pretend)' } as const;
async function asEachKind(e: Engine, fn: (kind: string) => Promise<void>): Promise<void> {
  const before = { adapter: e.adapter, subgroups: e.useSubgroups };
  try {
    for (const kind of ['cpu', 'gpu'] as const) {
      for (const subgroups of before.subgroups ? [true, false] : [false]) {
        e.adapter = PRETEND[kind];
        e.useSubgroups = subgroups;
        await fn(`${kind}${subgroups ? ', subgroups' : ''}`);
      }
    }
  } finally {
    e.adapter = before.adapter;
    e.useSubgroups = before.subgroups;
  }
}

t.test('BatchNorm2d: training and eval forward, running statistics over several steps', async (t) => {
  const e = await gpuEngine(t);
  await asEachKind(e, async (kind) => {
  for (const shape of [[2, 3, 5, 7], [1, 5, 4, 4], [4, 6], [2, 3, 12, 12]]) {
    const C = shape[1]!;
    const s = bnState(e, C, 10);
    const gamma = await s.gamma.read(), beta = await s.beta.read();
    let runMean = Float64Array.from(await s.runningMean.read()), runVar = Float64Array.from(await s.runningVar.read());
    for (let step = 0; step < 3; step++) {
      const x = randn(size(shape), 20 + step, 3).map((v) => v + 2); // a large mean: tests the two-pass variance
      const y = e.noGrad(() => ops.batchNorm2d(e.tensor(x, shape), s, true));
      const ref = batchNormRef(Float64Array.from(x), shape, gamma, beta, s.eps);
      assertClose(t, await y.read(), ref.y, `training forward ${shape} step ${step}`, 1e-4, 1e-4);
      runMean = runMean.map((m, c) => 0.9 * m + 0.1 * ref.means[c]!);
      runVar = runVar.map((v, c) => 0.9 * v + 0.1 * ref.unbiased[c]!);
    }
    assertClose(t, await s.runningMean.read(), runMean, `running mean after 3 steps ${shape}`, 1e-5, 1e-4);
    assertClose(t, await s.runningVar.read(), runVar, `running var after 3 steps ${shape}`, 1e-5, 1e-4);
    const x = randn(size(shape), 99);
    const y = e.noGrad(() => ops.batchNorm2d(e.tensor(x, shape), s, false));
    const ref = batchNormRef(Float64Array.from(x), shape, gamma, beta, s.eps, { mean: runMean, variance: runVar });
    assertClose(t, await y.read(), ref.y, `eval forward ${shape} (${kind} choices)`, 1e-4, 1e-4);
  }
  });
});

t.test('BatchNorm per-channel reductions follow the plane size and the adapter kind', async (t) => {
  const { batchNormReduceWorkgroup, batchNormThreadPerChannel } = await import('../src/engine/norm.js');
  t.equal(batchNormReduceWorkgroup(16), 32);
  t.equal(batchNormReduceWorkgroup(56 * 56), 64);
  t.equal(batchNormThreadPerChannel(16 * 16 * 16, PRETEND.cpu), true, 'lavapipe: one invocation a channel up to 4096 values');
  t.equal(batchNormThreadPerChannel(16 * 32 * 32, PRETEND.cpu), false);
  t.equal(batchNormThreadPerChannel(16 * 4 * 4, PRETEND.gpu), true, 'a GPU: up to 256');
  t.equal(batchNormThreadPerChannel(16 * 8 * 8, PRETEND.gpu), false);
  const { batchNormOnePass } = await import('../src/engine/norm.js');
  t.equal(batchNormOnePass(16 * 32 * 32, PRETEND.cpu), true, 'lavapipe: normalized in the per-channel pass up to 16384 values a channel');
  t.equal(batchNormOnePass(16 * 64 * 64, PRETEND.cpu), false);
  t.equal(batchNormOnePass(16 * 8 * 8, PRETEND.gpu), true, 'a GPU: up to 1024');
  t.equal(batchNormOnePass(16 * 16 * 16, PRETEND.gpu), false);
  const e = await gpuEngine(t);
  // Every variant against the reference: 4x4 planes (32 wide), 40x40 (64 wide), 100x50 (beyond
  // 4096 values a channel: a workgroup each even on a CPU), 7x7 (not a whole number of vec4s).
  await asEachKind(e, async (kind) => {
    for (const shape of [[3, 5, 4, 4], [2, 3, 40, 40], [1, 2, 100, 50], [3, 4, 7, 7]]) {
      const s = bnState(e, shape[1]!, 50);
      const x = randn(size(shape), 51, 2);
      const y = e.noGrad(() => ops.batchNorm2d(e.tensor(x, shape), s, true));
      assertClose(t, await y.read(), batchNormRef(Float64Array.from(x), shape, await s.gamma.read(), await s.beta.read(), s.eps).y, `training forward ${shape} (${kind} choices)`, 1e-4, 1e-4);
    }
  });
});

t.test('BatchNorm2d gradients (training and eval)', async (t) => {
  const e = await gpuEngine(t);
  await asEachKind(e, async (kind) => {
  for (const training of [true, false]) {
    // The routes by values a channel (norm.ts): 2x3x12x12 (288) is one invocation a channel and one
    // pass on the CPU kind's choices, a workgroup and one pass on the GPU's; 2x3x24x24 (1152) a
    // workgroup and two passes on the GPU's.
    for (const shape of [[2, 3, 3, 5], [5, 4], [2, 3, 12, 12], [2, 3, 24, 24]]) {
      const C = shape[1]!;
      const s = bnState(e, C, 30);
      const gamma = await s.gamma.read(), beta = await s.beta.read();
      const stats = training ? undefined : { mean: await s.runningMean.read(), variance: await s.runningVar.read() };
      await gradcheck(t, e, {
        name: `batchNorm2d ${training ? 'training' : 'eval'} ${shape} (${kind} choices)`,
        inputs: [{ shape }],
        gpu: ([x]) => ops.batchNorm2d(x!, s, training),
        ref: ([x]) => batchNormRef(x!, shape, gamma, beta, s.eps, stats).y,
        atol: 2e-3,
      });
      // gamma and beta: d/dgamma = sum(w * xhat), d/dbeta = sum(w), checked through a second gradcheck on
      // gamma/beta as inputs of a wrapper that re-binds them.
      const x = randn(size(shape), 31);
      await gradcheck(t, e, {
        name: `batchNorm2d ${training ? 'training' : 'eval'} ${shape} d/dgamma, d/dbeta`,
        inputs: [{ shape: [C], data: gamma }, { shape: [C], data: beta }],
        gpu: ([g, b]) => ops.batchNorm2d(e.tensor(x, shape), { ...s, gamma: g!, beta: b! }, training),
        ref: ([g, b]) => batchNormRef(Float64Array.from(x), shape, g!, b!, s.eps, stats).y,
        atol: 2e-3,
      });
    }
  }
  });
});

t.test('BatchNorm2d with a fused residual join (and ReLU): forward and gradients of x, the residual, gamma and beta', async (t) => {
  const e = await gpuEngine(t);
  // Both kinds' choices: the join in the per-channel pass (one pass) and in the elementwise one.
  await asEachKind(e, async (kind) => {
  for (const [training, relu, shape] of [[true, true, [2, 3, 4, 5]], [true, false, [2, 3, 5, 7]], [false, true, [2, 3, 3, 3]], [false, false, [3, 2, 4, 4]], [true, false, [2, 3, 24, 24]]] as const) {
    const C = shape[1]!;
    const s = bnState(e, C, 90);
    const gamma = await s.gamma.read(), beta = await s.beta.read();
    const stats = training ? undefined : { mean: await s.runningMean.read(), variance: await s.runningVar.read() };
    const join = (y: Float64Array, r: Float64Array) => y.map((v, i) => (relu ? Math.max(v + r[i]!, 0) : v + r[i]!));
    const name = `batchNorm2d${relu ? '+add+relu' : '+add'} ${training ? 'training' : 'eval'} ${shape} (${kind} choices)`;
    await gradcheck(t, e, {
      name,
      inputs: [{ shape: [...shape] }, { shape: [...shape] }],
      gpu: ([x, r]) => ops.batchNorm2d(x!, s, training, relu, r!),
      ref: ([x, r]) => join(batchNormRef(x!, [...shape], gamma, beta, s.eps, stats).y, r!),
      atol: 2e-3,
    });
    const x = randn(size(shape), 91), r = randn(size(shape), 92);
    await gradcheck(t, e, {
      name: `${name} d/dgamma, d/dbeta`,
      inputs: [{ shape: [C], data: gamma }, { shape: [C], data: beta }],
      gpu: ([g, b]) => ops.batchNorm2d(e.tensor(x, [...shape]), { ...s, gamma: g!, beta: b! }, training, relu, e.tensor(r, [...shape])),
      ref: ([g, b]) => join(batchNormRef(Float64Array.from(x), [...shape], g!, b!, s.eps, stats).y, Float64Array.from(r)),
      atol: 2e-3,
    });
  }
  });
  t.throws(() => ops.batchNorm2d(e.zeros([2, 3, 4, 4]), bnState(e, 3, 1), true, true, e.zeros([2, 3, 4, 5])), /cannot add a residual \[2, 3, 4, 5\]/);
});

t.test('BatchNorm2d with a fused ReLU: forward and gradients', async (t) => {
  const e = await gpuEngine(t);
  await asEachKind(e, async (kind) => {
  for (const [training, shape] of [[true, [2, 3, 4, 5]], [false, [2, 3, 4, 5]], [true, [2, 3, 12, 12]], [false, [2, 3, 5, 7]], [true, [2, 3, 24, 24]]] as const) {
    const s = bnState(e, 3, 70);
    const gamma = await s.gamma.read(), beta = await s.beta.read();
    const stats = training ? undefined : { mean: await s.runningMean.read(), variance: await s.runningVar.read() };
    await gradcheck(t, e, {
      name: `batchNorm2d+relu ${training ? 'training' : 'eval'} ${shape} (${kind} choices)`,
      inputs: [{ shape: [...shape] }],
      gpu: ([x]) => ops.batchNorm2d(x!, s, training, true),
      ref: ([x]) => batchNormRef(x!, [...shape], gamma, beta, s.eps, stats).y.map((v) => Math.max(v, 0)),
      atol: 2e-3,
    });
  }
  });
});

t.test('pooling forward and gradients', async (t) => {
  const e = await gpuEngine(t);
  for (const [N, C, H, W, k, st, p] of [[2, 3, 7, 9, 2, 2, 0], [1, 4, 9, 9, 3, 2, 1], [2, 2, 8, 6, 3, 2, 1], [1, 3, 5, 5, 2, 2, 0]] as const) {
    const shape = [N, C, H, W];
    const g = { kernel: k, stride: st, pad: p };
    for (const op of ['max', 'avg'] as const) {
      const x = randn(size(shape), N * 100 + H);
      const y = op === 'max' ? ops.maxPool2d(e.tensor(x, shape), g) : ops.avgPool2d(e.tensor(x, shape), g);
      assertClose(t, await y.read(), poolRef(Float64Array.from(x), N, C, H, W, k, st, p, op), `${op} pool ${shape} k${k} s${st} p${p}`, 1e-5, 1e-5);
      await gradcheck(t, e, {
        name: `${op} pool ${shape} k${k} s${st} p${p}`,
        inputs: [{ shape }],
        gpu: ([x]) => (op === 'max' ? ops.maxPool2d(x!, g) : ops.avgPool2d(x!, g)),
        ref: ([x]) => poolRef(x!, N, C, H, W, k, st, p, op),
      });
    }
  }
  for (const [H, W, OH, OW] of [[14, 14, 7, 7], [2, 3, 7, 7], [9, 11, 7, 7], [5, 5, 3, 2]] as const) {
    await gradcheck(t, e, {
      name: `adaptive average pool ${H}x${W} -> ${OH}x${OW}`,
      inputs: [{ shape: [2, 3, H, W] }],
      gpu: ([x]) => ops.adaptiveAvgPool2d(x!, OH, OW),
      ref: ([x]) => adaptiveAvgPoolRef(x!, 6, H, W, OH, OW),
    });
  }
  await gradcheck(t, e, { name: 'global average pool', inputs: [{ shape: [2, 3, 5, 7] }], gpu: ([x]) => ops.globalAvgPool(x!), ref: ([x]) => reduceRef(x!, [2, 3, 5, 7], [2, 3], 'mean') });
});

t.test('bilinear resize forward and gradients, down (heatmap 224 -> 28 style) and up', async (t) => {
  const e = await gpuEngine(t);
  for (const [H, W, OH, OW] of [[32, 32, 4, 4], [16, 12, 5, 7], [5, 7, 9, 11], [6, 6, 6, 6], [3, 3, 28, 28]] as const) {
    const shape = [2, 3, H, W];
    const x = randn(size(shape), H * W);
    const y = ops.resizeBilinear(e.tensor(x, shape), OH, OW);
    assertClose(t, await y.read(), resizeRef(Float64Array.from(x), 6, H, W, OH, OW), `resize ${H}x${W} -> ${OH}x${OW}`, 1e-5, 1e-5);
    await gradcheck(t, e, {
      name: `resize ${H}x${W} -> ${OH}x${OW}`,
      inputs: [{ shape: [1, 2, H, W] }],
      gpu: ([x]) => ops.resizeBilinear(x!, OH, OW),
      ref: ([x]) => resizeRef(x!, 2, H, W, OH, OW),
    });
  }
});

t.test('channel concatenation and max over channels', async (t) => {
  const e = await gpuEngine(t);
  const a = [2, 3, 4, 5], b = [2, 1, 4, 5];
  const concatRef = (x: Float64Array, y: Float64Array) => {
    const out = new Float64Array(2 * 4 * 20);
    for (let n = 0; n < 2; n++) {
      out.set(x.subarray(n * 60, n * 60 + 60), n * 80);
      out.set(y.subarray(n * 20, n * 20 + 20), n * 80 + 60);
    }
    return out;
  };
  await gradcheck(t, e, { name: 'concat channels', inputs: [{ shape: a }, { shape: b }], gpu: ([x, y]) => ops.concatChannels([x!, y!]), ref: ([x, y]) => concatRef(x!, y!) });
  await gradcheck(t, e, { name: 'max over channels (8 heatmaps)', inputs: [{ shape: [2, 8, 3, 5] }], gpu: ([x]) => ops.maxOverChannels(x!), ref: ([x]) => reduceRef(x!, [2, 8, 3, 5], [1], 'max') });
  t.throws(() => ops.concatChannels([e.zeros([2, 3, 4, 5]), e.zeros([2, 1, 4, 6])]), /cannot concatenate \[2, 3, 4, 5\] and \[2, 1, 4, 6\]/);
});

t.test('dropout keeps 1 - p of the elements, scales them, is reproducible, and passes gradients through the mask', async (t) => {
  const e = await gpuEngine(t);
  const n = 20000, p = 0.3;
  const x = e.full([n], 1);
  x.requiresGrad = true;
  const y = ops.dropout(x, p, 42, true);
  const v = await y.read();
  const kept = v.filter((a) => a !== 0);
  t.ok(Math.abs(kept.length / n - (1 - p)) < 0.02, `kept ${(kept.length / n).toFixed(3)} of the elements`);
  t.ok(kept.every((a) => Math.abs(a - 1 / (1 - p)) < 1e-6), 'kept values are scaled by 1/(1-p)');
  t.same(Array.from(await ops.dropout(x, p, 42, true).read()), Array.from(v), 'the same seed gives the same mask');
  t.notSame(Array.from(await ops.dropout(x, p, 43, true).read()), Array.from(v), 'another seed another mask');
  const loss = ops.sumAll(y);
  (await import('../src/autograd/tape.js')).backward(loss);
  t.same(Array.from(await x.grad!.read()), Array.from(v), 'the gradient is the mask');
  t.same(Array.from(await ops.dropout(x, p, 42, false).read()).slice(0, 3), [1, 1, 1], 'identity in eval mode');
});

t.test('SSIM loss against a direct 2-d window reference, and its gradient', async (t) => {
  const e = await gpuEngine(t);
  for (const [N, C, H, W, window] of [[1, 2, 12, 12, 11], [2, 3, 7, 9, 11], [1, 1, 16, 13, 5]] as const) {
    const shape = [N, C, H, W];
    const x = uniform(size(shape), 5, 0, 1);
    const y = uniform(size(shape), 6, 0, 1);
    const mask = Float32Array.from({ length: N * C }, (_, i) => (i % 3 === 1 ? 0 : 1));
    const ref = ssimRef(Float64Array.from(x), Float64Array.from(y), N * C, H, W, mask, window);
    const loss = ops.ssimLoss(e.tensor(x, shape), e.tensor(y, shape), e.tensor(mask, [N, C]), { window });
    assertClose(t, await loss.read(), [ref], `SSIM loss ${shape} window ${window}`, 1e-5, 1e-4);
    const same = ops.ssimLoss(e.tensor(y, shape), e.tensor(y, shape), undefined, { window });
    assertClose(t, await same.read(), [0], 'SSIM of a map with itself is 1 (loss 0)', 1e-5, 0);
    await gradcheck(t, e, {
      name: `SSIM loss ${shape} window ${window}`,
      inputs: [{ shape, data: x }, { shape, data: y, noGrad: true }, { shape: [N, C], data: mask, noGrad: true }],
      gpu: ([a, b, m]) => ops.ssimLoss(a!, b!, m!, { window }),
      ref: ([a, b]) => Float64Array.of(ssimRef(a!, b!, N * C, H, W, mask, window)),
      atol: 1e-3,
      rtol: 1e-2,
    });
  }
});

t.test("mixed precision's f16 activations: every op that keeps them f16 agrees with f32 on the same values, forward and backward", async (t) => {
  const e = await gpuEngine(t);
  if (!e.hasF16) return void t.pass('skipped: this adapter has no shader-f16');
  const { roundToHalf } = await import('../src/engine/half.js');
  const { backward } = await import('../src/autograd/tape.js');
  // op on f16 inputs against op on f32 inputs holding the same (f16-representable) values: the
  // outputs differ by the final rounding to f16 only, the input gradients (f32) hardly at all.
  const twin = async (name: string, shapes: number[][], op: (xs: Tensor[]) => Tensor, keepsHalf = true, mixedForHalf = false) =>
    e.tidyAsync(async () => {
      const values = shapes.map((s, i) => Float32Array.from(randn(size(s), 300 + i, 1.5), roundToHalf));
      const run = async (dtype: 'f16' | 'f32') => {
        const xs = shapes.map((s, i) => {
          const x = e.tensor(values[i]!, s, `x${i}`, dtype);
          x.requiresGrad = true;
          return x;
        });
        // mixedForHalf: the f16 run in mixed precision, the f32 one in plain f32.
        const y = e.with({ mixedPrecision: mixedForHalf && dtype === 'f16' }, () => op(xs));
        const w = e.tensor(randn(y.size, 400, 1), y.shape);
        e.with({ mixedPrecision: mixedForHalf && dtype === 'f16' }, () => backward(ops.sumAll(ops.mul(ops.toFloat32(y), w))));
        return { dtype: y.dtype, y: await y.read(), grads: await Promise.all(xs.map((x) => x.grad!.read())) };
      };
      const [h, f] = [await run('f16'), await run('f32')];
      t.equal(h.dtype, keepsHalf ? 'f16' : 'f32', `${name}: ${keepsHalf ? 'an f16 activation stays f16' : 'f32 out'}`);
      assertClose(t, h.y, Float64Array.from(f.y, roundToHalf), `${name} forward`, 2e-3, 2e-3);
      h.grads.forEach((g, i) => assertClose(t, g, f.grads[i]!, `${name} gradient of input ${i}`, 2e-3, 2e-2));
    });
  const bn = (C: number) => bnState(e, C, 500 + C);
  for (const shape of [[2, 3, 4, 4], [2, 3, 5, 5]]) {
    const s = bn(3);
    await twin(`batchNorm2d+relu ${shape}`, [shape], ([x]) => ops.batchNorm2d(x!, s, true, true));
    await twin(`batchNorm2d+add+relu ${shape}`, [shape, shape], ([x, r]) => ops.batchNorm2d(x!, s, true, true, r!));
    await twin(`batchNorm2d eval ${shape}`, [shape], ([x]) => ops.batchNorm2d(x!, s, false));
  }
  await twin('maxPool2d 3x3/2', [[2, 3, 7, 9]], ([x]) => ops.maxPool2d(x!, { kernel: 3, stride: 2, pad: 1 }));
  await twin('avgPool2d 2x2/2', [[2, 3, 6, 6]], ([x]) => ops.avgPool2d(x!, { kernel: 2, stride: 2, pad: 0 }));
  await twin('adaptiveAvgPool2d to 3x2', [[1, 2, 7, 5]], ([x]) => ops.adaptiveAvgPool2d(x!, 3, 2));
  await twin('resizeBilinear to 9x7', [[1, 2, 4, 5]], ([x]) => ops.resizeBilinear(x!, 9, 7));
  await twin('concatChannels', [[2, 3, 3, 3], [2, 2, 3, 3]], (xs) => ops.concatChannels(xs));
  await twin('relu, sigmoid', [[3, 5, 7]], ([x]) => ops.sigmoid(ops.relu(x!)));
  await twin('add, mul', [[2, 4, 6], [2, 4, 6]], ([a, b]) => ops.mul(ops.add(a!, b!), b!));
  await twin('mean over the planes (read through an f32 copy)', [[2, 3, 5, 5]], ([x]) => ops.globalAvgPool(x!), false);
  // Convolutions in mixed precision (f16 copies of the weights) write f16 activations, against f32.
  const w = e.tensor(randn(4 * 3 * 9, 600, 0.3).map(roundToHalf), [4, 3, 3, 3]);
  const wt = e.tensor(randn(3 * 2 * 16, 601, 0.3).map(roundToHalf), [3, 2, 4, 4]);
  await twin('conv2d+relu (mixed precision)', [[2, 3, 6, 6]], ([x]) => ops.conv2d(x!, w, undefined, { stride: 1, pad: 1 }, true), true, true);
  await twin('1x1 conv2d, a GEMM (mixed precision)', [[2, 3, 5, 5]], ([x]) => ops.conv2d(x!, e.tensor(randn(12, 602, 0.3).map(roundToHalf), [4, 3, 1, 1])), true, true);
  await twin('convTranspose2d (mixed precision)', [[2, 3, 3, 3]], ([x]) => ops.convTranspose2d(x!, wt, undefined, { stride: 2, pad: 1 }), true, true);
});
