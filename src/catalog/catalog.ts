// The catalog index (SPEC 8.2.5, labels as a catalog people can search): one SQLite file holding,
// for every labelled photo, its path, content hash, the garment's box, every category's and
// attribute's logit, the landmarks and an embedding (the pooled trunk features, L2-normalized).
// Logits rather than probabilities: a float32 probability is exactly 1.0 for any logit above about
// 17, so confident photos would tie and lose their order; search turns logits into probabilities
// in float64. better-sqlite3 (synchronous, one file, no server) is the one dependency added
// for it: the owner's packages hold no database, and a catalog must survive a kill mid-write,
// which SQLite's transactions give.
import { existsSync, readSync } from 'node:fs';
import Database from 'better-sqlite3';
import { withRegularFile } from '../data/files.js';
import type { Vocabulary } from '../train/metrics.js';

/** What marks a file as a clothtag catalog, and the layout version this code writes and reads. */
const FORMAT = 'clothtag-catalog';
const VERSION = '2';
/**
 * Layout 1 stored float32 probabilities where layout 2 stores logits (the columns are the same).
 * Such a catalog is read through logitsFromProbabilities, and converted in place when opened for
 * writing; the order that float32 lost among probabilities of 1.0 stays lost until --reindex.
 */
const PROBABILITIES_VERSION = '1';

/** The checkpoint a catalog was labelled with: every row is that network's reading. */
export interface CatalogSource {
  /** SHA-256 of the checkpoint file. */
  sha256: string;
  /** Where it was when the catalog was made (informational; search --like opens it from there). */
  path: string;
  net: string;
  vocabulary: Vocabulary;
  size: number;
  /** The box head's looks (index --box-looks); absent in catalogs made before it: the checkpoint's default. */
  looks?: number;
}

export interface PhotoRow {
  path: string;
  hash: string;
  bytes: number;
  mtimeMs: number;
  width: number;
  height: number;
  /** The box the labels were read in, [x1, y1, x2, y2] pixels, and where it came from. */
  box: [number, number, number, number];
  boxSource: 'predicted' | 'whole';
  /** Every category's logit (softmax gives the probabilities). */
  categoryLogits: Float32Array | null;
  /** Every attribute's logit (a sigmoid each gives the probabilities). */
  attributeLogits: Float32Array | null;
  landmarks: { x: number; y: number; confidence: number }[] | null;
  embedding: Float32Array;
}

export class CatalogError extends Error {}

const SCHEMA = `
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE photos (
  id INTEGER PRIMARY KEY,
  path TEXT NOT NULL UNIQUE,
  hash TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  mtime_ms REAL NOT NULL,
  width INTEGER NOT NULL,
  height INTEGER NOT NULL,
  box_x1 REAL NOT NULL, box_y1 REAL NOT NULL, box_x2 REAL NOT NULL, box_y2 REAL NOT NULL,
  box_source TEXT NOT NULL,
  top_category TEXT,
  category BLOB,   -- float32 logits (layout 1: probabilities)
  attributes BLOB, -- float32 logits (layout 1: probabilities)
  landmarks TEXT,
  embedding BLOB NOT NULL
);
CREATE INDEX photos_top_category ON photos (top_category);
`;

const blob = (a: Float32Array | null) => (a ? Buffer.from(a.buffer, a.byteOffset, a.byteLength) : null);
/** A BLOB as float32s: a view where the bytes are 4-aligned, else a copy. */
export const floats = (b: Buffer | null) => (b ? (b.byteOffset % 4 === 0 ? new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4) : new Float32Array(new Uint8Array(b).buffer)) : null);

/** Logits large enough that float64's sigmoid and softmax read them as certain. */
const CERTAIN = 40;

/**
 * A layout-1 row's probabilities as logits: log(p / (1 - p)) for attributes, log(p) for categories
 * (softmax gives p back), clamped to +-CERTAIN where p was exactly 0 or 1.
 */
export function logitsFromProbabilities(p: Float32Array, kind: 'category' | 'attributes'): Float32Array {
  const clamp = (z: number) => Math.max(-CERTAIN, Math.min(CERTAIN, z));
  return p.map((q) => clamp(kind === 'category' ? Math.log(q) : Math.log(q) - Math.log1p(-q)));
}

/** The columns a search scan reads (only what its filters and ranking need). */
export type ScanColumn = 'embedding' | 'attributes' | 'category';

export class Catalog {
  private constructor(
    readonly file: string,
    private readonly db: Database.Database,
    readonly source: CatalogSource | null,
    /** A layout-1 catalog opened read-only: its probabilities are turned into logits as they are read. */
    private readonly storesProbabilities = false,
  ) {}

