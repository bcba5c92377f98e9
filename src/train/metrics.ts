// The DeepFashion evaluation protocol (SPEC section 6), accumulated batch by batch:
// - category top-1/3/5 accuracy;
// - attribute recall@3 and @5, overall and per attribute type, under both definitions:
//   per_image: the share of an image's true attributes found among its top-k scores, averaged
//              over images (thesis eq. 7.2);
//   per_attribute: for each attribute, the share of the images having it that rank it in their
//              top-k, averaged over attributes (the DeepFashion paper's code lineage).
//   Per-type recall ranks only that type's attributes.
//   per_type_top1: for each type, the share of images whose highest-scored attribute of that type
//              is one they have. deepfashion-fine's types are one-of-k (every photo has exactly one
//              answer per type), so this is each type's accuracy: it shows which types a network
//              learned beyond their most frequent answer, which recall@k over all types hides.
// - landmarks: mean distance between predicted and true visible points over the image size, in
//   all and per slot.
import { LANDMARK_SLOTS } from '../label/pixels.js';

export interface Vocabulary {
  categories: string[];
  attributes: string[];
  attributeTypes: number[];
  typeNames: Record<number, string>;
}

export type RecallTable = Record<'top3' | 'top5', Record<string, number>>;

export interface EvalResult {
  category?: { top1: number; top3: number; top5: number };
  attributes?: {
    per_image: RecallTable;
    per_attribute: RecallTable;
    /** Per type name: the share of images whose top-scored attribute of the type is a true one. */
    per_type_top1?: Record<string, number>;
    /**
     * The baseline beside them: every image scored with the training split's attribute
     * frequencies (mostFrequentAttributes), on the same images.
     */
    most_frequent?: { per_image: RecallTable; per_type_top1: Record<string, number> };
  };
  /**
   * nme over every visible point, and per_point by slot (LANDMARK_SLOTS names; a slot with no
   * visible point is absent); mean_position_*: the baseline of predicting each slot's
   * training-split mean position, over the same points; mean_position_by_type_nme: each point at
   * its garment type's mean (upper, lower or full body, as the landmark list gives the type).
   */
  landmarks?: { nme: number; per_point?: Record<string, number>; mean_position_nme?: number; mean_position_per_point?: Record<string, number>; mean_position_by_type_nme?: number; mean_position_by_type_per_point?: Record<string, number> };
  /** The box head: mean IoU with the true boxes, beside the whole photo's (the baseline of no box head). */
  boxes?: { iou: number; iou_whole_image: number; images: number };
  /** eval --boxes predicted: the label metrics on the list's true boxes, beside these on the found ones. */
  true_boxes?: Omit<EvalResult, 'images' | 'boxes' | 'true_boxes' | 'mirror'>;
  /** eval --mirror: each crop was read with its mirror image and the two readings averaged. */
  mirror?: boolean;
  images: number;
}

/** (cx, cy, w, h) to (x1, y1, x2, y2). */
export function corners(b: ArrayLike<number>): [number, number, number, number] {
  return [b[0]! - b[2]! / 2, b[1]! - b[3]! / 2, b[0]! + b[2]! / 2, b[1]! + b[3]! / 2];
}

/** Intersection over union of two (x1, y1, x2, y2) boxes; 0 for a NaN or empty one. */
export function iou(a: readonly number[], b: readonly number[]): number {
  const w = Math.min(a[2]!, b[2]!) - Math.max(a[0]!, b[0]!), h = Math.min(a[3]!, b[3]!) - Math.max(a[1]!, b[1]!);
  const inter = w > 0 && h > 0 ? w * h : 0;
  const area = (r: readonly number[]) => Math.max(0, r[2]! - r[0]!) * Math.max(0, r[3]! - r[1]!);
  const union = area(a) + area(b) - inter;
  return union > 0 && Number.isFinite(inter / union) ? inter / union : 0;
}

/**
 * NME over all visible points and per slot, from each slot's summed distances (over the image
 * size) and point count; null when no point was visible.
 */
export function landmarkErrors(sum: ArrayLike<number>, count: ArrayLike<number>): { nme: number; per_point: Record<string, number> } | null {
  let total = 0, points = 0;
  const per_point: Record<string, number> = {};
  LANDMARK_SLOTS.forEach((slot, s) => {
    total += sum[s]!;
    points += count[s]!;
    if (count[s]) per_point[slot] = sum[s]! / count[s]!;
  });
  return points ? { nme: total / points, per_point } : null;
}

