// Matrix products: C = alpha * op(A) op(B) (+ bias), 2-d or batched 3-d.
import { f32 } from './engine.js';
import { Tensor, shapeString } from './tensor.js';

export interface GemmOptions {
  transA?: boolean;
  transB?: boolean;
  /** Added to every row of C (length N). */
  bias?: Tensor;
  alpha?: number;
}

/** Rows of C per invocation (each computes TM x 4 outputs). */
export const GEMM_TM = 4;
const WG_X = 16;
const WG_Y = 8;

export function gemmDims(a: readonly number[], b: readonly number[], o: GemmOptions) {
  const ra = a.length, rb = b.length;
  if (ra < 2 || ra > 3 || rb < 2 || rb > 3) throw new Error(`matmul takes 2-d or 3-d tensors, got ${shapeString(a)} and ${shapeString(b)}`);
  const M = o.transA ? a[ra - 1]! : a[ra - 2]!;
  const K = o.transA ? a[ra - 2]! : a[ra - 1]!;
  const Kb = o.transB ? b[rb - 1]! : b[rb - 2]!;
  const N = o.transB ? b[rb - 2]! : b[rb - 1]!;
  const batch = ra === 3 ? a[0]! : rb === 3 ? b[0]! : 1;
  if (K !== Kb || (ra === 3 && rb === 3 && a[0] !== b[0])) {
    throw new Error(`matmul shapes ${shapeString(a)}${o.transA ? 'ᵀ' : ''} x ${shapeString(b)}${o.transB ? 'ᵀ' : ''} do not fit`);
  }
  return { M, N, K, batch, batched: ra === 3 || rb === 3 };
}

export function matmul(a: Tensor, b: Tensor, o: GemmOptions = {}): Tensor {
  const { M, N, K, batch, batched } = gemmDims(a.shape, b.shape, o);
  if (o.bias && o.bias.size !== N) throw new Error(`bias ${o.bias.describe()} does not match ${N} output columns`);
  const out = a.engine.empty(batched ? [batch, M, N] : [M, N]);
  a.engine.run({
    kernel: 'gemm',
    params: { TRANS_A: !!o.transA, TRANS_B: !!o.transB, HAS_BIAS: !!o.bias, TM: GEMM_TM, K_BLOCKED: !!o.transB && !o.transA },
    uniforms: [M, N, K, a.rank === 3 ? M * K : 0, b.rank === 3 ? K * N : 0, M * N, f32(o.alpha ?? 1)],
    inputs: o.bias ? [a, b, o.bias] : [a, b],
    outputs: [out],
    workgroups: [Math.ceil(N / 4 / WG_X), Math.ceil(M / GEMM_TM / WG_Y), batch],
    flops: 2 * batch * M * N * K,
  });
  return out;
}
