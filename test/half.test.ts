// The f16 path: binary16 conversions, f16 tensors, the casts, the kernels that take f16 operands
// (GEMM and the three convolution passes, f32 accumulation), the float32-only guard, and
// mixed-precision training. Skipped where the adapter has no shader-f16.
import t from 'tap';
import * as ops from '../src/autograd/ops.js';
import { GradientScaler } from '../src/autograd/scaler.js';
import { ADAM_COUNTER_SIZE, adamBegin, adamCounterValues, adamStep } from '../src/engine/adam.js';
import { backward } from '../src/autograd/tape.js';
import { clothtagStep } from '../bench/train-step.js';
import { castTensor } from '../src/engine/cast.js';
import { conv2d, conv2dGradInput, conv2dGradWeight } from '../src/engine/conv.js';
import { binary, unary } from '../src/engine/elementwise.js';
import { KernelError } from '../src/engine/engine.js';
import { matmul } from '../src/engine/gemm.js';
import { reduce } from '../src/engine/reduce.js';
import { decodeHalf, encodeHalf, fromHalfBits, roundToHalf, toHalfBits } from '../src/engine/half.js';
import { createNet } from '../src/nets/models.js';
import { Init } from '../src/nets/module.js';
import { syntheticBatch } from '../src/run/tune.js';
import { THESIS_LOSS } from '../src/train/losses.js';
import { Trainer } from '../src/train/step.js';
import { Conv2d, Linear } from '../src/nets/layers.js';
import { assertClose } from './helpers/close.js';
import { gpuEngine } from './helpers/gpu.js';
import { randn } from './helpers/random.js';
import { conv2dGradInputRef, conv2dGradWeightRef, conv2dRef, matmulRef, outSize } from './helpers/reference.js';

t.test('binary16 conversions on the CPU', async (t) => {
  t.equal(toHalfBits(1), 0x3c00);
  t.equal(toHalfBits(-2), 0xc000);
  t.equal(toHalfBits(65504), 0x7bff, 'the largest half');
  t.equal(toHalfBits(65520), 0x7c00, 'rounds up to infinity');
  t.equal(toHalfBits(2 ** -24), 0x0001, 'the smallest subnormal');
  t.equal(toHalfBits(2 ** -26), 0x0000, 'underflows to zero');
  t.equal(toHalfBits(1 + 2 ** -11), 0x3c00, 'a tie rounds to even (down)');
  t.equal(toHalfBits(1 + 3 * 2 ** -11), 0x3c02, 'a tie rounds to even (up)');
  t.ok(Number.isNaN(fromHalfBits(toHalfBits(NaN))));
  t.equal(fromHalfBits(toHalfBits(-Infinity)), -Infinity);
  for (const v of [0, 1, -1, 0.5, 1024, 3.140625, 2 ** -14, 2 ** -20]) t.equal(roundToHalf(v), v, `${v} is exact in half`);
  t.equal(roundToHalf(0.1), 0.0999755859375);
  // Every one of the 63488 finite halves survives bits -> number -> bits.
  let bad = 0;
  for (let h = 0; h < 0x10000; h++) if ((h & 0x7c00) !== 0x7c00 && toHalfBits(fromHalfBits(h)) !== (h === 0x8000 ? 0x8000 : h)) bad++;
  t.equal(bad, 0, 'all finite halves round-trip');
  const enc = encodeHalf([1, 2, 3]);
  t.equal(enc.length, 4, 'padded to whole 4-byte words');
  t.same(Array.from(decodeHalf(enc, 3)), [1, 2, 3]);
});

