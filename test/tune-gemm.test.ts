// Every candidate GEMM tile (register and workgroup-memory) against the reference: all layouts,
// odd sizes, bias and ReLU. Apart from tune.test.ts so that each file stays short on a loaded machine.
import t from 'tap';
import { matmul } from '../src/engine/gemm.js';
import { GEMM_TILE_CANDIDATES, tileName } from '../src/engine/tune.js';
import { assertClose } from './helpers/close.js';
import { gpuEngine } from './helpers/gpu.js';
import { randn } from './helpers/random.js';
import { matmulRef } from './helpers/reference.js';

t.test('every candidate tile computes the GEMM (all layouts, odd sizes, bias and ReLU)', async (t) => {
  const e = await gpuEngine(t);
  const [M, N, K] = [13, 22, 9];
  const bias = randn(N, 9);
  for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]] as const) {
    const a = randn(M * K, 1), b = randn(K * N, 2);
    const at = e.tensor(a, transA ? [K, M] : [M, K]), bt = e.tensor(b, transB ? [N, K] : [K, N]), biast = e.tensor(bias, [N]);
    const ref = matmulRef(Float64Array.from(a), Float64Array.from(b), M, N, K, transA, transB).map((v, i) => Math.max(0, v + bias[i % N]!));
    for (const tile of GEMM_TILE_CANDIDATES) {
      const out = matmul(at, bt, { transA, transB, tile, bias: biast, relu: true });
      assertClose(t, await out.read(), ref, `${transA ? 'Aᵀ' : 'A'}${transB ? 'Bᵀ' : 'B'} tile ${tileName(tile)}`);
      out.dispose();
    }
  }
  // Batched, with N a multiple of 4 (the vec4 path for B) and M not one of 8.
  const [Bt, M2, N2, K2] = [3, 7, 12, 5];
  const a = randn(Bt * M2 * K2, 3), b = randn(Bt * K2 * N2, 4);
  const at = e.tensor(a, [Bt, M2, K2]), bt = e.tensor(b, [Bt, K2, N2]);
  const ref = new Float64Array(Bt * M2 * N2);
  for (let i = 0; i < Bt; i++) ref.set(matmulRef(Float64Array.from(a.subarray(i * M2 * K2, (i + 1) * M2 * K2)), Float64Array.from(b.subarray(i * K2 * N2, (i + 1) * K2 * N2)), M2, N2, K2), i * M2 * N2);
  for (const tile of GEMM_TILE_CANDIDATES) assertClose(t, await matmul(at, bt, { tile }).read(), ref, `batched vec4 tile ${tileName(tile)}`);
  // Deeper than one staged step (16) and wider than one workgroup tile (128) for the shared tiles.
  const [M3, N3, K3] = [130, 133, 37];
  const a3 = randn(M3 * K3, 5), b3 = randn(K3 * N3, 6);
  for (const [transA, transB] of [[false, false], [true, true]] as const) {
    const at3 = e.tensor(a3, transA ? [K3, M3] : [M3, K3]), bt3 = e.tensor(b3, transB ? [N3, K3] : [K3, N3]);
    const ref3 = matmulRef(Float64Array.from(a3), Float64Array.from(b3), M3, N3, K3, transA, transB);
    for (const tile of GEMM_TILE_CANDIDATES.filter((x) => x.shared)) {
      assertClose(t, await matmul(at3, bt3, { transA, transB, tile }).read(), ref3, `${M3}x${N3}x${K3} ${transA ? 'AᵀBᵀ' : 'AB'} tile ${tileName(tile)}`, 1e-4, 1e-4);
    }
  }
});