const KS = [3, 5] as const;
/** The deepest k: one ranking this long serves every k in KS. */
const K_MAX = Math.max(...KS);

/** Indices of the k largest scores among `candidates` (ties: lower index first). */
export function topK(scores: ArrayLike<number>, candidates: readonly number[], k: number): number[] {
  // A NaN score ranks last: a broken output is never a hit.
  const score = (i: number) => (Number.isNaN(scores[i]!) ? -Infinity : scores[i]!);
  return [...candidates].sort((a, b) => score(b) - score(a) || a - b).slice(0, k);
}

export class MetricsAccumulator {
  private images = 0;
  private readonly cat = { hits: [0, 0, 0], count: 0 };
  // per_image[k][group]: sum of recalls and images counted; per_attribute[k][a]: hits and totals
  private readonly perImage = new Map<string, { sum: number; count: number }>();
  /** Per type name: images whose top-scored attribute of the type is a true one, and images counted. */
  private readonly typeTop1 = new Map<string, { hits: number; count: number }>();
  private readonly attrHits: Record<string, Float64Array> = {};
  private readonly attrHitsTyped: Record<string, Float64Array> = {};
  private readonly attrTotals: Float64Array;
  private readonly groups: { name: string; members: number[] }[];
  /** Per slot: the sum of visible points' distances over the image size, and their count. */
  private readonly nmeSum = new Float64Array(8);
  private readonly nmeCount = new Float64Array(8);
  private readonly box = { iou: 0, whole: 0, count: 0 };

  /** One photo's predicted and true boxes, both (cx, cy, w, h) fractions of the photo. */
  addBox(predicted: ArrayLike<number>, truth: ArrayLike<number>): void {
    const t = corners(truth);
    this.box.iou += iou(corners(predicted), t);
    this.box.whole += iou([0, 0, 1, 1], t);
    this.box.count++;
  }

  constructor(private readonly vocab: Vocabulary) {
    const A = vocab.attributes.length;
    this.attrTotals = new Float64Array(A);
    for (const k of KS) {
      this.attrHits[k] = new Float64Array(A);
      this.attrHitsTyped[k] = new Float64Array(A);
    }
    const all = vocab.attributes.map((_, i) => i);
    this.groups = [{ name: 'all', members: all }];
    for (const [t, name] of Object.entries(vocab.typeNames)) {
      const members = all.filter((a) => vocab.attributeTypes[a] === Number(t));
      if (members.length) this.groups.push({ name, members });
    }
    // Filled in the vocabulary's type order, so that the result lists the types as the recall tables do.
    for (const g of this.groups.slice(1)) this.typeTop1.set(g.name, { hits: 0, count: 0 });
  }

  /** One image's category logits and its label (-1: unknown, not counted). */
  addCategory(logits: ArrayLike<number>, label: number): void {
    if (label < 0) return;
    // A NaN logit for the true class is a miss (every comparison with NaN is false, so it would
    // otherwise rank first).
    let rank = Number.isNaN(logits[label]!) ? Infinity : 0;
    for (let c = 0; c < logits.length && rank < Infinity; c++) if (logits[c]! > logits[label]! || (logits[c] === logits[label] && c < label)) rank++;
    [1, 3, 5].forEach((k, i) => {
      if (rank < k) this.cat.hits[i]!++;
    });
    this.cat.count++;
  }

  /** One image's attribute scores and targets (1 present, 0 absent, -1 unknown). */
  addAttributes(scores: ArrayLike<number>, targets: ArrayLike<number>): void {
    for (const g of this.groups) {
      const positives = g.members.filter((a) => targets[a]! > 0.5);
      if (!positives.length) continue;
      // One ranking serves every k: the top-k are its first k.
      const ranked = topK(scores, g.members, K_MAX);
      const typed = this.typeTop1.get(g.name);
      if (typed) {
        if (targets[ranked[0]!]! > 0.5) typed.hits++;
        typed.count++;
      }
      for (const k of KS) {
        const top = new Set(ranked.slice(0, k));
        const found = positives.filter((a) => top.has(a)).length;
        const key = `${k}/${g.name}`;
        const acc = this.perImage.get(key) ?? { sum: 0, count: 0 };
        acc.sum += found / positives.length;
        acc.count++;
        this.perImage.set(key, acc);
        for (const a of positives) {
          if (!top.has(a)) continue;
          if (g.name === 'all') this.attrHits[k]![a]!++;
          else this.attrHitsTyped[k]![a]!++;
        }
      }
      if (g.name === 'all') for (const a of positives) this.attrTotals[a]!++;
    }
  }

