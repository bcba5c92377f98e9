// `clothtag bench real-data` (or bench/real-data): trains from scratch at CPU scale on the real
// photos in ../shared/data and prints the evaluation tables. clothing-small (ImageFolder,
// 10 categories) and deepfashion-fine (26 attributes in 6 types, boxes, landmarks; no categories).
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Engine } from '../src/engine/engine.js';
import { makeSplits, openDataset } from '../src/data/dataset.js';
import { DEFAULT_TRAIN, runTraining, vocabularyOf } from '../src/run/train.js';
import { THESIS_LOSS } from '../src/train/losses.js';
import { type EvalResult, MetricsAccumulator, formatEval } from '../src/train/metrics.js';

export interface RealDataOptions {
  shared: string;
  epochs: number;
  size: number;
  width: number;
  workers: number;
  log: (s: string) => void;
}

/** Scores every image with the training split's attribute frequencies: the baseline to beat. */
async function mostFrequentBaseline(path: string): Promise<EvalResult> {
  const ds = await openDataset(path);
  const splits = makeSplits(ds, 'official', 0);
  const A = ds.attributeNames.length;
  const freq = new Float64Array(A);
  for (const i of splits.train) for (let a = 0; a < A; a++) if (ds.attributes![i * A + a] === 1) freq[a]!++;
  const acc = new MetricsAccumulator(vocabularyOf(ds));
  for (const i of splits.val) acc.addAttributes(freq, Array.from(ds.attributes!.subarray(i * A, (i + 1) * A), (v) => (v === 1 ? 1 : v === -1 ? 0 : -1)));
  acc.countImages(splits.val.length);
  return acc.result();
}

export async function benchRealData(engine: Engine, o: RealDataOptions): Promise<Record<string, unknown>> {
  const results: Record<string, unknown> = {};
  const runs = mkdtempSync(join(tmpdir(), 'clothtag-real-'));
  const jobs = [
    { name: 'clothing-small', net: 'cloth_repvgg' as const, what: 'category, 10 classes' },
    { name: 'deepfashion-fine', net: 'cloth_repvgg' as const, what: '26 attributes in 6 types' },
  ];
  for (const job of jobs) {
    const path = join(o.shared, job.name);
    if (!existsSync(path)) {
      o.log(`${path} is absent: skipped`);
      continue;
    }
    o.log(`\n${job.name} (${job.what}): ${job.net}, width ${o.width}, ${o.size}x${o.size}, ${o.epochs} epochs from scratch`);
    const t0 = performance.now();
    const r = await runTraining(engine, join(runs, job.name), {
      ...DEFAULT_TRAIN, data: path, net: job.net, width: o.width, imgSize: o.size, batchSize: 32, epochs: o.epochs, lr: 3e-3, lrDecay: 0.9,
      loss: THESIS_LOSS, workers: o.workers,
    }, { log: o.log }, false);
    const minutes = (performance.now() - t0) / 60000;
    o.log(`${job.name}, validation split, after ${minutes.toFixed(1)} minutes:\n${formatEval(r.lastEval!)}`);
    results[job.name] = { net: job.net, width: o.width, size: o.size, epochs: o.epochs, minutes, eval: r.lastEval };
    if (job.name === 'deepfashion-fine') {
      const base = await mostFrequentBaseline(path);
      o.log(`most-frequent-attributes baseline (same split):\n${formatEval(base)}`);
      results['deepfashion-fine-most-frequent'] = base;
    }
  }
  return results;
}

export function writeResults(file: string, results: Record<string, unknown>): void {
  writeFileSync(file, JSON.stringify(results, null, 2));
}
