import { createNodeGpu } from './dist/src/node/gpu.js';
import { openDataset } from './dist/src/data/dataset.js';
import { datasetView } from './dist/src/data/loader.js';
import { loadBatch } from './dist/src/data/batch.js';
import { createNet } from './dist/src/nets/models.js';
import { Trainer, predictBatch } from './dist/src/train/step.js';
import { THESIS_LOSS } from './dist/src/train/losses.js';
import { decodeLandmarks } from './dist/src/train/metrics.js';
const [data, net_, width, prior, lr] = process.argv.slice(2);
const gpu = await createNodeGpu();
const e = gpu.engine;
const ds = await openDataset(data);
const S = 48;
const batch = loadBatch(datasetView(ds), Array.from({ length: 16 }, (_, i) => i), { size: S, augment: false, heatmaps: false }, 0);
const net = createNet(e, { net: net_, categories: ds.categories.length, attributes: ds.attributeNames.length, width: Number(width), seed: 0, landmarkPrior: prior === '1' });
const trainer = new Trainer(net, { ...THESIS_LOSS, landmarkLoss: 'softargmax', wl: 20 }, Number(lr));
for (let k = 0; k <= 150; k++) {
  const terms = trainer.step({ n: 16, ...batch }, k);
  const [lm] = await e.readMany([terms.landmarks]);
  for (const x of new Set(Object.values(terms))) x?.dispose();
  if (k % 25 === 0) {
    const out = predictBatch(net, batch.images, 16, S);
    const h = await out.heatmaps.read();
    const d = decodeLandmarks(h, 16, S, 'softargmax');
    let s = 0, c = 0;
    for (let i = 0; i < 16; i++) for (let j = 0; j < 8; j++) if (batch.landmarks[i*24+3*j] === 0) { s += Math.hypot(d.points[i*16+2*j]-batch.landmarks[i*24+3*j+1], d.points[i*16+2*j+1]-batch.landmarks[i*24+3*j+2]) / S; c++; }
    console.log(`step ${k}: train L1 ${lm[0].toFixed(4)}, eval-mode NME on the batch ${(s/c).toFixed(4)}`);
    for (const t of Object.values(out)) t?.dispose();
  }
}
gpu.close();
