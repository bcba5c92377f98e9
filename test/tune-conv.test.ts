// Every candidate tile of the three convolution passes against the references (odd shapes, edges
// of every block). Split from tune.test.ts so that each file stays well under tap's limit on a loaded machine.
import t from 'tap';
import { conv2d, conv2dGradInput, conv2dGradWeight } from '../src/engine/conv.js';
import { GEMM_TILE_CANDIDATES, TILE_CANDIDATES, tileName } from '../src/engine/tune.js';
import { assertClose } from './helpers/close.js';
import { gpuEngine } from './helpers/gpu.js';
import { randn } from './helpers/random.js';
import { conv2dGradInputRef, conv2dGradWeightRef, conv2dRef, outSize } from './helpers/reference.js';

t.test('every candidate tile computes all three convolution passes', async (t) => {
  const e = await gpuEngine(t);
  // 3x3 stride 2 on odd sizes with channel counts that miss every block, and a 7x7 stem.
  for (const s of [
    { N: 2, C: 5, H: 9, W: 7, K: 11, KH: 3, KW: 3, stride: 2, pad: 1 },
    { N: 1, C: 3, H: 11, W: 13, K: 9, KH: 7, KW: 7, stride: 2, pad: 3 },
    { N: 2, C: 20, H: 10, W: 9, K: 130, KH: 3, KW: 3, stride: 1, pad: 1 }, // depth 180 (12 staged steps), 130 channels
  ]) {
    const OH = outSize(s.H, s.KH, s.stride, s.pad), OW = outSize(s.W, s.KW, s.stride, s.pad);
    const x = randn(s.N * s.C * s.H * s.W, 5), w = randn(s.K * s.C * s.KH * s.KW, 6, 0.3), b = randn(s.K, 7), dy = randn(s.N * s.K * OH * OW, 8);
    const xt = e.tensor(x, [s.N, s.C, s.H, s.W]), wt = e.tensor(w, [s.K, s.C, s.KH, s.KW]), bt = e.tensor(b, [s.K]), dyt = e.tensor(dy, [s.N, s.K, OH, OW]);
    const fwd = conv2dRef(Float64Array.from(x), Float64Array.from(w), Float64Array.from(b), s).map((v) => Math.max(0, v));
    const bwdData = conv2dGradInputRef(Float64Array.from(dy), Float64Array.from(w), s);
    const bwdWeight = conv2dGradWeightRef(Float64Array.from(dy), Float64Array.from(x), s);
    // A folded BatchNorm in the epilogue instead of the bias: out = conv * scale + shift.
    const scale = randn(s.K, 10), shift = randn(s.K, 11);
    const affine = { scale: e.tensor(scale, [s.K]), shift: e.tensor(shift, [s.K]) };
    const plane = (fwd.length / s.N / s.K);
    const fwdAffine = conv2dRef(Float64Array.from(x), Float64Array.from(w), null, s).map((v, i) => Math.max(0, v * scale[Math.floor(i / plane) % s.K]! + shift[Math.floor(i / plane) % s.K]!));
    for (const tile of GEMM_TILE_CANDIDATES.filter((x) => x.shared)) {
      assertClose(t, await conv2d(xt, wt, bt, s, { tile, relu: true }).read(), fwd, `forward+bias+ReLU k${s.KH} workgroup-memory tile ${tileName(tile)}`, 1e-4, 1e-4);
      assertClose(t, await conv2d(xt, wt, undefined, s, { tile, relu: true, affine }).read(), fwdAffine, `forward+folded BatchNorm+ReLU k${s.KH} workgroup-memory tile ${tileName(tile)}`, 1e-4, 1e-4);
    }
    for (const tile of [TILE_CANDIDATES[0]!, TILE_CANDIDATES.at(-1)!]) {
      assertClose(t, await conv2d(xt, wt, undefined, s, { tile, relu: true, affine }).read(), fwdAffine, `forward+folded BatchNorm+ReLU k${s.KH} tile ${tileName(tile)}`, 1e-4, 1e-4);
    }
    t.throws(() => conv2d(xt, wt, bt, s, { affine }), /a bias and a folded BatchNorm together/);
    for (const tile of TILE_CANDIDATES) {
      const name = `k${s.KH} tile ${tileName(tile)}`;
      assertClose(t, await conv2d(xt, wt, bt, s, { tile, relu: true }).read(), fwd, `forward+bias+ReLU ${name}`, 1e-4, 1e-4);
      assertClose(t, await conv2dGradInput(dyt, wt, xt.shape, s, undefined, tile).read(), bwdData, `backward-data ${name}`, 1e-4, 1e-4);
      assertClose(t, await conv2dGradWeight(dyt, xt, wt.shape, s, tile).read(), bwdWeight, `backward-weight ${name}`, 1e-3, 1e-4);
      await e.sync();
    }
  }
});