t.test('f16 tensors, the casts and the float32-only guard', async (t) => {
  const e = await gpuEngine(t);
  if (!e.hasF16) return void t.pass('skipped: this adapter has no shader-f16');
  const values = randn(1001, 1, 3);
  const h = e.tensor(values, [7, 11, 13], 'h', 'f16');
  t.equal(h.dtype, 'f16');
  t.match(h.describe(), /f16/);
  const expected = Array.from(values, roundToHalf);
  t.same(Array.from(await h.read()), expected, 'uploaded and read back as the nearest halves');
  const f = e.tensor(values, [1001]);
  t.same(Array.from(await castTensor(f, 'f16').read()), expected, 'f32 -> f16 on the GPU rounds as the CPU does');
  t.same(Array.from(await castTensor(h, 'f32').read()), expected, 'f16 -> f32 is exact');
  t.equal(castTensor(f, 'f32').storage, f.storage, 'a cast to the same type is a view');
  t.throws(() => reduce('sum', h, [0]), KernelError, 'a float32 kernel refuses an f16 tensor');
  t.throws(() => reduce('sum', h, [0]), /takes float32 tensors, got "h" \[7, 11, 13\] f16/);
  t.throws(() => matmul(e.zeros([2, 3]), e.tensor([1, 2, 3, 4, 5, 6], [3, 2], 'b', 'f16')), /mix f16 and f32/);
  await t.rejects(e.readMany([h]), /readMany reads float32/);
  // The elementwise ops take f16 activations: two f16 operands give f16, an f16 activation read
  // against an f32 gradient gives f32 (the ReLU's mask); the arithmetic is f32 either way.
  const r = unary('relu', h);
  t.equal(r.dtype, 'f16');
  t.same(Array.from(await r.read()), expected.map((v) => Math.max(v, 0)), 'relu of an f16 activation');
  const sum = binary('add', h, h);
  t.equal(sum.dtype, 'f16');
  t.same(Array.from(await sum.read()), expected.map((v) => roundToHalf(2 * v)), 'f16 + f16 in f32, stored as the nearest half');
  const g = e.tensor(randn(1001, 2), [7, 11, 13]);
  const masked = binary('relu_grad', h, g);
  t.equal(masked.dtype, 'f32');
  const gv = await g.read();
  t.same(Array.from(await masked.read()), expected.map((v, i) => (v > 0 ? gv[i]! : 0)), 'the ReLU mask of an f16 activation on an f32 gradient');
});

t.test('GEMM with f16 operands accumulates in f32 (every layout, odd sizes, vec4 B)', async (t) => {
  const e = await gpuEngine(t);
  if (!e.hasF16) return void t.pass('skipped: this adapter has no shader-f16');
  for (const [M, N, K] of [[13, 22, 9], [8, 12, 300]] as const) {
    for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]] as const) {
      const a = randn(M * K, 1), b = randn(K * N, 2);
      const at = e.tensor(a, transA ? [K, M] : [M, K], 'a', 'f16'), bt = e.tensor(b, transB ? [N, K] : [K, N], 'b', 'f16');
      const ref = matmulRef(Float64Array.from(a, roundToHalf), Float64Array.from(b, roundToHalf), M, N, K, transA, transB);
      // The default tile, and the workgroup-memory one (gemm_tiled.wgsl).
      for (const tile of [undefined, { tm: 8, tn: 8, wgX: 16, wgY: 8, shared: true } as const]) {
        const out = matmul(at, bt, { transA, transB, tile });
        t.equal(out.dtype, 'f32');
        assertClose(t, await out.read(), ref, `f16 ${M}x${N}x${K} ${transA ? 'Aᵀ' : 'A'}${transB ? 'Bᵀ' : 'B'}${tile ? ' (workgroup tiles)' : ''}`, 1e-4, 1e-4);
      }
    }
  }
});

