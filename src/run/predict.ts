// `clothtag predict`: images in, labels out (JSONL) and PNG overlays with landmarks and top labels.
// A file that cannot be labelled is recorded with its reason; the run always finishes.
import { existsSync, mkdirSync, readdirSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join, relative, resolve } from 'node:path';
import { PNG } from 'pngjs';
import type { Engine } from '../engine/engine.js';
import { type Box, type RgbaImage, loadImageFile } from '../data/image.js';
import { readRegularFile } from '../data/files.js';
import { Problems, parseImageRows } from '../data/lists.js';
import { loadCheckpoint } from '../nets/weights.js';
import { drawText, textWidth } from '../node/font.js';
import { type Labels, checkBoxLooks, checkpointLabeling, labelImages, locateGarments } from '../label/labels.js';

const IMAGE_EXT = new Set(['.jpg', '.jpeg', '.png']);

export interface FileLabels extends Labels {
  file: string;
  overlay?: string;
  /** The box the labels were read in, [x1, y1, x2, y2] in the photo's pixels, and where it came from. */
  box?: [number, number, number, number];
  box_source?: 'list' | 'predicted' | 'whole';
}

export interface PredictOptions {
  checkpoint: string;
  out?: string;
  /** A contact sheet of every labelled image's overlay (PNG). */
  sheet?: string;
  /** Landmarks below this confidence are marked unsure (LabelOptions.landmarkThreshold). */
  landmarkThreshold?: number;
  jsonl?: string;
  bbox?: string;
  threshold: number;
  perType: number;
  batchSize: number;
  /** Also read each crop's mirror image and average the two (LabelOptions.mirror). */
  mirror?: boolean;
  /** The box head's looks where it finds the garment (defaultLooks unless given). */
  boxLooks?: number;
}

/**
 * Files named directly, the images inside folders (recursively), and the lines of .txt lists; a
 * file named twice (by any path) is labelled once.
 */
export function collectInputs(inputs: string[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const add = (p: string) => {
    const key = identity(p);
    if (!seen.has(key)) (seen.add(key), out.push(p));
  };
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (IMAGE_EXT.has(extname(e.name).toLowerCase())) add(p);
    }
  };
  for (const input of inputs) {
    if (existsSync(input) && statSync(input).isDirectory()) walk(input);
    else if (input.endsWith('.txt') && existsSync(input)) {
      // A list's lines are relative to where the command runs, as if typed.
      for (const line of new TextDecoder().decode(readRegularFile(input)).split(/\r?\n/)) if (line.trim()) add(line.trim());
    } else add(input);
  }
  return out;
}

