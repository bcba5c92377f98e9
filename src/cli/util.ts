import { readRegularFile } from '../data/files.js';

/** A mistake in the command line: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export function positiveInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${flag} takes a positive whole number, got "${v}"`);
  return n;
}

/**
 * Reads a file, with a one-line error that names it when it is missing, a folder, a FIFO or a
 * device (refused by type before anything is read).
 */
export function readFileOrThrow(path: string): Uint8Array {
  return readRegularFile(path);
}

