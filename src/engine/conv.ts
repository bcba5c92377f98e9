// Convolution launchers: forward, backward-data and backward-weight of conv2d, and the three
// passes of a transposed convolution, which are the same three kernels with roles exchanged.
import { matmul } from './gemm.js';
import { reduce } from './reduce.js';
import { Tensor, shapeString } from './tensor.js';
import { operandType } from './cast.js';
import { KernelError } from './dispatch.js';
import type { Engine } from './engine.js';
import { type ConvShape, adapterKind, chooseConvTile, type Tile } from './tune.js';

export interface ConvGeometry {
  stride: number;
  pad: number;
}

/** Output size of a convolution along one axis. */
export function convOutSize(size: number, kernel: number, stride: number, pad: number): number {
  return Math.floor((size + 2 * pad - kernel) / stride) + 1;
}

/** Output size of a transposed convolution along one axis. */
export function convTransposeOutSize(size: number, kernel: number, stride: number, pad: number): number {
  return (size - 1) * stride - 2 * pad + kernel;
}

function dims(x: Tensor, what: string): [number, number, number, number] {
  if (x.rank !== 4) throw new Error(`${what} takes an NCHW tensor, got ${x.describe()}`);
  return x.shape as [number, number, number, number];
}

/**
 * How many chunks the weight gradient's long reduction (batch*OH*OW pixels) is cut into:
 * enough invocations to fill the adapter (`target`: about 32k on a GPU) without chunks shorter
 * than 64 pixels. On lavapipe 1k is enough: measured over ResNet-50's layers, 32k made the split
 * partials' extra traffic cost 1.5x (6.9x against TensorFlow.js at 32k, 9.9x at 2k, 10.1x at 512).
 * A pure function of the shape, the block each invocation computes and the target, tested.
 */
export function weightGradSplits(outChannels: number, taps: number, pixels: number, block: { tm: number; tn: number } = { tm: 4, tn: 4 }, target = 32768): number {
  const invocations = Math.ceil(outChannels / block.tm) * Math.ceil(taps / block.tn);
  const wanted = Math.ceil(target / invocations);
  return Math.max(1, Math.min(wanted, Math.floor(pixels / 64), 256));
}

/**
 * Whether a convolution runs as a batched GEMM: a 1x1 kernel at stride 1 without padding on NCHW
 * maps each image's [C, H*W] to [K, H*W] by the weight matrix, which the GEMM kernel does with
 * contiguous rows and no window arithmetic (nearly half of ResNet-50's convolutions): on lavapipe
 * 1.2-1.3x faster forward and backward-data from 8x8 planes up. Below 64 pixels an image's GEMM is
 * too narrow for the tiles (4x4 planes ran at 0.6x), and the conv kernel, which spans the batch,
 * stays. A pure function of the geometry, tested.
 */
export function convIsGemm(KH: number, KW: number, g: ConvGeometry, pixels: number): boolean {
  return KH === 1 && KW === 1 && g.stride === 1 && g.pad === 0 && pixels >= 64;
}

/** Reports a shape to the engine's tracer (the tuner collects a network's shapes this way). */
function traced(engine: Engine, shape: ConvShape): ConvShape {
  engine.traceShapes?.({ conv: shape });
  return shape;
}

function checkSpatial(H: number, W: number, KH: number, KW: number, g: ConvGeometry, x: Tensor, w: Tensor): [number, number] {
  const OH = convOutSize(H, KH, g.stride, g.pad), OW = convOutSize(W, KW, g.stride, g.pad);
  if (OH <= 0 || OW <= 0 || g.stride <= 0 || g.pad < 0 || !Number.isInteger(g.stride) || !Number.isInteger(g.pad)) {
    throw new Error(`convolution of ${x.describe()} with ${w.describe()} at stride ${g.stride}, padding ${g.pad} has no output`);
  }
  return [OH, OW];
}

export interface ConvOptions {
  /** Applies max(0, ·) after the bias, in the same kernel. */
  relu?: boolean;
  /** Instead of a bias: out = conv * scale[k] + shift[k] (an eval-mode BatchNorm folded in). */
  affine?: { scale: Tensor; shift: Tensor };
  /** Forces a tile (the tuner's candidates); otherwise chooseConvTile decides. */
  tile?: Tile;
  /** The output in f16 (mixed precision's activations); needs f16 operands. */
  outHalf?: boolean;
}

