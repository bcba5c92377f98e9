// Elementwise launchers: one WGSL program (unary.wgsl, binary.wgsl) specialized by an expression.
import { Tensor, shapeString } from './tensor.js';

/**
 * Unary ops as WGSL expressions of `x` (and the scalars u.alpha, u.beta), written for T = f32 or
 * vec4<f32>: literals that meet x in a builtin call are spelled T(...).
 */
export const UNARY = {
  copy: 'x',
  neg: '-x',
  relu: 'max(x, T(0.0))',
  sigmoid: '1.0 / (1.0 + exp(-x))',
  exp: 'exp(x)',
  log: 'log(x)',
  square: 'x * x',
  sqrt: 'sqrt(x)',
  /** alpha * x + beta */
  affine: 'u.alpha * x + u.beta',
} as const;

/** Binary ops as WGSL expressions of `a` and `b` (and u.alpha, u.beta), for T = f32 or vec4<f32>. */
export const BINARY = {
  add: 'a + b',
  sub: 'a - b',
  mul: 'a * b',
  div: 'a / b',
  max: 'max(a, b)',
  /** max(a + b, 0): a residual join and its ReLU in one pass */
  add_relu: 'max(a + b, T(0.0))',
  /** alpha * a + beta * b */
  axpby: 'u.alpha * a + u.beta * b',
  /** ReLU's gradient: a = the ReLU's input, b = the incoming gradient */
  relu_grad: 'select(T(0.0), b, a > T(0.0))',
  /** sigmoid's gradient: a = the sigmoid's output, b = the incoming gradient */
  sigmoid_grad: 'b * a * (1.0 - a)',
  /** alpha * b broadcast to the output's shape (the backward of sum and mean) */
  scaled_b: 'u.alpha * b',
  /** 1 where a equals b (max's gradient mask) */
  equal: 'select(T(0.0), T(1.0), a == b)',
} as const;

export type UnaryOp = keyof typeof UNARY;
export type BinaryOp = keyof typeof BINARY;

const WG = 256;

/** Values per invocation of an elementwise pass: a vec4 when the count is a multiple of 4. */
export const perInvocation = (n: number) => (n % 4 === 0 ? 4 : 1);

/**
 * A size that a kernel divides by, as a compiled-in constant (lavapipe divides by a constant with
 * a multiply and a shift across the vector, by a run-time value one lane at a time). An empty
 * tensor launches nothing, but its pipeline still compiles: it divides by 1, never by a constant 0.
 */
export const compiledDivisor = (n: number) => n || 1;

/** op(a), of a's type (mixed precision's f16 activations stay f16; the arithmetic is f32). */
export function unary(op: UnaryOp, a: Tensor, alpha = 1, beta = 0): Tensor {
  const half = a.dtype === 'f16';
  const out = a.engine.empty(a.shape, undefined, a.dtype);
  a.engine.run({
    kernel: 'unary',
    params: { EXPR: UNARY[op], VEC4: perInvocation(a.size) === 4, HALF: half },
    half,
    uniforms: { n: a.size, alpha, beta },
    inputs: { a },
    outputs: { out },
    workgroups: Math.ceil(a.size / perInvocation(a.size) / WG),
  });
  return out;
}

/** Numpy broadcasting of two shapes (right-aligned); throws on a mismatch. */
export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`shapes ${shapeString(a)} and ${shapeString(b)} do not broadcast`);
    }
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Strides of `shape` read as the padded 4-d `outShape`, 0 on broadcast axes. */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const padded = [...Array(4 - shape.length).fill(1), ...shape];
  const out4 = [...Array(4 - outShape.length).fill(1), ...outShape];
  const strides = [0, 0, 0, 0];
  let stride = 1;
  for (let i = 3; i >= 0; i--) {
    strides[i] = padded[i] === 1 && out4[i] !== 1 ? 0 : stride;
    stride *= padded[i]!;
  }
  return strides;
}

/**
 * op(a, b) with broadcasting. Either operand may be an f16 activation (mixed precision); the
 * result is f16 when both are (an op between activations), else f32 (a gradient read against a
 * saved activation). The arithmetic is f32.
 */
export function binary(op: BinaryOp, a: Tensor, b: Tensor, alpha = 1, beta = 1): Tensor {
  const shape = broadcastShapes(a.shape, b.shape);
  if (shape.length > 4) throw new Error(`elementwise ops take rank <= 4, got ${shapeString(shape)}`);
  const [aHalf, bHalf] = [a.dtype === 'f16', b.dtype === 'f16'];
  const out = a.engine.empty(shape, undefined, aHalf && bHalf ? 'f16' : 'f32');
  const same = a.size === out.size && b.size === out.size;
  const per = same ? perInvocation(out.size) : 1;
  const [, d1, d2, d3] = [...Array(4 - shape.length).fill(1), ...shape] as number[];
  const [a0, a1, a2, a3] = broadcastStrides(a.shape, shape);
  const [b0, b1, b2, b3] = broadcastStrides(b.shape, shape);
  a.engine.run({
    kernel: 'binary',
    params: {
      EXPR: BINARY[op], BROADCAST: !same, VEC4: per === 4, HALF: aHalf || bHalf, A_HALF: aHalf, B_HALF: bHalf, OUT_HALF: aHalf && bHalf,
      D1: same ? 1 : compiledDivisor(d1!), D2: same ? 1 : compiledDivisor(d2!), D3: same ? 1 : compiledDivisor(d3!),
    },
    half: aHalf || bHalf,
    uniforms: { n: out.size, alpha, beta, a0: a0!, a1: a1!, a2: a2!, a3: a3!, b0: b0!, b1: b1!, b2: b2!, b3: b3! },
    inputs: { A: a, B: b },
    outputs: { out },
    workgroups: Math.ceil(out.size / per / WG),
  });
  return out;
}

/** acc += alpha * x, in place; with `lerp`, acc += alpha * (x - acc) (a moving average). */
export function accumulate(acc: Tensor, x: Tensor, alpha = 1, lerp = false): void {
  if (acc.size !== x.size) throw new Error(`cannot accumulate ${x.describe()} into ${acc.describe()}`);
  acc.engine.run({
    kernel: 'accumulate',
    params: { VEC4: perInvocation(acc.size) === 4, LERP: lerp },
    uniforms: { n: acc.size, alpha },
    inputs: { x },
    outputs: { acc },
    workgroups: Math.ceil(acc.size / perInvocation(acc.size) / WG),
  });
}
