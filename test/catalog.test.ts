// The catalog index (SPEC 8.2.5): `clothtag index` labels photos into SQLite incrementally and
// resumably; `clothtag search` ranks them by labels and by likeness; bad catalogs and impossible
// queries get clear errors.
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { PNG } from 'pngjs';
import t from 'tap';
import { tempDir } from './helpers/tmp.js';
import { Catalog } from '../src/catalog/catalog.js';
import { parseAttributeFilter } from '../src/catalog/search.js';
import { synthesize } from '../src/data/synth.js';
import { CLI, clothtag } from './helpers/cli.js';

const dir = tempDir(t, 'clothtag-catalog-');
const data = join(dir, 'data');
synthesize(data, { images: 48, size: 96, seed: 6 });
const TRAIN = ['--net', 'cloth_resnet_a', '--width', '0.125', '--img-size', '32', '--batch-size', '16', '--workers', '0', '--steps-per-epoch', '2'];
const checkpoint = join(dir, 'run', 'weights', 'last.safetensors');
const photos = join(dir, 'photos');
mkdirSync(photos);
// 24 photos of the set, flat in one folder (the catalog does not care about the layout).
const sources = readdirSync(join(data, 'img'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).slice(0, 24);
sources.forEach((e, i) => copyFileSync(join(e.parentPath, e.name), join(photos, `p${String(i).padStart(2, '0')}.jpg`)));
const photo = (i: number) => join(photos, `p${String(i).padStart(2, '0')}.jpg`);

const search = (args: string[]) => clothtag(['search', '--db', join(dir, 'catalog.sqlite'), ...args]);
const hits = (args: string[]) => {
  const r = search([...args, '--json']);
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as { path: string; score: number; category: { name: string; p: number } | null; attributes: { name: string; p: number }[]; box: number[] }[];
};

t.before(() => {
  const r = clothtag(['train', '--data', data, ...TRAIN, '--epochs', '1', '--out', join(dir, 'run')]);
  if (r.code !== 0) throw new Error(r.stderr);
});

t.test('index a folder; search by label and by likeness (a photo first, its mirror image next)', async (t) => {
  const { decodeImage } = await import('../src/data/image.js');
  // The mirror image of photo 3, as a PNG of its own.
  const img = decodeImage(readFileSync(photo(3)), photo(3));
  const png = new PNG({ width: img.width, height: img.height });
  for (let y = 0; y < img.height; y++) for (let x = 0; x < img.width; x++) png.data.set(img.data.subarray((y * img.width + x) * 4, (y * img.width + x) * 4 + 4), (y * img.width + (img.width - 1 - x)) * 4);
  writeFileSync(join(photos, 'p03-mirror.png'), PNG.sync.write(png));

  const r = clothtag(['index', photos, '--checkpoint', checkpoint, '--db', join(dir, 'catalog.sqlite')]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /labelled 25 photos \(\d+(\.\d)? images\/s\), 0 unchanged, 0 could not be read; 25 photos in the catalog/);

  const catalog = Catalog.open(join(dir, 'catalog.sqlite'), { readonly: true });
  const rows = [...catalog.rows()];
  const vocab = catalog.source!.vocabulary;
  catalog.close();
  t.equal(rows.length, 25);
  const row = rows[0]!;
  t.equal(row.categoryLogits!.length, vocab.categories.length, 'every category\'s logit');
  t.equal(row.attributeLogits!.length, vocab.attributes.length, 'every attribute\'s logit');
  t.ok(Math.abs(Math.hypot(...row.embedding) - 1) < 1e-5, 'the embedding is L2-normalized');
  t.equal(row.boxSource, 'predicted', 'the box head found the box');
  t.match(row.hash, /^[0-9a-f]{64}$/);

  const like = hits(['--like', photo(3), '--top', '3']);
  // The index reads each crop with its mirror image, so a photo and its mirror image share one
  // embedding (up to rounding): the two tie at the top, whichever the scan met first.
  t.same(like.slice(0, 2).map((h) => h.path).sort(), [join(photos, 'p03-mirror.png'), photo(3)], 'a photo\'s nearest neighbours: itself and its mirror image');
  t.ok(like.slice(0, 2).every((h) => Math.abs(h.score - 1) < 1e-4) && like[2]!.score < 1 - 1e-4, `similarity 1 for both, ${like[2]!.score} for the next photo`);

  // By label: the top category, ranked by its probability; attribute filters hold for every hit.
  const category = rows[0]!.topCategory!;
  const byCategory = hits(['--category', category, '--top', '50']);
  t.ok(byCategory.length >= 1 && byCategory.every((h) => h.category!.name === category), `--category ${category}: only photos whose most likely category it is`);
  t.same(byCategory.map((h) => h.score), [...byCategory.map((h) => h.score)].sort((a, b) => b - a), 'best first');
  const attribute = vocab.attributes[rows[0]!.attributeLogits!.indexOf(Math.max(...rows[0]!.attributeLogits!))]!;
  const byAttribute = hits(['--attr', `${attribute}>0.5`, '--top', '50']);
  const index = vocab.attributes.indexOf(attribute);
  t.ok(byAttribute.length >= 1, `--attr ${attribute}>0.5 finds photos`);
  t.equal(byAttribute.length, rows.filter((r) => r.attributeLogits![index]! > 0).length, 'exactly the photos above the threshold (a logit above 0)');
  const top2 = hits(['--attr', `${attribute}>0.5`, '--top', '2']);
  t.equal(top2.length, Math.min(2, byAttribute.length), '--top caps the answer');
  const text = search(['--category', category, '--top', '3', '--sheet', join(dir, 'sheet.png')]);
  t.equal(text.code, 0, text.stderr);
  t.match(text.stdout, /^ {2}1 {2}\d\.\d{4} {2}\S+/);
  const sheet = PNG.sync.read(readFileSync(join(dir, 'sheet.png')));
  t.ok(sheet.width > 100 && sheet.height > 100, '--sheet draws the results');
});

t.test('re-indexing labels only what changed; another checkpoint needs --reindex; --prune forgets deleted files', async (t) => {
  const db = join(dir, 'catalog.sqlite');
  const again = clothtag(['index', photos, '--checkpoint', checkpoint, '--db', db]);
  t.match(again.stdout, /labelled 0 photos .* 25 unchanged/, 'nothing changed: nothing labelled');
  // Touched but unchanged: re-dated only. Changed content: labelled again.
  utimesSync(photo(5), new Date(), new Date(Date.now() + 5000));
  copyFileSync(photo(7), photo(6));
  const changed = clothtag(['index', photos, '--checkpoint', checkpoint, '--db', db]);
  t.match(changed.stdout, /labelled 1 photos .* 24 unchanged/, 'one file changed, one only touched');
  const catalog = Catalog.open(db, { readonly: true });
  t.equal(catalog.row(photo(6))!.hash, catalog.row(photo(7))!.hash, 'the changed file has its new content\'s hash');
  catalog.close();

  const other = join(dir, 'other');
  const r = clothtag(['train', '--data', data, ...TRAIN, '--epochs', '1', '--seed', '9', '--out', other]);
  t.equal(r.code, 0, r.stderr);
  const refused = clothtag(['index', photos, '--checkpoint', join(other, 'weights', 'last.safetensors'), '--db', db]);
  t.equal(refused.code, 1);
  t.match(refused.stderr, /was labelled with another checkpoint .* Give --reindex/);
  rmSync(photo(23));
  const reindexed = clothtag(['index', photos, '--checkpoint', join(other, 'weights', 'last.safetensors'), '--db', db, '--reindex', '--prune']);
  t.equal(reindexed.code, 0, reindexed.stderr);
  t.match(reindexed.stdout, /forgetting 25 photos labelled by/);
  t.match(reindexed.stdout, /labelled 24 photos .* 24 photos in the catalog/, 'every photo relabelled with the new checkpoint; the deleted one is gone');
});

t.test('index --box-looks: the looks are part of the catalog\'s identity, as the checkpoint is', async (t) => {
  const four = [0, 1, 2, 3].map(photo);
  const db = (name: string) => join(dir, `looks-${name}.sqlite`);
  const index = (name: string, extra: string[]) => clothtag(['index', ...four, '--checkpoint', checkpoint, '--db', db(name), ...extra]);
  const boxesOf = (name: string) => {
    const catalog = Catalog.open(db(name), { readonly: true });
    const out = { looks: catalog.source!.looks, boxes: four.map((f) => catalog.row(f)!.box) };
    catalog.close();
    return out;
  };
  for (const [name, extra] of [['default', []], ['two', ['--box-looks', '2']], ['three', ['--box-looks', '3']]] as const) {
    const r = index(name, [...extra]);
    t.equal(r.code, 0, r.stderr);
  }
  const [byDefault, two, three] = [boxesOf('default'), boxesOf('two'), boxesOf('three')];
  t.equal(byDefault.looks, 2, 'without the flag: the two looks the head was trained for, recorded');
  t.same(two, byDefault, '--box-looks 2 is the default: the same boxes');
  t.equal(three.looks, 3);
  t.notSame(three.boxes, byDefault.boxes, 'a third look moves the boxes');
  // Another number of looks on the same catalog: refused as another checkpoint is, until --reindex.
  const refused = index('three', []);
  t.equal(refused.code, 1);
  t.match(refused.stderr, /looks-three\.sqlite was labelled with 3 looks of the box head; --box-looks 2 would find other boxes\. Give --reindex/);
  const again = index('three', ['--box-looks', '3']);
  t.match(again.stdout, /labelled 0 photos .* 4 unchanged/, 'the same looks: nothing to label');
  const reindexed = index('three', ['--reindex']);
  t.equal(reindexed.code, 0, reindexed.stderr);
  t.same(boxesOf('three'), byDefault, 'relabelled with two looks');
  // A catalog made before the looks were recorded counts as the checkpoint's default.
  const sqlite = new Database(db('two'));
  const source = JSON.parse((sqlite.prepare("SELECT value FROM meta WHERE key = 'source'").get() as { value: string }).value) as Record<string, unknown>;
  delete source.looks;
  sqlite.prepare("UPDATE meta SET value = ? WHERE key = 'source'").run(JSON.stringify(source));
  sqlite.close();
  t.match(index('two', []).stdout, /labelled 0 photos .* 4 unchanged/, 'an older catalog: its default looks, nothing relabelled');
  const bad = index('bad', ['--box-looks', '5']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--box-looks is a whole number of looks from 1 to 4, got "5"/);
});

t.test('an index killed midway resumes where it stopped, and no batch is half-written', async (t) => {
  const db = join(dir, 'killed.sqlite');
  // In-process (no stderr filter in between), in a group of its own: the SIGKILL hits the indexer itself.
  const child = spawn(process.execPath, [CLI, 'index', join(data, 'img'), '--checkpoint', checkpoint, '--db', db, '--batch-size', '2'], { stdio: 'ignore', detached: true, env: { ...process.env, CLOTHTAG_RAW_STDERR: '1' } });
  const count = () => {
    try {
      const c = new Database(db, { readonly: true, fileMustExist: true });
      try {
        return (c.prepare('SELECT count(*) AS n FROM photos').get() as { n: number }).n;
      } finally {
        c.close();
      }
    } catch {
      return 0;
    }
  };
  while (count() < 4 && child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
  process.kill(-child.pid!, 'SIGKILL');
  await new Promise((r) => (child.exitCode === null ? child.once('exit', r) : r(null)));
  const done = count();
  t.ok(done >= 4 && done < 48 && done % 2 === 0, `killed with ${done} of 48 photos written, whole batches only`);
  const resumed = clothtag(['index', join(data, 'img'), '--checkpoint', checkpoint, '--db', db]);
  t.equal(resumed.code, 0, resumed.stderr);
  t.match(resumed.stdout, new RegExp(`labelled ${48 - done} photos .* ${done} unchanged, 0 could not be read; 48 photos in the catalog`));
});

t.test('corrupt and foreign databases are named, and left as they were; impossible queries are refused', async (t) => {
  const junk = join(dir, 'junk.sqlite');
  writeFileSync(junk, 'this is not a database\n');
  for (const args of [['index', photos, '--checkpoint', checkpoint, '--db', junk], ['search', '--db', junk, '--category', 'x']]) {
    const r = clothtag(args);
    t.equal(r.code, 1);
    t.match(r.stderr, /junk.sqlite is not a clothtag catalog: it is not an SQLite database/);
  }
  t.equal(readFileSync(junk, 'utf8'), 'this is not a database\n', 'left untouched');
  const foreign = join(dir, 'foreign.sqlite');
  const f = new Database(foreign);
  f.exec('CREATE TABLE users (name TEXT)');
  f.close();
  const before = readFileSync(foreign);
  const r = clothtag(['index', photos, '--checkpoint', checkpoint, '--db', foreign]);
  t.equal(r.code, 1);
  t.match(r.stderr, /foreign.sqlite is an SQLite database but not a clothtag catalog \(its tables: users\)/);
  t.same(readFileSync(foreign), before, 'left untouched');
  t.match(search([]).stderr, /give --category, --attr or --like/);
  const missing = clothtag(['search', '--db', join(dir, 'nope.sqlite'), '--category', 'x']);
  t.match(missing.stderr, /nope.sqlite: no such catalog/);

  const catalog = Catalog.open(join(dir, 'catalog.sqlite'), { readonly: true });
  const vocab = catalog.source!.vocabulary;
  catalog.close();
  const a = vocab.attributes[0]!;
  const refusals: [string[], RegExp][] = [
    [['--attr', `${a}>1`], /no probability can meet this/],
    [['--attr', `${a}<0`], /no probability can meet this/],
    [['--attr', `${a}>0.7`, '--attr', `${a}<0.3`], /together with the other --attr/],
    [['--attr', 'no such thing>0.5'], /no attribute "no such thing" in the catalog/],
    [['--attr', `${a}=0.5`], /write NAME>P, NAME>=P, NAME<P or NAME<=P/],
    [['--category', 'Spacesuit'], /--category Spacesuit: the catalog's categories are /],
    [['--like', join(dir, 'missing.jpg')], /missing.jpg: no such file/],
  ];
  for (const [args, message] of refusals) {
    const q = search(args);
    t.not(q.code, 0, args.join(' '));
    t.match(q.stderr, message, args.join(' '));
  }
  t.same(parseAttributeFilter('long sleeve>=0.25'), { name: 'long sleeve', op: '>=', value: 0.25 }, 'names may have spaces');
});
