// One training step and one evaluation forward pass, runtime-agnostic: everything a browser or
// Deno host needs to train the networks given a GPUDevice and batches of floats.
import { GradientScaler } from '../autograd/scaler.js';
import { Adam } from '../autograd/optim.js';
import type { AdamHyper } from '../engine/adam.js';
import { backward } from '../autograd/tape.js';
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/tensor.js';
import type { ClothNet, NetOutput } from '../nets/models.js';
import { WeightAverage } from './ema.js';
import * as ops from '../autograd/ops.js';
import { BOX_INPUT } from '../nets/locator.js';
import { type LossConfig, type LossTerms, type Targets, UncertaintyWeights, boxLoss, columnSelector, groupLabels, multiTaskLoss } from './losses.js';

export interface HostBatch {
  n: number;
  size: number;
  images: Float32Array;
  category?: Float32Array | null;
  attributes?: Float32Array | null;
  heatmaps?: Float32Array | null;
  landmarkMask?: Float32Array | null;
  /** [n, 8, 3] visibility, x, y in the pixels of the size x size input (for the soft-argmax loss). */
  landmarks?: Float32Array | null;
  /** The box head's input and targets (Batch.photos, boxes, boxMask): whole photos at BOX_INPUT, one or more views of each item (as many as boxMask has rows). */
  photos?: Float32Array | null;
  boxes?: Float32Array | null;
  boxMask?: Float32Array | null;
}

/** [n, 8, 2] points as fractions of the image from [n, 8, 3] (visibility, x, y) in pixels. */
export function pointFractions(landmarks: Float32Array, size: number): Float32Array {
  const out = new Float32Array((landmarks.length / 3) * 2);
  for (let i = 0; i < out.length / 2; i++) {
    out[2 * i] = (landmarks[3 * i + 1]! + 0.5) / size;
    out[2 * i + 1] = (landmarks[3 * i + 2]! + 0.5) / size;
  }
  return out;
}

/** Uploads a batch's targets for the heads the network has. */
export function targetsOf(engine: Engine, net: ClothNet, b: HostBatch): Targets {
  const t: Targets = {};
  if (net.config.categories > 0 && b.category) t.category = engine.tensor(b.category, [b.n], 'targets.category');
  if (net.config.attributes > 0 && b.attributes) t.attributes = engine.tensor(b.attributes, [b.n, net.config.attributes], 'targets.attributes');
  const groups = net.config.attributeGroups;
  if (groups && b.attributes) {
    t.attributeGroups = groupLabels(b.attributes, b.n, groups).map((g, k) => ({
      select: engine.tensor(columnSelector(groups.length, g.columns), [groups.length, g.columns.length], `targets.attribute_group${k}.select`),
      labels: engine.tensor(g.labels, [b.n], `targets.attribute_group${k}.labels`),
    }));
  }
  if (net.hasLandmarks && b.landmarkMask && (b.heatmaps || b.landmarks)) {
    t.landmarkMask = engine.tensor(b.landmarkMask, [b.n, 8], 'targets.landmark_mask');
    if (b.heatmaps) t.heatmaps = engine.tensor(b.heatmaps, [b.n, 8, b.size, b.size], 'targets.heatmaps');
    if (b.landmarks) t.landmarkPoints = engine.tensor(pointFractions(b.landmarks, b.size), [b.n, 8, 2], 'targets.landmark_points');
  }
  return t;
}

export interface StepParts {
  /** The labelling network's forward, loss and update (false: the box head trains alone). */
  labels: boolean;
}

