// The convolution family: each kernel against a float64 reference over strides, paddings, kernel
// sizes, odd spatial sizes, channel counts that miss the 4-wide register blocks, and batch 1.
import t from 'tap';
import * as ops from '../src/autograd/ops.js';
import { conv2d, conv2dGradInput, conv2dGradWeight, convIsGemm, convTranspose2d, weightGradSplits } from '../src/engine/conv.js';
import { assertClose } from './helpers/close.js';
import { gpuEngine } from './helpers/gpu.js';
import { gradcheck } from './helpers/gradcheck.js';
import { randn } from './helpers/random.js';
import { type ConvRefShape, conv2dGradInputRef, conv2dGradWeightRef, conv2dRef, convTranspose2dRef, outSize } from './helpers/reference.js';

// N, C, H, W, K, kernel, stride, pad: every geometry the networks use, at awkward sizes.
const CASES: [number, number, number, number, number, number, number, number][] = [
  [1, 3, 7, 9, 5, 3, 1, 1], // 3x3 s1, odd sizes, batch 1, 3 channels
  [2, 4, 8, 8, 6, 3, 2, 1], // 3x3 s2
  [2, 5, 9, 7, 3, 3, 2, 1], // 3x3 s2 on odd sizes
  [1, 3, 15, 13, 8, 7, 2, 3], // ResNet stem 7x7 s2 p3
  [2, 64, 5, 5, 3, 1, 1, 0], // 1x1, 64 channels
  [1, 6, 9, 9, 4, 1, 2, 0], // 1x1 s2 (downsample)
  [2, 3, 12, 10, 5, 4, 2, 1], // 4x4 s2 p1 (attention encoder)
  [1, 2, 16, 16, 3, 4, 4, 0], // 4x4 s4
  [1, 64, 6, 6, 65, 3, 1, 1], // many channels, K not a multiple of 4
  [2, 6, 9, 8, 5, 1, 1, 0], // 1x1 on 72 pixels: forward and backward-data run as a batched GEMM
  [1, 3, 11, 10, 4, 3, 3, 1], // 3x3 s3: nine stride phases of one tap each, sizes not multiples of 3
  [1, 4, 9, 11, 3, 5, 2, 2], // 5x5 s2 p2: phases of 3x3, 3x2, 2x3 and 2x2 taps
];

const shapeOf = ([N, C, H, W, K, k, s, p]: (typeof CASES)[number]): ConvRefShape => ({ N, C, H, W, K, KH: k, KW: k, stride: s, pad: p });

t.test('conv2d forward, backward-data and backward-weight against references', async (t) => {
  const e = await gpuEngine(t);
  for (const c of CASES) {
    const s = shapeOf(c);
    const OH = outSize(s.H, s.KH, s.stride, s.pad), OW = outSize(s.W, s.KW, s.stride, s.pad);
    const x = randn(s.N * s.C * s.H * s.W, 1), w = randn(s.K * s.C * s.KH * s.KW, 2, 0.3), b = randn(s.K, 3);
    const dy = randn(s.N * s.K * OH * OW, 4);
    const name = `${c.slice(0, 4).join('x')} -> ${s.K} k${s.KH} s${s.stride} p${s.pad}`;
    const xt = e.tensor(x, [s.N, s.C, s.H, s.W]), wt = e.tensor(w, [s.K, s.C, s.KH, s.KW]), bt = e.tensor(b, [s.K]);
    const dyt = e.tensor(dy, [s.N, s.K, OH, OW]);
    const x64 = Float64Array.from(x), w64 = Float64Array.from(w), dy64 = Float64Array.from(dy);
    assertClose(t, await conv2d(xt, wt, bt, s).read(), conv2dRef(x64, w64, Float64Array.from(b), s), `forward ${name}`, 1e-4, 1e-4);
    assertClose(t, await conv2d(xt, wt, undefined, s, { relu: true }).read(), conv2dRef(x64, w64, null, s).map((v) => Math.max(0, v)), `forward without bias, ReLU ${name}`, 1e-4, 1e-4);
    assertClose(t, await conv2dGradInput(dyt, wt, xt.shape, s).read(), conv2dGradInputRef(dy64, w64, s), `backward-data ${name}`, 1e-4, 1e-4);
    assertClose(t, await conv2dGradWeight(dyt, xt, wt.shape, s).read(), conv2dGradWeightRef(dy64, x64, s), `backward-weight ${name}`, 1e-3, 1e-4);
    await e.sync();
  }
});