t.test('the three convolution passes with f16 operands', async (t) => {
  const e = await gpuEngine(t);
  if (!e.hasF16) return void t.pass('skipped: this adapter has no shader-f16');
  for (const s of [
    { N: 2, C: 5, H: 9, W: 7, K: 11, KH: 3, KW: 3, stride: 2, pad: 1 },
    { N: 1, C: 3, H: 8, W: 8, K: 8, KH: 3, KW: 3, stride: 1, pad: 1 },
    { N: 2, C: 6, H: 9, W: 8, K: 5, KH: 1, KW: 1, stride: 1, pad: 0 }, // the batched-GEMM route
  ]) {
    const OH = outSize(s.H, s.KH, s.stride, s.pad), OW = outSize(s.W, s.KW, s.stride, s.pad);
    const x = randn(s.N * s.C * s.H * s.W, 5), w = randn(s.K * s.C * s.KH * s.KW, 6, 0.3), dy = randn(s.N * s.K * OH * OW, 8);
    const x16 = Float64Array.from(x, roundToHalf), w16 = Float64Array.from(w, roundToHalf), dy16 = Float64Array.from(dy, roundToHalf);
    const xt = e.tensor(x, [s.N, s.C, s.H, s.W], 'x', 'f16'), wt = e.tensor(w, [s.K, s.C, s.KH, s.KW], 'w', 'f16'), dyt = e.tensor(dy, [s.N, s.K, OH, OW], 'dy', 'f16');
    const name = `${s.N}x${s.C}x${s.H}x${s.W} -> ${s.K} s${s.stride}`;
    assertClose(t, await conv2d(xt, wt, undefined, s).read(), conv2dRef(x16, w16, null, s), `forward ${name}`, 1e-4, 1e-4);
    const shared = { tm: 8, tn: 8, wgX: 16, wgY: 8, shared: true } as const;
    assertClose(t, await conv2d(xt, wt, undefined, s, { tile: shared }).read(), conv2dRef(x16, w16, null, s), `forward ${name} (workgroup tiles)`, 1e-4, 1e-4);
    assertClose(t, await conv2dGradInput(dyt, wt, xt.shape, s).read(), conv2dGradInputRef(dy16, w16, s), `backward-data ${name}`, 1e-4, 1e-4);
    assertClose(t, await conv2dGradWeight(dyt, xt, wt.shape, s).read(), conv2dGradWeightRef(dy16, x16, s), `backward-weight ${name}`, 1e-3, 1e-4);
  }
});

t.test('mixed precision: gradients close to f32 through convolutions and a linear layer', async (t) => {
  const e = await gpuEngine(t);
  if (!e.hasF16) return void t.pass('skipped: this adapter has no shader-f16');
  // No ReLU or BatchNorm here: their masks and batch statistics flip on values near zero, which
  // moves a gradient by more than the rounding being measured.
  const c = { engine: e, init: new Init(3) };
  const convs = [new Conv2d(c, 'conv0', 3, 8, 3, 1, 1, true), new Conv2d(c, 'conv1', 8, 16, 3, 2, 1, true)];
  const fc = new Linear(c, 'fc', 16, 4);
  const params = [...convs.flatMap((m) => m.parameters()), ...fc.parameters()];
  const x = e.tensor(randn(8 * 3 * 12 * 12, 9), [8, 3, 12, 12]).keep();
  const y = e.tensor([0, 1, 2, 3, 0, 1, 2, 3], [8]).keep();
  const gradients = (mixed: boolean) =>
    e.with({ mixedPrecision: mixed }, () =>
      e.tidyAsync(async () => {
        let h = x;
        for (const m of convs) h = m.forward(h);
        backward(ops.softmaxCrossEntropy(fc.forward(ops.globalAvgPool(h)), y));
        const out = await Promise.all(params.map((p) => p.grad!.read()));
        for (const p of params) (p.grad!.dispose(), (p.grad = null));
        return out;
      }),
    );
  const full = await gradients(false), mixed = await gradients(true);
  full.forEach((g, i) => {
    const scale = Math.max(...Array.from(g, Math.abs));
    let worst = 0;
    for (let j = 0; j < g.length; j++) worst = Math.max(worst, Math.abs(g[j]! - mixed[i]![j]!));
    t.ok(worst <= 0.01 * scale, `${params[i]!.describe()}: within ${((100 * worst) / scale).toFixed(3)}% of its largest value (limit 1%)`);
  });
  for (const m of [...convs, fc]) m.dispose();
});

t.test('mixed precision: a small CNN with BatchNorm and ReLU trains', async (t) => {
  const e = await gpuEngine(t);
  if (!e.hasF16) return void t.pass('skipped: this adapter has no shader-f16');
  // bench train-step's network and step, 18 steps of batch 8 at 16x16, in mixed precision.
  const { losses } = await e.with({ mixedPrecision: true }, () => clothtagStep(e, 15, 8, 16));
  t.ok(losses.every(Number.isFinite), `${losses.length} finite losses`);
  t.ok(losses.at(-1)! < losses[0]! - 0.1, `the loss falls in mixed precision: ${losses[0]!.toFixed(3)} -> ${losses.at(-1)!.toFixed(3)}`);
  t.equal(e.mixedPrecision, false, 'and the engine is back in f32 after it');
});

