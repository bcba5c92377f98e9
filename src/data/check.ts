// `clothtag data check`: what a dataset holds and everything wrong with it, as file:line.
import { readSync } from 'node:fs';
import { join } from 'node:path';
import { type Dataset, LANDMARK_SLOTS, makeSplits } from './dataset.js';
import { FileRefusedError, withRegularFile } from './files.js';
import { MAX_FILE_BYTES, headerSize } from './image.js';
import { printable } from './lists.js';

/**
 * Width and height of an image file, from its first 64 KiB (see headerSize); null when those
 * bytes are not a JPEG or PNG header. Throws FileRefusedError for anything but a regular file.
 */
export function imageSize(path: string, label = path): { width: number; height: number } | null {
  return withRegularFile(path, label, MAX_FILE_BYTES, (fd) => {
    const head = new Uint8Array(65536);
    return headerSize(head.subarray(0, readSync(fd, head, 0, head.length, 0)));
  });
}

export interface CheckReport {
  root: string;
  layout: string;
  tasks: Dataset['tasks'];
  images: number;
  splits: Record<string, number>;
  categories?: { name: string; images: number }[];
  attributes?: { type: string; attributes: number; positiveRate: number }[];
  landmarks?: { slot: string; visible: number; occluded: number; truncated: number; absent: number }[];
  problems: string[];
  /** Facts worth knowing that are not problems. */
  notes: string[];
  usable: boolean;
}

export function checkDataset(ds: Dataset, onProgress?: (done: number, total: number) => void): CheckReport {
  const problems = ds.problems.items.map((p) => `${p.where}: ${p.message}`);
  const missing: string[] = [];
  const listFor = (what: string) => (ds.layout === 'imagefolder' ? ds.root : join(ds.root, 'Anno', what));
  // Every image is opened (by type first: a FIFO or a device is refused unread) and its header read.
  ds.items.forEach((item, i) => {
    let size: { width: number; height: number } | null = null;
    try {
      size = imageSize(join(ds.root, item.path), item.path);
      if (!size) problems.push(`${item.path}: not a readable JPEG or PNG`);
    } catch (e) {
      if (!(e instanceof FileRefusedError)) throw e;
      if (e.missing) {
        missing.push(item.path);
        if (missing.length <= 50) problems.push(`${item.path}: listed but missing`);
      } else problems.push(e.message);
    }
    if (size && item.bbox) {
      const [x1, y1, x2, y2] = item.bbox;
      if (x1 < 0 || y1 < 0 || x2 > size.width || y2 > size.height) problems.push(`${listFor('list_bbox.txt')}: ${item.path}: box ${x1} ${y1} ${x2} ${y2} is outside the ${size.width}x${size.height} image`);
    }
    if (i % 500 === 0) onProgress?.(i, ds.items.length);
  });
  if (missing.length > 50) problems.push(`... and ${missing.length - 50} more missing images`);
  const notes: string[] = [];
  let splits: Record<string, number> = {};
  try {
    const s = makeSplits(ds, 'official', 0);
    const test = ds.items.filter((it) => it.split === 'test').length;
    splits = { train: s.train.length, val: s.val.length, test };
    if (!test && s.val.length) notes.push('no test partition: --split test evaluates the val images');
  } catch (e) {
    problems.push((e as Error).message);
  }
  const report: CheckReport = { root: ds.root, layout: ds.layout, tasks: ds.tasks, images: ds.items.length, splits, problems, notes, usable: ds.items.length - missing.length > 0 };
  if (ds.tasks.category) {
    const counts = new Array(ds.categories.length).fill(0);
    for (const it of ds.items) if (it.category >= 0) counts[it.category]++;
    report.categories = ds.categories.map((name, i) => ({ name, images: counts[i] }));
  }
  if (ds.tasks.attributes && ds.attributes) {
    const A = ds.attributeNames.length;
    report.attributes = Object.entries(ds.typeNames).map(([t, name]) => {
      const members = ds.attributeTypes.map((ty, a) => (ty === Number(t) ? a : -1)).filter((a) => a >= 0);
      let pos = 0, known = 0;
      for (let i = 0; i < ds.items.length; i++) for (const a of members) {
        const v = ds.attributes![i * A + a]!;
        if (v !== 0) known++;
        if (v === 1) pos++;
      }
      return { type: name, attributes: members.length, positiveRate: known ? pos / known : 0 };
    });
  }
  if (ds.tasks.landmarks) {
    report.landmarks = LANDMARK_SLOTS.map((slot, s) => {
      const c = { slot, visible: 0, occluded: 0, truncated: 0, absent: 0 };
      for (const it of ds.items) {
        const v = it.landmarks ? it.landmarks[3 * s]! : -1;
        if (v === 0) c.visible++;
        else if (v === 1) c.occluded++;
        else if (v === 2) c.truncated++;
        else c.absent++;
      }
      return c;
    });
  }
  return report;
}

export function formatCheck(r: CheckReport): string {
  const lines = [
    `${r.root}: ${r.layout} layout, ${r.images} images (${Object.entries(r.splits).map(([k, v]) => `${k} ${v}`).join(', ') || 'no partition'})`,
    `tasks: ${Object.entries(r.tasks).filter(([, v]) => v).map(([k]) => k).join(', ')}`,
  ];
  if (r.categories) {
    lines.push('categories:');
    const max = Math.max(1, ...r.categories.map((c) => c.images));
    for (const c of r.categories) lines.push(`  ${c.name.padEnd(16)} ${String(c.images).padStart(7)} ${'#'.repeat(Math.round((30 * c.images) / max))}`);
  }
  if (r.attributes) {
    lines.push('attribute positive rate per type:');
    for (const a of r.attributes) lines.push(`  ${a.type.padEnd(10)} ${String(a.attributes).padStart(4)} attributes  ${(100 * a.positiveRate).toFixed(1)}% positive`);
  }
  if (r.landmarks) {
    lines.push('landmarks (visible / occluded / truncated / absent):');
    for (const l of r.landmarks) lines.push(`  ${l.slot.padEnd(16)} ${[l.visible, l.occluded, l.truncated, l.absent].map((n) => String(n).padStart(6)).join(' ')}`);
  }
  for (const n of r.notes) lines.push(`note: ${n}`);
  lines.push(r.problems.length ? `problems (${r.problems.length}):\n${r.problems.slice(0, 200).map((p) => `  ${printable(p, 300)}`).join('\n')}` : 'no problems found');
  if (!r.usable) lines.push('UNUSABLE: no listed image exists');
  return lines.join('\n');
}