/** One name per file: the real path (links followed) when it exists, else the absolute path. */
function identity(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

/**
 * Where each input's overlay goes in `dir`: its name with .png, and -2, -3... when another input
 * of the same name took it first, or when that path is one of the inputs (never written over).
 */
export function overlayPaths(files: string[], dir: string, inputs = inputIdentities(files)): Map<string, string> {
  const taken = new Set<string>();
  const out = new Map<string, string>();
  for (const file of files) {
    const stem = basename(file, extname(file));
    for (let k = 1; ; k++) {
      const path = join(dir, `${stem}${k > 1 ? `-${k}` : ''}.png`);
      const key = identity(path);
      if (taken.has(key) || inputs.has(key)) continue;
      taken.add(key);
      out.set(file, path);
      break;
    }
  }
  return out;
}

/** The inputs' identities (real paths), which no output may take. */
export function inputIdentities(files: string[]): Set<string> {
  return new Set(files.map(identity));
}

/** Refuses an output file (--jsonl, --sheet) that is one of the inputs. */
export function refuseOverwritingInputs(inputs: Set<string>, outputs: Record<string, string | undefined>): void {
  for (const [flag, path] of Object.entries(outputs)) {
    if (path && inputs.has(identity(path))) throw new Error(`${flag} ${path} is one of the images to label; choose another file`);
  }
}

interface Pending {
  file: string;
  img: RgbaImage;
  /** The box to label inside; null: the box head finds it first. */
  box: Box | null;
  source: NonNullable<FileLabels['box_source']>;
}

export async function predictFiles(engine: Engine, files: string[], o: PredictOptions, log: (s: string) => void, onProgress?: (done: number, total: number) => void): Promise<{ labelled: number; failed: { file: string; error: string }[]; results: FileLabels[] }> {
  const { net, meta } = await loadCheckpoint(engine, readRegularFile(o.checkpoint), o.checkpoint);
  const { vocab, size, decode } = checkpointLabeling(meta.extra, o.checkpoint);
  if (o.boxLooks !== undefined) checkBoxLooks(net, o.boxLooks, o.checkpoint);
  // --bbox LIST gives the boxes; --bbox whole labels whole photos; otherwise a network with a box
  // head finds the garment first (two passes: the whole photo for the box, the crop for the labels).
  const wholeOnly = o.bbox === 'whole';
  const boxes = o.bbox && !wholeOnly ? parseImageRows(o.bbox, 4, new Problems(), 'a box x_1 y_1 x_2 y_2') : null;
  // A DeepFashion list (Anno/list_bbox.txt) names images relative to the dataset's root, the folder above Anno/.
  const listRoot = boxes && o.bbox ? (basename(dirname(resolve(o.bbox))) === 'Anno' ? dirname(dirname(resolve(o.bbox))) : dirname(resolve(o.bbox))) : '';
  const inputs = inputIdentities(files);
  refuseOverwritingInputs(inputs, { '--jsonl': o.jsonl, '--sheet': o.sheet });
  if (o.out) mkdirSync(o.out, { recursive: true });
  const overlays = o.out ? overlayPaths(files, o.out, inputs) : null;
  const lines: string[] = [];
  const failed: { file: string; error: string }[] = [];
  const results: FileLabels[] = [];
  const sheet: { file: string; img: RgbaImage; labels: FileLabels }[] = [];
  let labelled = 0;
  const fail = (file: string, error: string) => {
    failed.push({ file, error });
    lines.push(JSON.stringify({ file, error }));
    log(`  could not label ${file}: ${error}`);
  };
  const flush = async (batch: Pending[]) => {
    const unboxed = batch.filter((p) => !p.box);
    const found = await locateGarments(net, unboxed.map((p) => p.img), o.boxLooks);
    unboxed.forEach((p, i) => (p.box = found[i]!));
    const labels = await labelImages(net, vocab, batch.map((p) => ({ img: p.img, box: p.box! })), size, o, decode);
    batch.forEach((p, i) => {
      const b = p.box!;
      const r: FileLabels = { file: p.file, ...labels[i]!, box: [round1(b.x), round1(b.y), round1(b.x + b.w), round1(b.y + b.h)], box_source: p.source };
      if (o.out) {
        r.overlay = overlays!.get(p.file)!;
        writeFileSync(r.overlay, drawOverlay(p.img, r));
      }
      results.push(r);
      if (o.sheet) sheet.push({ file: p.file, img: shrink(p.img), labels: r });
      lines.push(JSON.stringify(r));
      labelled++;
    });
  };
  let batch: Pending[] = [];
  for (const [k, file] of files.entries()) {
    try {
      // Regular files only (a FIFO would block, a device would be read without end), at most 64 MB.
      const img = loadImageFile(file, file);
      const row = boxes?.get(file) ?? boxes?.get(relative(process.cwd(), resolve(file))) ?? boxes?.get(relative(listRoot, resolve(file))) ?? boxes?.get(basename(file));
      let box: Box | null = net.hasBox && !wholeOnly ? null : { x: 0, y: 0, w: img.width, h: img.height };
      let source: Pending['source'] = box ? 'whole' : 'predicted';
      if (row) {
        const [x1, y1, x2, y2] = row.values as [number, number, number, number];
        if (x2 <= x1 || y2 <= y1) throw new Error(`the box ${x1} ${y1} ${x2} ${y2} in ${o.bbox} (line ${row.line}) is empty`);
        if (x1 < 0 || y1 < 0 || x2 > img.width || y2 > img.height) throw new Error(`the box ${x1} ${y1} ${x2} ${y2} in ${o.bbox} (line ${row.line}) is outside the ${img.width}x${img.height} image`);
        box = { x: x1, y: y1, w: x2 - x1, h: y2 - y1 };
        source = 'list';
      }
      batch.push({ file, img, box, source });
    } catch (e) {
      const message = (e as Error).message;
      fail(file, message.startsWith(`${file}: `) ? message.slice(file.length + 2) : message.startsWith(`${file} `) ? message.slice(file.length + 1) : message);
    }
    if (batch.length === o.batchSize) {
      await flush(batch);
      batch = [];
    }
    onProgress?.(k + 1, files.length);
  }
  await flush(batch);
  if (o.jsonl) writeFileSync(o.jsonl, lines.join('\n') + (lines.length ? '\n' : ''));
  if (o.sheet) writeFileSync(o.sheet, drawSheet(sheet));
  net.dispose();
  return { labelled, failed, results };
}

const round1 = (v: number) => Math.round(v * 10) / 10;

/**
 * A copy at most 400 pixels wide (nearest pixel), for the contact sheet: holding every photo of a
 * large run at full size would take gigabytes. Labels keep their own pixel coordinates, so the
 * copy's Labels are scaled with it by overlayImage (it draws at img.width / labels.width).
 */
function shrink(img: RgbaImage): RgbaImage {
  const scale = Math.min(1, 400 / img.width);
  if (scale === 1) return img;
  const width = Math.max(1, Math.round(img.width * scale)), height = Math.max(1, Math.round(img.height * scale));
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const s = (Math.min(img.height - 1, Math.floor(y / scale)) * img.width + Math.min(img.width - 1, Math.floor(x / scale))) * 4;
      data.set(img.data.subarray(s, s + 4), (y * width + x) * 4);
    }
  }
  return { width, height, data };
}

