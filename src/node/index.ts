// Node-only parts of clothtag: Dawn start-up, datasets on disk, training runs, file labelling.
export { createNodeGpu, type NodeGpu } from './gpu.js';
export { openDataset, makeSplits, type Dataset } from '../data/dataset.js';
export { decodeImage } from '../data/image.js';
export { synthesize } from '../data/synth.js';
export { runTraining, DEFAULT_TRAIN, defaultLr, type TrainConfig } from '../run/train.js';
export { predictFiles } from '../run/predict.js';
