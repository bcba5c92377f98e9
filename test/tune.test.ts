// Tile choice and the tuner: the choice is a pure function of shape, adapter and table, and the
// tuner's measurement. That every candidate tile computes the same thing as the references is in
// tune-gemm.test.ts and tune-conv.test.ts (apart, so that each file stays short on a loaded machine).
import t from 'tap';
import { matmul } from '../src/engine/gemm.js';
import {
  GEMM_TILE_CANDIDATES,
  TILE_CANDIDATES,
  adapterKind,
  chooseConvTile,
  chooseGemmTile,
  convKey,
  defaultGemmTile,
  defaultTile,
  emptyTuning,
  gemmKey,
  parseTile,
  pickWinner,
  tileName,
  tuneShape,
} from '../src/engine/tune.js';
import { gpuEngine } from './helpers/gpu.js';

const LAVAPIPE = 'mesa/software/llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)';
const H100 = 'nvidia/hopper/NVIDIA H100 80GB HBM3';

t.test('tile names round-trip and bad names are refused', async (t) => {
  for (const tile of GEMM_TILE_CANDIDATES) t.same(parseTile(tileName(tile)), tile, tileName(tile));
  t.equal(TILE_CANDIDATES.length, 12, 'register blocks 4x4 to 8x8 in three workgroup shapes');
  t.equal(GEMM_TILE_CANDIDATES.length, 15, 'and for a GEMM three workgroup-memory tilings');
  t.same(parseTile('8x8/16x16s'), { tm: 8, tn: 8, wgX: 16, wgY: 16, shared: true });
  t.equal(parseTile('5x4/16x8'), null, 'only 4 and 8 wide blocks');
  t.equal(parseTile('8x8/32x32'), null, 'over 256 invocations a workgroup');
  t.equal(parseTile('garbage'), null);
});

t.test('the choice is a pure function of shape, adapter and table', async (t) => {
  t.equal(adapterKind(LAVAPIPE), 'cpu');
  t.equal(adapterKind('google/swiftshader/SwiftShader Device (Subzero)'), 'cpu');
  t.equal(adapterKind(H100), 'gpu');
  const big = { M: 1024, N: 1024, K: 1024, batch: 1, transA: false, transB: false };
  const small = { M: 16, N: 50, K: 2048, batch: 1, transA: false, transB: true };
  t.same(chooseGemmTile(big, LAVAPIPE), { tm: 8, tn: 8, wgX: 16, wgY: 8 }, 'CPU default: 8x8 blocks');
  t.same(chooseGemmTile(big, H100), { tm: 8, tn: 8, wgX: 16, wgY: 16, shared: true }, 'GPU, 1M outputs: 128x128 workgroup-memory tiles');
  t.same(chooseGemmTile(small, H100), { tm: 4, tn: 4, wgX: 16, wgY: 16, shared: true }, 'GPU, 800 outputs: 64x64 tiles keep the workgroups many');
  t.same(chooseGemmTile(big, LAVAPIPE), chooseGemmTile(big, LAVAPIPE, emptyTuning()), 'an empty table changes nothing');

  const table = emptyTuning();
  table.adapters[H100] = { [gemmKey(big)]: '4x8/16x16' };
  t.same(chooseGemmTile(big, H100, table), { tm: 4, tn: 8, wgX: 16, wgY: 16 }, 'a tuned winner wins');
  t.same(chooseGemmTile({ ...big, M: 1100, N: 900 }, H100, table), { tm: 4, tn: 8, wgX: 16, wgY: 16 }, 'for every shape in its bucket');
  t.same(chooseGemmTile(big, LAVAPIPE, table), defaultTile(LAVAPIPE, 1024, 1024), 'but only on its own adapter');
  t.same(chooseGemmTile({ ...big, transB: true }, H100, table), defaultGemmTile(H100, 1024, 1024), 'and its own layout');
  table.adapters[H100]![gemmKey(small)] = 'nonsense';
  t.same(chooseGemmTile(small, H100, table), defaultGemmTile(H100, 16, 50), 'a corrupt entry falls back to the default');

  const conv = { pass: 'forward' as const, N: 16, C: 64, H: 56, W: 56, K: 64, KH: 3, KW: 3, stride: 1 };
  t.not(convKey(conv), convKey({ ...conv, pass: 'backward_data' }), 'passes are tuned apart');
  t.not(convKey(conv), convKey({ ...conv, stride: 2 }), 'strides are tuned apart');
  table.adapters[H100]![convKey(conv)] = '8x4/8x8';
  t.same(chooseConvTile(conv, H100, table), { tm: 8, tn: 4, wgX: 8, wgY: 8 });
  t.same(chooseConvTile({ ...conv, stride: 2 }, H100), { tm: 4, tn: 4, wgX: 16, wgY: 16, shared: true }, 'a GPU\'s forward default: workgroup-memory tiles');
  t.same(chooseConvTile({ ...conv, stride: 2 }, LAVAPIPE), { tm: 8, tn: 8, wgX: 16, wgY: 8 }, 'lavapipe\'s: register tiles');
  const bwd = { ...conv, pass: 'backward_data' as const };
  table.adapters[H100]![convKey(bwd)] = '8x8/16x16s';
  t.same(chooseConvTile(bwd, H100, table), defaultTile(H100, 64, 16 * 56 * 56), 'no workgroup-memory tiles for the backward passes: an entry naming one is ignored');
  t.same(chooseConvTile({ ...conv, pass: 'backward_weight' }, H100, table), defaultTile(H100, 64, 64 * 9), 'backward-weight tiles K x taps');
});

t.test('a winner must beat the default by a margin', async (t) => {
  t.equal(pickWinner({ a: 1, b: 0.9, c: 1.2 }, 'a'), 'a', '10% faster: the default stays');
  t.equal(pickWinner({ a: 1, b: 0.8, c: 1.2 }, 'a'), 'b', '20% faster: replaced');
  t.equal(pickWinner({ a: 1, b: 0.8 }, 'z'), 'b', 'no default among the candidates: the fastest');
  t.equal(pickWinner({ a: 1, b: 0.9 }, 'a', 0), 'b', 'no margin: the fastest');
});

t.test('the tuner measures every candidate and its winner becomes the choice', async (t) => {
  const e = await gpuEngine(t);
  const shape = { M: 24, N: 40, K: 16, batch: 1, transA: false, transB: false };
  const a = e.full([24, 16], 0.5), b = e.full([16, 40], 0.25);
  const table = emptyTuning();
  const result = await tuneShape(e, gemmKey(shape), table, chooseGemmTile(shape, e.adapter), (tile) => void matmul(a, b, { tile }), 1);
  t.equal(Object.keys(result.times).length, GEMM_TILE_CANDIDATES.length, 'every candidate timed');
  t.ok(Object.values(result.times).every((ms) => ms > 0 && Number.isFinite(ms)), 'with real times');
  const fastest = Object.entries(result.times).sort((x, y) => x[1] - y[1])[0]!;
  const expected = fastest[1] <= 0.85 * result.times[result.defaultTile]! ? fastest[0] : result.defaultTile;
  t.equal(result.best, expected, 'the fastest wins if it beats the default by 15%, else the default stays');
  t.same(chooseGemmTile(shape, e.adapter, table), parseTile(result.best), 'and is chosen from then on');
});
