// The thesis's multi-task loss (SPEC section 4), runtime-agnostic:
//   L = Wc * Lc + Ws * La + Wl * Ll
// Lc: softmax cross-entropy; La: BCE with w_pos = 1, w_neg = 0.1 (unknown attributes masked);
// Ll: MSE (FashionNet) or 1 - SSIM (New FashionNet) between heatmaps and Gaussian targets,
// invisible landmarks masked; or (our option, `softargmax`) the L1 distance between each heatmap's
// soft-argmax and the true point, in units of the image size, so that the objective is the
// localization error itself and a flat map is never a minimum (see the README's landmark section). Uncertainty weighting (Kendall et al. 2018) replaces the fixed
// weights by learned log-variances s_t: L = sum_t exp(-s_t) * L_t + s_t.
import * as ops from '../autograd/ops.js';
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/tensor.js';
import type { NetOutput } from '../nets/models.js';

export interface Targets {
  /** [N] class index per image, -1 where unknown. */
  category?: Tensor;
  /** [N, A] 1 present, 0 absent, -1 unknown. */
  attributes?: Tensor;
  /** [N, 8, H, W] Gaussian heatmaps. */
  heatmaps?: Tensor;
  /** [N, 8] 1 where the landmark is visible (and so supervised). */
  landmarkMask?: Tensor;
  /** [N, 8, 2] true points as fractions of the image (x, y), for the soft-argmax loss. */
  landmarkPoints?: Tensor;
  /**
   * The softmax attribute loss's targets, one entry per attribute group (NetConfig.attributeGroups):
   * `select` [A, k] picks the group's k columns of the logits, `labels` [N] each photo's answer
   * within them (-1: none known).
   */
  attributeGroups?: { select: Tensor; labels: Tensor }[];
}

/**
 * The attribute objective: the thesis's weighted BCE, each attribute a yes/no of its own; or
 * `softmax`, a cross-entropy within each attribute type, since every DeepFashion photo has exactly
 * one answer per type (texture, sleeve, length, neckline, fabric, fit). Labelling then reads each
 * type's probabilities as a softmax, which sum to 1 within the type.
 */
export type AttributeLoss = 'bce' | 'softmax';
export const ATTRIBUTE_LOSSES: readonly AttributeLoss[] = ['bce', 'softmax'];

/**
 * Each attribute objective's weight when --ws is not given: the thesis's Ws = 20 goes with its BCE,
 * a mean over 26 attributes of which most are 0.1-weighted negatives; the softmax objective is
 * already a sum over the types (about 0.5-1.5 each), so it weighs 1, as the PyTorch replica
 * trained it (docs/real-data.md: a softmax within each type).
 */
export function attributeWeightFor(loss: AttributeLoss): number {
  return loss === 'softmax' ? 1 : THESIS_LOSS.ws;
}

/** Each attribute group's columns, groups in ascending order of their number. */
export function groupColumns(groups: readonly number[]): number[][] {
  return [...new Set(groups)].sort((a, b) => a - b).map((g) => groups.flatMap((h, a) => (h === g ? [a] : [])));
}

/**
 * Each attribute group's columns and every photo's answer within it, from targets [n, A] (1 / 0 /
 * -1 unknown): the first column marked 1, or -1 where none is (the photo counts nowhere in that
 * group's cross-entropy). Groups in ascending order of their number.
 */
export function groupLabels(targets: Float32Array, n: number, groups: readonly number[]): { columns: number[]; labels: Float32Array }[] {
  const A = groups.length;
  if (targets.length !== n * A) throw new Error(`attribute targets hold ${targets.length} values, not ${n} photos x ${A} attributes`);
  return groupColumns(groups).map((columns) => {
    const labels = new Float32Array(n).fill(-1);
    for (let i = 0; i < n; i++) {
      const at = columns.findIndex((a) => targets[i * A + a] === 1);
      if (at >= 0) labels[i] = at;
    }
    return { columns, labels };
  });
}

/** [A, k] with a 1 at (columns[j], j): logits [N, A] times it are the group's logits [N, k]. */
export function columnSelector(A: number, columns: readonly number[]): Float32Array {
  const s = new Float32Array(A * columns.length);
  columns.forEach((a, j) => (s[a * columns.length + j] = 1));
  return s;
}

/**
 * The softmax attribute loss: the sum over attribute groups of the mean cross-entropy within the
 * group (over the photos with an answer in it). The group's logits are a product with a 0/1
 * selector, so the gradient flows back to the head's columns by the matmul's own backward.
 */
export function groupSoftmaxLoss(logits: Tensor, groups: Targets['attributeGroups']): Tensor {
  if (!groups?.length) throw new Error('the softmax attribute loss needs each attribute group\'s targets (targetsOf with a network whose attributeGroups are set)');
  return groups.map((g) => ops.softmaxCrossEntropy(ops.matmul(logits, g.select), g.labels)).reduce((a, b) => ops.add(a, b));
}

/** The thesis's heatmap objectives (mse, ssim), or soft-argmax regression of the points. */
export type LandmarkLoss = 'mse' | 'ssim' | 'softargmax';
export const LANDMARK_LOSSES: readonly LandmarkLoss[] = ['mse', 'ssim', 'softargmax'];

/**
 * `clothtag train`'s landmark objective unless told otherwise: measured, the thesis's heatmap
 * losses left the branch at flat maps (README, "Landmarks"); soft-argmax regression localizes.
 */
export const DEFAULT_LANDMARK_LOSS: LandmarkLoss = 'softargmax';
/** The landmark weight that goes with soft-argmax (a distance in image sizes) when --wl is not given. */
export const SOFTARGMAX_WL = 20;