const SLOT_COLORS: [number, number, number][] = [[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180], [70, 240, 240], [240, 50, 230]];

/** The photo (at most 512 pixels wide) with landmark dots and the top labels in a band, as PNG bytes. */
export function drawOverlay(img: RgbaImage, r: Labels & Pick<FileLabels, 'box' | 'box_source'>): Buffer {
  return PNG.sync.write(overlayImage(img, r));
}

/** drawOverlay's picture, before encoding. */
export function overlayImage(img: RgbaImage, r: Labels & Pick<FileLabels, 'box' | 'box_source'>): PNG {
  const scale = Math.min(1, 512 / img.width);
  const W = Math.max(1, Math.round(img.width * scale)), H = Math.max(1, Math.round(img.height * scale));
  // Landmarks are in the pixels of the photo that was labelled (r.width wide), which `img` may be a copy of.
  const pointScale = W / (r.width || img.width);
  const text = [
    r.category ? `${r.category[0]!.name} ${(100 * r.category[0]!.p).toFixed(0)}%` : '',
    ...(r.attributes?.above.slice(0, 4).map((a) => `${a.name} ${(100 * a.p).toFixed(0)}%`) ?? []),
  ].filter(Boolean);
  const band = 8 + 12 * text.length;
  const png = new PNG({ width: Math.max(W, 8 + Math.max(0, ...text.map((t) => textWidth(t, 2)))), height: H + band });
  png.data.fill(255);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const sx = Math.min(img.width - 1, Math.floor(x / scale)), sy = Math.min(img.height - 1, Math.floor(y / scale));
      const s = (sy * img.width + sx) * 4, d = (y * png.width + x) * 4;
      png.data[d] = img.data[s]!; png.data[d + 1] = img.data[s + 1]!; png.data[d + 2] = img.data[s + 2]!; png.data[d + 3] = 255;
    }
  }
  if (r.box && r.box_source !== 'whole') {
    // The garment's box, 2 pixels wide: green where the network found it, blue where a list gave it.
    const [x1, y1, x2, y2] = r.box.map((v) => Math.round(v * pointScale)) as [number, number, number, number];
    const c = r.box_source === 'predicted' ? [40, 200, 60] : [40, 90, 230];
    const paint = (x: number, y: number) => {
      if (x < 0 || y < 0 || x >= W || y >= H) return;
      const d = (y * png.width + x) * 4;
      png.data[d] = c[0]!; png.data[d + 1] = c[1]!; png.data[d + 2] = c[2]!;
    };
    for (let t = 0; t < 2; t++) {
      for (let x = x1; x <= x2; x++) (paint(x, y1 + t), paint(x, y2 - t));
      for (let y = y1; y <= y2; y++) (paint(x1 + t, y), paint(x2 - t, y));
    }
  }
  for (const [s, l] of (r.landmarks ?? []).entries()) {
    // A sure point is a filled dot with a black rim; an unsure one (Labels.landmarks) a hollow
    // ring in its colour: a guess, not a finding.
    const cx = l.x * pointScale, cy = l.y * pointScale, c = SLOT_COLORS[s]!;
    for (let dy = -4; dy <= 4; dy++) for (let dx = -4; dx <= 4; dx++) {
      const x = Math.round(cx + dx), y = Math.round(cy + dy);
      const r2 = dx * dx + dy * dy;
      if (x < 0 || y < 0 || x >= W || y >= H || r2 > 16) continue;
      const edge = r2 > 9;
      if (!l.sure && !edge) continue;
      const color = l.sure && edge ? [0, 0, 0] : c;
      const d = (y * png.width + x) * 4;
      png.data[d] = color[0]!; png.data[d + 1] = color[1]!; png.data[d + 2] = color[2]!;
    }
  }
  text.forEach((t, k) => drawText(png, t, 4, H + 4 + 12 * k, [0, 0, 0], 2));
  return png;
}

