// Pooling, bilinear resize, channel copies and dropout (kernels/pool.wgsl, resize.wgsl,
// copy_channels.wgsl, dropout.wgsl).
import { castTensor } from './cast.js';
import { convOutSize } from './conv.js';
import { compiledDivisor } from './elementwise.js';
import { Tensor, shapeString } from './tensor.js';

export interface PoolGeometry {
  kernel: number;
  stride: number;
  pad: number;
}

function planes(x: Tensor, what: string): [number, number, number, number] {
  if (x.rank !== 4) throw new Error(`${what} takes an NCHW tensor, got ${x.describe()}`);
  return x.shape as [number, number, number, number];
}

function poolShape(x: Tensor, g: PoolGeometry, what: string) {
  const [N, C, H, W] = planes(x, what);
  const OH = convOutSize(H, g.kernel, g.stride, g.pad), OW = convOutSize(W, g.kernel, g.stride, g.pad);
  if (OH <= 0 || OW <= 0 || g.pad * 2 > g.kernel) throw new Error(`${what} ${g.kernel}x${g.kernel}/${g.stride} pad ${g.pad} does not fit ${x.describe()}`);
  return { N, C, H, W, OH, OW, P: N * C, geometry: { H, W, OH, OW, K: g.kernel, STRIDE: g.stride, PAD: g.pad } };
}

/** Max pooling; returns the output and the argmax (flat index in each plane) for the backward pass. */
export function maxPool(x: Tensor, g: PoolGeometry): { y: Tensor; argmax: Tensor } {
  const s = poolShape(x, g, 'max pool');
  const half = x.dtype === 'f16';
  const y = x.engine.empty([s.N, s.C, s.OH, s.OW], undefined, x.dtype), argmax = x.engine.empty(y.shape);
  x.engine.run({ kernel: 'pool', entry: 'max_forward', params: { HALF: half, ...s.geometry }, half, uniforms: { P: s.P }, inputs: { src: x }, outputs: { out: y, arg: argmax }, workgroups: Math.ceil(y.size / 256) });
  return { y, argmax };
}

export function maxPoolBackward(dy: Tensor, argmax: Tensor, x: Tensor, g: PoolGeometry): Tensor {
  const s = poolShape(x, g, 'max pool');
  const dx = x.engine.empty(x.shape);
  x.engine.run({ kernel: 'pool', entry: 'max_backward', params: { HALF: false, ...s.geometry }, uniforms: { P: s.P }, inputs: { src: dy, argmax }, outputs: { dx }, workgroups: Math.ceil(dx.size / 256) });
  return dx;
}

export function avgPool(x: Tensor, g: PoolGeometry): Tensor {
  const s = poolShape(x, g, 'average pool');
  const half = x.dtype === 'f16';
  const y = x.engine.empty([s.N, s.C, s.OH, s.OW], undefined, x.dtype);
  x.engine.run({ kernel: 'pool', entry: 'avg_forward', params: { HALF: half, ...s.geometry }, half, uniforms: { P: s.P }, inputs: { src: x }, outputs: { out: y }, workgroups: Math.ceil(y.size / 256) });
  return y;
}

export function avgPoolBackward(dy: Tensor, x: Tensor, g: PoolGeometry): Tensor {
  const s = poolShape(x, g, 'average pool');
  const dx = x.engine.empty(x.shape);
  x.engine.run({ kernel: 'pool', entry: 'avg_backward', params: { HALF: false, ...s.geometry }, uniforms: { P: s.P }, inputs: { src: dy }, outputs: { avg_dx: dx }, workgroups: Math.ceil(dx.size / 256) });
  return dx;
}

/** Adaptive average pooling to [OH, OW] (PyTorch's AdaptiveAvgPool2d). */
export function adaptiveAvgPool(x: Tensor, OH: number, OW: number): Tensor {
  const [N, C, H, W] = planes(x, 'adaptive average pool');
  const half = x.dtype === 'f16';
  const y = x.engine.empty([N, C, OH, OW], undefined, x.dtype);
  x.engine.run({ kernel: 'pool', entry: 'adaptive_forward', params: { HALF: half, H, W, OH, OW, K: 1, STRIDE: 1, PAD: 0 }, half, uniforms: { P: N * C }, inputs: { src: x }, outputs: { out: y }, workgroups: Math.ceil(y.size / 256) });
  return y;
}

export function adaptiveAvgPoolBackward(dy: Tensor, x: Tensor): Tensor {
  const [N, C, H, W] = planes(x, 'adaptive average pool');
  const [, , OH, OW] = dy.shape as [number, number, number, number];
  const dx = x.engine.empty(x.shape);
  x.engine.run({ kernel: 'pool', entry: 'adaptive_backward', params: { HALF: false, H, W, OH, OW, K: 1, STRIDE: 1, PAD: 0 }, uniforms: { P: N * C }, inputs: { src: dy }, outputs: { avg_dx: dx }, workgroups: Math.ceil(dx.size / 256) });
  return dx;
}

