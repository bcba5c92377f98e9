// `clothtag train`: a run folder with config.json, metrics.csv, curves, and atomic checkpoints
// (weights/last, weights/best, and the optimizer state that makes --resume exact).
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { readJsonFile, readRegularFile } from '../data/files.js';
import { isTorchCheckpoint, readTorchCheckpoint } from '../interop/torch.js';
import { join } from 'node:path';
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/tensor.js';
import { type Dataset, makeSplits, openDataset, shuffled } from '../data/dataset.js';
import { BatchLoader, datasetView } from '../data/loader.js';
import { itemPhoto } from '../data/batch.js';
import { type ClothNet, type NetName, createNet } from '../nets/models.js';
import { BOX_INPUT } from '../nets/locator.js';
import type { ConvInit } from '../nets/module.js';
import { type TensorMap, parseSafetensors, serializeSafetensors } from '../nets/safetensors.js';
import { loadState, readState, replaceBoxHead, saveCheckpoint } from '../nets/weights.js';
import { plotLines } from '../node/plot.js';
import { THESIS_LOSS, type LossConfig, decodeFor, needsHeatmapTargets } from '../train/losses.js';
import type { EvalResult, Vocabulary } from '../train/metrics.js';
import { type ScheduleName, adamBeta1, learningRate } from '../train/schedule.js';
import { Trainer } from '../train/step.js';
import { GradientScaler } from '../autograd/scaler.js';
import type { Adam } from '../autograd/optim.js';
import { AUGMENTS, type AugmentName } from '../data/augment.js';
import { attachMeanPosition, attachMostFrequent, landmarkMeans, meanPositionBaseline, mostFrequentAttributes } from './baselines.js';
import { evaluate } from './evaluate.js';

export interface TrainConfig {
  data: string;
  net: NetName;
  epochs: number;
  batchSize: number;
  imgSize: number;
  width: number;
  lr: number;
  lrDecay: number;
  loss: LossConfig;
  pretrained?: string;
  split: string;
  seed: number;
  workers: number;
  /** Stop each epoch after this many batches (quick runs); 0 = the whole training split. */
  stepsPerEpoch: number;
  /** Evaluate on at most this many validation images per epoch; 0 = all. */
  valLimit: number;
  /** 'mixed': convolutions and linear layers on f16 operands with f32 accumulation (engine.mixedPrecision). */
  precision?: 'f32' | 'mixed';
  // The recipe (absent in runs made before it existed: they resume as they were trained).
  /** Learning-rate schedule (src/train/schedule.ts); `exp` uses lrDecay. */
  schedule?: ScheduleName;
  warmupEpochs?: number;
  /** `onecycle`: cycle Adam's beta1 0.95 -> 0.85 -> 0.95 against the rate (absent: beta1 0.9, as runs made before it). */
  cycleMomentum?: boolean;
  /** AdamW's decoupled weight decay on weights of rank >= 2 (0: plain Adam, as the thesis). */
  weightDecay?: number;
  /** Clip the gradients' global norm to this (0: off). */
  clipNorm?: number;
  /** Training augmentation (src/data/augment.ts). */
  augment?: AugmentName;
  /** `train+val`: train on both (no held-out figures per epoch unless there is a test split). */
  trainOn?: 'train' | 'train+val';
  /** Decay of the weights' moving average used for evaluation and weights/best (0: off). */
  ema?: number;
  /** How the network's convolutions start (NetConfig.convInit; absent: the network's own, defaultConvInit). */
  convInit?: ConvInit;
  /** The trunk's first downsampling (NetConfig.stemStride): 2, the thesis's; 1 for small photos. */
  stemStride?: 1 | 2;
  /** FashionNet and New FashionNet: the landmark and attention branches' width (NetConfig.headWidth; absent: width). */
  headWidth?: number;
  /**
   * FashionNet and New FashionNet: the landmark branch also reads the trunk's finer maps
   * (NetConfig.landmarkSkips; absent: off, as runs made before it were built; `clothtag train`
   * writes it for every landmark run, on by default with the soft-argmax objective).
   */
  landmarkSkips?: boolean;
  /** FashionNet: a BatchNorm after each trunk convolution (NetConfig.vggBatchNorm; absent: off, the thesis's). */
  vggBatchNorm?: boolean;
  /**
   * The share of the box head's training photos shown as a window around the garment
   * (drawZoomWindow), which teaches it the second look labelling then takes (NetConfig.boxRefine);
   * 0 or absent (runs made before it): one look.
   */
  boxZoom?: number;
  /**
   * Views of each photo the box head trains on per step (BatchSpec.boxViews), each drawn on its
   * own: more box training per epoch, at the head's cost only (absent: 1).
   */
  boxViews?: number;
  /**
   * The box head's training window of the whole photo: each side a random share in [boxFrame, 1]
   * (BatchSpec.boxFrame; absent: the --augment preset's, whole photos for none and flip).
   */
  boxFrame?: number;
  /**
   * The box head's own budget in epochs, `epochs` or more: it gets an optimizer and a schedule of
   * its own over these epochs, and after the labelling network's `epochs` it goes on training
   * alone (the labelling weights stay as they are). Absent: it trains with the labelling network,
   * on its optimizer and schedule (runs made before it existed).
   */
  boxEpochs?: number;
}

