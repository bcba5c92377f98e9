// Searching a catalog: filters on label probabilities (the most likely category, attribute
// thresholds) and ranking by how likely those labels are, or by cosine similarity to a photo's
// embedding. An exact scan: every candidate row is read and scored (see the README for how its
// cost grows and where an approximate index would take over).
import type { Catalog, ScanColumn } from './catalog.js';
import { CatalogError } from './catalog.js';

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
  /** Cosine similarity with --like; otherwise the product of the filters' probabilities. */
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
  const best: { score: number; id: number }[] = [];
  for (const row of catalog.scan(columns, q.category)) {
    let score = categoryIndex >= 0 ? row.category![categoryIndex]! : 1;
    let keep = true;
    for (const f of filters) {
      const p = row.attributes![f.index]!;
      const ok = f.op === '>' ? p > f.value : f.op === '>=' ? p >= f.value : f.op === '<' ? p < f.value : p <= f.value;
      if (!ok) keep = false;
      score *= f.op[0] === '>' ? p : 1 - p;
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
    if (row.category && vocab.categories.length) {
      const c = row.category.reduce((b, p, i, a) => (p > a[b]! ? i : b), 0);
      category = { name: vocab.categories[c]!, p: round(row.category[c]!) };
    }
    const attributes = row.attributes ? [...row.attributes].map((p, a) => ({ name: vocab.attributes[a]!, p: round(p) })).filter((a) => a.p >= 0.5).sort((a, b) => b.p - a.p) : [];
    return { path: row.path, score: round(score), category, attributes, box: row.box, boxSource: row.boxSource, width: row.width, height: row.height };
  });
}
