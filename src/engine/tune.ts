// Tile configurations for the GEMM and the forward convolution, chosen per adapter and shape.
//
// The choice is a pure function: chooseGemmTile(shape, adapter, table) and chooseConvTile(...)
// look the shape's bucket up in a table of measured winners for that adapter and otherwise fall
// back to a default for the adapter's kind. The table is filled by measurement (tuneGemm,
// tuneConv: every candidate timed with timestamp queries on the real shape) and cached by whoever
// embeds the engine (the Node CLI keeps it in ~/.cache/clothtag/tuning.json), so the engine
// itself never times anything while it trains.
import type { Engine } from './engine.js';

export interface Tile {
  /** Rows (GEMM) or output channels (convolution) per invocation. */
  tm: 4 | 8;
  /** Columns (GEMM) or output pixels (convolution) per invocation. */
  tn: 4 | 8;
  /** Workgroup shape: invocations along columns/pixels, along rows/channels. */
  wgX: number;
  wgY: number;
  /** GEMM only: stage the workgroup's tiles of A and B in workgroup memory (gemm_tiled.wgsl). */
  shared?: boolean;
}

export const tileName = (t: Tile) => `${t.tm}x${t.tn}/${t.wgX}x${t.wgY}${t.shared ? 's' : ''}`;

export function parseTile(name: string): Tile | null {
  const m = /^([48])x([48])\/(\d+)x(\d+)(s?)$/.exec(name);
  if (!m) return null;
  const t: Tile = { tm: Number(m[1]) as 4 | 8, tn: Number(m[2]) as 4 | 8, wgX: Number(m[3]), wgY: Number(m[4]) };
  if (m[5]) t.shared = true;
  return t.wgX * t.wgY <= 256 && t.wgX > 0 && t.wgY > 0 ? t : null;
}

/**
 * What the tuner tries on a convolution: register blocks from 4x4 to 8x8 outputs per invocation,
 * three workgroup shapes.
 */
export const TILE_CANDIDATES: readonly Tile[] = (() => {
  const out: Tile[] = [];
  for (const [tm, tn] of [[4, 4], [8, 4], [4, 8], [8, 8]] as const) {
    for (const [wgX, wgY] of [[16, 8], [8, 8], [16, 16]]) out.push({ tm, tn, wgX: wgX!, wgY: wgY! });
  }
  return out;
})();

/**
 * And on a GEMM or a convolution's forward pass: the same, plus three workgroup-memory tilings
 * (64x64 to 128x128 outputs per workgroup; gemm_tiled.wgsl, conv2d_tiled.wgsl).
 */
export const GEMM_TILE_CANDIDATES: readonly Tile[] = [
  ...TILE_CANDIDATES,
  { tm: 4, tn: 4, wgX: 16, wgY: 16, shared: true },
  { tm: 8, tn: 8, wgX: 16, wgY: 8, shared: true },
  { tm: 8, tn: 8, wgX: 16, wgY: 16, shared: true },
];

/** The adapter kinds whose defaults differ: CPU rasterizers (lavapipe, SwiftShader) and GPUs. */
export function adapterKind(adapter: string): 'cpu' | 'gpu' {
  // Asked on every dispatch that picks a tile or a reduction: the last answer is kept.
  if (adapter !== lastKind.adapter) lastKind = { adapter, kind: /llvmpipe|lavapipe|swiftshader|software|cpu/i.test(adapter) ? 'cpu' : 'gpu' };
  return lastKind.kind;
}
let lastKind: { adapter: string; kind: 'cpu' | 'gpu' } = { adapter: '', kind: 'gpu' };

/**
 * Untuned defaults. On a CPU adapter a workgroup runs on one core and invocations are SIMD lanes:
 * 8x8 blocks were 1.4-2x faster than 4x4 on every GEMM and conv shape measured on lavapipe
 * (the loads, not the FMAs, are what costs there). On a GPU bigger blocks raise arithmetic
 * intensity too, but small problems need enough workgroups to fill the machine, so 8x8 blocks
 * only where there are at least 1M outputs.
 */
export function defaultTile(adapter: string, rows: number, cols: number): Tile {
  if (adapterKind(adapter) === 'cpu') return { tm: 8, tn: 8, wgX: 16, wgY: 8 };
  if (rows * cols >= 1 << 20 && rows >= 64) return { tm: 8, tn: 8, wgX: 16, wgY: 8 };
  return { tm: 4, tn: 4, wgX: 16, wgY: 8 };
}

/**
 * A GEMM's (and a convolution forward's) untuned default: as defaultTile on a CPU adapter
 * (lavapipe measured the workgroup-memory tiles 2.5x slower: its barriers cost more than the
 * re-reads they save); on a GPU the workgroup-memory tiling, 128x128 a workgroup from 1M
 * outputs, 64x64 below.
 */
export function defaultGemmTile(adapter: string, rows: number, cols: number): Tile {
  if (adapterKind(adapter) === 'cpu') return defaultTile(adapter, rows, cols);
  return rows * cols >= 1 << 20 ? { tm: 8, tn: 8, wgX: 16, wgY: 16, shared: true } : { tm: 4, tn: 4, wgX: 16, wgY: 16, shared: true };
}

