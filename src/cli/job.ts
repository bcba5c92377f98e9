// `clothtag data`, `train`, `eval`, `predict`: the main job from the command line.
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { checkDataset, formatCheck } from '../data/check.js';
import { type Dataset, makeSplits, openDataset } from '../data/dataset.js';
import { BatchLoader, datasetView, defaultWorkers } from '../data/loader.js';
import { itemPhoto } from '../data/batch.js';
import { synthesize } from '../data/synth.js';
import { NET_NAMES, type NetName, hasLandmarkBranch, isNetName } from '../nets/models.js';
import { CONV_INITS } from '../nets/module.js';
import { loadCheckpoint } from '../nets/weights.js';
import { checkpointLabeling } from '../label/labels.js';
import { createNodeGpu } from '../node/gpu.js';
import { attachMeanPosition, attachMostFrequent, landmarkMeans, meanPositionBaseline, mostFrequentAttributes } from '../run/baselines.js';
import { collectInputs, predictFiles } from '../run/predict.js';
import { evaluate } from '../run/evaluate.js';
import { DEFAULT_TRAIN, type TrainConfig, defaultLr, runTraining } from '../run/train.js';
import { ATTRIBUTE_LOSSES, DEFAULT_LANDMARK_LOSS, DEFAULT_WB, LANDMARK_LOSSES, type LandmarkLoss, attributeWeightFor, landmarkWeightFor, THESIS_LOSS } from '../train/losses.js';
import { SCHEDULES } from '../train/schedule.js';
import { AUGMENT_NAMES } from '../data/augment.js';
import { type EvalResult, formatEval } from '../train/metrics.js';
import { BOX_INPUT } from '../nets/locator.js';
import { Progress } from './progress.js';
import { readJsonFile } from '../data/files.js';
import { UsageError, boxLooksOf, positiveInt, readFileOrThrow } from './util.js';

function positiveNumber(v: string, flag: string): number {
  const n = Number(v);
  if (!(n > 0) || !Number.isFinite(n)) throw new UsageError(`${flag} takes a positive number, got "${v}"`);
  return n;
}

function nonNegative(v: string, flag: string): number {
  const n = Number(v);
  if (!(n >= 0) || !Number.isFinite(n)) throw new UsageError(`${flag} takes a number >= 0, got "${v}"`);
  return n;
}

export function seedOf(v: string | undefined): number {
  if (v === undefined) return 0;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 2 ** 31) throw new UsageError(`--seed takes a whole number >= 0, got "${v}"`);
  return n;
}

function probability(v: string, flag: string): number {
  const n = Number(v);
  if (!(n >= 0 && n <= 1)) throw new UsageError(`${flag} takes a probability between 0 and 1, got "${v}"`);
  return n;
}

/** Training sizes: the trunks downsample 32x, and past 1024 pixels a batch no longer fits anywhere sensible. */
function imageSizeFlag(v: string): number {
  const n = positiveInt(v, '--img-size');
  if (n < 32 || n > 1024) throw new UsageError(`--img-size takes 32 to 1024 pixels, got ${n}`);
  return n;
}

function workerCount(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 64) throw new UsageError(`--workers takes a whole number from 0 (load in the main thread) to 64, got "${v}"`);
  return n;
}

