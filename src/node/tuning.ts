// The tuning table on disk: measured tile winners per adapter, kept between runs so that every
// command (train, bench, predict) uses what `clothtag tune` measured on this machine.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cacheDir } from '../data/dataset.js';
import { type TuningTable, emptyTuning } from '../engine/tune.js';

export function tuningFile(): string {
  return process.env.CLOTHTAG_TUNING ?? join(cacheDir(), 'tuning.json');
}

/**
 * The table, or an empty one when there is none yet. A file that cannot be used is reported
 * (named) and ignored rather than trusted: tiles then fall back to their defaults.
 */
export function loadTuning(file = tuningFile(), warn: (s: string) => void = (s) => console.warn(s)): TuningTable {
  if (!existsSync(file)) return emptyTuning();
  try {
    const table = JSON.parse(readFileSync(file, 'utf8')) as TuningTable;
    if (table?.version !== 1 || typeof table.adapters !== 'object' || table.adapters === null) throw new Error('not a version-1 tuning table');
    return table;
  } catch (e) {
    warn(`ignoring the tuning table ${file}: ${(e as Error).message} (delete it or run \`clothtag tune\` again)`);
    return emptyTuning();
  }
}

/** Writes the table atomically (a crash mid-write leaves the old one). */
export function saveTuning(table: TuningTable, file = tuningFile()): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(table, null, 2) + '\n');
  renameSync(tmp, file);
}
