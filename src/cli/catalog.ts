// `clothtag index` and `clothtag search`: a catalog of labelled photos in one SQLite file.
import { writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { parseArgs } from 'node:util';
import { Catalog } from '../catalog/catalog.js';
import { embeddingOf, indexPhotos } from '../catalog/indexer.js';
import { type Hit, parseAttributeFilter, search } from '../catalog/search.js';
import { loadImageFile } from '../data/image.js';
import { createNodeGpu } from '../node/gpu.js';
import { collectInputs, drawSheet } from '../run/predict.js';
import { Progress } from './progress.js';
import { UsageError, boxLooksOf, positiveInt, readFileOrThrow } from './util.js';

export async function indexVerb(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { checkpoint: { type: 'string' }, db: { type: 'string' }, reindex: { type: 'boolean', default: false }, prune: { type: 'boolean', default: false }, 'batch-size': { type: 'string', default: '16' }, 'box-looks': { type: 'string' } } });
  if (!values.checkpoint || !values.db) throw new UsageError('--checkpoint and --db are required');
  if (!positionals.length) throw new UsageError('name photos, folders or a .txt list of photos to index');
  const boxLooks = values['box-looks'] ? boxLooksOf(values['box-looks']) : undefined;
  readFileOrThrow(values.checkpoint);
  const files = collectInputs(positionals);
  const gpu = await createNodeGpu();
  try {
    const progress = new Progress();
    let last = performance.now(), lastDone = 0;
    const r = await indexPhotos(gpu.engine, files, { checkpoint: values.checkpoint, db: values.db, reindex: values.reindex!, prune: values.prune!, batchSize: positiveInt(values['batch-size']!, '--batch-size'), boxLooks }, (s) => (progress.done(), console.log(s)), (done, total) => {
      if (done - lastDone >= 16 || done === total) {
        const rate = (done - lastDone) / Math.max(1e-3, (performance.now() - last) / 1000);
        (last = performance.now()), (lastDone = done);
        progress.update(`indexing ${done}/${total} (${rate.toFixed(1)} files/s)`);
      }
    });
    progress.done();
    console.log(`${values.db}: labelled ${r.labelled} photos (${r.labelled ? (r.labelled / r.seconds).toFixed(1) : '0'} images/s), ${r.unchanged} unchanged, ${r.failed.length} could not be read${r.pruned.length ? `, ${r.pruned.length} gone and forgotten` : ''}; ${r.count} photos in the catalog`);
    return r.failed.length && !r.labelled && !r.unchanged ? 1 : 0;
  } finally {
    await gpu.close();
  }
}

export async function searchVerb(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { db: { type: 'string' }, category: { type: 'string' }, attr: { type: 'string', multiple: true }, like: { type: 'string' }, top: { type: 'string', default: '20' }, json: { type: 'boolean', default: false }, sheet: { type: 'string' } } });
  if (!values.db) throw new UsageError('--db is required');
  const catalog = Catalog.open(values.db, { readonly: true });
  let gpu: Awaited<ReturnType<typeof createNodeGpu>> | null = null;
  try {
    if (!catalog.source) throw new UsageError(`${values.db} has no photos indexed yet`);
    const attributes = (values.attr ?? []).map(parseAttributeFilter);
    // An indexed photo's embedding is read from the catalog; any other photo is labelled first.
    const like = values.like ? await embeddingOf(catalog, values.like, async () => (gpu ??= await createNodeGpu()).engine) : undefined;
    const hits = search(catalog, { category: values.category, attributes, like, top: positiveInt(values.top!, '--top') });
    if (values.json) console.log(JSON.stringify(hits.map(({ path, score, category, attributes, box }) => ({ path, score, category, attributes, box })), null, 1));
    else if (!hits.length) console.log('no photo in the catalog matches');
    else hits.forEach((h, i) => console.log(describe(h, i)));
    if (values.sheet) {
      const items = hits.map((h) => ({
        file: h.path,
        img: loadImageFile(h.path),
        labels: { width: h.width, height: h.height, category: h.category ? [h.category] : undefined, attributes: { above: h.attributes, by_type: {} }, box: h.box, box_source: h.boxSource as 'predicted' | 'whole' },
      }));
      writeFileSync(values.sheet, drawSheet(items));
      if (!values.json) console.log(`contact sheet: ${values.sheet}`);
    }
    return 0;
  } finally {
    catalog.close();
    if (gpu) await (gpu as { close(): Promise<void> }).close();
  }
}

function describe(h: Hit, rank: number): string {
  const labels = [h.category ? `${h.category.name} ${(100 * h.category.p).toFixed(0)}%` : '', ...h.attributes.slice(0, 4).map((a) => `${a.name} ${(100 * a.p).toFixed(0)}%`)].filter(Boolean);
  return `${String(rank + 1).padStart(3)}  ${h.score.toFixed(4)}  ${relative(process.cwd(), h.path) || h.path}  ${labels.join(', ')}`;
}
