// clothtag's embeddable core: everything here runs wherever a GPUDevice exists (Node through Dawn,
// browsers, Deno, Bun) and imports nothing from Node. Node-only helpers are in 'clothtag/node'.
export { Engine, adapterName, KernelError, DeviceLostError, TensorTooLargeError, type Dispatch, type KernelTiming } from './engine/engine.js';
export { requestEngineDevice } from './engine/device.js';
export { Tensor } from './engine/tensor.js';
export * as ops from './autograd/ops.js';
export { backward } from './autograd/tape.js';
export { Adam } from './autograd/optim.js';
export { GradientScaler } from './autograd/scaler.js';
export { castTensor } from './engine/cast.js';
export { chooseConvTile, chooseGemmTile, emptyTuning, tuneShape, type Tile, type TuningTable } from './engine/tune.js';
export { NET_NAMES, THESIS_PARAMS, createNet, defaultConvInit, isNetName, type ClothNet, type NetConfig, type NetName, type NetOutput } from './nets/models.js';
export { CONV_INITS, type ConvInit } from './nets/module.js';
export { parseSafetensors, serializeSafetensors, type TensorMap } from './nets/safetensors.js';
export { loadCheckpoint, loadState, readState, saveCheckpoint, type CheckpointMeta } from './nets/weights.js';
export { DEFAULT_LANDMARK_LOSS, THESIS_LOSS, UncertaintyWeights, multiTaskLoss, type LandmarkLoss, type LossConfig, type Targets } from './train/losses.js';
export { learningRate, type ScheduleConfig, type ScheduleName } from './train/schedule.js';
export { WeightAverage } from './train/ema.js';
export { Trainer, predictBatch, type HostBatch } from './train/step.js';
export { MetricsAccumulator, decodeLandmarks, formatEval, type EvalResult, type Vocabulary } from './train/metrics.js';
export { LANDMARK_SLOTS, cropResize, toImagePixels, type Box, type RgbaImage } from './label/pixels.js';
export { DEFAULT_LABELING, checkpointLabeling, labelImages, wholeImage, type LabelOptions, type Labels } from './label/labels.js';