  /**
   * Opens a catalog, or creates one when `create` and the file does not exist. A file that is not
   * SQLite, or SQLite that is not a catalog, is refused by name and left untouched.
   */
  static open(file: string, o: { create?: boolean; readonly?: boolean } = {}): Catalog {
    const exists = existsSync(file);
    if (!exists && !o.create) throw new CatalogError(`${file}: no such catalog (make one with clothtag index ... --db ${file})`);
    if (exists) {
      // SQLite's own magic: anything else would be "file is not a database" deep inside a query.
      const head = withRegularFile(file, file, Number.MAX_SAFE_INTEGER, (fd, size) => {
        const b = Buffer.alloc(Math.min(16, size));
        readSync(fd, b, 0, b.length, 0);
        return b.toString('latin1');
      });
      if (head.length && head !== 'SQLite format 3\0') throw new CatalogError(`${file} is not a clothtag catalog: it is not an SQLite database`);
    }
    let db: Database.Database;
    try {
      db = new Database(file, { readonly: !!o.readonly && exists, fileMustExist: !o.create });
    } catch (e) {
      throw new CatalogError(`${file}: cannot open it as a catalog (${(e as Error).message})`);
    }
    try {
      const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name);
      if (!tables.length && !o.readonly) {
        db.pragma('journal_mode = WAL');
        db.exec(SCHEMA);
        db.prepare('INSERT INTO meta (key, value) VALUES (?, ?), (?, ?)').run('format', FORMAT, 'version', VERSION);
        return new Catalog(file, db, null);
      }
      const meta = tables.includes('meta') ? Object.fromEntries((db.prepare('SELECT key, value FROM meta').all() as { key: string; value: string }[]).map((r) => [r.key, r.value])) : {};
      if (meta.format !== FORMAT || !tables.includes('photos')) throw new CatalogError(`${file} is an SQLite database but not a clothtag catalog (its tables: ${tables.join(', ') || 'none'})`);
      if (meta.version !== VERSION && meta.version !== PROBABILITIES_VERSION) throw new CatalogError(`${file} is a clothtag catalog of layout version ${meta.version}; this clothtag reads versions ${PROBABILITIES_VERSION} and ${VERSION}`);
      const source = meta.source ? (JSON.parse(meta.source) as CatalogSource) : null;
      if (o.readonly) return new Catalog(file, db, source, meta.version === PROBABILITIES_VERSION);
      db.pragma('journal_mode = WAL');
      if (meta.version === PROBABILITIES_VERSION) convertToLogits(db);
      return new Catalog(file, db, source);
    } catch (e) {
      db.close();
      if (e instanceof CatalogError) throw e;
      throw new CatalogError(`${file} is not a readable clothtag catalog (${(e as Error).message})`);
    }
  }

  close(): void {
    this.db.close();
  }

  /** Records the checkpoint every row comes from; `reindex` first forgets every row of another one. */
  setSource(source: CatalogSource, reindex: boolean): Catalog {
    this.db.transaction(() => {
      if (reindex) this.db.exec('DELETE FROM photos');
      this.db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run('source', JSON.stringify(source));
    })();
    return new Catalog(this.file, this.db, source, this.storesProbabilities);
  }

  get count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM photos').get() as { n: number }).n;
  }

  /** What the catalog knows of a path: enough to tell whether the file changed since. */
  known(path: string): { hash: string; bytes: number; mtimeMs: number } | undefined {
    return this.db.prepare('SELECT hash, bytes, mtime_ms AS mtimeMs FROM photos WHERE path = ?').get(path) as { hash: string; bytes: number; mtimeMs: number } | undefined;
  }

  /** A file touched but unchanged (same hash): only its recorded time moves. */
  touch(path: string, mtimeMs: number): void {
    this.db.prepare('UPDATE photos SET mtime_ms = ? WHERE path = ?').run(mtimeMs, path);
  }

  /** Writes a batch of rows in one transaction: after a kill, a batch is all there or not at all. */
  put(rows: PhotoRow[]): void {
    const vocab = this.source?.vocabulary;
    const insert = this.db.prepare(`INSERT OR REPLACE INTO photos (path, hash, bytes, mtime_ms, width, height, box_x1, box_y1, box_x2, box_y2, box_source, top_category, category, attributes, landmarks, embedding)
      VALUES (@path, @hash, @bytes, @mtimeMs, @width, @height, @x1, @y1, @x2, @y2, @boxSource, @top, @category, @attributes, @landmarks, @embedding)`);
    this.db.transaction(() => {
      for (const r of rows) {
        let top: string | null = null;
        if (r.categoryLogits && vocab?.categories.length) top = vocab.categories[argmax(r.categoryLogits)]!;
        const [x1, y1, x2, y2] = r.box;
        insert.run({ ...r, x1, y1, x2, y2, top, category: blob(r.categoryLogits), attributes: blob(r.attributeLogits), landmarks: r.landmarks ? JSON.stringify(r.landmarks) : null, embedding: blob(r.embedding) });
      }
    })();
  }

  /** Forgets the rows whose files are gone; returns their paths. */
  prune(exists: (path: string) => boolean): string[] {
    const gone = (this.db.prepare('SELECT path FROM photos').all() as { path: string }[]).map((r) => r.path).filter((p) => !exists(p));
    const remove = this.db.prepare('DELETE FROM photos WHERE path = ?');
    this.db.transaction(() => gone.forEach((p) => remove.run(p)))();
    return gone;
  }

  /** One stored row by path (for search --like on an indexed photo). */
  row(path: string): StoredRow | undefined {
    const r = this.db.prepare('SELECT * FROM photos WHERE path = ?').get(path) as RawRow | undefined;
    return r && this.stored(r);
  }

  /**
   * Every row's id and the named columns only (category and attributes as logits), optionally
   * only rows whose most likely category is `topCategory` (indexed): a search reads what it
   * scores, and fetches whole rows for its hits.
   */
  *scan(columns: ScanColumn[], topCategory?: string): Generator<{ id: number } & Partial<Record<ScanColumn, Float32Array>>> {
    const q = this.db.prepare(`SELECT id${columns.map((c) => `, ${c}`).join('')} FROM photos${topCategory === undefined ? '' : ' WHERE top_category = ?'}`);
    for (const r of (topCategory === undefined ? q.iterate() : q.iterate(topCategory)) as IterableIterator<Record<string, Buffer | number>>) {
      const out: { id: number } & Partial<Record<ScanColumn, Float32Array>> = { id: r.id as number };
      for (const c of columns) out[c] = (c === 'embedding' ? floats(r[c] as Buffer | null) : this.logits(r[c] as Buffer | null, c)) ?? undefined;
      yield out;
    }
  }

  /** Whole rows by id. */
  byId(id: number): StoredRow {
    return this.stored(this.db.prepare('SELECT * FROM photos WHERE id = ?').get(id) as RawRow);
  }

  /** Every row, optionally only those whose most likely category is `topCategory` (indexed). */
  *rows(topCategory?: string): Generator<StoredRow> {
    const q = topCategory === undefined ? this.db.prepare('SELECT * FROM photos') : this.db.prepare('SELECT * FROM photos WHERE top_category = ?');
    for (const r of (topCategory === undefined ? q.iterate() : q.iterate(topCategory)) as IterableIterator<RawRow>) yield this.stored(r);
  }

  private logits(b: Buffer | null, kind: 'category' | 'attributes'): Float32Array | null {
    const values = floats(b);
    return values && this.storesProbabilities ? logitsFromProbabilities(values, kind) : values;
  }

  private stored(r: RawRow): StoredRow {
    return {
      path: r.path, hash: r.hash, width: r.width, height: r.height, box: [r.box_x1, r.box_y1, r.box_x2, r.box_y2], boxSource: r.box_source,
      topCategory: r.top_category, categoryLogits: this.logits(r.category, 'category'), attributeLogits: this.logits(r.attributes, 'attributes'), embedding: floats(r.embedding)!,
    };
  }
}