export class Trainer {
  /** Every parameter's optimizer, or the labelling network's where the box head has its own. */
  readonly optimizer: Adam;
  /**
   * The box head's own optimizer (`boxOptimizer: true`), so that it can follow a schedule of its
   * own and go on training after the labelling network has finished (train --box-epochs).
   */
  readonly boxOptimizer: Adam | null = null;
  readonly uncertainty?: UncertaintyWeights;
  /** `optimizer`: Adam's settings beyond the rate (AdamW's decay, gradient clipping). */
  constructor(
    readonly net: ClothNet,
    readonly loss: LossConfig,
    lr: number,
    optimizer: Partial<AdamHyper> = {},
    o: { boxOptimizer?: boolean } = {},
  ) {
    if (loss.weighting === 'uncertainty') this.uncertainty = new UncertaintyWeights(net.engine);
    // The head's groups say how labelling reads it: a softmax within each; the loss must agree.
    if ((loss.attributeLoss === 'softmax') !== !!net.config.attributeGroups) {
      throw new Error(loss.attributeLoss === 'softmax' ? `the softmax attribute loss needs a network whose attribute head has groups (NetConfig.attributeGroups); this ${net.config.net} has none` : `this ${net.config.net}'s attribute head has groups (a softmax within each), so it trains with the softmax attribute loss, not ${loss.attributeLoss ?? 'bce'}`);
    }
    const boxParams = new Set(o.boxOptimizer ? net.boxParameters() : []);
    if (o.boxOptimizer && !boxParams.size) throw new Error(`a box head optimizer needs a network with a box head; this ${net.config.net} has none`);
    this.optimizer = new Adam([...net.parameters().filter((p) => !boxParams.has(p)), ...(this.uncertainty?.parameters() ?? [])], { ...optimizer, lr });
    if (boxParams.size) this.boxOptimizer = new Adam([...boxParams], { ...optimizer, lr });
  }

  /** The weights' moving average, updated after every step (useAverage). */
  average: WeightAverage | null = null;

  /** Keeps an exponential moving average of the weights from now on (decay per step). */
  useAverage(decay: number): void {
    this.average?.dispose();
    this.average = new WeightAverage(this.net, decay);
  }

  /** Mixed precision's gradient scaler, when the engine trains in mixed precision (see step()). */
  scaler: GradientScaler | null = null;

  /** Frees the optimizer's moments and the scaler's flag (the network is the caller's). */
  dispose(): void {
    this.optimizer.dispose();
    this.boxOptimizer?.dispose();
    this.scaler?.dispose();
    this.average?.dispose();
  }

  /**
   * Forward, loss, backward and the Adam update, recorded into one submission. Returns the loss
   * terms (kept; the caller reads and disposes them). `step` seeds dropout. `beforeBackward`
   * sees the whole graph (its root, the total loss) before backward releases it. With
   * `parts.labels` false only the box head trains (on the batch's photos; it needs its own
   * optimizer): the labelling network is neither run nor changed.
   */
  step(b: HostBatch, step: number, beforeBackward?: (total: Tensor) => void, parts: StepParts = { labels: true }): LossTerms {
    if (!parts.labels && !this.boxOptimizer) throw new Error('a step of the box head alone needs its own optimizer (Trainer option boxOptimizer)');
    const e = this.net.engine;
    this.net.setTraining(true);
    this.net.setStep(step);
    return e.tidy(() => {
      // Every upload before the first dispatch: an upload after one would submit the work so far
      // first (engine.write), splitting the step into two submissions.
      const images = parts.labels ? e.tensor(b.images, [b.n, 3, b.size, b.size], 'images') : null;
      const targets = parts.labels ? targetsOf(e, this.net, b) : null;
      const wb = this.loss.wb ?? 0;
      const boxed = this.net.hasBox && wb > 0 && b.photos && b.boxes && b.boxMask;
      const views = boxed ? b.boxMask!.length : 0; // n, or n times the views of each photo (train --box-views)
      const photos = boxed ? e.tensor(b.photos!, [views, 3, BOX_INPUT, BOX_INPUT], 'photos') : null;
      const boxTargets = boxed ? e.tensor(b.boxes!, [views, 1, 4], 'targets.box') : null;
      const boxMask = boxed ? e.tensor(b.boxMask!, [views, 1], 'targets.box_mask') : null;
      if (!parts.labels && !photos) throw new Error('a step of the box head alone needs the batch\'s photos, boxes and box mask (and --wb above 0)');
      // Mixed precision: the gradient casts flag an f16 overflow, and Adam then skips the step on
      // the GPU; the caller books the flag (scaler.book) when it reads the losses back.
      if (e.mixedPrecision) this.scaler ??= new GradientScaler(e);
      const scaler = e.mixedPrecision ? this.scaler : null;
      scaler?.begin();
      return e.with({ gradientScaling: scaler }, () => {
        let terms: LossTerms;
        if (images && targets) {
          terms = multiTaskLoss(this.net.forward(images), targets, this.loss, this.uncertainty);
          if (photos) {
            // The box head learns on the whole photos, beside the labels on the crops.
            terms.box = boxLoss(this.net.locate(photos), boxTargets!, boxMask!);
            terms.total = ops.add(terms.total, ops.scale(terms.box, wb));
          }
        } else {
          const box = boxLoss(this.net.locate(photos!), boxTargets!, boxMask!);
          terms = { total: ops.scale(box, wb), box };
        }
        beforeBackward?.(terms.total);
        // The step reads nothing of the graph afterwards but the loss terms: each activation goes
        // back to the pool as soon as backward is done with it (the step's peak falls to its floor).
        backward(terms.total, undefined, { release: { keep: Object.values(terms).filter((t): t is Tensor => !!t) } });
        e.noGrad(() => {
          // Parameters without a gradient are left as they are (the labelling network's, when
          // the box head trains alone), but an update still counts a step: it is not called.
          if (parts.labels) this.optimizer.update(scaler?.flag);
          this.boxOptimizer?.update(scaler?.flag);
          this.average?.update();
        });
        this.optimizer.zeroGrad();
        this.boxOptimizer?.zeroGrad();
        return terms;
      });
    });
  }
}

