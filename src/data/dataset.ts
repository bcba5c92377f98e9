// A labelled image collection: the DeepFashion Category-and-Attribute layout (every list
// optional but one task) or the ImageFolder layout (train/<class>/..., val/<class>/...).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { ListError, Problems, parseAttributeLabels, parseImageRows, parseNameTypeList, parsePartition } from './lists.js';

export { LANDMARK_SLOTS, MIRROR } from '../label/pixels.js';
/** Slots of each clothes type's points, in the list's order: upper 6, lower 4, full 8. */
export const SLOTS_BY_COUNT: Record<number, number[]> = { 6: [0, 1, 2, 3, 6, 7], 4: [4, 5, 6, 7], 8: [0, 1, 2, 3, 4, 5, 6, 7] };

/** Attribute type names: the coarse release (1000 attributes) and the 26-attribute fine set. */
const COARSE_TYPES: Record<number, string> = { 1: 'texture', 2: 'fabric', 3: 'shape', 4: 'part', 5: 'style' };
const FINE_TYPES: Record<number, string> = { 1: 'texture', 2: 'sleeve', 3: 'length', 4: 'neckline', 5: 'fabric', 6: 'fit' };

export interface Item {
  /** Path relative to the dataset root, as the lists give it. */
  path: string;
  /** Category index (0-based), -1 when unknown. */
  category: number;
  /** [x1, y1, x2, y2] in pixels, or null (use the whole image). */
  bbox: [number, number, number, number] | null;
  /** 8 slots x (visibility, x, y); visibility 0 visible, 1 occluded, 2 truncated, -1 no such point. */
  landmarks: Float32Array | null;
  /** The official partition, or the ImageFolder folder. */
  split?: 'train' | 'val' | 'test';
}

export interface Tasks {
  category: boolean;
  attributes: boolean;
  bbox: boolean;
  landmarks: boolean;
}

export interface Dataset {
  root: string;
  layout: 'deepfashion' | 'imagefolder';
  items: Item[];
  categories: string[];
  attributeNames: string[];
  attributeTypes: number[];
  typeNames: Record<number, string>;
  /** [items x attributes]: 1 present, -1 absent, 0 unknown (null without attributes). */
  attributes: Int8Array | null;
  tasks: Tasks;
  problems: Problems;
}

export class DatasetError extends Error {
  override name = 'DatasetError';
}

/** Where derived data is cached: $CLOTHTAG_CACHE, else $XDG_CACHE_HOME/clothtag or ~/.cache/clothtag. */
export function cacheDir(): string {
  return process.env.CLOTHTAG_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'clothtag');
}

/** list_attr_img.txt parsed once into compact labels, cached by path, size and modification time. */
async function attributeLabels(file: string, count: number, problems: Problems): Promise<{ names: string[]; labels: Int8Array }> {
  const st = statSync(file);
  // v2: rows are checked for paths that leave the dataset and for repeats since (lists.ts).
  const key = createHash('sha1').update(`v2:${resolve(file)}:${st.size}:${st.mtimeMs}:${count}`).digest('hex').slice(0, 16);
  const cached = join(cacheDir(), `attr-${key}`);
  if (existsSync(`${cached}.json`) && existsSync(`${cached}.bin`)) {
    try {
      const names = JSON.parse(readFileSync(`${cached}.json`, 'utf8')) as string[];
      const bin = readFileSync(`${cached}.bin`);
      if (Array.isArray(names) && bin.byteLength === names.length * count) return { names, labels: new Int8Array(bin.buffer, bin.byteOffset, bin.byteLength) };
    } catch {
      // A damaged cache entry: parse the list again (and rewrite the entry below).
    }
  }
  const parsed = await parseAttributeLabels(file, count, problems);
  if (problems.items.length === 0) {
    try {
      mkdirSync(cacheDir(), { recursive: true });
      writeFileSync(`${cached}.bin`, parsed.labels);
      writeFileSync(`${cached}.json`, JSON.stringify(parsed.names));
    } catch {
      // A read-only home: parse again next time.
    }
  }
  return parsed;
}

const IMAGE_EXT = /\.(jpe?g|png)$/i;

/** Image files in a folder (regular files or links to them; a folder named x.jpg is not one), sorted. */
function imageFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).filter((d) => (d.isFile() || d.isSymbolicLink()) && IMAGE_EXT.test(d.name)).map((d) => d.name).sort();
}

function subfolders(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
}

/**
 * ImageFolder: <split>/<class>/image for the splits that exist (train, val, test: a held-out set
 * alone is fine for eval and predict), or plain <class>/image folders with no split at all.
 */