/** The index of the largest value (the first of equals): a row's most likely category. */
export const argmax = (a: Float32Array) => a.reduce((best, x, i) => (x > a[best]! ? i : best), 0);

/** Rewrites a layout-1 catalog's probabilities as logits, every row and the version in one transaction. */
function convertToLogits(db: Database.Database): void {
  const update = db.prepare('UPDATE photos SET category = ?, attributes = ? WHERE id = ?');
  db.transaction(() => {
    const rows = db.prepare('SELECT id, category, attributes FROM photos').all() as { id: number; category: Buffer | null; attributes: Buffer | null }[];
    for (const r of rows) {
      const category = floats(r.category), attributes = floats(r.attributes);
      update.run(blob(category && logitsFromProbabilities(category, 'category')), blob(attributes && logitsFromProbabilities(attributes, 'attributes')), r.id);
    }
    db.prepare("UPDATE meta SET value = ? WHERE key = 'version'").run(VERSION);
  })();
}

interface RawRow {
  path: string;
  hash: string;
  width: number;
  height: number;
  box_x1: number;
  box_y1: number;
  box_x2: number;
  box_y2: number;
  box_source: string;
  top_category: string | null;
  category: Buffer | null;
  attributes: Buffer | null;
  landmarks: string | null;
  embedding: Buffer;
}

export interface StoredRow {
  path: string;
  hash: string;
  width: number;
  height: number;
  box: [number, number, number, number];
  boxSource: string;
  topCategory: string | null;
  categoryLogits: Float32Array | null;
  attributeLogits: Float32Array | null;
  embedding: Float32Array;
}
