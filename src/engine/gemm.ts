// Matrix products: C = alpha * op(A) op(B) (+ bias), 2-d or batched 3-d.
import { Tensor, shapeString } from './tensor.js';
import { operandType } from './cast.js';
import { KernelError } from './dispatch.js';
import { chooseGemmTile, type Tile } from './tune.js';

export interface GemmOptions {
  transA?: boolean;
  transB?: boolean;
  /** Added to every row of C (length N). */
  bias?: Tensor;
  alpha?: number;
  /** Applies max(0, ·) after the bias (a fused epilogue). */
  relu?: boolean;
  /** Forces a tile (the tuner's candidates); otherwise chooseGemmTile decides. */
  tile?: Tile;
  /** C in f16 (mixed precision's activations: a 1x1 convolution's output); needs f16 operands. */
  outHalf?: boolean;
}

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
  if (o.bias && (o.bias.size !== N || o.bias.dtype !== 'f32')) throw new Error(`bias ${o.bias.describe()} is not a float32 vector of ${N} output columns`);
  const engine = a.engine;
  const transA = !!o.transA, transB = !!o.transB;
  const shape = { M, N, K, batch, transA, transB };
  engine.traceShapes?.({ gemm: shape });
  const tile = o.tile ?? chooseGemmTile(shape, engine.adapter, engine.tuning);
  const half = operandType('matmul', a, b) === 'f16';
  if (o.outHalf && !half) throw new KernelError(`matmul: an f16 result needs f16 operands, got ${a.describe()} and ${b.describe()}`);
  const out = engine.empty(batched ? [batch, M, N] : [M, N], undefined, o.outHalf ? 'f16' : 'f32');
  const specialization = { HALF: half, OUT_HALF: !!o.outHalf, TRANS_A: transA, TRANS_B: transB, HAS_BIAS: !!o.bias, RELU: !!o.relu, TM: tile.tm, TN: tile.tn, WG_X: tile.wgX, WG_Y: tile.wgY };
  const common = {
    half,
    uniforms: { M, N, K, batch_a: a.rank === 3 ? M * K : 0, batch_b: b.rank === 3 ? K * N : 0, batch_c: M * N, alpha: o.alpha ?? 1 },
    inputs: { A: a, B: b, bias: o.bias },
    outputs: { C: out },
    workgroups: [Math.ceil(N / tile.tn / tile.wgX), Math.ceil(M / tile.tm / tile.wgY), batch] as const,
    flops: 2 * batch * M * N * K,
  };
  if (tile.shared) engine.run({ ...common, kernel: 'gemm_tiled', params: specialization });
  else {
    engine.run({
      ...common,
      kernel: 'gemm',
      params: {
        ...specialization,
        K_BLOCKED: transB && !transA,
        // Whole-vec4 reads of B need every row (and every batch) of B to start on a vec4.
        VEC_B: !transB && N % 4 === 0,
      },
    });
  }
  return out;
}
