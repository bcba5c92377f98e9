// `clothtag bench catalog`: what an exact similarity scan over a catalog costs as it grows. Fills a
// temporary catalog with synthetic rows (random L2-normalized embeddings, random probabilities;
// the scan's cost does not depend on what the numbers mean) and times `search` queries, beside the
// same scan over embeddings already in memory (the floor an in-process index would start from).
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Catalog, type PhotoRow } from '../src/catalog/catalog.js';
import { search } from '../src/catalog/search.js';
import { xorshift32 } from '../src/data/dataset.js';

export interface CatalogBenchRow {
  rows: number;
  dim: number;
  megabytes: number;
  /** search --like over every row (SQLite read and dot products), ms. */
  likeMs: number;
  /** search --attr A>0.5 over every row, ms. */
  attributeMs: number;
  /** The same dot products over a Float32Array already in memory, ms. */
  inMemoryMs: number;
  /** Rows written per second (a transaction per 10,000). */
  insertsPerSecond: number;
}

function unitVector(rand: () => number, dim: number): Float32Array {
  const v = Float32Array.from({ length: dim }, () => rand() - 0.5);
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}

export function benchCatalog(o: { rows: number[]; dim: number; reps: number; log: (s: string) => void }): CatalogBenchRow[] {
  const out: CatalogBenchRow[] = [];
  const categories = Array.from({ length: 50 }, (_, i) => `category${i}`);
  const attributes = Array.from({ length: 26 }, (_, i) => `attribute${i}`);
  for (const total of o.rows) {
    const dir = mkdtempSync(join(tmpdir(), 'clothtag-bench-catalog-'));
    try {
      const file = join(dir, 'catalog.sqlite');
      const catalog = Catalog.open(file, { create: true }).setSource({ sha256: '0'.repeat(64), path: '(synthetic)', net: 'cloth_resnet_a', size: 64, vocabulary: { categories, attributes, attributeTypes: attributes.map(() => 1), typeNames: { 1: 'all' } } }, false);
      const rand = xorshift32(total);
      const started = performance.now();
      for (let at = 0; at < total; at += 10_000) {
        const rows: PhotoRow[] = [];
        for (let i = at; i < Math.min(total, at + 10_000); i++) {
          // Logits, as the index stores them: each attribute above 0 (probability 0.5) half the time.
          rows.push({
            path: `/photos/${i}.jpg`, hash: i.toString(16).padStart(64, '0'), bytes: 30_000, mtimeMs: 0, width: 300, height: 300, box: [10, 10, 290, 290], boxSource: 'predicted',
            categoryLogits: Float32Array.from(categories, () => 4 * rand() - 2), attributeLogits: Float32Array.from(attributes, () => 8 * rand() - 4), landmarks: null, embedding: unitVector(rand, o.dim),
          });
        }
        catalog.put(rows);
      }
      const insertsPerSecond = total / ((performance.now() - started) / 1000);
      const query = unitVector(rand, o.dim);
      const time = (fn: () => unknown) => {
        const ms: number[] = [];
        for (let r = 0; r < o.reps; r++) {
          const t0 = performance.now();
          fn();
          ms.push(performance.now() - t0);
        }
        return ms.sort((a, b) => a - b)[Math.floor(ms.length / 2)]!;
      };
      const likeMs = time(() => search(catalog, { attributes: [], like: query, top: 20 }));
      const attributeMs = time(() => search(catalog, { attributes: [{ name: 'attribute3', op: '>', value: 0.5 }], top: 20 }));
      const all = new Float32Array(total * o.dim);
      let k = 0;
      for (const row of catalog.rows()) all.set(row.embedding, o.dim * k++);
      const inMemoryMs = time(() => {
        let best = -2;
        for (let i = 0; i < total; i++) {
          let s = 0;
          for (let d = 0; d < o.dim; d++) s += all[i * o.dim + d]! * query[d]!;
          if (s > best) best = s;
        }
        return best;
      });
      catalog.close();
      const megabytes = ['', '-wal'].reduce((s, x) => s + (statSync(file + x, { throwIfNoEntry: false })?.size ?? 0), 0) / 2 ** 20;
      const r = { rows: total, dim: o.dim, megabytes, likeMs, attributeMs, inMemoryMs, insertsPerSecond };
      o.log(`${total.toLocaleString('en')} photos (${o.dim}-d embeddings, ${megabytes.toFixed(0)} MB): search --like ${likeMs.toFixed(0)} ms, --attr ${attributeMs.toFixed(0)} ms; the same scan in memory ${inMemoryMs.toFixed(0)} ms; ${insertsPerSecond.toFixed(0)} rows/s written`);
      out.push(r);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return out;
}