export interface GemmShape {
  M: number;
  N: number;
  K: number;
  batch: number;
  transA: boolean;
  transB: boolean;
}

export type ConvPassName = 'forward' | 'backward_data' | 'backward_weight';

/** A convolution by its forward geometry (x [N, C, H, W], w [K, C, KH, KW]) and the pass run. */
export interface ConvShape {
  pass: ConvPassName;
  N: number;
  C: number;
  H: number;
  W: number;
  K: number;
  KH: number;
  KW: number;
  stride: number;
  /** Needed to run the shape (the tuner), not to choose its tile. */
  pad?: number;
}

/** Rounds to the nearest power of two: shapes within a factor of about 1.4 share a tuning entry. */
const bucket = (n: number) => 2 ** Math.round(Math.log2(Math.max(1, n)));

export function gemmKey(s: GemmShape): string {
  return `gemm ${s.transA ? 't' : 'n'}${s.transB ? 't' : 'n'} ${bucket(s.M)}x${bucket(s.N)}x${bucket(s.K)}${s.batch > 1 ? ` b${bucket(s.batch)}` : ''}`;
}

export function convKey(s: ConvShape): string {
  const OH = Math.ceil(s.H / s.stride), OW = Math.ceil(s.W / s.stride);
  return `conv ${s.pass} ${s.KH}x${s.KW}/${s.stride} k${bucket(s.K)} c${bucket(s.C)} p${bucket(s.N * OH * OW)}`;
}

/** The implicit GEMM's rows and columns in each pass (what the block tiles). */
export function convGemmSize(s: ConvShape): [rows: number, cols: number] {
  const OH = Math.ceil(s.H / s.stride), OW = Math.ceil(s.W / s.stride);
  if (s.pass === 'forward') return [s.K, s.N * OH * OW];
  if (s.pass === 'backward_data') return [s.C, s.N * s.H * s.W];
  return [s.K, s.C * s.KH * s.KW];
}

/** Measured winners, per adapter (its description string), per shape bucket. */
export interface TuningTable {
  version: 1;
  adapters: Record<string, Record<string, string>>;
}

export const emptyTuning = (): TuningTable => ({ version: 1, adapters: {} });

function lookup(table: TuningTable | undefined, adapter: string, key: string): Tile | null {
  const name = table?.adapters[adapter]?.[key];
  const tile = name ? parseTile(name) : null;
  // Workgroup-memory tiles exist for GEMMs and convolution forward passes only.
  return tile && !(tile.shared && !hasSharedTiles(key)) ? tile : null;
}

function hasSharedTiles(key: string): boolean {
  return key.startsWith('gemm') || key.startsWith('conv forward');
}

/** The GEMM tile for a shape on an adapter: the tuned winner if the table has one, else the default. */
export function chooseGemmTile(shape: GemmShape, adapter: string, table?: TuningTable): Tile {
  return lookup(table, adapter, gemmKey(shape)) ?? defaultGemmTile(adapter, shape.M, shape.N * shape.batch);
}

/** A convolution pass's tile (tm: channels, tn: pixels or taps per invocation). */
export function chooseConvTile(shape: ConvShape, adapter: string, table?: TuningTable): Tile {
  const [rows, cols] = convGemmSize(shape);
  return lookup(table, adapter, convKey(shape)) ?? (shape.pass === 'forward' ? defaultGemmTile : defaultTile)(adapter, rows, cols);
}

export interface TuneResult {
  key: string;
  /** Median milliseconds per candidate tile name. */
  times: Record<string, number>;
  best: string;
  defaultTile: string;
}

/**
 * Times every candidate for one shape (`run(tile)` records the dispatch) and stores the winner in
 * `table` under the engine's adapter. The first two runs of each candidate are warm-up.
 */
export async function tuneShape(engine: Engine, key: string, table: TuningTable, fallback: Tile, run: (tile: Tile) => void, reps = 3): Promise<TuneResult> {
  const times: Record<string, number> = {};
  for (const tile of hasSharedTiles(key) ? GEMM_TILE_CANDIDATES : TILE_CANDIDATES) {
    const ms: number[] = [];
    for (let i = 0; i < reps + 2; i++) {
      const timings = await engine.profileKernels(() => engine.tidy(() => run(tile)));
      if (i >= 2) ms.push(timings.reduce((s, t) => s + t.ms, 0));
    }
    ms.sort((a, b) => a - b);
    times[tileName(tile)] = ms[ms.length >> 1]!;
  }
  const best = pickWinner(times, tileName(fallback));
  (table.adapters[engine.adapter] ??= {})[key] = best;
  return { key, times, best, defaultTile: tileName(fallback) };
}

/**
 * The fastest candidate, but the default unless that is at least `margin` faster: a shape timed
 * alone is not the shape inside a step (caches, the other kernels), and on lavapipe a table of
 * narrow winners made whole cloth_resnet_a steps 5-7% slower than the defaults. Pure, tested.
 */
export function pickWinner(times: Record<string, number>, defaultName: string, margin = 0.15): string {
  const [fastest, ms] = Object.entries(times).sort((a, b) => a[1] - b[1])[0]!;
  const standing = times[defaultName];
  return standing !== undefined && ms > standing * (1 - margin) ? defaultName : fastest;
}
