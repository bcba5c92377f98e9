// The catalog keeps logits, so search ranks photos the network is sure of in order: as float32
// probabilities they would all be exactly 1.0 and tie. Catalogs of layout 1 (probabilities) are
// still read, and converted when opened for writing. No GPU: rows are written directly.
import { join } from 'node:path';
import Database from 'better-sqlite3';
import t from 'tap';
import { tempDir } from './helpers/tmp.js';
import { Catalog, type PhotoRow } from '../src/catalog/catalog.js';
import { search } from '../src/catalog/search.js';

const dir = tempDir(t, 'clothtag-catalog-ranking-');
const vocabulary = { categories: ['Dress', 'Tee'], attributes: ['floral', 'denim'], attributeTypes: [1, 2], typeNames: { 1: 'texture', 2: 'fabric' } };
const source = { sha256: '0'.repeat(64), path: '(test)', net: 'cloth_resnet_a', size: 64, vocabulary };
const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** A row whose category and attribute logits are given; everything else is filler. */
const row = (name: string, category: number[], attributes: number[]): PhotoRow => ({
  path: `/photos/${name}.jpg`, hash: name.padEnd(64, '0'), bytes: 1, mtimeMs: 0, width: 10, height: 10, box: [0, 0, 10, 10], boxSource: 'whole',
  categoryLogits: Float32Array.from(category), attributeLogits: Float32Array.from(attributes), landmarks: null, embedding: Float32Array.from([1, 0]),
});

const make = (file: string, rows: PhotoRow[]) => {
  const catalog = Catalog.open(file, { create: true }).setSource(source, false);
  catalog.put(rows);
  return catalog;
};
const names = (hits: { path: string }[]) => hits.map((h) => h.path.replace(/^\/photos\/|\.jpg$/g, ''));

t.test('photos the network is sure of keep their order (float32 probabilities would tie at 1.0)', async (t) => {
  t.equal(Math.fround(sigmoid(20)), 1, 'the premise: at a logit of 20 a float32 probability is exactly 1');
  // Inserted least sure first, so catalog order alone would rank them backwards.
  const catalog = make(join(dir, 'sure.sqlite'), [
    row('a', [20, 0], [20, -20]), row('b', [30, 0], [30, -30]), row('c', [25, 0], [25, 22]), row('d', [-1, 2], [-2, 1]),
  ]);
  const floral = search(catalog, { attributes: [{ name: 'floral', op: '>', value: 0.5 }], top: 10 });
  t.same(names(floral), ['b', 'c', 'a'], 'floral>0.5, surest first');
  t.ok(floral.every((h) => h.score === 1), 'the scores print as 1 (rounded), the order is the logits\'');
  t.same(names(search(catalog, { category: 'Dress', attributes: [], top: 10 })), ['b', 'c', 'a'], '--category Dress, surest first');
  t.same(names(search(catalog, { attributes: [{ name: 'denim', op: '<', value: 0.5 }], top: 10 })), ['b', 'a'], 'denim<0.5: the surest absence first');
  // Both filters: the product of probabilities, ranked by its logarithm.
  t.same(names(search(catalog, { attributes: [{ name: 'floral', op: '>', value: 0.5 }, { name: 'denim', op: '<', value: 0.5 }], top: 10 })), ['b', 'a']);

  const [c] = search(catalog, { attributes: [{ name: 'denim', op: '>', value: 0.5 }], top: 1 });
  t.same(c!.attributes.map((a) => a.name), ['floral', 'denim'], 'a hit\'s attributes by logit (25 before 22), though both print as p 1');
  const [d] = search(catalog, { category: 'Tee', attributes: [], top: 1 });
  t.equal(names([d!])[0], 'd');
  t.ok(Math.abs(d!.category!.p - 1 / (1 + Math.exp(-3))) < 1e-4, `the category's probability from its logits: ${d!.category!.p}`);
  t.ok(Math.abs(d!.score - d!.category!.p) < 1e-4, 'the score is that probability');
  t.same(d!.attributes, [{ name: 'denim', p: Number(sigmoid(1).toFixed(4)) }], 'attributes at 0.5 or more only');
  catalog.close();
});

t.test('a catalog of layout 1 (probabilities) is read as it is, and converted when opened for writing', async (t) => {
  const file = join(dir, 'v1.sqlite');
  make(file, [row('a', [1, 0], [1, 0]), row('b', [3, 0], [3, 0]), row('c', [2, 0], [2, 0])]).close();
  // Rewrite it as clothtag wrote layout 1: float32 probabilities in the same columns.
  const db = new Database(file);
  const update = db.prepare('UPDATE photos SET category = ?, attributes = ? WHERE id = ?');
  for (const r of db.prepare('SELECT id, category, attributes FROM photos').all() as { id: number; category: Buffer; attributes: Buffer }[]) {
    const z = (b: Buffer) => new Float32Array(new Uint8Array(b).buffer);
    const softmax = (l: Float32Array) => l.map((x) => Math.exp(x) / l.reduce((s, y) => s + Math.exp(y), 0));
    update.run(Buffer.from(softmax(z(r.category)).buffer), Buffer.from(z(r.attributes).map(sigmoid).buffer), r.id);
  }
  db.prepare("UPDATE meta SET value = '1' WHERE key = 'version'").run();
  db.close();

  const version = () => {
    const d = new Database(file, { readonly: true });
    const v = (d.prepare("SELECT value FROM meta WHERE key = 'version'").get() as { value: string }).value;
    d.close();
    return v;
  };
  const reader = Catalog.open(file, { readonly: true });
  const hits = search(reader, { attributes: [{ name: 'floral', op: '>', value: 0.5 }], top: 10 });
  t.same(names(hits), ['b', 'c', 'a'], 'read-only: searched through its probabilities');
  t.ok(Math.abs(hits[0]!.score - sigmoid(3)) < 1e-4, `scores as before (${hits[0]!.score})`);
  reader.close();
  t.equal(version(), '1', 'a read-only open changes nothing');

  const writer = Catalog.open(file);
  t.equal(version(), '2', 'opened for writing, it is converted');
  const rows = [...writer.rows()];
  t.ok(rows.every((r) => Math.abs(r.attributeLogits![0]! - Number(r.path.includes('/b.') ? 3 : r.path.includes('/c.') ? 2 : 1)) < 1e-5), `the probabilities are logits again: ${rows.map((r) => r.attributeLogits![0]).join(', ')}`);
  t.same(names(search(writer, { category: 'Dress', attributes: [], top: 10 })), ['b', 'c', 'a'], 'and rank as before');
  writer.close();

  const future = new Database(file);
  future.prepare("UPDATE meta SET value = '9' WHERE key = 'version'").run();
  future.close();
  t.throws(() => Catalog.open(file, { readonly: true }), /v1\.sqlite is a clothtag catalog of layout version 9; this clothtag reads versions 1 and 2/);
});