function openImageFolder(root: string): Dataset {
  const problems = new Problems();
  const splits = (['train', 'val', 'test'] as const).filter((s) => existsSync(join(root, s)) && statSync(join(root, s)).isDirectory());
  const places: { dir: string; split?: 'train' | 'val' | 'test' }[] = splits.length ? splits.map((s) => ({ dir: join(root, s), split: s })) : [{ dir: root }];
  const classes = [...new Set(places.flatMap((p) => subfolders(p.dir).filter((c) => imageFiles(join(p.dir, c)).length)))].sort();
  if (!classes.length) throw new DatasetError(`${root}: an ImageFolder dataset needs <class>/ folders of images (under train/, val/ or test/, or directly in it)`);
  const items: Item[] = [];
  for (const { dir: top, split } of places) {
    for (const [c, name] of classes.entries()) {
      const dir = join(top, name);
      if (!existsSync(dir)) continue;
      for (const f of imageFiles(dir)) items.push({ path: relative(root, join(dir, f)), category: c, bbox: null, landmarks: null, split });
    }
  }
  return {
    root, layout: 'imagefolder', items, categories: classes, attributeNames: [], attributeTypes: [], typeNames: {}, attributes: null,
    tasks: { category: true, attributes: false, bbox: false, landmarks: false }, problems,
  };
}

/**
 * Opens a dataset folder. DeepFashion lists that exist are all read; their problems are collected
 * (see `problems`) and rows with problems are left out. Throws when nothing usable remains.
 */
export async function openDataset(root: string): Promise<Dataset> {
  if (!existsSync(root) || !statSync(root).isDirectory()) throw new DatasetError(`${root}: no such folder`);
  const anno = join(root, 'Anno');
  const evalDir = join(root, 'Eval');
  if (!existsSync(anno) && !existsSync(evalDir)) {
    try {
      return openImageFolder(root);
    } catch {
      throw new DatasetError(`${root}: neither the DeepFashion layout (Anno/, Eval/) nor ImageFolder ([train|val|test/]<class>/ folders of images)`);
    }
  }
  const problems = new Problems();
  const f = (name: string) => [join(anno, name), join(evalDir, name)].find(existsSync);
  const categoryList = f('list_category_cloth.txt');
  const categoryImg = f('list_category_img.txt');
  const attrList = f('list_attr_cloth.txt');
  const attrImg = f('list_attr_img.txt');
  const bboxFile = f('list_bbox.txt');
  const landmarkFile = f('list_landmarks.txt');
  const partitionFile = f('list_eval_partition.txt');

  const categories = categoryList ? parseNameTypeList(categoryList, problems).map((c) => c.name) : [];
  const categoryRows = categoryImg ? parseImageRows(categoryImg, 1, problems, 'a category label') : null;
  const attrs = attrList ? parseNameTypeList(attrList, problems) : [];
  const bboxRows = bboxFile ? parseImageRows(bboxFile, 4, problems, 'a box x_1 y_1 x_2 y_2') : null;
  const landmarkRows = landmarkFile ? parseImageRows(landmarkFile, (v) => (v.length >= 2 && (v.length - 2) % 3 === 0 && SLOTS_BY_COUNT[(v.length - 2) / 3] ? v.length : 2 + 3 * ({ 1: 6, 2: 4, 3: 8 }[v[0]!] ?? 6)), problems, 'clothes_type variation_type and (visibility x y) per landmark') : null;
  const partition = partitionFile ? parsePartition(partitionFile, problems) : null;
  const attrLabels = attrImg && attrs.length ? await attributeLabels(attrImg, attrs.length, problems) : null;

  // The image list: every image any list names, in the first list's order.
  const order: string[] = [];
  const seen = new Set<string>();
  const addNames = (names: Iterable<string>) => {
    for (const n of names) if (!seen.has(n)) (seen.add(n), order.push(n));
  };
  if (attrLabels) addNames(attrLabels.names);
  for (const m of [categoryRows, bboxRows, landmarkRows, partition]) if (m) addNames(m.keys());
  if (!order.length) throw new DatasetError(`${root}: the DeepFashion lists name no images${problems.items.length ? `:\n${problems.toString()}` : ''}`);

  const attrIndex = new Map(attrLabels?.names.map((n, i) => [n, i]));
  const A = attrs.length;
  const labels = attrLabels ? new Int8Array(order.length * A) : null;
  const items: Item[] = order.map((path, i) => {
    let category = -1;
    const c = categoryRows?.get(path);
    if (c) {
      const label = c.values[0]!;
      if (!Number.isInteger(label) || label < 1 || label > categories.length) problems.add(categoryImg!, c.line, `category label ${label} is not between 1 and ${categories.length}`);
      else category = label - 1;
    }
    let bbox: Item['bbox'] = null;
    const b = bboxRows?.get(path);
    if (b) {
      const [x1, y1, x2, y2] = b.values as [number, number, number, number];
      if (x2 <= x1 || y2 <= y1) problems.add(bboxFile!, b.line, `box ${x1} ${y1} ${x2} ${y2} is empty`);
      else bbox = [x1, y1, x2, y2];
    }
    let landmarks: Float32Array | null = null;
    const l = landmarkRows?.get(path);
    if (l) {
      const points = (l.values.length - 2) / 3;
      const slots = SLOTS_BY_COUNT[points]!;
      landmarks = new Float32Array(24).fill(-1);
      for (let p = 0; p < points; p++) {
        const [v, x, y] = l.values.slice(2 + 3 * p, 5 + 3 * p) as [number, number, number];
        const s = slots[p]!;
        landmarks[3 * s] = v === 0 || v === 1 || v === 2 ? v : 2;
        landmarks[3 * s + 1] = x;
        landmarks[3 * s + 2] = y;
      }
    }
    if (labels) {
      const row = attrIndex.get(path);
      if (row !== undefined) labels.set(attrLabels!.labels.subarray(row * A, (row + 1) * A), i * A);
    }
    return { path, category, bbox, landmarks, split: partition?.get(path) };
  });
  const types = Math.max(0, ...attrs.map((a) => a.type));
  const names = types === 6 ? FINE_TYPES : COARSE_TYPES;
  const typeNames: Record<number, string> = {};
  for (let t = 1; t <= types; t++) typeNames[t] = names[t] ?? `type ${t}`;
  // A list with no usable rows gives no task (its problems say why).
  const tasks: Tasks = { category: !!categoryRows?.size && categories.length > 0, attributes: !!labels && !!attrLabels?.names.length, bbox: !!bboxRows?.size, landmarks: !!landmarkRows?.size };
  if (!tasks.category && !tasks.attributes && !tasks.landmarks) {
    throw new ListError(`${root}: no task to learn (no category, attribute or landmark lists)${problems.items.length ? `:\n${problems.toString()}` : ''}`);
  }
  return {
    root, layout: 'deepfashion', items, categories, attributeNames: attrs.map((a) => a.name), attributeTypes: attrs.map((a) => a.type), typeNames,
    attributes: labels, tasks, problems,
  };
}

