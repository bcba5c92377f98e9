// Searching a catalog: filters on label probabilities (the most likely category, attribute
// thresholds) and ranking by how likely those labels are, or by cosine similarity to a photo's
// embedding. An exact scan: every candidate row is read and scored (see the README for how its
// cost grows and where an approximate index would take over). Probabilities come from the stored
// logits in float64, and the ranking adds log-probabilities, so photos the network is sure of
// keep their order where float32 probabilities would all be 1.
import type { Catalog, ScanColumn } from './catalog.js';
import { CatalogError, argmax } from './catalog.js';

export interface AttributeFilter {
  name: string;
  op: '>' | '>=' | '<' | '<=';
  value: number;
}

export interface Query {
  /** Keep photos whose most likely category is this one. */
  category?: string;
  attributes: AttributeFilter[];
  /** Rank by cosine similarity to this embedding (L2-normalized), instead of by label probability. */
  like?: Float32Array;
  top: number;
}

export interface Hit {
  path: string;
  /**
   * Cosine similarity with --like; otherwise the product of the filters' probabilities (ranked by
   * its logarithm, so hits whose product rounds to 1 still come in order).
   */
  score: number;
  category: { name: string; p: number } | null;
  /** The photo's attributes at probability 0.5 or more, most likely first. */
  attributes: { name: string; p: number }[];
  box: [number, number, number, number];
  boxSource: string;
  width: number;
  height: number;
}

/** `floral>0.5`, `sleeveless>=0.3`, `denim<0.2`: an attribute filter, or a clear error. */
export function parseAttributeFilter(text: string): AttributeFilter {
  const m = /^(.+?)(>=|<=|>|<)([0-9]*\.?[0-9]+)$/.exec(text.trim());
  if (!m) throw new CatalogError(`--attr ${text}: write NAME>P, NAME>=P, NAME<P or NAME<=P with P a probability (e.g. floral>0.5)`);
  return { name: m[1]!.trim(), op: m[2] as AttributeFilter['op'], value: Number(m[3]) };
}

const round = (x: number) => Number(x.toFixed(4));

/** log(1 + e^x) without overflow. */
const softplus = (x: number) => (x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x)));
/** log sigmoid(z): an attribute's log-probability from its logit (log(1 - p) is logSigmoid(-z)). */
export const logSigmoid = (z: number) => -softplus(-z);
/** log softmax(z)[c]: a category's log-probability from the row's logits. */
export function logSoftmaxAt(z: Float32Array, c: number): number {
  let max = -Infinity;
  for (const x of z) max = Math.max(max, x);
  let sum = 0;
  for (const x of z) sum += Math.exp(x - max);
  return z[c]! - max - Math.log(sum);
}

/**
 * Checks a query against the catalog's vocabulary: unknown names are named with what exists, and
 * filters no probability can meet (above 1, below 0, or contradicting each other) are refused
 * rather than answered with nothing.
 */
export function checkQuery(catalog: Catalog, q: Query): void {
  const vocab = catalog.source?.vocabulary;
  if (!vocab) throw new CatalogError(`${catalog.file} has no photos indexed yet`);
  if (q.category !== undefined && !vocab.categories.includes(q.category)) {
    throw new CatalogError(vocab.categories.length ? `--category ${q.category}: the catalog's categories are ${vocab.categories.slice(0, 12).join(', ')}${vocab.categories.length > 12 ? ', ...' : ''}` : `--category: ${catalog.file} was labelled by a network without categories`);
  }
  const ranges = new Map<string, [number, number]>();
  for (const f of q.attributes) {
    if (!vocab.attributes.includes(f.name)) {
      const near = vocab.attributes.filter((a) => a.toLowerCase().includes(f.name.toLowerCase().slice(0, 3))).slice(0, 6);
      throw new CatalogError(`--attr ${f.name}${f.op}${f.value}: no attribute "${f.name}" in the catalog${near.length ? ` (similar: ${near.join(', ')})` : vocab.attributes.length ? ` (e.g. ${vocab.attributes.slice(0, 6).join(', ')})` : ''}`);
    }
    const [lo, hi] = ranges.get(f.name) ?? [0, 1];
    const range: [number, number] = f.op[0] === '>' ? [Math.max(lo, f.value), hi] : [lo, Math.min(hi, f.value)];
    const strict = f.op.length === 1;
    if (range[0] > range[1] || (strict && range[0] === range[1]) || (f.op === '>' && f.value >= 1) || (f.op === '>=' && f.value > 1) || (f.op === '<' && f.value <= 0)) {
      throw new CatalogError(`--attr ${f.name}${f.op}${f.value}: no probability can meet this${ranges.has(f.name) ? ` together with the other --attr ${f.name} filters` : ''} (probabilities lie in [0, 1])`);
    }
    ranges.set(f.name, range);
  }
  if (!q.like && q.category === undefined && !q.attributes.length) throw new CatalogError('give --category, --attr or --like: something to rank the photos by');
  if (!(q.top >= 1)) throw new CatalogError('--top is a positive count');
}