/** Sheet cells: each overlay shrunk to this width, its caption (sheetCaption) under it. */
const CELL = 200;

/**
 * A sheet cell's caption: the file's folder and name, cut to 48 characters. In an ImageFolder
 * layout the folder is the true class, so a wrong category shows at a glance beside the label
 * drawn on the overlay.
 */
export function sheetCaption(file: string): string {
  const folder = basename(dirname(file));
  const name = folder && folder !== '.' ? `${folder}/${basename(file)}` : basename(file);
  return name.length > 48 ? `${name.slice(0, 45)}...` : name;
}

/**
 * A contact sheet: the overlays of many results in a grid (up to 6 across), each with its folder
 * and file name, for judging a run at a glance. `items` are (file, image, labels); returns PNG bytes.
 */
export function drawSheet(items: { file: string; img: RgbaImage; labels: Labels & Pick<FileLabels, 'box' | 'box_source'> }[]): Buffer {
  const columns = Math.max(1, Math.min(6, Math.ceil(Math.sqrt(items.length))));
  const cells = items.map(({ file, img, labels }) => ({ name: sheetCaption(file), png: overlayImage(img, labels) }));
  const heightOf = (png: PNG) => Math.ceil((png.height * CELL) / png.width) + 14;
  const rows: number[] = [];
  for (let i = 0; i < cells.length; i += columns) rows.push(Math.max(...cells.slice(i, i + columns).map((c) => heightOf(c.png))));
  const sheet = new PNG({ width: columns * (CELL + 6) + 6, height: rows.reduce((a, b) => a + b + 6, 6) });
  sheet.data.fill(235);
  let top = 6;
  rows.forEach((rowHeight, r) => {
    cells.slice(r * columns, (r + 1) * columns).forEach((c, k) => {
      const left = 6 + k * (CELL + 6), scale = c.png.width / CELL, h = heightOf(c.png) - 14;
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < CELL; x++) {
          const s = (Math.min(c.png.height - 1, Math.floor(y * scale)) * c.png.width + Math.min(c.png.width - 1, Math.floor(x * scale))) * 4;
          const d = ((top + y) * sheet.width + left + x) * 4;
          sheet.data[d] = c.png.data[s]!; sheet.data[d + 1] = c.png.data[s + 1]!; sheet.data[d + 2] = c.png.data[s + 2]!; sheet.data[d + 3] = 255;
        }
      }
      drawText(sheet, c.name, left, top + h + 4, [40, 40, 40], 1);
    });
    top += rowHeight + 6;
  });
  return PNG.sync.write(sheet);
}