/** Bilinear resize to [OH, OW] with half-pixel centres (align_corners=False). */
export function resizeBilinear(x: Tensor, OH: number, OW: number): Tensor {
  const [N, C, H, W] = planes(x, 'resize');
  if (!(OH > 0 && OW > 0 && Number.isInteger(OH) && Number.isInteger(OW))) throw new Error(`cannot resize ${x.describe()} to ${OH}x${OW}`);
  const half = x.dtype === 'f16';
  const y = x.engine.empty([N, C, OH, OW], undefined, x.dtype);
  x.engine.run({ kernel: 'resize', entry: 'forward', params: { HALF: half, H, W, OH, OW }, half, uniforms: { P: N * C }, inputs: { src: x }, outputs: { dst: y }, workgroups: Math.ceil(y.size / 256) });
  return y;
}

export function resizeBilinearBackward(dy: Tensor, inputShape: readonly number[]): Tensor {
  const [N, C, OH, OW] = planes(dy, 'resize backward');
  const [, , H, W] = inputShape as [number, number, number, number];
  const dx = dy.engine.empty(inputShape);
  dy.engine.run({ kernel: 'resize', entry: 'backward', params: { HALF: false, H, W, OH, OW }, uniforms: { P: N * C }, inputs: { src: dy }, outputs: { dst: dx }, workgroups: Math.ceil(dx.size / 256) });
  return dx;
}

/** Copies channels [srcOffset, srcOffset + count) of src into dst at dstOffset (same N and H*W). */
export function copyChannels(src: Tensor, srcOffset: number, dst: Tensor, dstOffset: number, count: number): void {
  const N = src.shape[0]!, HW = src.size / (N * src.shape[1]!);
  if (dst.shape[0] !== N || dst.size / (N * dst.shape[1]!) !== HW || srcOffset + count > src.shape[1]! || dstOffset + count > dst.shape[1]!) {
    throw new Error(`cannot copy ${count} channels of ${src.describe()} into ${dst.describe()}`);
  }
  if (src.dtype !== dst.dtype) throw new Error(`cannot copy channels of ${src.describe()} into ${dst.describe()}: the types differ`);
  const half = src.dtype === 'f16';
  src.engine.run({
    kernel: 'copy_channels',
    params: { HALF: half, COUNT: compiledDivisor(count), HW: compiledDivisor(HW) },
    half,
    uniforms: { N, src_C: src.shape[1]!, src_off: srcOffset, dst_C: dst.shape[1]!, dst_off: dstOffset },
    inputs: { src },
    outputs: { dst },
    workgroups: Math.ceil((N * count * HW) / 256),
  });
}

/** Concatenation along the channel axis of tensors with equal N, H, W. */
export function concatChannels(xs: readonly Tensor[]): Tensor {
  const first = xs[0];
  if (!first) throw new Error('concatenation of no tensors');
  for (const x of xs) {
    if (x.rank !== first.rank || x.shape[0] !== first.shape[0] || x.shape.slice(2).some((d, i) => d !== first.shape[2 + i])) {
      throw new Error(`cannot concatenate ${xs.map((t) => shapeString(t.shape)).join(' and ')} along channels`);
    }
  }
  const total = xs.reduce((s, x) => s + x.shape[1]!, 0);
  // f16 activations concatenate to f16; beside an f32 tensor they are read through f32 copies.
  const dtype = xs.every((x) => x.dtype === 'f16') ? 'f16' : 'f32';
  const out = first.engine.empty([first.shape[0]!, total, ...first.shape.slice(2)], undefined, dtype);
  let offset = 0;
  for (const x of xs) {
    const same = x.dtype === dtype ? x : castTensor(x, dtype);
    copyChannels(same, 0, out, offset, x.shape[1]!);
    if (same !== x) same.dispose();
    offset += x.shape[1]!;
  }
  return out;
}

/** Channels [offset, offset + count) of x as a new tensor. */
export function sliceChannels(x: Tensor, offset: number, count: number): Tensor {
  const out = x.engine.empty([x.shape[0]!, count, ...x.shape.slice(2)], undefined, x.dtype);
  copyChannels(x, offset, out, 0, count);
  return out;
}

/** Inverted dropout with a hashed mask; returns the output and the mask (already scaled). */
export function dropout(x: Tensor, p: number, seed: number): { y: Tensor; mask: Tensor } {
  if (!(p >= 0 && p < 1)) throw new Error(`dropout probability must be in [0, 1), got ${p}`);
  const y = x.engine.empty(x.shape), mask = x.engine.empty(x.shape);
  x.engine.run({ kernel: 'dropout', uniforms: { n: x.size, seed: seed >>> 0, p }, inputs: { x }, outputs: { y, mask }, workgroups: Math.ceil(x.size / 256) });
  return { y, mask };
}