/** Eval-mode forward pass of one batch (the outputs are kept; the caller disposes them). */
export function predictBatch(net: ClothNet, images: Float32Array, n: number, size: number, o: { features?: boolean } = {}): NetOutput {
  const e = net.engine;
  net.setTraining(false);
  return e.tidy(() => e.noGrad(() => net.forward(e.tensor(images, [n, 3, size, size], 'images'), o)));
}

/**
 * The box head's boxes [n, 4] (cx, cy, w, h fractions) for whole photos [n, 3, BOX_INPUT,
 * BOX_INPUT]. Each photo is read with its mirror image and the two boxes (the mirror's mirrored
 * back) are averaged: a flipped photo gets exactly the flipped box, and the box is steadier.
 */
export async function predictBoxes(net: ClothNet, photos: Float32Array, n: number): Promise<Float32Array> {
  const e = net.engine;
  const P = BOX_INPUT;
  const both = new Float32Array(2 * photos.length);
  both.set(photos);
  both.set(mirrorImages(photos, n, P), photos.length);
  net.setTraining(false);
  const boxes = e.tidy(() => e.noGrad(() => net.locate(e.tensor(both, [2 * n, 3, P, P], 'photos'))));
  const values = await boxes.read();
  boxes.dispose();
  const out = new Float32Array(4 * n);
  for (let i = 0; i < n; i++) {
    const [a, m] = [values.subarray(4 * i, 4 * i + 4), values.subarray(4 * (n + i), 4 * (n + i) + 4)];
    out.set([(a[0]! + 1 - m[0]!) / 2, (a[1]! + m[1]!) / 2, (a[2]! + m[2]!) / 2, (a[3]! + m[3]!) / 2], 4 * i);
  }
  return out;
}

/** Images [n, 3, size, size] mirrored left to right. */
export function mirrorImages(images: Float32Array, n: number, size: number): Float32Array {
  const out = new Float32Array(images.length);
  for (let row = 0; row < 3 * n * size; row++) {
    for (let x = 0; x < size; x++) out[row * size + x] = images[row * size + (size - 1 - x)]!;
  }
  return out;
}

export function disposeAll(xs: (Tensor | undefined)[]): void {
  for (const x of xs) x?.dispose();
}