/** y = conv2d(x, w) + bias (then ReLU). x [N, C, H, W], w [K, C, KH, KW]. */
export function conv2d(x: Tensor, w: Tensor, bias: Tensor | undefined, g: ConvGeometry, options: ConvOptions = {}): Tensor {
  const [N, C, H, W] = dims(x, 'conv2d');
  const [K, C2, KH, KW] = dims(w, 'conv2d weight');
  if (C !== C2) throw new Error(`conv2d: input ${x.describe()} has ${C} channels, weight ${w.describe()} expects ${C2}`);
  if (bias && (bias.size !== K || bias.dtype !== 'f32')) throw new Error(`conv2d: bias ${bias.describe()} is not a float32 vector of ${K} output channels`);
  const affine = options.affine;
  if (affine && bias) throw new Error('conv2d: a bias and a folded BatchNorm together; fold the bias into the shift');
  if (affine && (affine.scale.size !== K || affine.shift.size !== K)) throw new Error(`conv2d: the folded BatchNorm has ${affine.scale.size} channels, the convolution ${K}`);
  const [OH, OW] = checkSpatial(H, W, KH, KW, g, x, w);
  const engine = x.engine;
  if (convIsGemm(KH, KW, g, H * W) && !bias && !affine && !options.tile) {
    // y[n] = W [K, C] x[n] [C, HW], every image at once (the weight shared across the batch).
    const y = viewed([w.view([K, C]), x.view([N, C, H * W])], (w2, x3) => matmul(w2, x3, { relu: options.relu, outHalf: options.outHalf }));
    const out = y.view([N, K, OH, OW]);
    y.dispose();
    return out;
  }
  const tile = options.tile ?? chooseConvTile(traced(engine, { pass: 'forward', N, C, H, W, K, KH, KW, stride: g.stride, pad: g.pad }), engine.adapter, engine.tuning);
  const half = operandType('conv2d', x, w) === 'f16';
  if (options.outHalf && !half) throw new KernelError(`conv2d: an f16 output needs f16 operands, got ${x.describe()} and ${w.describe()}`);
  const out = engine.empty([N, K, OH, OW], undefined, options.outHalf ? 'f16' : 'f32');
  const specialization = { HALF: half, OUT_HALF: !!options.outHalf, KH, KW, HAS_BIAS: !!bias, AFFINE: !!affine, RELU: !!options.relu, TM: tile.tm, TN: tile.tn, WG_X: tile.wgX, WG_Y: tile.wgY };
  const common = {
    half,
    uniforms: { N, C, H, W, K, OH, OW, stride: g.stride, pad: g.pad },
    inputs: { x, w, bias, scale: affine?.scale, shift: affine?.shift },
    outputs: { out },
    workgroups: [Math.ceil((N * OH * OW) / tile.tn / tile.wgX), Math.ceil(K / tile.tm / tile.wgY), 1] as const,
    flops: 2 * N * K * OH * OW * C * KH * KW,
  };
  if (tile.shared) engine.run({ ...common, kernel: 'conv2d_tiled', params: specialization });
  else engine.run({ ...common, kernel: 'conv2d', params: specialization });
  return out;
}

/**
 * The gradient of conv2d with respect to its input: dx [N, C, H, W] from dy [N, K, OH, OW] and
 * w [K, C, KH, KW]. With an input size and bias it is also a transposed convolution's forward.
 */
export function conv2dGradInput(dy: Tensor, w: Tensor, inputShape: readonly number[], g: ConvGeometry, bias?: Tensor, forcedTile?: Tile, outScale = 1, outHalf = false): Tensor {
  const [N, K, OH, OW] = dims(dy, 'conv2d backward-data');
  const [K2, C, KH, KW] = dims(w, 'conv2d weight');
  const [, , H, W] = inputShape as [number, number, number, number];
  if (K !== K2 || inputShape[1] !== C || inputShape[0] !== N) {
    throw new Error(`conv2d backward-data: gradient ${dy.describe()} and weight ${w.describe()} do not fit input ${shapeString(inputShape)}`);
  }
  const engine = dy.engine;
  if (convIsGemm(KH, KW, g, H * W) && !bias && !forcedTile) {
    // dx[n] = Wᵀ [C, K] dy[n] [K, HW]: the same batched GEMM with the weight transposed.
    const dx = viewed([w.view([K, C]), dy.view([N, K, H * W])], (w2, dy3) => matmul(w2, dy3, { transA: true, alpha: outScale, outHalf }));
    const out = dx.view([N, C, H, W]);
    dx.dispose();
    return out;
  }
  const tile = forcedTile ?? chooseConvTile(traced(engine, { pass: 'backward_data', N, C, H, W, K, KH, KW, stride: g.stride, pad: g.pad }), engine.adapter, engine.tuning);
  const half = operandType('conv2d backward-data', dy, w) === 'f16';
  if (bias && bias.dtype !== 'f32') throw new Error(`conv_transpose2d: bias ${bias.describe()} must be float32`);
  if (outHalf && !half) throw new KernelError(`conv_transpose2d: an f16 output needs f16 operands, got ${dy.describe()} and ${w.describe()}`);
  const dx = engine.empty([N, C, H, W], undefined, outHalf ? 'f16' : 'f32');
  engine.run({
    kernel: 'conv2d_grad_input',
    half,
    params: { HALF: half, OUT_HALF: outHalf, KH, KW, HAS_BIAS: !!bias, TM: tile.tm, TN: tile.tn, WG_X: tile.wgX, WG_Y: tile.wgY },
    uniforms: { N, C, H, W, K, OH, OW, stride: g.stride, pad: g.pad, out_scale: outScale },
    inputs: { dy, w, bias },
    outputs: { dx },
    // One z layer per stride phase (the kernel's header): each covers the largest phase's pixels.
    workgroups: [Math.ceil((N * Math.ceil(H / g.stride) * Math.ceil(W / g.stride)) / tile.tn / tile.wgX), Math.ceil(C / tile.tm / tile.wgY), g.stride * g.stride],
    flops: 2 * N * K * OH * OW * C * KH * KW,
  });
  return dx;
}

