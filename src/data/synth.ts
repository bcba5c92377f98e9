// `clothtag data synth`: a dataset in the exact DeepFashion Category-and-Attribute layout (all seven
// lists, img/<Item_Name>/img_XXXXXXXX.jpg) of drawn garments. Every label is true by construction:
// the category is the silhouette, attributes are what was drawn (pattern, dye, length, sleeves,
// belt), landmarks are the garment's corner points; some are covered by an occluder (visibility 1)
// or fall outside the frame (2). Deterministic for a seed, and fast (a few ms an image).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { xorshift32 } from './dataset.js';

export const SYNTH_CATEGORIES: [string, number][] = [['Tee', 1], ['Sweater', 1], ['Dress', 3], ['Skirt', 2], ['Jeans', 2], ['Shorts', 2]];
export const SYNTH_ATTRIBUTES: [string, number][] = [
  ['solid', 1], ['striped', 1], ['dotted', 1],
  ['indigo', 2], ['crimson', 2], ['olive', 2], ['mustard', 2],
  ['long', 3], ['mini', 3],
  ['long sleeve', 4], ['short sleeve', 4], ['sleeveless', 4],
  ['belted', 5],
];
const DYES: [number, number, number][] = [[40, 60, 150], [180, 30, 45], [95, 110, 40], [215, 170, 40]];

type Pt = [number, number];

interface Garment {
  category: number;
  /** Polygons in the unit garment frame. */
  polygons: Pt[][];
  /** Landmark points in the unit frame, in the list order of the clothes type (6, 4 or 8). */
  points: Pt[];
  attrs: Set<string>;
  beltY?: number;
}

function mirror(half: Pt[]): Pt[] {
  return [...half, ...[...half].reverse().map(([x, y]) => [1 - x, y] as Pt)];
}

function top(sleeve: 'long' | 'short' | 'none', hemY: number): { poly: Pt[]; sleevePt: Pt } {
  // The right half, from the neck down the sleeve and side to the hem, mirrored for the left.
  const sleeveLine: Pt[] = sleeve === 'long' ? [[0.8, 0.1], [0.99, 0.62], [0.88, 0.64], [0.75, 0.3]] : sleeve === 'short' ? [[0.8, 0.1], [0.93, 0.3], [0.84, 0.36], [0.75, 0.3]] : [[0.72, 0.1], [0.73, 0.3]];
  const right: Pt[] = [[0.6, 0.05], ...sleeveLine, [0.74, hemY]];
  const poly = mirror(right.map(([x, y]) => [1 - x, y] as Pt).reverse()).map(([x, y]) => [x, y] as Pt);
  const sleevePt: Pt = sleeve === 'long' ? [0.935, 0.63] : sleeve === 'short' ? [0.885, 0.33] : [0.73, 0.3];
  return { poly, sleevePt };
}

