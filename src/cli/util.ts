import { readRegularFile } from '../data/files.js';
import { MAX_LOOKS } from '../label/labels.js';

/** A mistake in the command line: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export function positiveInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${flag} takes a positive whole number, got "${v}"`);
  return n;
}

/** --box-looks: how many looks the box head takes, 1 to MAX_LOOKS. */
export function boxLooksOf(v: string): number {
  const n = Number(v);
  if (!(Number.isInteger(n) && n >= 1 && n <= MAX_LOOKS)) throw new UsageError(`--box-looks is a whole number of looks from 1 to ${MAX_LOOKS}, got "${v}"`);
  return n;
}

/**
 * Reads a file, with a one-line error that names it when it is missing, a folder, a FIFO or a
 * device (refused by type before anything is read).
 */
export function readFileOrThrow(path: string): Uint8Array {
  return readRegularFile(path);
}