/** The query's answer, best first (at most q.top hits). */
export function search(catalog: Catalog, q: Query): Hit[] {
  checkQuery(catalog, q);
  const vocab = catalog.source!.vocabulary;
  const filters = q.attributes.map((f) => ({ ...f, index: vocab.attributes.indexOf(f.name) }));
  const categoryIndex = q.category === undefined ? -1 : vocab.categories.indexOf(q.category);
  const columns: ScanColumn[] = [...(categoryIndex >= 0 ? (['category'] as const) : []), ...(filters.length ? (['attributes'] as const) : []), ...(q.like ? (['embedding'] as const) : [])];
  // score: the log of the product of probabilities (or, with --like, the cosine similarity).
  const best: { score: number; id: number }[] = [];
  for (const row of catalog.scan(columns, q.category)) {
    let score = categoryIndex >= 0 ? logSoftmaxAt(row.category!, categoryIndex) : 0;
    let keep = true;
    for (const f of filters) {
      const z = row.attributes![f.index]!;
      const logP = logSigmoid(z);
      const p = Math.exp(logP);
      const ok = f.op === '>' ? p > f.value : f.op === '>=' ? p >= f.value : f.op === '<' ? p < f.value : p <= f.value;
      if (!ok) keep = false;
      score += f.op[0] === '>' ? logP : logSigmoid(-z);
    }
    if (!keep) continue;
    if (q.like) {
      const e = row.embedding!;
      if (e.length !== q.like.length) throw new CatalogError(`${catalog.file}: photo ${row.id}'s embedding has ${e.length} values, the query's ${q.like.length}`);
      score = 0;
      for (let i = 0; i < q.like.length; i++) score += e[i]! * q.like[i]!;
    }
    // Keep the best q.top so far (insertion into a short sorted list; ties keep catalog order).
    if (best.length < q.top || score > best[best.length - 1]!.score) {
      let at = best.length;
      while (at > 0 && best[at - 1]!.score < score) at--;
      best.splice(at, 0, { score, id: row.id });
      if (best.length > q.top) best.pop();
    }
  }
  return best.map(({ score, id }) => {
    const row = catalog.byId(id);
    let category: Hit['category'] = null;
    const z = row.categoryLogits;
    if (z && vocab.categories.length) {
      const c = argmax(z);
      category = { name: vocab.categories[c]!, p: round(Math.exp(logSoftmaxAt(z, c))) };
    }
    // Sorted by logit, so that attributes whose probabilities round alike keep their order.
    const attributes = row.attributeLogits ? [...row.attributeLogits].map((z, a) => ({ a, z })).filter(({ z }) => z >= 0).sort((x, y) => y.z - x.z).map(({ a, z }) => ({ name: vocab.attributes[a]!, p: round(Math.exp(logSigmoid(z))) })) : [];
    return { path: row.path, score: round(q.like ? score : Math.exp(score)), category, attributes, box: row.box, boxSource: row.boxSource, width: row.width, height: row.height };
  });
}