/** Heatmap targets are built only for the objectives that compare maps. */
export const needsHeatmapTargets = (l: LandmarkLoss) => l !== 'softargmax';

/** How predicted maps become points: soft-argmax for maps trained as its logits, else the peak. */
export type LandmarkDecode = 'softargmax' | 'peak';
export const decodeFor = (l: LandmarkLoss): LandmarkDecode => (l === 'softargmax' ? 'softargmax' : 'peak');

export interface LossConfig {
  wc: number;
  ws: number;
  wl: number;
  wPos: number;
  wNeg: number;
  landmarkLoss: LandmarkLoss;
  weighting: 'fixed' | 'uncertainty';
  /** Label smoothing of the category loss (0: none). */
  labelSmoothing?: number;
  /** Weight of the garment-box loss (boxLoss); 0 or absent: the box head does not train. */
  wb?: number;
  /** The attribute objective (absent: `bce`, the thesis's). */
  attributeLoss?: AttributeLoss;
}

/**
 * The box loss's weight when --wb is not given. The box head has parameters of its own, and Adam
 * is blind to a gradient's scale, so the weight matters mostly for gradient clipping and for its
 * share of the printed loss: 1 keeps both modest (an L1 of about 0.05-0.15 of the photo).
 */
export const DEFAULT_WB = 1;

export const THESIS_LOSS: LossConfig = { wc: 1, ws: 20, wl: 2000, wPos: 1, wNeg: 0.1, landmarkLoss: 'mse', weighting: 'fixed' };

/**
 * Each landmark objective's own weight: the thesis's Wl = 2000 suits the MSE of heatmaps in [0, 1];
 * the soft-argmax loss is a distance in image sizes (about 0.1), and Wl = 20 puts it level with Ws.
 */
export const landmarkWeightFor = (l: LandmarkLoss): number => (l === 'softargmax' ? SOFTARGMAX_WL : THESIS_LOSS.wl);

export interface LossTerms {
  total: Tensor;
  /** Each task's unweighted loss, shape [1]. */
  category?: Tensor;
  attributes?: Tensor;
  landmarks?: Tensor;
  box?: Tensor;
}

/**
 * L1 between predicted and true boxes [N, 4] (cx, cy, w, h fractions of the photo), over the photos
 * that have a box (mask [N]). Measured against L1 plus a GIoU term on deepfashion-fine's split (a
 * replica of the locator): mean IoU 0.699 and 0.701, within noise; the plain L1 stayed.
 */
export function boxLoss(pred: Tensor, target: Tensor, mask: Tensor): Tensor {
  const n = pred.shape[0]!;
  return ops.l1(ops.reshape(pred, [n, 1, 4]), target, mask);
}

/** Learned log-variances, one per task, for uncertainty weighting (Kendall, Gal & Cipolla 2018). */
export class UncertaintyWeights {
  readonly logVars: Record<'category' | 'attributes' | 'landmarks', Tensor>;
  constructor(engine: Engine) {
    const make = (name: string) => {
      const t = engine.zeros([1], `uncertainty.${name}`).keep();
      t.requiresGrad = true;
      return t;
    };
    this.logVars = { category: make('category'), attributes: make('attributes'), landmarks: make('landmarks') };
  }

  parameters(): Tensor[] {
    return Object.values(this.logVars);
  }
}

export function multiTaskLoss(out: NetOutput, targets: Targets, c: LossConfig, uncertainty?: UncertaintyWeights): LossTerms {
  const terms: LossTerms = {} as LossTerms;
  const weighted: Tensor[] = [];
  const weigh = (task: 'category' | 'attributes' | 'landmarks', loss: Tensor, fixed: number) => {
    terms[task] = loss;
    if (fixed === 0) return; // a weight of 0 turns the task off (it is still reported)
    if (c.weighting === 'uncertainty') {
      if (!uncertainty) throw new Error('uncertainty weighting needs its learned log-variances (UncertaintyWeights)');
      // exp(-s) * L + s with s = log(sigma^2): a noisy task learns a larger s, hence a smaller weight.
      const s = uncertainty.logVars[task];
      weighted.push(ops.add(ops.mul(loss, ops.exp(ops.scale(s, -1))), s));
    } else weighted.push(ops.scale(loss, fixed));
  };
  if (out.category && targets.category) weigh('category', ops.softmaxCrossEntropy(out.category, targets.category, c.labelSmoothing ?? 0), c.wc);
  if (out.attributes && targets.attributes) {
    const loss = c.attributeLoss === 'softmax' ? groupSoftmaxLoss(out.attributes, targets.attributeGroups) : ops.bceWithLogits(out.attributes, targets.attributes, { positive: c.wPos, negative: c.wNeg });
    weigh('attributes', loss, c.ws);
  }
  if (out.heatmaps && c.landmarkLoss === 'softargmax' && targets.landmarkPoints) {
    weigh('landmarks', ops.l1(ops.softArgmax(out.heatmaps), targets.landmarkPoints, targets.landmarkMask), c.wl);
  } else if (out.heatmaps && targets.heatmaps) {
    const mask = targets.landmarkMask;
    const loss = c.landmarkLoss === 'ssim' ? ops.ssimLoss(out.heatmaps, targets.heatmaps, mask) : ops.mse(out.heatmaps, targets.heatmaps, mask);
    weigh('landmarks', loss, c.wl);
  }
  if (!weighted.length) throw new Error('no task to train: the network and the data share no head (category, attributes, landmarks)');
  terms.total = weighted.reduce((a, b) => ops.add(a, b));
  return terms;
}