t.test('gradient scaling: the casts flag an f16 overflow, Adam skips, the scaler halves', async (t) => {
  const e = await gpuEngine(t);
  if (!e.hasF16) return void t.pass('skipped: this adapter has no shader-f16');
  // The checked cast.
  const flag = e.zeros([1]);
  const x = e.tensor([1, -2, 3, 4, 5], [5]);
  t.same(Array.from(await castTensor(x, 'f16', 1000, flag).read()), [1000, -2000, 3000, 4000, 5000]);
  t.equal((await flag.read())[0], 0, 'in range: no flag');
  castTensor(x, 'f16', 20000, flag);
  t.not((await flag.read())[0], 0, '5 x 20000 does not fit f16: flagged');
  // Adam leaves everything as it is while the flag is up.
  const p = e.tensor([1, 2, 3, 4], [4]), g = e.tensor([0.5, 0.5, 0.5, 0.5], [4]), m = e.zeros([4]), v = e.zeros([4]);
  const h = { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };
  const counter = e.tensor(adamCounterValues(0, h), [ADAM_COUNTER_SIZE]);
  adamBegin(counter, h, flag);
  adamStep(p, g, m, v, h, counter, flag);
  t.same(Array.from(await p.read()), [1, 2, 3, 4], 'skipped while flagged');
  t.equal((await counter.read())[0], 0, 'and the step not counted');
  e.fill(flag, 0);
  adamBegin(counter, h, flag);
  adamStep(p, g, m, v, h, counter, flag);
  t.equal((await counter.read())[0], 1, 'counted once the flag is down');
  t.ok((await p.read())[0]! < 1, 'updated once the flag is down');

  // The scaler's policy.
  const s = new GradientScaler(e, { initial: 1024, growthInterval: 3, min: 1, max: 4096 });
  t.equal(s.book(0), false);
  t.equal(s.book(1e-45), true, 'any non-zero bits are an overflow');
  t.equal(s.scale, 512, 'halved');
  s.book(0), s.book(0), s.book(0);
  t.equal(s.scale, 1024, 'doubled after 3 clean steps');
  s.scale = 4096;
  s.book(0), s.book(0), s.book(0);
  t.equal(s.scale, 4096, 'capped');
  s.dispose();

  // A mixed-precision training step: fine at the default scale (1024) on a sane batch - at batch 2
  // and 32x32, BatchNorm over 1x1 planes of two images makes gradients in the thousands, which the
  // scaler's first steps would back off from, and at batch 4 the first convolution's output
  // gradient (50-90 in f32 and mixed runs) already crosses the default scale's limit of 64; at
  // 2^40 every gradient cast overflows, and the step leaves the weights untouched.
  const net = createNet(e, { net: 'cloth_resnet_a', categories: 4, attributes: 6, width: 0.125, seed: 2 });
  const trainer = new Trainer(net, THESIS_LOSS, 1e-3);
  const batch = syntheticBatch(net, 8, 64);
  batch.category = Float32Array.from([0, 3, 1, 2, 2, 1, 3, 0]);
  batch.attributes = new Float32Array(8 * 6).fill(1);
  await e.with({ mixedPrecision: true }, async () => {
    const first = trainer.step(batch, 0);
    const [loss, overflow] = await e.readMany([first.total, trainer.scaler!.flag]);
    t.ok(Number.isFinite(loss![0]!), `loss ${loss![0]!.toFixed(3)}`);
    t.equal(trainer.scaler!.scale, 1024);
    t.equal(overflow![0], 0, 'no overflow at the default scale');
    t.equal(trainer.scaler!.book(overflow![0]!), false);
    const weight = net.parameters()[0]!;
    const before = await weight.read();
    trainer.scaler!.scale = 2 ** 40;
    const second = trainer.step(batch, 1);
    const [, overflow2] = await e.readMany([second.total, trainer.scaler!.flag]);
    t.not(overflow2![0], 0, 'overflow at 2^40');
    t.same(Array.from(await weight.read()), Array.from(before), 'the update was skipped on the GPU');
    t.equal(trainer.scaler!.book(overflow2![0]!), true);
    t.equal(trainer.scaler!.scale, 2 ** 39, 'and the scale halves');
  });
  trainer.dispose();
  net.dispose();
});