export async function dataVerb(args: string[]): Promise<number> {
  const [what, ...rest] = args;
  if (what === 'synth') {
    const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { images: { type: 'string', default: '600' }, size: { type: 'string', default: '128' }, seed: { type: 'string', default: '0' }, force: { type: 'boolean' } } });
    const out = positionals[0];
    if (!out) throw new UsageError('data synth needs an output folder');
    if (existsSync(out) && readdirSync(out).length && !values.force) throw new UsageError(`${out} exists and is not empty: the synthesized lists would replace what is there. Choose another folder, or add --force`);
    const images = positiveInt(values.images!, '--images');
    const progress = new Progress();
    const t0 = performance.now();
    const s = synthesize(out, { images, size: positiveInt(values.size!, '--size'), seed: seedOf(values.seed) }, (n) => {
      if (n % 50 === 0) progress.update(`synthesizing ${n}/${images}`);
    });
    progress.done();
    console.log(`${out}: ${s.images} images in the DeepFashion layout (all seven lists) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return 0;
  }
  if (what === 'check') {
    const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { json: { type: 'boolean' } } });
    const path = positionals[0];
    if (!path) throw new UsageError('data check needs a dataset folder');
    const ds = await openDataset(path);
    const progress = new Progress();
    const report = checkDataset(ds, (done, total) => progress.update(`checking images ${done}/${total}`));
    progress.done();
    console.log(values.json ? JSON.stringify(report, null, 2) : formatCheck(report));
    // Problems found are a failure a script can see (the usable rows can still be trained on).
    return report.usable && !report.problems.length ? 0 : 1;
  }
  throw new UsageError(`unknown data command "${what ?? ''}": check or synth`);
}

function emaDecay(v: string): number {
  const d = Number(v);
  if (!(d === 0 || (d > 0 && d < 1))) throw new UsageError(`--ema is a decay in (0, 1) (e.g. 0.99), or 0 for none; got ${v}`);
  return d;
}

/** --box-views: how many views of each photo the box head trains on per step, 1 to 8. */
function boxViewsOf(v: string): number {
  const n = Number(v);
  if (!(Number.isInteger(n) && n >= 1 && n <= 8)) throw new UsageError(`--box-views is a whole number of views from 1 to 8, got "${v}"`);
  return n;
}

/** --box-frame: the smallest side of the box head's window of the photo, a share in (0, 1] (1: whole photos). */
function boxFrameOf(v: string): number {
  const n = Number(v);
  if (!(n > 0 && n <= 1)) throw new UsageError(`--box-frame is the smallest side of the box head's window, a share in (0, 1] (1: whole photos), got "${v}"`);
  return n;
}

/** A share in [0, 1] (--box-zoom). */
function shareFlag(v: string, flag: string): number {
  const n = Number(v);
  if (!(n >= 0 && n <= 1)) throw new UsageError(`${flag} is a share in [0, 1] (0: off), got "${v}"`);
  return n;
}

/** A flag's value from a fixed list (undefined when the flag is absent). */
function oneOf<T extends string>(value: string | undefined, choices: readonly T[], flag: string): T | undefined {
  if (value === undefined) return undefined;
  const found = choices.find((c) => c === value);
  if (!found) throw new UsageError(`${flag} is ${choices.join(', ')}; got ${value}`);
  return found;
}

/** The landmark-branch flags as given (absent: undefined), read alike by `train` and `bench net`. */
function landmarkFlags(values: { 'head-width'?: string; 'landmark-skips'?: string; 'landmark-loss'?: string }): { headWidth?: number; skips?: 'on' | 'off'; landmarkLoss?: LandmarkLoss } {
  return {
    headWidth: values['head-width'] ? positiveNumber(values['head-width'], '--head-width') : undefined,
    skips: oneOf(values['landmark-skips'], ['on', 'off'] as const, '--landmark-skips'),
    landmarkLoss: oneOf(values['landmark-loss'], LANDMARK_LOSSES, '--landmark-loss'),
  };
}

/**
 * `bench net`'s landmark-branch flags, as `train` takes them: --head-width, --landmark-skips
 * on|off and --landmark-loss (absent: the thesis's branch and objective).
 */
export function landmarkBranchOf(net: NetName, values: { 'head-width'?: string; 'landmark-skips'?: string; 'landmark-loss'?: string }): { headWidth?: number; landmarkSkips?: boolean; landmarkLoss?: LandmarkLoss } {
  const given = ['head-width', 'landmark-skips', 'landmark-loss'].filter((f) => values[f as keyof typeof values] !== undefined);
  if (given.length && !hasLandmarkBranch(net)) throw new UsageError(`--${given[0]} is for the landmark networks (fashionnet, new_fashionnet); ${net} has no landmark branch`);
  const { headWidth, skips, landmarkLoss } = landmarkFlags(values);
  return {
    ...(headWidth ? { headWidth } : {}),
    ...(skips ? { landmarkSkips: skips === 'on' } : {}),
    ...(landmarkLoss ? { landmarkLoss } : {}),
  };
}

