// float32 <-> float16 copies of tensors (kernels/cast.wgsl), for the mixed-precision path.
import { KernelError } from './engine.js';
import type { DType, Tensor } from './tensor.js';

/**
 * A copy of `x` in `dtype`, times `scale` (x itself, viewed, when it already is and scale is 1).
 * With `overflow` (a [1] tensor), a conversion to f16 sets it non-zero when a scaled value does
 * not fit f16.
 */
export function castTensor(x: Tensor, dtype: DType, scale = 1, overflow?: Tensor): Tensor {
  if (x.dtype === dtype && scale === 1) return x.view(x.shape);
  if (x.dtype === dtype) throw new KernelError(`castTensor scales only while converting; ${x.describe()} is ${dtype} already`);
  const e = x.engine;
  if (!e.hasF16) throw new KernelError(`cannot cast ${x.describe()} to ${dtype}: this adapter has no shader-f16 feature`);
  const out = e.empty(x.shape, x.name, dtype);
  if (x.size === 0) return out;
  const uniforms = { n: x.size, scale };
  const common = { kernel: 'cast', uniforms, workgroups: Math.ceil(x.size / 2 / 256), half: true } as const;
  if (dtype === 'f32') e.run({ ...common, entry: 'to_float', inputs: { x16: x }, outputs: { out32: out } });
  else if (overflow) e.run({ ...common, entry: 'to_half_checked', inputs: { x32: x }, outputs: { out16: out, flag: overflow } });
  else e.run({ ...common, entry: 'to_half', inputs: { x32: x }, outputs: { out16: out } });
  return out;
}

/** The operand type of a kernel that reads a and b: both f32 or both f16, never mixed. */
export function operandType(what: string, ...tensors: Tensor[]): DType {
  const dtype = tensors[0]!.dtype;
  const other = tensors.find((t) => t.dtype !== dtype);
  if (other) throw new KernelError(`${what}: operands ${tensors.map((t) => t.describe()).join(', ')} mix f16 and f32`);
  return dtype;
}