  /** Predicted and true points (8 slots of x, y; truth with visibility), in a frame of `size` pixels. */
  addLandmarks(predicted: ArrayLike<number>, truth: ArrayLike<number>, size: number): void {
    for (let s = 0; s < 8; s++) {
      if (truth[3 * s] !== 0) continue;
      this.nmeSum[s]! += Math.hypot(predicted[2 * s]! - truth[3 * s + 1]!, predicted[2 * s + 1]! - truth[3 * s + 2]!) / size;
      this.nmeCount[s]!++;
    }
  }

  countImages(n: number): void {
    this.images += n;
  }

  result(): EvalResult {
    const r: EvalResult = { images: this.images };
    if (this.cat.count) r.category = { top1: this.cat.hits[0]! / this.cat.count, top3: this.cat.hits[1]! / this.cat.count, top5: this.cat.hits[2]! / this.cat.count };
    if (this.vocab.attributes.length && this.perImage.size) {
      const perImage: RecallTable = { top3: {}, top5: {} };
      const perAttribute: RecallTable = { top3: {}, top5: {} };
      for (const k of KS) {
        for (const g of this.groups) {
          const acc = this.perImage.get(`${k}/${g.name}`);
          if (acc) perImage[`top${k}`][g.name] = acc.sum / acc.count;
          const hits = g.name === 'all' ? this.attrHits[k]! : this.attrHitsTyped[k]!;
          const rates = g.members.filter((a) => this.attrTotals[a]! > 0).map((a) => hits[a]! / this.attrTotals[a]!);
          if (rates.length) perAttribute[`top${k}`][g.name] = rates.reduce((s, x) => s + x, 0) / rates.length;
        }
      }
      r.attributes = { per_image: perImage, per_attribute: perAttribute };
      const typed = [...this.typeTop1].filter(([, a]) => a.count);
      if (typed.length) r.attributes.per_type_top1 = Object.fromEntries(typed.map(([name, a]) => [name, a.hits / a.count]));
    }
    const landmarks = landmarkErrors(this.nmeSum, this.nmeCount);
    if (landmarks) r.landmarks = landmarks;
    if (this.box.count) r.boxes = { iou: this.box.iou / this.box.count, iou_whole_image: this.box.whole / this.box.count, images: this.box.count };
    return r;
  }
}

export interface DecodedLandmarks {
  /** [n, 8, 2] x, y in the pixels of the size x size input. */
  points: Float32Array;
  /** [n, 8] in [0, 1]: how sure the map is of its point (0 for a flat map). */
  confidence: Float32Array;
}

/** The radius, in map pixels, within which soft-argmax confidence counts probability mass. */
export const confidenceRadius = (size: number) => Math.max(1.5, size / 16);

/**
 * Points and confidences from heatmaps [n, 8, size, size].
 * - `softargmax` (maps trained as soft-argmax logits): the expected pixel under the plane's
 *   softmax, as the loss sees it; confidence is the probability mass within confidenceRadius of it.
 * - `peak` (maps trained towards Gaussians): the maximum, refined to sub-pixel by the centroid of
 *   its 3x3 neighbourhood (values above the neighbourhood's minimum); confidence is the peak value
 *   clamped to [0, 1], and 0 for a flat map, whose "maximum" is an accident of scan order.
 */
export function decodeLandmarks(heatmaps: Float32Array, n: number, size: number, mode: 'softargmax' | 'peak'): DecodedLandmarks {
  const points = new Float32Array(n * 16), confidence = new Float32Array(n * 8);
  const plane = size * size;
  const r2 = confidenceRadius(size) ** 2;
  for (let p = 0; p < n * 8; p++) {
    const map = heatmaps.subarray(p * plane, (p + 1) * plane);
    let best = -Infinity, worst = Infinity, at = 0;
    for (let i = 0; i < plane; i++) {
      const v = map[i]!;
      if (v > best) (best = v), (at = i);
      if (v < worst) worst = v;
    }
    if (mode === 'softargmax') {
      let s = 0, sx = 0, sy = 0;
      for (let i = 0; i < plane; i++) {
        const e = Math.exp(map[i]! - best);
        s += e; sx += e * (i % size); sy += e * Math.floor(i / size);
      }
      const x = sx / s, y = sy / s;
      let near = 0;
      for (let i = 0; i < plane; i++) if (((i % size) - x) ** 2 + (Math.floor(i / size) - y) ** 2 <= r2) near += Math.exp(map[i]! - best);
      points[2 * p] = x; points[2 * p + 1] = y;
      confidence[p] = near / s;
      continue;
    }
    const px = at % size, py = Math.floor(at / size);
    if (!(best - worst > 1e-6)) {
      points[2 * p] = (size - 1) / 2; points[2 * p + 1] = (size - 1) / 2;
      confidence[p] = 0;
      continue;
    }
    let floor = Infinity;
    for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) {
      const x = px + dx, y = py + dy;
      if (x >= 0 && y >= 0 && x < size && y < size) floor = Math.min(floor, map[y * size + x]!);
    }
    let s = 0, sx = 0, sy = 0;
    for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) {
      const x = px + dx, y = py + dy;
      if (x < 0 || y < 0 || x >= size || y >= size) continue;
      const w = map[y * size + x]! - floor;
      s += w; sx += w * x; sy += w * y;
    }
    points[2 * p] = s > 0 ? sx / s : px; points[2 * p + 1] = s > 0 ? sy / s : py;
    confidence[p] = Math.min(1, Math.max(0, best));
  }
  return { points, confidence };
}