export function precisionOf(value: string | undefined): 'f32' | 'mixed' {
  if (value === undefined || value === 'f32' || value === 'mixed') return value ?? 'f32';
  throw new UsageError(`--precision is f32 or mixed, got ${value}`);
}

export function stemStrideOf(value: string | undefined): 1 | 2 {
  if (value === undefined || value === '2') return 2;
  if (value === '1') return 1;
  throw new UsageError(`--stem-stride is 1 or 2, got ${value}`);
}

/** What `train --resume` accepts beside the run folder. */
const RESUME_FLAGS = ['resume', 'epochs', 'workers'];

export async function trainVerb(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      data: { type: 'string' }, net: { type: 'string' }, resume: { type: 'string' },
      epochs: { type: 'string' }, 'batch-size': { type: 'string' }, 'img-size': { type: 'string' }, width: { type: 'string' },
      lr: { type: 'string' }, 'lr-decay': { type: 'string' }, wc: { type: 'string' }, ws: { type: 'string' }, wl: { type: 'string' },
      'landmark-loss': { type: 'string' }, weighting: { type: 'string' }, pretrained: { type: 'string' }, split: { type: 'string' },
      seed: { type: 'string' }, out: { type: 'string' }, workers: { type: 'string' }, 'steps-per-epoch': { type: 'string' }, 'val-limit': { type: 'string' },
      precision: { type: 'string' }, schedule: { type: 'string' }, warmup: { type: 'string' }, 'weight-decay': { type: 'string' },
      'label-smoothing': { type: 'string' }, 'attribute-loss': { type: 'string' }, 'clip-norm': { type: 'string' }, augment: { type: 'string' }, 'train-on': { type: 'string' }, ema: { type: 'string' },
      wb: { type: 'string' }, 'stem-stride': { type: 'string' }, 'head-width': { type: 'string' }, 'box-zoom': { type: 'string' }, 'box-views': { type: 'string' }, 'box-frame': { type: 'string' },
      'box-epochs': { type: 'string' }, 'cycle-momentum': { type: 'string' }, 'conv-init': { type: 'string' },
      'landmark-skips': { type: 'string' }, 'vgg-bn': { type: 'string' },
    },
  });
  let config: TrainConfig;
  let out: string;
  const resume = !!values.resume;
  if (resume) {
    out = values.resume!;
    const saved = join(out, 'config.json');
    if (!existsSync(saved)) throw new UsageError(`${out} is not a run folder (no config.json)`);
    // The run's config.json decides everything else: a flag that would change it is refused, not ignored.
    const fixed = Object.entries(values).filter(([k, v]) => v !== undefined && !RESUME_FLAGS.includes(k)).map(([k]) => `--${k}`);
    if (fixed.length) throw new UsageError(`${fixed.join(', ')} cannot change a run being resumed (its config.json fixes them); only ${RESUME_FLAGS.filter((f) => f !== 'resume').map((f) => `--${f}`).join(' and ')} can. Start a new run with --out for other settings`);
    config = readJsonFile<TrainConfig>(saved);
    if (!config || typeof config !== 'object' || typeof config.data !== 'string' || !isNetName(String(config.net))) throw new Error(`${saved} is not a clothtag run configuration (it needs "data" and "net")`);
    if (values.epochs) config.epochs = positiveInt(values.epochs, '--epochs');
    if (values.workers !== undefined) config.workers = workerCount(values.workers);
  } else {
    if (!values.data) throw new UsageError('--data is required (or --resume DIR)');
    if (!values.net || !isNetName(values.net)) throw new UsageError(`--net must be one of ${NET_NAMES.join(', ')}`);
    const loss = { ...THESIS_LOSS };
    if (values.wc) loss.wc = nonNegative(values.wc, '--wc');
    const attributeLoss = oneOf(values['attribute-loss'], ATTRIBUTE_LOSSES, '--attribute-loss');
    if (attributeLoss === 'softmax') loss.attributeLoss = attributeLoss;
    loss.ws = values.ws ? nonNegative(values.ws, '--ws') : attributeWeightFor(attributeLoss ?? 'bce');
    // The garment-box head is built and trained wherever the data has boxes, unless --wb 0.
    loss.wb = values.wb ? nonNegative(values.wb, '--wb') : DEFAULT_WB;
    const branch = landmarkFlags(values);
    loss.landmarkLoss = branch.landmarkLoss ?? DEFAULT_LANDMARK_LOSS;
    loss.wl = values.wl ? nonNegative(values.wl, '--wl') : landmarkWeightFor(loss.landmarkLoss);
    if (values['label-smoothing']) {
      loss.labelSmoothing = nonNegative(values['label-smoothing'], '--label-smoothing');
      if (loss.labelSmoothing >= 1) throw new UsageError('--label-smoothing is in [0, 1)');
    }
    if (values.weighting) {
      if (values.weighting !== 'fixed' && values.weighting !== 'uncertainty') throw new UsageError('--weighting is fixed or uncertainty');
      loss.weighting = values.weighting;
    }
    config = {
      ...DEFAULT_TRAIN,
      // Absolute, so that --resume works from any working directory.
      data: resolve(values.data),
      net: values.net,
      epochs: values.epochs ? positiveInt(values.epochs, '--epochs') : DEFAULT_TRAIN.epochs,
      batchSize: values['batch-size'] ? positiveInt(values['batch-size'], '--batch-size') : DEFAULT_TRAIN.batchSize,
      imgSize: values['img-size'] ? imageSizeFlag(values['img-size']) : DEFAULT_TRAIN.imgSize,
      width: values.width ? positiveNumber(values.width, '--width') : 1,
      lr: values.lr ? positiveNumber(values.lr, '--lr') : defaultLr(values.net),
      lrDecay: values['lr-decay'] ? positiveNumber(values['lr-decay'], '--lr-decay') : DEFAULT_TRAIN.lrDecay,
      loss,
      pretrained: values.pretrained,
      split: values.split ?? 'official',
      seed: seedOf(values.seed),
      workers: values.workers !== undefined ? workerCount(values.workers) : defaultWorkers(),
      stepsPerEpoch: values['steps-per-epoch'] ? positiveInt(values['steps-per-epoch'], '--steps-per-epoch') : 0,
      valLimit: values['val-limit'] ? positiveInt(values['val-limit'], '--val-limit') : 0,
      precision: precisionOf(values.precision),
      schedule: oneOf(values.schedule, SCHEDULES, '--schedule') ?? DEFAULT_TRAIN.schedule,
      warmupEpochs: values.warmup ? nonNegative(values.warmup, '--warmup') : DEFAULT_TRAIN.warmupEpochs,
      cycleMomentum: values['cycle-momentum'] ? oneOf(values['cycle-momentum'], ['on', 'off'] as const, '--cycle-momentum') === 'on' : DEFAULT_TRAIN.cycleMomentum,
      weightDecay: values['weight-decay'] ? nonNegative(values['weight-decay'], '--weight-decay') : DEFAULT_TRAIN.weightDecay,
      clipNorm: values['clip-norm'] ? nonNegative(values['clip-norm'], '--clip-norm') : DEFAULT_TRAIN.clipNorm,
      augment: oneOf(values.augment, AUGMENT_NAMES, '--augment') ?? DEFAULT_TRAIN.augment,
      trainOn: oneOf(values['train-on'], ['train', 'train+val'] as const, '--train-on') ?? DEFAULT_TRAIN.trainOn,
      ema: values.ema ? emaDecay(values.ema) : DEFAULT_TRAIN.ema,
      stemStride: stemStrideOf(values['stem-stride']),
      ...(values['conv-init'] ? { convInit: oneOf(values['conv-init'], CONV_INITS, '--conv-init') } : {}),
      ...(branch.headWidth ? { headWidth: branch.headWidth } : {}),
      // The landmark branch joined to the trunk's finer maps: part of the soft-argmax recipe unless
      // told (README, "Landmarks"); the thesis's objectives keep the thesis's branch. Written into
      // config.json for every landmark run, so that one made before this default (which has no
      // such field: off) keeps its branch on --resume.
      ...(branch.skips !== undefined || hasLandmarkBranch(values.net) ? { landmarkSkips: branch.skips ? branch.skips === 'on' : loss.landmarkLoss === 'softargmax' } : {}),
      ...(oneOf(values['vgg-bn'], ['on', 'off'] as const, '--vgg-bn') === 'on' ? { vggBatchNorm: true } : {}),
      boxZoom: values['box-zoom'] ? shareFlag(values['box-zoom'], '--box-zoom') : DEFAULT_TRAIN.boxZoom,
      ...(values['box-views'] ? { boxViews: boxViewsOf(values['box-views']) } : {}),
      ...(values['box-frame'] ? { boxFrame: boxFrameOf(values['box-frame']) } : {}),
      ...(values['box-epochs'] ? { boxEpochs: positiveInt(values['box-epochs'], '--box-epochs') } : {}),
    };
    if (config.vggBatchNorm && config.net !== 'fashionnet') throw new UsageError(`--vgg-bn on is for fashionnet, whose trunk is VGG-16; ${config.net} has none`);
    if (config.landmarkSkips && !hasLandmarkBranch(config.net)) throw new UsageError(`--landmark-skips on is for the landmark networks (fashionnet, new_fashionnet); ${config.net} has no landmark branch`);
    if (values['cycle-momentum'] === 'on' && config.schedule !== 'onecycle') throw new UsageError(`--cycle-momentum on cycles beta1 with the one-cycle rate; --schedule ${config.schedule} has no cycle (beta1 stays 0.9)`);
    if (config.boxEpochs !== undefined && config.boxEpochs < config.epochs) throw new UsageError(`--box-epochs ${config.boxEpochs} is fewer than --epochs ${config.epochs}: the box head trains at least as long as the labels`);
    out = values.out ?? join('runs', `${config.net}-${new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19)}`);
    if (existsSync(join(out, 'config.json'))) throw new UsageError(`${out} already holds a run: continue it with --resume ${out}, or choose another --out`);
  }
  const gpu = await createNodeGpu();
  const progress = new Progress(10000);
  let stop = false;
  const onSignal = () => {
    if (stop) process.exit(130);
    stop = true;
    progress.done();
    console.error('stopping after this step (Ctrl-C again to quit at once)...');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    console.log(`training ${config.net} (width ${config.width}) on ${config.data} at ${config.imgSize}x${config.imgSize}, batch ${config.batchSize}, ${config.epochs} epochs, on ${gpu.info.description || gpu.info.device}; run folder ${out}`);
    const r = await runTraining(gpu.engine, out, config, { log: (s) => (progress.done(), console.log(s)), progress: (s) => progress.update(s), shouldStop: () => stop }, resume);
    progress.done();
    // Only what is there: a run stopped in its first epoch has no weights/best yet.
    const files = ['config.json', 'metrics.csv', 'loss.png', 'metrics.png', 'weights/last.safetensors', 'weights/best.safetensors'].filter((f) => existsSync(join(out, f)));
    console.log(`run folder ${out}: ${files.join(', ')}`);
    return r.interrupted ? 130 : 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await gpu.close();
  }
}

