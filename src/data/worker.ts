// A loader thread: builds batches on request so that decoding never stalls the GPU's thread.
import { parentPort, workerData } from 'node:worker_threads';
import { type BatchSpec, type DatasetView, loadBatch } from './batch.js';

const { view, spec } = workerData as { view: DatasetView; spec: BatchSpec };

parentPort!.on('message', (m: { id: number; indices: number[]; seed: number }) => {
  try {
    const b = loadBatch(view, m.indices, spec, m.seed);
    const buffers = [b.images, b.category, b.attributes, b.landmarks, b.heatmaps, b.landmarkMask, b.photos, b.boxes, b.boxMask, b.photoSizes].filter((x): x is Float32Array => !!x).map((x) => x.buffer as ArrayBuffer);
    parentPort!.postMessage({ id: m.id, batch: b }, buffers);
  } catch (e) {
    parentPort!.postMessage({ id: m.id, error: (e as Error).message });
  }
});