/** A metric table as text, each number labelled with its definition. */
export function formatEval(r: EvalResult): string {
  const pct = (x: number | undefined) => (x === undefined ? '   -' : (100 * x).toFixed(1).padStart(5));
  const lines = [`images: ${r.images}`];
  if (r.category) lines.push(`category accuracy   top-1 ${pct(r.category.top1)}   top-3 ${pct(r.category.top3)}   top-5 ${pct(r.category.top5)}`);
  if (r.attributes) {
    const groups = Object.keys(r.attributes.per_image.top3);
    lines.push(`attribute recall (%)     ${groups.map((g) => g.padStart(9)).join('')}`);
    for (const def of ['per_image', 'per_attribute'] as const) {
      for (const k of ['top3', 'top5'] as const) {
        lines.push(`  ${def.padEnd(13)} @${k.slice(3)}  ${groups.map((g) => pct(r.attributes![def][k][g]).padStart(9)).join('')}`);
      }
    }
    const row = (label: string, values: Record<string, number>) => `  ${label.padEnd(17)}  ${groups.map((g) => pct(values[g]).padStart(9)).join('')}`;
    if (r.attributes.per_type_top1) lines.push(row('top-1 in its type', r.attributes.per_type_top1));
    const base = r.attributes.most_frequent;
    if (base) {
      lines.push(`  the most frequent answers of the training split (baseline):`);
      for (const k of ['top3', 'top5'] as const) lines.push(`  ${'per_image'.padEnd(13)} @${k.slice(3)}  ${groups.map((g) => pct(base.per_image[k][g]).padStart(9)).join('')}`);
      lines.push(row('top-1 in its type', base.per_type_top1));
    }
  }
  if (r.landmarks) {
    const lm = r.landmarks;
    const byType = lm.mean_position_by_type_nme !== undefined ? `; per garment type ${lm.mean_position_by_type_nme.toFixed(4)}` : '';
    lines.push(`landmark error (NME, distance / image size): ${lm.nme.toFixed(4)}${lm.mean_position_nme !== undefined ? `   (mean-position baseline ${lm.mean_position_nme.toFixed(4)}${byType})` : ''}`);
    if (lm.per_point) {
      // Left and right side by side, each with its baselines where there are some.
      const typed = lm.mean_position_by_type_per_point;
      const width = typed ? 26 : 18;
      const cell = (slot: string) => {
        const v = lm.per_point![slot];
        const baselines = [lm.mean_position_per_point?.[slot], typed?.[slot]].filter((x) => x !== undefined).map((x) => x!.toFixed(4)).join(', ');
        return (v === undefined ? '-' : v.toFixed(4) + (baselines ? ` (${baselines})` : '')).padStart(width);
      };
      const legend = typed ? '   (mean-position baselines: pooled, per garment type)' : lm.mean_position_per_point ? '   (mean-position baseline)' : '';
      lines.push(`  per point${' '.repeat(8)}${'left'.padStart(width)}${'right'.padStart(width)}${legend}`);
      for (const part of ['collar', 'sleeve', 'waistline', 'hem']) lines.push(`    ${part.padEnd(15)}${cell(`left ${part}`)}${cell(`right ${part}`)}`);
    }
  }
  if (r.boxes) lines.push(`garment box mean IoU: ${r.boxes.iou.toFixed(3)}   (the whole photo as the box: ${r.boxes.iou_whole_image.toFixed(3)}; ${r.boxes.images} photos)`);
  return lines.join('\n');
}