/**
 * Puts a dataset's category indices in the checkpoint's order. An ImageFolder set may hold only
 * some of the classes (a test/ folder of three of them): each class is found by name.
 */
function matchCategories(ds: Dataset, trained: string[], where: string): void {
  if (JSON.stringify(ds.categories) === JSON.stringify(trained)) return;
  const unknown = ds.categories.filter((c) => !trained.includes(c));
  if (ds.layout !== 'imagefolder' || unknown.length) throw new Error(`${where} has other categories than the checkpoint was trained on${unknown.length ? ` (not in the checkpoint: ${unknown.slice(0, 5).join(', ')})` : ''}`);
  const to = ds.categories.map((c) => trained.indexOf(c));
  for (const item of ds.items) if (item.category >= 0) item.category = to[item.category]!;
  ds.categories = trained;
}

export async function evalVerb(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { checkpoint: { type: 'string' }, data: { type: 'string' }, split: { type: 'string', default: 'test' }, json: { type: 'string' }, 'batch-size': { type: 'string', default: '32' }, limit: { type: 'string' }, workers: { type: 'string' }, boxes: { type: 'string', default: 'true' }, mirror: { type: 'boolean' }, 'box-looks': { type: 'string' } } });
  if (!values.checkpoint || !values.data) throw new UsageError('--checkpoint and --data are required');
  const boxes = oneOf(values.boxes, ['true', 'predicted'] as const, '--boxes')!;
  const looks = values['box-looks'] ? boxLooksOf(values['box-looks']) : undefined;
  const split = values.split!;
  if (!['train', 'val', 'test'].includes(split)) throw new UsageError('--split is train, val or test');
  const bytes = readFileOrThrow(values.checkpoint);
  const ds = await openDataset(values.data);
  const workers = values.workers !== undefined ? workerCount(values.workers) : defaultWorkers();
  const gpu = await createNodeGpu();
  try {
    const { net, meta } = await loadCheckpoint(gpu.engine, bytes, values.checkpoint);
    // The vocabulary, size, landmark decoding and split as the checkpoint's metadata records them.
    const { vocab, size, decode, split: trainedSplit } = checkpointLabeling(meta.extra, values.checkpoint);
    if (ds.tasks.category && vocab.categories.length) matchCategories(ds, vocab.categories, values.data);
    if (ds.tasks.attributes && vocab.attributes.length && JSON.stringify(ds.attributeNames) !== JSON.stringify(vocab.attributes)) throw new Error(`${values.data} has other attributes than the checkpoint was trained on`);
    // A held-out set alone is enough: no training split is needed to evaluate.
    const splits = makeSplits(ds, trainedSplit && trainedSplit !== 'official' ? trainedSplit : 'official', 0, { needTrain: false });
    let indices = splits[split as 'train' | 'val' | 'test'];
    if (!indices.length) throw new Error(`${values.data} has no ${split} images${split === 'test' ? '' : ' (try --split test)'}`);
    if (values.limit) indices = indices.slice(0, positiveInt(values.limit, '--limit'));
    if (boxes === 'predicted' && !net.hasBox) throw new UsageError(`--boxes predicted needs a network with a garment-box head; ${values.checkpoint} was trained without boxes`);
    // --box-looks 1: the first look alone, to measure what the second gives; 3: one more (the default: as trained).
    if (looks && !net.hasBox) throw new UsageError(`--box-looks needs a network with a garment-box head; ${values.checkpoint} was trained without boxes`);
    if (looks && looks > 1 && !net.config.boxRefine) throw new UsageError(`--box-looks ${looks}: ${values.checkpoint}'s box head was trained for one look (train --box-zoom 0, or before the second look existed)`);
    const batchSize = positiveInt(values['batch-size']!, '--batch-size');
    const view = datasetView(ds);
    // With a box head, the loader also gives the whole photos, and eval scores the boxes it finds.
    const loader = new BatchLoader(view, { size, augment: false, heatmaps: false, photoSize: net.hasBox ? BOX_INPUT : 0 }, workers);
    const progress = new Progress();
    const foundBoxes = new Map<number, [number, number, number, number]>();
    const photo = looks === 1 ? undefined : (i: number) => itemPhoto(view, i);
    let result: EvalResult = await evaluate(net, loader, indices, vocab, { batchSize, size, decode, foundBoxes, mirror: values.mirror, photo, looks }, (d, t) => progress.update(`evaluating ${d}/${t}`));
    await loader.close();
    // The landmark baseline: the training split's mean positions, scored in the same crops.
    // Also each garment type's own means: the baseline that knows upper from lower body.
    const means = result.landmarks && splits.train.length ? landmarkMeans(ds, splits.train, size) : null;
    const meanPosition = (r: EvalResult, items: Dataset['items']) => {
      attachMeanPosition(r, r.landmarks && means ? meanPositionBaseline({ ...ds, items }, means.pooled, indices, size, means.byType) : null);
    };
    meanPosition(result, ds.items);
    // The attribute baseline: every image ranked by the training split's attribute frequencies.
    const mostFrequent = result.attributes && ds.tasks.attributes ? mostFrequentAttributes(ds, vocab, splits.train, indices) : null;
    attachMostFrequent(result, mostFrequent);
    if (boxes === 'predicted') {
      // The labels again, on the crops the box head chose instead of the list's boxes: the cost of
      // labelling uncropped photos, as a number (the true-box figures stay under "true_boxes").
      const onTrue = result;
      const items = view.items.map((it, i) => (foundBoxes.has(i) ? { ...it, bbox: foundBoxes.get(i)! } : it));
      const found = new BatchLoader({ ...view, items }, { size, augment: false, heatmaps: false }, workers);
      result = await evaluate(net, found, indices, vocab, { batchSize, size, decode, mirror: values.mirror }, (d, t) => progress.update(`evaluating on predicted boxes ${d}/${t}`));
      await found.close();
      meanPosition(result, items);
      attachMostFrequent(result, mostFrequent);
      const { boxes: box, images: _images, mirror: _mirror, ...labels } = onTrue;
      result = { ...result, boxes: box, true_boxes: labels };
    }
    progress.done();
    const header = `${values.checkpoint} on ${values.data} (${split} split, ${size}x${size}${values.mirror ? ', each crop averaged with its mirror image' : ''})`;
    if (result.true_boxes) console.log(`${header}, labels on the boxes the network found\n${formatEval(result)}\n\nthe same labels on the list's true boxes:\n${formatEval({ ...result.true_boxes, images: result.images })}`);
    else console.log(`${header}\n${formatEval(result)}`);
    if (values.json) writeFileSync(values.json, JSON.stringify(result, null, 2));
    net.dispose();
    return 0;
  } finally {
    await gpu.close();
  }
}