function makeGarment(category: number, r: () => number): Garment {
  const attrs = new Set<string>();
  const pick = <T,>(xs: T[]) => xs[Math.floor(r() * xs.length)]!;
  const name = SYNTH_CATEGORIES[category]![0];
  const lr = (p: Pt): [Pt, Pt] => [[1 - p[0], p[1]], p];
  if (name === 'Tee' || name === 'Sweater' || name === 'Dress') {
    const sleeve = name === 'Sweater' ? 'long' : name === 'Tee' ? pick(['short', 'none'] as const) : pick(['long', 'short', 'none'] as const);
    attrs.add(sleeve === 'long' ? 'long sleeve' : sleeve === 'short' ? 'short sleeve' : 'sleeveless');
    if (name === 'Dress') {
      const long = r() < 0.5;
      attrs.add(long ? 'long' : 'mini');
      const hemY = long ? 0.97 : 0.72;
      const { poly, sleevePt } = top(sleeve, 0.45);
      const skirt: Pt[] = [[0.3, 0.45], [0.7, 0.45], [long ? 0.86 : 0.8, hemY], [long ? 0.14 : 0.2, hemY]];
      const belted = r() < 0.4;
      if (belted) attrs.add('belted');
      return {
        category, polygons: [poly, skirt], attrs, beltY: belted ? 0.45 : undefined,
        points: [...lr([0.6, 0.05]), ...lr(sleevePt), ...lr([0.7, 0.45]), ...lr([long ? 0.86 : 0.8, hemY])],
      };
    }
    const { poly, sleevePt } = top(sleeve, 0.95);
    return { category, polygons: [poly], attrs, points: [...lr([0.6, 0.05]), ...lr(sleevePt), ...lr([0.74, 0.95])] };
  }
  const belted = r() < 0.4;
  if (belted) attrs.add('belted');
  if (name === 'Skirt') {
    const long = r() < 0.5;
    attrs.add(long ? 'long' : 'mini');
    const hemY = long ? 0.92 : 0.5;
    const hx = long ? 0.86 : 0.8;
    return { category, polygons: [[[0.3, 0.05], [0.7, 0.05], [hx, hemY], [1 - hx, hemY]]], attrs, beltY: belted ? 0.05 : undefined, points: [...lr([0.7, 0.05]), ...lr([hx, hemY])] };
  }
  const long = name === 'Jeans';
  attrs.add(long ? 'long' : 'mini');
  const hemY = long ? 0.95 : 0.42;
  const legs: Pt[] = [[0.3, 0.05], [0.7, 0.05], [0.76, hemY], [0.55, hemY], [0.5, 0.3], [0.45, hemY], [0.24, hemY]];
  return { category, polygons: [legs], attrs, beltY: belted ? 0.05 : undefined, points: [...lr([0.7, 0.05]), ...lr([0.76, hemY])] };
}

function inside(poly: Pt[], x: number, y: number): boolean {
  let c = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, yi] = poly[i]!, [xj, yj] = poly[j]!;
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) c = !c;
  }
  return c;
}

export interface SynthOptions {
  images: number;
  size: number;
  seed: number;
}

export interface SynthSummary {
  images: number;
  out: string;
  categories: number[];
}