t.test('split-K choice is a pure function of the shape', async (t) => {
  t.equal(weightGradSplits(64, 64 * 9, 16 * 56 * 56), 15, 'a mid-size layer gets a few splits');
  t.equal(weightGradSplits(512, 512 * 9, 16 * 7 * 7), 1, 'a wide layer needs none');
  t.equal(weightGradSplits(8, 8, 100000), 256, 'capped');
  t.equal(weightGradSplits(4, 4, 10), 1, 'never below 64 pixels a chunk');
  t.equal(convIsGemm(1, 1, { stride: 1, pad: 0 }, 64), true, '1x1, stride 1, 8x8 planes: a GEMM');
  t.equal(convIsGemm(1, 1, { stride: 1, pad: 0 }, 16), false, 'but not on 4x4 planes');
  t.equal(convIsGemm(1, 1, { stride: 2, pad: 0 }, 256), false, 'nor at stride 2');
  t.equal(convIsGemm(3, 3, { stride: 1, pad: 1 }, 256), false);
  t.equal(weightGradSplits(64, 64 * 9, 16 * 56 * 56, { tm: 8, tn: 8 }), 57, '8x8 blocks: 4x fewer invocations, more splits');
  t.equal(weightGradSplits(64, 64 * 9, 16 * 56 * 56, { tm: 8, tn: 8 }, 1024), 2, 'a CPU adapter wants 1k invocations, not 32k');
});

t.test('transposed convolution forward against the scatter definition', async (t) => {
  const e = await gpuEngine(t);
  for (const [N, Cin, H, W, Cout, k, s, p] of [[2, 3, 5, 4, 6, 4, 2, 1], [1, 8, 7, 7, 5, 4, 2, 1], [2, 5, 3, 6, 4, 1, 1, 0], [1, 4, 3, 3, 3, 3, 2, 1]] as const) {
    const x = randn(N * Cin * H * W, 7), w = randn(Cin * Cout * k * k, 8), b = randn(Cout, 9);
    const out = convTranspose2d(e.tensor(x, [N, Cin, H, W]), e.tensor(w, [Cin, Cout, k, k]), e.tensor(b, [Cout]), { stride: s, pad: p });
    const ref = convTranspose2dRef(Float64Array.from(x), Float64Array.from(w), Float64Array.from(b), N, Cin, H, W, Cout, k, k, s, p);
    t.same(out.shape, [N, Cout, (H - 1) * s - 2 * p + k, (W - 1) * s - 2 * p + k]);
    assertClose(t, await out.read(), ref, `conv_transpose ${N}x${Cin}x${H}x${W} -> ${Cout} k${k} s${s} p${p}`, 1e-4, 1e-4);
  }
});

t.test('gradients by finite differences', async (t) => {
  const e = await gpuEngine(t);
  for (const c of [CASES[0]!, CASES[2]!, CASES[3]!, CASES[5]!, CASES[6]!, CASES[9]!]) {
    const s = shapeOf(c);
    const geo = { stride: s.stride, pad: s.pad };
    await gradcheck(t, e, {
      name: `conv2d ${c.join(',')}`,
      inputs: [{ shape: [s.N, s.C, s.H, s.W] }, { shape: [s.K, s.C, s.KH, s.KW] }, { shape: [s.K] }],
      gpu: ([x, w, b]) => ops.conv2d(x!, w!, b!, geo),
      ref: ([x, w, b]) => conv2dRef(x!, w!, b!, s),
    });
    await gradcheck(t, e, {
      name: `conv2d with the fused ReLU ${c.join(',')}`,
      inputs: [{ shape: [s.N, s.C, s.H, s.W] }, { shape: [s.K, s.C, s.KH, s.KW] }, { shape: [s.K] }],
      gpu: ([x, w, b]) => ops.conv2d(x!, w!, b!, geo, true),
      ref: ([x, w, b]) => conv2dRef(x!, w!, b!, s).map((v) => Math.max(0, v)),
    });
  }
  for (const [N, Cin, H, W, Cout, k, st, p] of [[2, 3, 3, 4, 2, 4, 2, 1], [1, 2, 3, 3, 3, 1, 1, 0]] as const) {
    await gradcheck(t, e, {
      name: `conv_transpose2d ${N},${Cin},${H},${W} -> ${Cout} k${k} s${st}`,
      inputs: [{ shape: [N, Cin, H, W] }, { shape: [Cin, Cout, k, k] }, { shape: [Cout] }],
      gpu: ([x, w, b]) => ops.convTranspose2d(x!, w!, b!, { stride: st, pad: p }),
      ref: ([x, w, b]) => convTranspose2dRef(x!, w!, b!, N, Cin, H, W, Cout, k, k, st, p),
    });
  }
});

t.test('impossible shapes are named', async (t) => {
  const e = await gpuEngine(t);
  t.throws(() => conv2d(e.zeros([1, 3, 2, 2]), e.zeros([4, 3, 7, 7]), undefined, { stride: 1, pad: 0 }), /has no output/);
  t.throws(() => conv2d(e.zeros([1, 3, 8, 8]), e.zeros([4, 5, 3, 3]), undefined, { stride: 1, pad: 1 }), /has 3 channels, weight \[4, 5, 3, 3\] expects 5/);
  t.throws(() => conv2d(e.zeros([3, 8, 8]), e.zeros([4, 3, 3, 3]), undefined, { stride: 1, pad: 1 }), /takes an NCHW tensor/);
});
