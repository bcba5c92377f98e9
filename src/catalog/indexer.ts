// `clothtag index`: labels photos into a catalog, incrementally and resumably. A file whose size
// and modification time match its row is skipped unread; one whose time moved but whose content
// hash did not is only re-dated; anything else is labelled (box, labels, embedding) again. Rows
// are written a batch per transaction, so a kill loses at most the batch in flight, and the next
// run picks up where this one stopped.
import { createHash } from 'node:crypto';
import { existsSync, realpathSync, statSync } from 'node:fs';
import type { Engine } from '../engine/engine.js';
import { readRegularFile } from '../data/files.js';
import { MAX_FILE_BYTES, type RgbaImage, decodeImage } from '../data/image.js';
import { checkBoxLooks, checkpointLabeling, defaultLooks, locateGarments, rawLabels, wholeImage } from '../label/labels.js';
import type { ClothNet } from '../nets/models.js';
import type { Box } from '../label/pixels.js';
import { loadCheckpoint } from '../nets/weights.js';
import { Catalog, CatalogError, type PhotoRow } from './catalog.js';

export interface IndexOptions {
  checkpoint: string;
  db: string;
  /** Relabel every photo when the catalog was made with another checkpoint (otherwise refused). */
  reindex: boolean;
  /** Forget rows whose files no longer exist. */
  prune: boolean;
  batchSize: number;
  /** The box head's looks (defaultLooks unless given); part of the catalog's identity, as the checkpoint is. */
  boxLooks?: number;
}

export interface IndexResult {
  labelled: number;
  unchanged: number;
  failed: { file: string; error: string }[];
  pruned: string[];
  total: number;
  /** Photos in the catalog when the run ended. */
  count: number;
  seconds: number;
}

/** Where each photo is labelled: the box head's box after `looks`, or the whole photo for a network without one. */
async function garmentBoxes(net: ClothNet, images: RgbaImage[], looks?: number): Promise<Box[]> {
  return net.hasBox ? locateGarments(net, images, looks) : images.map(wholeImage);
}

export const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

interface Pending {
  path: string;
  hash: string;
  bytes: number;
  mtimeMs: number;
  img: RgbaImage;
}