/** Writes the dataset to `out`. */
export function synthesize(out: string, o: SynthOptions, onProgress?: (done: number) => void): SynthSummary {
  const r = xorshift32(o.seed * 2654435761 + 1);
  const S = o.size;
  const rows = { cat: [] as string[], attr: [] as string[], bbox: [] as string[], lm: [] as string[], part: [] as string[] };
  const counts = new Array(SYNTH_CATEGORIES.length).fill(0);
  for (let n = 0; n < o.images; n++) {
    const category = Math.floor(r() * SYNTH_CATEGORIES.length);
    counts[category]++;
    const g = makeGarment(category, r);
    const texture = ['solid', 'striped', 'dotted'][Math.floor(r() * 3)]!;
    const dye = Math.floor(r() * DYES.length);
    g.attrs.add(texture);
    g.attrs.add(SYNTH_ATTRIBUTES[3 + dye]![0]);
    // Placement: the garment's unit frame scaled into the picture, sometimes running off an edge.
    const scale = S * (0.55 + 0.35 * r());
    const ox = (S - scale) * (r() * 1.2 - 0.1), oy = (S - scale) * (r() * 1.2 - 0.1);
    const toPx = ([x, y]: Pt): Pt => [ox + x * scale, oy + y * scale];
    const polys = g.polygons.map((p) => p.map(toPx));
    const bg = [200 + r() * 50, 200 + r() * 50, 195 + r() * 50];
    const color = DYES[dye]!;
    const px = new Uint8Array(S * S * 4);
    const stripe = Math.max(2, Math.round(S / 24));
    // An occluder (a grey disc) over one landmark, one image in four.
    const points = g.points.map(toPx);
    const occludeIndex = r() < 0.25 ? Math.floor(r() * points.length) : -1;
    const occ = occludeIndex >= 0 ? { c: points[occludeIndex]!, r: S * 0.08 } : null;
    const beltPx = g.beltY !== undefined ? oy + g.beltY * scale : null;
    for (let y = 0; y < S; y++) {
      for (let x = 0; x < S; x++) {
        let c = bg.map((v) => v - 10 * ((x + y) % 7 === 0 ? 1 : 0));
        if (polys.some((p) => inside(p, x + 0.5, y + 0.5))) {
          const u = (x - ox) / scale, v = (y - oy) / scale;
          let shade = 1;
          if (texture === 'striped' && Math.floor((y - oy) / stripe) % 2 === 0) shade = 0.55;
          if (texture === 'dotted' && ((u * 12) % 1 - 0.5) ** 2 + ((v * 12) % 1 - 0.5) ** 2 < 0.06) shade = 1.6;
          c = color.map((ch) => Math.min(255, ch * shade));
          if (beltPx !== null && Math.abs(y - beltPx) < S / 40) c = [30, 25, 20];
        }
        if (occ && (x - occ.c[0]) ** 2 + (y - occ.c[1]) ** 2 < occ.r ** 2) c = [120, 120, 125];
        const i = (y * S + x) * 4;
        const noise = (r() - 0.5) * 12;
        px[i] = Math.max(0, Math.min(255, c[0]! + noise));
        px[i + 1] = Math.max(0, Math.min(255, c[1]! + noise));
        px[i + 2] = Math.max(0, Math.min(255, c[2]! + noise));
        px[i + 3] = 255;
      }
    }
    const item = `${SYNTH_CATEGORIES[category]![0]}_${String(n % 97).padStart(2, '0')}`;
    const rel = `img/${item}/img_${String(n).padStart(8, '0')}.jpg`;
    mkdirSync(join(out, 'img', item), { recursive: true });
    writeFileSync(join(out, rel), jpeg.encode({ width: S, height: S, data: px }, 90).data);
    const xs = polys.flat().map((p) => p[0]), ys = polys.flat().map((p) => p[1]);
    const clamp = (v: number) => Math.max(0, Math.min(S - 1, Math.round(v)));
    const box = [clamp(Math.min(...xs) - 2), clamp(Math.min(...ys) - 2), clamp(Math.max(...xs) + 2), clamp(Math.max(...ys) + 2)];
    if (box[2]! <= box[0]!) box[2] = Math.min(S - 1, box[0]! + 1);
    if (box[3]! <= box[1]!) box[3] = Math.min(S - 1, box[1]! + 1);
    const clothesType = SYNTH_CATEGORIES[category]![1];
    const lm = points.map(([x, y], k) => {
      const truncated = x < 0 || y < 0 || x >= S || y >= S;
      if (truncated) return '2 0 0';
      return `${k === occludeIndex ? 1 : 0} ${Math.round(x)} ${Math.round(y)}`;
    });
    rows.cat.push(`${rel} ${category + 1}`);
    rows.attr.push(`${rel} ${SYNTH_ATTRIBUTES.map(([a]) => (g.attrs.has(a) ? 1 : -1)).join(' ')}`);
    rows.bbox.push(`${rel} ${box.join(' ')}`);
    rows.lm.push(`${rel} ${clothesType} 1 ${lm.join(' ')}`);
    const u = r();
    rows.part.push(`${rel} ${u < 0.7 ? 'train' : u < 0.85 ? 'val' : 'test'}`);
    onProgress?.(n + 1);
  }
  const list = (file: string, header: string, lines: string[]) => writeFileSync(join(out, file), `${lines.length}\n${header}\n${lines.join('\n')}\n`);
  mkdirSync(join(out, 'Anno'), { recursive: true });
  mkdirSync(join(out, 'Eval'), { recursive: true });
  list('Anno/list_category_cloth.txt', 'category_name  category_type', SYNTH_CATEGORIES.map(([n, t]) => `${n.padEnd(15)}${t}`));
  list('Anno/list_category_img.txt', 'image_name  category_label', rows.cat);
  list('Anno/list_attr_cloth.txt', 'attribute_name  attribute_type', SYNTH_ATTRIBUTES.map(([n, t]) => `${n.padEnd(20)}${t}`));
  list('Anno/list_attr_img.txt', 'image_name  attribute_labels', rows.attr);
  list('Anno/list_bbox.txt', 'image_name  x_1  y_1  x_2  y_2', rows.bbox);
  list('Anno/list_landmarks.txt', 'image_name  clothes_type  variation_type  [landmark_visibility  landmark_location_x  landmark_location_y]', rows.lm);
  list('Eval/list_eval_partition.txt', 'image_name  evaluation_status', rows.part);
  return { images: o.images, out, categories: counts };
}