export interface Splits {
  train: number[];
  val: number[];
  test: number[];
}

/** Marsaglia's xorshift32 from a nonzero 32-bit state: uniform numbers in [0, 1), deterministic. */
export function xorshift32(state: number): () => number {
  let a = state >>> 0 || 1;
  return () => {
    a ^= a << 13; a >>>= 0; a ^= a >>> 17; a ^= a << 5; a >>>= 0;
    return a / 4294967296;
  };
}

/** Deterministic Fisher-Yates shuffle. */
export function shuffled<T>(xs: readonly T[], seed: number): T[] {
  const out = [...xs];
  const rand = xorshift32(seed * 2654435761);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/**
 * `official`: the dataset's partition (Eval/list_eval_partition.txt, or ImageFolder's folders;
 * test falls back to val). `random:RATIO[:COUNT]`: the thesis's protocol, a random subset of COUNT
 * images split RATIO train / rest val (and test = val), deterministic for a seed.
 */
export function makeSplits(ds: Dataset, spec: string, seed: number, o: { needTrain?: boolean } = {}): Splits {
  const all = ds.items.map((_, i) => i);
  if (spec === 'official') {
    const by = (s: Item['split']) => all.filter((i) => ds.items[i]!.split === s);
    const train = by('train');
    if (!train.length && o.needTrain === false) {
      // Evaluating or labelling a held-out set needs no training split beside it; a set with no
      // partition at all (plain class folders, lists without Eval/) is held out as a whole.
      const partitioned = ds.items.some((it) => it.split);
      const val = partitioned ? by('val') : all, test = partitioned ? by('test') : all;
      return { train, val, test: test.length ? test : val };
    }
    if (!train.length) throw new DatasetError(`${ds.root}: no official partition (Eval/list_eval_partition.txt or train/); use --split random:0.7`);
    const val = by('val');
    const test = by('test');
    return { train, val, test: test.length ? test : val };
  }
  const m = /^random:([0-9.]+)(?::(\d+))?$/.exec(spec);
  if (!m) throw new DatasetError(`--split must be "official" or "random:RATIO[:COUNT]" (e.g. random:0.7:200000), got "${spec}"`);
  const ratio = Number(m[1]);
  if (!(ratio > 0 && ratio < 1)) throw new DatasetError(`the train ratio of --split must be between 0 and 1, got ${m[1]}`);
  const subset = shuffled(all, seed).slice(0, m[2] ? Number(m[2]) : all.length);
  const cut = Math.round(subset.length * ratio);
  const val = subset.slice(cut);
  return { train: subset.slice(0, cut), val, test: val };
}