/**
 * `clothtag train`'s defaults. The recipe part (one-cycle rate peaking at 3e-3, AdamW's decay 0.05,
 * flips only) is what measured best on the real sets at CPU scale (docs/real-data.md); the
 * thesis's own (`--schedule exp --lr 5e-4 --lr-decay 0.95 --weight-decay 0`) is a flag away.
 */
export const DEFAULT_TRAIN: Omit<TrainConfig, 'data' | 'net'> = {
  epochs: 8, batchSize: 16, imgSize: 224, width: 1, lr: 3e-3, lrDecay: 0.95, loss: THESIS_LOSS,
  split: 'official', seed: 0, workers: 1, stepsPerEpoch: 0, valLimit: 0,
  schedule: 'onecycle', warmupEpochs: 0, weightDecay: 0.05, clipNorm: 0, augment: 'flip', trainOn: 'train', ema: 0, boxZoom: 0.5,
};

/**
 * The peak learning rate `clothtag train` uses when `--lr` is not given. FashionNet's trunk is
 * VGG-16's without BatchNorm, and a plain VGG cannot follow the rate the normalized networks take:
 * at 5e-3 its training loss rose for two epochs around the one-cycle peak, and in the PyTorch
 * replica of the 12-epoch landmark job 2e-3 beat 1e-3, 3e-3 and 5e-3 (docs/real-data.md:
 * FashionNet's rate). The others keep DEFAULT_TRAIN's 3e-3.
 */
export function defaultLr(net: NetName): number {
  return net === 'fashionnet' ? 2e-3 : DEFAULT_TRAIN.lr;
}

/** Where a run stands: saved with weights/last so that --resume continues exactly. */
interface Position {
  epoch: number;
  /** Batches of `epoch` already done. */
  batch: number;
  step: number;
  bestScore: number | null;
}

export function vocabularyOf(ds: Dataset): Vocabulary {
  return {
    categories: ds.tasks.category ? ds.categories : [],
    attributes: ds.tasks.attributes ? ds.attributeNames : [],
    attributeTypes: ds.tasks.attributes ? ds.attributeTypes : [],
    typeNames: ds.tasks.attributes ? ds.typeNames : {},
  };
}