/** fn of views made for it, disposed as soon as it has recorded its work (a view keeps its buffer). */
function viewed(views: [Tensor, Tensor], fn: (a: Tensor, b: Tensor) => Tensor): Tensor {
  const out = fn(views[0], views[1]);
  for (const v of views) v.dispose();
  return out;
}

/** The gradient of conv2d with respect to its weight: dw [K, C, KH, KW] (split-K, then a fixed-order sum). */
export function conv2dGradWeight(dy: Tensor, x: Tensor, weightShape: readonly number[], g: ConvGeometry, forcedTile?: Tile, outScale = 1): Tensor {
  const [N, K, OH, OW] = dims(dy, 'conv2d backward-weight');
  const [N2, C, H, W] = dims(x, 'conv2d backward-weight input');
  const [K2, C2, KH, KW] = weightShape as [number, number, number, number];
  if (N !== N2 || K !== K2 || C !== C2) {
    throw new Error(`conv2d backward-weight: gradient ${dy.describe()} and input ${x.describe()} do not fit weight ${shapeString(weightShape)}`);
  }
  // (No GEMM route here: a batched GEMM and a sum over the batch measured 0.5-0.6x this kernel.)
  const taps = C * KH * KW;
  const pixels = N * OH * OW;
  const engine = dy.engine;
  const tile = forcedTile ?? chooseConvTile(traced(engine, { pass: 'backward_weight', N, C, H, W, K, KH, KW, stride: g.stride, pad: g.pad }), engine.adapter, engine.tuning);
  const splits = weightGradSplits(K, taps, pixels, tile, adapterKind(engine.adapter) === 'cpu' ? 1024 : 32768);
  const chunk = Math.ceil(pixels / splits);
  const half = operandType('conv2d backward-weight', dy, x) === 'f16';
  const partial = engine.empty([splits, K * taps]);
  engine.run({
    kernel: 'conv2d_grad_weight',
    half,
    params: { HALF: half, KH, KW, TM: tile.tm, TN: tile.tn, WG_X: tile.wgX, WG_Y: tile.wgY },
    uniforms: { N, C, H, W, K, OH, OW, stride: g.stride, pad: g.pad, chunk, out_scale: outScale },
    inputs: { dy, x },
    outputs: { partial },
    workgroups: [Math.ceil(taps / tile.tn / tile.wgX), Math.ceil(K / tile.tm / tile.wgY), splits],
    flops: 2 * pixels * K * taps,
  });
  if (splits === 1) {
    const dw = partial.view([K, C, KH, KW]);
    partial.dispose();
    return dw;
  }
  const summed = reduce('sum', partial, [0]);
  partial.dispose();
  const dw = summed.view([K, C, KH, KW]);
  summed.dispose();
  return dw;
}

/** Transposed convolution (PyTorch's ConvTranspose2d): x [N, Cin, H, W], w [Cin, Cout, KH, KW]. */
export function convTranspose2d(x: Tensor, w: Tensor, bias: Tensor | undefined, g: ConvGeometry, outHalf = false): Tensor {
  const [N, Cin, H, W] = dims(x, 'conv_transpose2d');
  const [Cin2, Cout, KH, KW] = dims(w, 'conv_transpose2d weight');
  if (Cin !== Cin2) throw new Error(`conv_transpose2d: input ${x.describe()} has ${Cin} channels, weight ${w.describe()} expects ${Cin2}`);
  const OH = convTransposeOutSize(H, KH, g.stride, g.pad), OW = convTransposeOutSize(W, KW, g.stride, g.pad);
  if (OH <= 0 || OW <= 0) throw new Error(`conv_transpose2d of ${x.describe()} with ${w.describe()} has no output`);
  if (bias && bias.size !== Cout) throw new Error(`conv_transpose2d: bias ${bias.describe()} does not match ${Cout} output channels`);
  return conv2dGradInput(x, w, [N, Cout, OH, OW], g, bias, undefined, 1, outHalf);
}

/** The gradient of a transposed convolution with respect to its input: a plain convolution. */
export function convTranspose2dGradInput(dy: Tensor, w: Tensor, g: ConvGeometry): Tensor {
  return conv2d(dy, w, undefined, g);
}

/** The gradient of a transposed convolution with respect to its weight [Cin, Cout, KH, KW]. */
export function convTranspose2dGradWeight(dy: Tensor, x: Tensor, weightShape: readonly number[], g: ConvGeometry, outScale = 1): Tensor {
  // dW[ci, co, ky, kx] = sum x[n, ci, y, x] * dy[n, co, y*s - p + ky, x*s - p + kx]: the conv
  // weight gradient with the transposed convolution's input in the role of the output gradient.
  return conv2dGradWeight(x, dy, weightShape, g, undefined, outScale);
}