export async function predictVerb(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { checkpoint: { type: 'string' }, out: { type: 'string' }, jsonl: { type: 'string' }, bbox: { type: 'string' }, threshold: { type: 'string', default: '0.5' }, 'per-type': { type: 'string', default: '3' }, 'batch-size': { type: 'string', default: '8' }, sheet: { type: 'string' }, 'landmark-threshold': { type: 'string' }, mirror: { type: 'boolean' }, 'box-looks': { type: 'string' } } });
  if (!values.checkpoint) throw new UsageError('--checkpoint is required');
  const boxLooks = values['box-looks'] ? boxLooksOf(values['box-looks']) : undefined;
  if (!positionals.length) throw new UsageError('name images, folders or a .txt list of images');
  readFileOrThrow(values.checkpoint);
  const files = collectInputs(positionals);
  const gpu = await createNodeGpu();
  try {
    const progress = new Progress();
    const r = await predictFiles(gpu.engine, files, {
      checkpoint: values.checkpoint, out: values.out, jsonl: values.jsonl, bbox: values.bbox, sheet: values.sheet, mirror: values.mirror, boxLooks,
      landmarkThreshold: values['landmark-threshold'] !== undefined ? probability(values['landmark-threshold'], '--landmark-threshold') : undefined,
      threshold: probability(values.threshold!, '--threshold'), perType: positiveInt(values['per-type']!, '--per-type'), batchSize: positiveInt(values['batch-size']!, '--batch-size'),
    }, (s) => (progress.done(), console.log(s)), (d, t) => progress.update(`labelling ${d}/${t}`));
    progress.done();
    if (!values.jsonl) for (const x of r.results) console.log(JSON.stringify(x));
    console.log(`labelled ${r.labelled} of ${files.length} files; could not label ${r.failed.length}${values.jsonl ? `; labels in ${values.jsonl}` : ''}${values.out ? `; overlays in ${values.out} (each file's "overlay" says which)` : ''}${values.sheet ? `; contact sheet ${values.sheet}` : ''}`);
    // Nothing labelled is a failure a script must see.
    return r.labelled === 0 ? 1 : 0;
  } finally {
    await gpu.close();
  }
}