/** Writes through a temporary file and a rename, so that a crash never leaves half a file. */
export function writeAtomic(path: string, data: Uint8Array | string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/**
 * The score that picks weights/best: category top-1 + top-3, else attribute recall@3 + @5 (per
 * image), else -NME. Two levels, because one saturates on easy data (every epoch at top-3 = 1) and
 * would then keep the first epoch that got there.
 */
export function selectionScore(r: EvalResult): number {
  if (r.category) return r.category.top1 + r.category.top3;
  if (r.attributes) return r.attributes.per_image.top3.all! + r.attributes.per_image.top5.all!;
  return r.landmarks ? -r.landmarks.nme : 0;
}

const CSV_COLUMNS = [
  'epoch', 'lr', 'train_loss', 'train_category', 'train_attributes', 'train_landmarks',
  'val_category_top1', 'val_category_top3', 'val_category_top5', 'val_attr_recall3_per_image', 'val_attr_recall5_per_image',
  'val_attr_recall3_per_attribute', 'val_attr_recall5_per_attribute', 'val_landmark_nme', 'images_per_s', 'seconds',
  'train_box', 'val_box_iou', 'box_lr',
];

export interface TrainHooks {
  log(line: string): void;
  /** Progress within an epoch (a status line). */
  progress?(line: string): void;
  /** Checked after every step: true stops the run cleanly (weights/last saved, resumable). */
  shouldStop?(): boolean;
}

export interface TrainResult {
  out: string;
  epochsDone: number;
  interrupted: boolean;
  lastEval: EvalResult | null;
  stepLosses: number[];
}

/** Starts a new run in `out`, or continues the one there (resume). */
export function runTraining(engine: Engine, out: string, config: TrainConfig, hooks: TrainHooks, resume: boolean): Promise<TrainResult> {
  if (config.precision === 'mixed' && !engine.hasF16) throw new Error('--precision mixed needs an adapter with shader-f16; this one has none');
  return engine.with({ mixedPrecision: config.precision === 'mixed' }, () => train(engine, out, config, hooks, resume));
}

async function train(engine: Engine, out: string, config: TrainConfig, hooks: TrainHooks, resume: boolean): Promise<TrainResult> {
  const ds = await openDataset(config.data);
  if (ds.problems.items.length) hooks.log(`note: ${ds.problems.items.length} problems in the lists (clothtag data check ${config.data} lists them); those rows are left out`);
  const vocab = vocabularyOf(ds);
  const splits = makeSplits(ds, config.split, config.seed);
  if (config.trainOn === 'train+val') {
    // Nothing is held out but the test split (if the data has one apart from val).
    const heldOut = splits.test === splits.val ? [] : splits.test;
    Object.assign(splits, { train: [...splits.train, ...splits.val], val: heldOut });
    hooks.log(`training on train+val (${splits.train.length} images); ${heldOut.length ? `evaluating on the test split (${heldOut.length})` : 'no held-out split left: no validation figures per epoch'}`);
  }
  if (!splits.train.length) throw new Error(`${config.data}: the training split is empty`);
  if (resume) {
    // The run's labels are its vocabulary: data whose lists changed since would train (and save) nonsense.
    const change = vocabularyChange(readVocabulary(join(out, 'weights', 'vocabulary.json')), vocab);
    if (change) throw new Error(`${config.data} has changed since ${out} started: ${change}. Resume with the data it was trained on, or start a new run`);
  }

  const netConfig = {
    net: config.net, categories: vocab.categories.length, attributes: vocab.attributes.length, width: config.width, seed: config.seed,
    ...(config.stemStride === 1 ? { stemStride: 1 as const } : {}),
    ...(config.convInit ? { convInit: config.convInit } : {}),
    ...(config.headWidth !== undefined ? { headWidth: config.headWidth } : {}),
    ...(config.landmarkSkips ? { landmarkSkips: true } : {}),
    ...(config.vggBatchNorm ? { vggBatchNorm: true } : {}),
    ...(config.loss.landmarkLoss === 'softargmax' ? { landmarkPrior: true } : {}),
    // A softmax within each attribute type: the head's groups are the types, and labelling reads them so.
    ...(config.loss.attributeLoss === 'softmax' && vocab.attributes.length ? { attributeGroups: vocab.attributeTypes } : {}),
    // The garment-box head, where the data has boxes to learn from (--wb 0: none).
    ...(ds.tasks.bbox && (config.loss.wb ?? 0) > 0 ? { box: true, ...((config.boxZoom ?? 0) > 0 ? { boxRefine: true } : {}) } : {}),
  };
  const net = createNet(engine, netConfig);
  const boxEpochs = config.boxEpochs ?? 0;
  if (boxEpochs && !net.hasBox) throw new Error(`--box-epochs needs a box head, and this run has none (${ds.tasks.bbox ? '--wb 0' : `${config.data} has no boxes`})`);
  if (boxEpochs && boxEpochs < config.epochs) throw new Error(`the box head's --box-epochs ${boxEpochs} is fewer than the run's --epochs ${config.epochs}: give it ${config.epochs} or more`);
  const trainer = new Trainer(net, config.loss, config.lr, { weightDecay: config.weightDecay ?? 0, decoupled: true, maxGradNorm: config.clipNorm ?? 0 }, { boxOptimizer: boxEpochs > 0 });
  if (config.ema) trainer.useAverage(config.ema);
  const schedule = { schedule: config.schedule ?? 'exp', lr: config.lr, lrDecay: config.lrDecay, warmupEpochs: config.warmupEpochs ?? 0, epochs: config.epochs, cycleMomentum: config.cycleMomentum ?? false };
  // With --box-epochs the box head's rate follows the same schedule stretched over its own epochs,
  // and the run lasts until the box head is done.
  const boxSchedule = { ...schedule, epochs: boxEpochs };
  const totalEpochs = Math.max(config.epochs, boxEpochs);
  // Each landmark's mean position over the training split, pooled and per garment type: where the
  // location prior starts (pooled), and the baselines every validation NME is printed beside.
  const trainMeans = net.hasLandmarks ? landmarkMeans(ds, splits.train, config.imgSize) : null;
  let pos: Position = { epoch: 0, batch: 0, step: 0, bestScore: null };
  const extra = { vocabulary: JSON.stringify(vocab), training: JSON.stringify({ data: config.data, split: config.split, imgSize: config.imgSize, landmarkDecode: decodeFor(config.loss.landmarkLoss) }) };
  const csv = join(out, 'metrics.csv');
  const stepLog = join(out, 'steps.csv');
  if (resume) {
    lockRun(out);
    pos = restoreState(out, net, trainer);
    if (pos.epoch >= totalEpochs) hooks.log(`${out} has already trained ${pos.epoch} epochs: nothing to do (give --epochs ${pos.epoch + 1} or more to train further)`);
    else hooks.log(`resuming ${out} at epoch ${pos.epoch + 1}, batch ${pos.batch}, step ${pos.step}`);
  } else {
    if (net.prior && trainMeans) {
      // Start the location prior at the training split's mean positions (LocationPrior.initialize).
      net.prior.initialize(Array.from(trainMeans.pooled, (v) => (v + 0.5) / config.imgSize));
    }
    if (config.pretrained) {
      // safetensors, or PyTorch's own file (read by the restricted unpickler: no code runs).
      const bytes = readRegularFile(config.pretrained);
      const tensors = isTorchCheckpoint(bytes) ? readTorchCheckpoint(bytes, config.pretrained) : parseSafetensors(bytes, config.pretrained).tensors;
      const r = loadState(net, tensors, 'pretrained', config.pretrained);
      hooks.log(`pretrained trunk: ${r.loaded} tensors from ${config.pretrained}${r.ignored.length ? ` (${r.ignored.length} ignored: ${r.ignored.slice(0, 4).join(', ')}...)` : ''}`);
    }
    // The run folder is made only now, once every setting has been checked and the network built.
    mkdirSync(join(out, 'weights'), { recursive: true });
    lockRun(out);
    writeAtomic(join(out, 'weights', 'vocabulary.json'), JSON.stringify(vocab, null, 2));
    writeFileSync(csv, CSV_COLUMNS.join(',') + '\n');
    writeFileSync(stepLog, 'step,epoch,loss\n');
    // A run is resumable from its first step: killed (SIGKILL, a double Ctrl-C) before its first
    // epoch ends, it starts that epoch again with --resume instead of being a dead end. config.json
    // is written last: a folder that has it has everything --resume needs.
    await saveState(out, net, trainer, pos, extra);
    // The init is written down even when defaulted (createNet resolves it): config.json says how
    // this run started, whatever a later version picks for the network by default.
    writeAtomic(join(out, 'config.json'), JSON.stringify({ ...config, convInit: net.config.convInit, tasks: ds.tasks, images: { train: splits.train.length, val: splits.val.length, test: splits.test.length } }, null, 2));
  }

  const view = datasetView(ds);
  const photoSize = net.hasBox ? BOX_INPUT : 0;
  const loader = new BatchLoader(view, { size: config.imgSize, augment: true, augmentation: AUGMENTS[config.augment ?? 'flip'], heatmaps: net.hasLandmarks && needsHeatmapTargets(config.loss.landmarkLoss), photoSize, boxZoom: config.boxZoom ?? 0, boxViews: config.boxViews ?? 1, boxFrame: config.boxFrame }, config.workers);
  const evalLoader = new BatchLoader(view, { size: config.imgSize, augment: false, heatmaps: false, photoSize }, config.workers);
  const valIndices = config.valLimit > 0 ? splits.val.slice(0, config.valLimit) : splits.val;
  // The landmark figure to beat, printed beside every validation NME.
  const baseline = trainMeans && ds.tasks.landmarks && valIndices.length ? meanPositionBaseline(ds, trainMeans.pooled, valIndices, config.imgSize, trainMeans.byType) : null;
  // And the attributes' own: every validation image ranked by the training split's frequencies.
  const mostFrequent = ds.tasks.attributes && valIndices.length ? mostFrequentAttributes(ds, vocab, splits.train, valIndices) : null;
  let lastEval: EvalResult | null = null;
  const stepLosses: number[] = [];
  let interrupted = false;
  const brokenSeen = new Set<string>();
  try {
    for (let epoch = pos.epoch; epoch < totalEpochs && !interrupted; epoch++) {
      // Past the labelling network's epochs, the box head trains alone (train --box-epochs).
      const labels = epoch < config.epochs;
      let lr = labels ? learningRate(schedule, epoch, 0, 1) : 0;
      const order = shuffled(splits.train, config.seed * 1000 + epoch);
      const batches: number[][] = [];
      for (let i = 0; i < order.length; i += config.batchSize) batches.push(order.slice(i, i + config.batchSize));
      // A short last batch is dropped: BatchNorm's statistics need a full one.
      if (batches.length > 1 && batches.at(-1)!.length < config.batchSize) batches.pop();
      const total = config.stepsPerEpoch > 0 ? Math.min(config.stepsPerEpoch, batches.length) : batches.length;
      const started = performance.now();
      const sums = { loss: 0, category: 0, attributes: 0, landmarks: 0, box: 0, n: 0 };
      const firstBatch = epoch === pos.epoch ? pos.batch : 0;
      let images = 0;
      let booking: Promise<void> | null = null;
      let stepNumber = pos.step; // of the next step recorded (pos.step counts booked ones)
      let next = firstBatch < total ? loader.load(batches[firstBatch]!, config.seed * 1000 + epoch) : null;
      for (let bi = firstBatch; bi < total; bi++) {
        const batch = await next!;
        next = bi + 1 < total ? loader.load(batches[bi + 1]!, config.seed * 1000 + epoch) : null; // prefetch while the GPU works
        for (const b of batch.broken) if (!brokenSeen.has(b.path)) (brokenSeen.add(b.path), hooks.log(`skipped (unreadable): ${b.reason}`));
        if (batch.broken.length === batch.indices.length) {
          throw new Error(`none of the ${batch.indices.length} images of batch ${bi + 1} (epoch ${epoch + 1}) could be read (${batch.broken[0]!.reason}): nothing to train on. clothtag data check ${config.data} lists every unreadable image`);
        }
        // The schedule counts steps over the whole epoch (also when --steps-per-epoch cuts it short).
        if (labels) {
          trainer.optimizer.hyper.lr = lr = learningRate(schedule, epoch, bi, total);
          trainer.optimizer.hyper.beta1 = adamBeta1(schedule, epoch, bi, total);
        }
        if (trainer.boxOptimizer) {
          trainer.boxOptimizer.hyper.lr = learningRate(boxSchedule, epoch, bi, total);
          trainer.boxOptimizer.hyper.beta1 = adamBeta1(boxSchedule, epoch, bi, total);
        }
        // Step bi is recorded and submitted with its loss readback; step bi-1's values are booked
        // while the GPU runs it (the CPU never waits on the step it has just recorded).
        const terms = trainer.step({ n: batch.indices.length, ...batch }, stepNumber++, undefined, { labels });
        const reading = readTerms(terms, trainer.scaler?.flag);
        const previous = booking as Promise<void> | null;
        const n = batch.indices.length, index = bi;
        // Promise.all: booked in step order, and a failed read is never left without a handler.
        booking = Promise.all([previous, reading]).then((both) => {
          const values = both[1];
          if (trainer.scaler && trainer.scaler.book(values.overflow)) {
            // The GPU already left the weights as they were; the step still counts (its batch is spent).
            hooks.log(`step ${pos.step + 1}: gradients overflowed f16, update skipped; gradient scale now ${trainer.scaler.scale}`);
          }
          stepLosses.push(values.total);
          if (!Number.isFinite(values.total)) throw new Error(`the loss became ${values.total} at epoch ${epoch + 1}, step ${pos.step + 1}: lower --lr`);
          sums.loss += values.total; sums.category += values.category; sums.attributes += values.attributes; sums.landmarks += values.landmarks; sums.box += values.box; sums.n++;
          images += n;
          pos = { ...pos, epoch, batch: index + 1, step: pos.step + 1 };
          writeFileSync(stepLog, `${pos.step},${epoch + 1},${values.total}\n`, { flag: 'a' });
          const rate = images / ((performance.now() - started) / 1000);
          hooks.progress?.(`epoch ${epoch + 1}/${totalEpochs}${labels ? '' : ' (box head)'} [${String(index + 1).padStart(String(total).length)}/${total}] loss ${(sums.loss / sums.n).toFixed(4)} ${rate.toFixed(1)} img/s`);
        });
        booking.catch(() => {}); // handled where it is awaited; this keeps Node from calling it unhandled meanwhile
        if (previous) await previous;
        if (hooks.shouldStop?.()) {
          interrupted = true;
          break;
        }
      }
      if (booking) await booking;
      booking = null;
      if (interrupted) break;
      const seconds = (performance.now() - started) / 1000;
      // With a weight average, it is what gets evaluated and saved as weights/best.
      const averaged = <T>(fn: () => Promise<T>) => (trainer.average ? trainer.average.swapped(fn) : fn());
      lastEval = valIndices.length ? await averaged(() => evaluate(net, evalLoader, valIndices, vocab, { batchSize: config.batchSize, size: config.imgSize, decode: decodeFor(config.loss.landmarkLoss), photo: (i) => itemPhoto(view, i) })) : null;
      attachMeanPosition(lastEval, baseline);
      attachMostFrequent(lastEval, mostFrequent);
      const score = lastEval ? selectionScore(lastEval) : -sums.loss / Math.max(sums.n, 1);
      pos = { epoch: epoch + 1, batch: 0, step: pos.step, bestScore: pos.bestScore };
      if (!labels) {
        // The labelling weights no longer change: weights/best keeps the best epoch's and takes
        // the box head as it now is (the last epoch's is the one its schedule ends on).
        const bestPath = bestWeightsOf(out);
        const now = await averaged(() => readState(net));
        writeAtomic(bestPath, withBoxHead(parseSafetensors(readRegularFile(bestPath), bestPath), now, epoch + 1));
      } else if (pos.bestScore === null || score > pos.bestScore) {
        pos.bestScore = score;
        writeAtomic(bestWeightsOf(out), await averaged(() => saveCheckpoint(net, { ...extra, epoch: String(epoch + 1), ...(trainer.average ? { averaged: String(trainer.average.decay) } : {}) })));
      }
      await saveState(out, net, trainer, pos, extra);
      const n = Math.max(sums.n, 1);
      const v = lastEval;
      const row = [
        epoch + 1, labels ? lr : undefined, sums.loss / n, sums.category / n, sums.attributes / n, sums.landmarks / n,
        v?.category?.top1, v?.category?.top3, v?.category?.top5, v?.attributes?.per_image.top3.all, v?.attributes?.per_image.top5.all,
        v?.attributes?.per_attribute.top3.all, v?.attributes?.per_attribute.top5.all, v?.landmarks?.nme, images / seconds, seconds,
        net.hasBox ? sums.box / n : undefined, v?.boxes?.iou, trainer.boxOptimizer?.hyper.lr,
      ];
      writeFileSync(csv, row.map((x) => (x === undefined ? '' : typeof x === 'number' ? +x.toPrecision(6) : x)).join(',') + '\n', { flag: 'a' });
      drawCurves(out);
      hooks.log(`epoch ${epoch + 1}/${totalEpochs}${labels ? '' : ' (box head alone)'}: loss ${(sums.loss / n).toFixed(4)}, ${(images / seconds).toFixed(1)} img/s${v ? `, val ${describeEval(v)}` : ''}`);
    }
    if (interrupted) {
      await saveState(out, net, trainer, pos, extra);
      hooks.log(`stopped at epoch ${pos.epoch + 1}, batch ${pos.batch} (step ${pos.step}); weights/last saved. Continue with: clothtag train --resume ${out}`);
    }
  } finally {
    await Promise.all([loader.close(), evalLoader.close()]);
    rmSync(join(out, RUN_LOCK), { force: true });
    trainer.dispose();
    net.dispose();
  }
  return { out, epochsDone: pos.epoch, interrupted, lastEval, stepLosses };
}

function describeEval(r: EvalResult): string {
  const parts: string[] = [];
  if (r.category) parts.push(`category top-1 ${(100 * r.category.top1).toFixed(1)}% top-3 ${(100 * r.category.top3).toFixed(1)}%`);
  if (r.attributes) parts.push(`attribute recall@3 ${(100 * r.attributes.per_image.top3.all!).toFixed(1)}% (per image${r.attributes.most_frequent ? `; most frequent ${(100 * r.attributes.most_frequent.per_image.top3.all!).toFixed(1)}%` : ''})`);
  if (r.landmarks) {
    const lm = r.landmarks;
    const byType = lm.mean_position_by_type_nme !== undefined ? `, per garment type ${lm.mean_position_by_type_nme.toFixed(4)}` : '';
    parts.push(`landmark NME ${lm.nme.toFixed(4)}${lm.mean_position_nme !== undefined ? ` (mean position ${lm.mean_position_nme.toFixed(4)}${byType})` : ''}`);
  }
  if (r.boxes) parts.push(`box IoU ${r.boxes.iou.toFixed(3)} (whole photo ${r.boxes.iou_whole_image.toFixed(3)})`);
  return parts.join(', ');
}

/**
 * The step's loss terms, read back in the same submission as the step (one copy each into one
 * staging buffer). The terms are disposed at once; the values arrive when the GPU gets there.
 */
function readTerms(terms: { total: Tensor; category?: Tensor; attributes?: Tensor; landmarks?: Tensor; box?: Tensor }, overflow?: Tensor) {
  const keys = (['total', 'category', 'attributes', 'landmarks', 'box'] as const).filter((k) => terms[k]);
  const reading = terms.total.engine.readMany([...keys.map((k) => terms[k]!), ...(overflow ? [overflow] : [])]);
  for (const t of new Set(keys.map((k) => terms[k]))) t?.dispose();
  return reading.then((values) => {
    const out = { total: 0, category: 0, attributes: 0, landmarks: 0, box: 0, overflow: 0 };
    keys.forEach((k, i) => (out[k] = values[i]![0]!));
    // The flag holds u32 bits: any non-zero pattern (a tiny float here) is an overflow.
    if (overflow) out.overflow = values[keys.length]![0]! !== 0 ? 1 : 0;
    return out;
  });
}

const RUN_LOCK = 'run.lock';

/**
 * Marks a run folder as being trained by this process (its pid in run.lock): a second `train
 * --resume` of the same run while the first still writes it is refused. A lock whose process is
 * gone (killed) is stale and taken over.
 */
function lockRun(out: string): void {
  const path = join(out, RUN_LOCK);
  if (existsSync(path)) {
    const pid = Number(readFileSync(path, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
      throw new Error(`${out} is being trained by another clothtag (pid ${pid}); wait for it to finish, or stop it first (it saves and stops on SIGTERM)`);
    }
  }
  writeFileSync(path, `${process.pid}\n`);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === 'EPERM';
  }
}

function readVocabulary(path: string): Vocabulary {
  const v = readJsonFile<Vocabulary>(path);
  if (!v || !Array.isArray(v.categories) || !Array.isArray(v.attributes)) throw new Error(`${path} is not a vocabulary (it needs "categories" and "attributes" lists)`);
  return v;
}

/** What differs between a run's vocabulary and the data's now, in words; null when nothing does. */
export function vocabularyChange(run: Vocabulary, now: Vocabulary): string | null {
  for (const [what, a, b] of [['category', run.categories, now.categories], ['attribute', run.attributes, now.attributes]] as const) {
    if (a.length !== b.length) return `the run has ${a.length} ${what} names, the data ${b.length}`;
    const i = a.findIndex((name, k) => name !== b[k]);
    if (i >= 0) return `${what} ${i + 1} is "${a[i]}" in the run and "${b[i]}" in the data`;
  }
  return null;
}

/** A run folder's final (latest) network weights: what `--resume`, `eval` and transfer read. */
export const lastWeightsOf = (run: string) => join(run, 'weights', 'last.safetensors');
/** A run folder's best epoch's network weights (by selectionScore): what the demo labels with. */
export const bestWeightsOf = (run: string) => join(run, 'weights', 'best.safetensors');
/** Beside lastWeightsOf: Adam's moments and the position in the data, what `--resume` also reads. */
const lastStateOf = (run: string) => join(run, 'weights', 'last.state.safetensors');

/** weights/last.safetensors (the network) and weights/last.state.safetensors (Adam, position). */
async function saveState(out: string, net: ClothNet, trainer: Trainer, pos: Position, extra: Record<string, string>): Promise<void> {
  writeAtomic(lastWeightsOf(out), await saveCheckpoint(net, { ...extra, epoch: String(pos.epoch) }));
  const state: TensorMap = new Map();
  await saveMoments(state, trainer.optimizer, '');
  const box = trainer.boxOptimizer;
  if (box) await saveMoments(state, box, 'box.');
  for (const [k, t] of Object.entries(trainer.uncertainty?.logVars ?? {})) state.set(`uncertainty.${k}`, { shape: [1], data: await t.read() });
  for (const [i, t] of (trainer.average?.average ?? []).entries()) state.set(`average.${i}`, { shape: [...t.shape], data: await t.read() });
  // Mixed precision's gradient scale (and its clean-step count) goes with the state, so that a
  // resumed run continues with the scale it had reached rather than starting over at 1024.
  const scaler: Record<string, string> = trainer.scaler ? { gradient_scale: JSON.stringify({ scale: trainer.scaler.scale, cleanSteps: trainer.scaler.cleanSteps, overflows: trainer.scaler.overflows }) } : {};
  writeAtomic(lastStateOf(out), serializeSafetensors(state, { position: JSON.stringify(pos), adam_step: String(await trainer.optimizer.stepCount()), ...(box ? { box_adam_step: String(await box.stepCount()) } : {}), ...scaler }));
}

/** An optimizer's moments into the state, as `${prefix}m.${i}` and `${prefix}v.${i}`. */
async function saveMoments(state: TensorMap, adam: Adam, prefix: string): Promise<void> {
  for (let i = 0; i < adam.params.length; i++) {
    const shape = [...adam.params[i]!.shape];
    state.set(`${prefix}m.${i}`, { shape, data: await adam.m[i]!.read() });
    state.set(`${prefix}v.${i}`, { shape, data: await adam.v[i]!.read() });
  }
}

/** An optimizer's moments back from the state (saveMoments); `mismatch` words the error for tensor i. */
function restoreMoments(tensors: TensorMap, adam: Adam, prefix: string, mismatch: (i: number) => string): void {
  for (let i = 0; i < adam.params.length; i++) {
    const m = tensors.get(`${prefix}m.${i}`), v = tensors.get(`${prefix}v.${i}`);
    if (!m || !v || m.data.length !== adam.params[i]!.size) throw new Error(mismatch(i));
    adam.params[i]!.engine.write(adam.m[i]!, m.data);
    adam.params[i]!.engine.write(adam.v[i]!, v.data);
  }
}

function restoreState(out: string, net: ClothNet, trainer: Trainer): Position {
  const weights = lastWeightsOf(out);
  const statePath = lastStateOf(out);
  if (!existsSync(weights) || !existsSync(statePath)) throw new Error(`${out}: nothing to resume (no weights/last.safetensors and last.state.safetensors); remove the folder to start over`);
  loadState(net, parseSafetensors(readRegularFile(weights), weights).tensors, 'strict', weights);
  const { tensors, metadata } = parseSafetensors(readRegularFile(statePath), statePath);
  restoreMoments(tensors, trainer.optimizer, '', (i) => `${statePath} does not match this network's parameters (tensor ${i})`);
  const box = trainer.boxOptimizer;
  if (box) {
    restoreMoments(tensors, box, 'box.', (i) => `${statePath} does not match this run's box head optimizer (tensor ${i})`);
    box.setStepCount(Number(metadata.box_adam_step ?? 0));
  }
  for (const [k, t] of Object.entries(trainer.uncertainty?.logVars ?? {})) {
    const saved = tensors.get(`uncertainty.${k}`);
    if (saved) net.engine.write(t, saved.data);
  }
  for (const [i, t] of (trainer.average?.average ?? []).entries()) {
    const saved = tensors.get(`average.${i}`);
    if (!saved || saved.data.length !== t.size) throw new Error(`${statePath} has no weight average to resume (tensor ${i})`);
    net.engine.write(t, saved.data);
  }
  trainer.optimizer.setStepCount(Number(metadata.adam_step ?? 0));
  if (metadata.gradient_scale && net.engine.mixedPrecision) {
    const saved = JSON.parse(metadata.gradient_scale) as { scale: number; cleanSteps: number; overflows: number };
    trainer.scaler ??= new GradientScaler(net.engine);
    Object.assign(trainer.scaler, saved);
  }
  return JSON.parse(metadata.position ?? '{"epoch":0,"batch":0,"step":0,"bestScore":null}') as Position;
}

/**
 * weights/best with the box head's tensors (`box_locator.*`) replaced by `head`'s: the best
 * labelling epoch's network and the box head of `boxEpoch` (recorded as `box_epoch`).
 */
export function withBoxHead(best: { tensors: TensorMap; metadata: Record<string, string> }, head: TensorMap, boxEpoch: number): Uint8Array {
  return serializeSafetensors(replaceBoxHead(best.tensors, head, { into: 'weights/best', from: 'the network' }), { ...best.metadata, box_epoch: String(boxEpoch) });
}

/** loss.png (per step and per epoch) and metrics.png (validation metrics per epoch). */
export function drawCurves(out: string): void {
  const rows = readFileSync(join(out, 'metrics.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
  const col = (name: string) => rows.map((r) => (r[CSV_COLUMNS.indexOf(name)] === '' ? NaN : Number(r[CSV_COLUMNS.indexOf(name)])));
  const steps = readFileSync(join(out, 'steps.csv'), 'utf8').trim().split('\n').slice(1).map((l) => Number(l.split(',')[2]));
  const smooth = steps.map((_, i) => {
    const w = steps.slice(Math.max(0, i - 19), i + 1);
    return w.reduce((a, b) => a + b, 0) / w.length;
  });
  plotLines(join(out, 'loss.png'), 'training loss per step (20-step mean)', [{ name: 'loss', values: smooth, color: [200, 40, 40] }], { logY: true });
  const series = [
    { name: 'cat top-1', values: col('val_category_top1'), color: [30, 90, 200] as [number, number, number] },
    { name: 'cat top-3', values: col('val_category_top3'), color: [30, 160, 220] as [number, number, number] },
    { name: 'attr recall@3', values: col('val_attr_recall3_per_image'), color: [40, 160, 60] as [number, number, number] },
    { name: 'landmark nme', values: col('val_landmark_nme'), color: [200, 120, 20] as [number, number, number] },
    { name: 'box IoU', values: col('val_box_iou'), color: [130, 60, 180] as [number, number, number] },
  ].filter((s) => s.values.some(Number.isFinite));
  if (series.length) plotLines(join(out, 'metrics.png'), 'validation metrics per epoch', series);
}
