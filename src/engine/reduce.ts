// Sum / mean / max over axes, and summing a broadcast gradient back to its operand's shape.
import { compiledDivisor } from './elementwise.js';
import { Tensor, shapeString } from './tensor.js';

export type ReduceOp = 'sum' | 'mean' | 'max';
export type ReduceStrategy = 'per_thread' | 'per_workgroup' | 'leading';

/**
 * Which reduce.wgsl entry point to use: a pure function of the shape so that it can be tested.
 * Few outputs with long reductions (a loss, a bias gradient) share a workgroup per output;
 * reductions over leading axes only (`leading`: output o sums x[r * outputs + o]) with enough
 * outputs to keep the invocations busy walk memory in order; otherwise each invocation owns one
 * output.
 */
export function reduceStrategy(outputs: number, reduced: number, leading = false): ReduceStrategy {
  if (reduced >= 256 && outputs <= 16384) return 'per_workgroup';
  return leading && outputs >= 256 ? 'leading' : 'per_thread';
}

/** Whether every reduced axis (of size > 1) comes before every kept one (of size > 1). */
export function reducesLeadingAxes(shape: readonly number[], axes: readonly number[]): boolean {
  let seenKept = false;
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 1) continue;
    if (axes.includes(i)) {
      if (seenKept) return false;
    } else seenKept = true;
  }
  return true;
}

export function normalizeAxes(axes: readonly number[], rank: number, x: Tensor): number[] {
  const out = axes.map((a) => (a < 0 ? a + rank : a));
  if (out.some((a) => a < 0 || a >= rank)) throw new Error(`axes [${axes}] out of range for tensor ${x.describe()}`);
  return [...new Set(out)].sort();
}

export function reduce(op: ReduceOp, x: Tensor, axes: readonly number[], keepDims = false): Tensor {
  if (x.rank > 4) throw new Error(`reductions take rank <= 4, got ${x.describe()}`);
  const ax = normalizeAxes(axes, x.rank, x);
  const shape4 = [...Array(4 - x.rank).fill(1), ...x.shape];
  const ax4 = ax.map((a) => a + 4 - x.rank);
  const kept = shape4.map((d, i) => (ax4.includes(i) ? 1 : d));
  const red = shape4.map((d, i) => (ax4.includes(i) ? d : 1));
  const strides = [1, 1, 1, 1];
  for (let i = 2; i >= 0; i--) strides[i] = strides[i + 1]! * shape4[i + 1]!;
  const nOut = kept.reduce((p, d) => p * d, 1);
  const nRed = red.reduce((p, d) => p * d, 1);
  if (op === 'max' && nRed === 0) throw new Error(`max over an empty axis of ${x.describe()}`);
  const outShape = keepDims ? x.shape.map((d, i) => (ax.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !ax.includes(i));
  const out = x.engine.empty(outShape);
  const strategy = reduceStrategy(nOut, nRed, reducesLeadingAxes(x.shape, ax));
  const scale = op === 'mean' ? 1 / Math.max(nRed, 1) : 1;
  if (strategy === 'leading') {
    const vec4 = nOut % 4 === 0;
    x.engine.run({
      kernel: 'reduce_leading',
      params: { IS_MAX: op === 'max', VEC4: vec4 },
      uniforms: { n_out: nOut, n_red: nRed, scale },
      inputs: { x },
      outputs: { out },
      workgroups: Math.ceil(nOut / (vec4 ? 4 : 1) / 256),
    });
    return out;
  }
  const [, k1, k2, k3] = kept as [number, number, number, number];
  const [, r1, r2, r3] = red as [number, number, number, number];
  const [s0, s1, s2, s3] = strides as [number, number, number, number];
  x.engine.run({
    kernel: 'reduce',
    entry: strategy,
    params: {
      IS_MAX: op === 'max', SUBGROUPS: strategy === 'per_workgroup' && x.engine.useSubgroups,
      N_OUT: nOut, N_RED: nRed, K1: compiledDivisor(k1), K2: compiledDivisor(k2), K3: compiledDivisor(k3),
      R1: compiledDivisor(r1), R2: compiledDivisor(r2), R3: compiledDivisor(r3), S0: s0, S1: s1, S2: s2, S3: s3,
    },
    uniforms: { scale },
    inputs: { x },
    outputs: { out },
    workgroups: strategy === 'per_workgroup' ? nOut : Math.ceil(nOut / 256),
  });
  return out;
}

/** Sums a gradient of a broadcast result back to the shape of the operand that was broadcast. */
export function sumToShape(g: Tensor, shape: readonly number[]): Tensor {
  if (g.size === shape.reduce((p, d) => p * d, 1) && g.rank >= shape.length) return g.view(shape);
  const lead = g.rank - shape.length;
  if (lead < 0) throw new Error(`cannot sum ${g.describe()} to ${shapeString(shape)}`);
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  const summed = reduce('sum', g, axes, true);
  const out = summed.view(shape);
  summed.dispose();
  return out;
}