export async function indexPhotos(engine: Engine, files: string[], o: IndexOptions, log: (s: string) => void, onProgress?: (done: number, total: number) => void): Promise<IndexResult> {
  const checkpointBytes = readRegularFile(o.checkpoint);
  const { net, meta } = await loadCheckpoint(engine, checkpointBytes, o.checkpoint);
  try {
    const { vocab, size, decode } = checkpointLabeling(meta.extra, o.checkpoint);
    if (o.boxLooks !== undefined) checkBoxLooks(net, o.boxLooks, o.checkpoint);
    const looks = net.hasBox ? (o.boxLooks ?? defaultLooks(net)) : undefined;
    const source = { sha256: sha256(checkpointBytes), path: realpathSync(o.checkpoint), net: net.config.net, vocabulary: vocab, size, ...(looks ? { looks } : {}) };
    let catalog = Catalog.open(o.db, { create: true });
    try {
      const before = catalog.source;
      if (before && before.sha256 !== source.sha256 && !o.reindex) {
        throw new CatalogError(`${o.db} was labelled with another checkpoint (${before.path}, sha256 ${before.sha256.slice(0, 12)}); ${o.checkpoint} is ${source.sha256.slice(0, 12)}. Give --reindex to relabel every photo with it, or make a new catalog with another --db`);
      }
      // The same checkpoint with another number of looks finds other boxes: as good as another checkpoint.
      const lookedBefore = before && (before.looks ?? looks);
      if (before && before.sha256 === source.sha256 && lookedBefore !== looks && !o.reindex) {
        throw new CatalogError(`${o.db} was labelled with ${lookedBefore} look${lookedBefore === 1 ? '' : 's'} of the box head; --box-looks ${looks} would find other boxes. Give --reindex to relabel every photo with ${looks}, or index with --box-looks ${lookedBefore}`);
      }
      if (!before || before.sha256 !== source.sha256 || lookedBefore !== looks) {
        if (before) log(`${o.db}: --reindex: forgetting ${catalog.count} photos labelled by ${before.path}`);
        catalog = catalog.setSource(source, !!before);
      }
      const started = performance.now();
      const result: IndexResult = { labelled: 0, unchanged: 0, failed: [], pruned: [], total: files.length, count: 0, seconds: 0 };
      if (o.prune) result.pruned = catalog.prune((p) => existsSync(p));
      const flush = async (batch: Pending[]) => {
        if (!batch.length) return;
        const boxes = await garmentBoxes(net, batch.map((p) => p.img), looks);
        const raw = await rawLabels(net, batch.map((p, i) => ({ img: p.img, box: boxes[i]! })), size, decode, { embedding: true, mirror: true });
        const rows: PhotoRow[] = batch.map((p, i) => {
          const b = boxes[i]!, r = raw[i]!;
          return {
            path: p.path, hash: p.hash, bytes: p.bytes, mtimeMs: p.mtimeMs, width: p.img.width, height: p.img.height,
            box: [b.x, b.y, b.x + b.w, b.y + b.h], boxSource: net.hasBox ? 'predicted' : 'whole',
            categoryLogits: r.categoryLogits ?? null, attributeLogits: r.attributeLogits ?? null, landmarks: r.landmarks ?? null, embedding: r.embedding!,
          };
        });
        catalog.put(rows);
        result.labelled += rows.length;
      };
      let batch: Pending[] = [];
      for (const [k, file] of files.entries()) {
        try {
          // One row per file: its real path (links followed), so that two names of one file are one photo.
          const path = realpathSync(file);
          const st = statSync(path);
          const known = catalog.known(path);
          if (known && known.bytes === st.size && known.mtimeMs === st.mtimeMs) {
            result.unchanged++;
          } else {
            const bytes = readRegularFile(path, file, MAX_FILE_BYTES);
            const hash = sha256(bytes);
            if (known && known.hash === hash) {
              catalog.touch(path, st.mtimeMs);
              result.unchanged++;
            } else {
              batch.push({ path, hash, bytes: bytes.length, mtimeMs: st.mtimeMs, img: decodeImage(bytes, file) });
            }
          }
        } catch (e) {
          const message = (e as Error).message;
          result.failed.push({ file, error: message });
          log(`  could not index ${file}: ${message}`);
        }
        if (batch.length === o.batchSize) {
          await flush(batch);
          batch = [];
        }
        onProgress?.(k + 1, files.length);
      }
      await flush(batch);
      result.seconds = (performance.now() - started) / 1000;
      result.count = catalog.count;
      return result;
    } finally {
      catalog.close();
    }
  } finally {
    net.dispose();
  }
}

/**
 * A photo's embedding for search --like: the stored one when the catalog holds this very file
 * (same content), else the catalog's own checkpoint labels it (which must still be where it was,
 * unchanged).
 */
export async function embeddingOf(catalog: Catalog, photo: string, engine: () => Promise<Engine>): Promise<Float32Array> {
  const bytes = readRegularFile(photo, photo, MAX_FILE_BYTES);
  const hash = sha256(bytes);
  let path = photo;
  try {
    path = realpathSync(photo);
  } catch {
    // readRegularFile has already named a missing file
  }
  const stored = catalog.row(path);
  if (stored && stored.hash === hash) return stored.embedding;
  const source = catalog.source!;
  if (!existsSync(source.path)) throw new CatalogError(`--like ${photo} is not in ${catalog.file}, and the checkpoint that labelled the catalog (${source.path}) is gone: index the photo first`);
  const checkpointBytes = readRegularFile(source.path);
  if (sha256(checkpointBytes) !== source.sha256) throw new CatalogError(`--like ${photo} is not in ${catalog.file}, and ${source.path} has changed since it labelled the catalog: index the photo first`);
  const e = await engine();
  const { net } = await loadCheckpoint(e, checkpointBytes, source.path);
  try {
    const img = decodeImage(bytes, photo);
    const [box] = await garmentBoxes(net, [img], source.looks);
    const [raw] = await rawLabels(net, [{ img, box: box! }], source.size, 'peak', { embedding: true, mirror: true });
    return raw!.embedding!;
  } finally {
    net.dispose();
  }
}
