// Batches built off the main thread by a pool of worker threads (or in-process with 0 workers).
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { type Batch, type BatchSpec, type DatasetView, loadBatch } from './batch.js';
import type { Dataset } from './dataset.js';

export function datasetView(ds: Dataset): DatasetView {
  return { root: ds.root, items: ds.items, attributes: ds.attributes, attributeCount: ds.attributeNames.length, tasks: ds.tasks };
}

/** One thread fewer than the cores (the main thread records GPU work), at least one. */
export function defaultWorkers(): number {
  return Math.max(1, Math.min(4, availableParallelism() - 1));
}

export class BatchLoader {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, { resolve: (b: Batch) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private turn = 0;

  constructor(
    private readonly view: DatasetView,
    private readonly spec: BatchSpec,
    workers: number,
  ) {
    // The compiled worker (dist/); when running from TypeScript sources there is none: load in-process.
    const script = fileURLToPath(new URL('./worker.js', import.meta.url));
    const count = existsSync(script) ? workers : 0;
    for (let i = 0; i < count; i++) {
      const w = new Worker(script, { workerData: { view, spec } });
      w.on('message', (m: { id: number; batch?: Batch; error?: string }) => {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (m.error) p?.reject(new Error(`loader thread: ${m.error}`));
        else p?.resolve(m.batch!);
      });
      w.on('error', (e) => {
        for (const p of this.pending.values()) p.reject(new Error(`loader thread failed: ${e.message}`));
        this.pending.clear();
      });
      this.workers.push(w);
    }
  }

  get threads(): number {
    return this.workers.length;
  }

  load(indices: number[], seed: number): Promise<Batch> {
    if (!this.workers.length) {
      try {
        return Promise.resolve(loadBatch(this.view, indices, this.spec, seed));
      } catch (e) {
        return Promise.reject(e);
      }
    }
    const id = this.nextId++;
    const worker = this.workers[this.turn++ % this.workers.length]!;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, indices, seed });
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
