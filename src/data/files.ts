// Opening the files that lists and command lines name, safely: a list's path stays inside its
// dataset, and only regular files are read (a FIFO would block forever, /dev/zero would be read
// until memory runs out, a folder named x.jpg is not a photo).
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { isAbsolute } from 'node:path';

export class FileRefusedError extends Error {
  override name = 'FileRefusedError';
  /** `missing`: there is no such file (a missing image is counted apart from a refused one). */
  constructor(message: string, readonly missing = false) {
    super(message);
  }
}

/**
 * Why an image name from a dataset list would leave the dataset's folder, or null when it stays
 * inside: names are relative, without `..` segments or NUL bytes. Symbolic links inside the folder
 * are followed (README, "Reliability"): they are the dataset owner's own set-up, while the lists'
 * text is data that may come from anywhere.
 */
export function listPathProblem(name: string): string | null {
  if (name.includes('\0')) return `${JSON.stringify(name)} contains a NUL byte`;
  if (isAbsolute(name) || /^[A-Za-z]:[\\/]/.test(name) || name.startsWith('\\')) return `${name} is an absolute path; list paths are relative to the dataset folder`;
  if (name.split(/[\\/]/).includes('..')) return `${name} leaves the dataset folder (a ".." segment)`;
  return null;
}

function kind(st: { isDirectory(): boolean; isFIFO(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isSocket(): boolean }): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Opens `path` without blocking (a FIFO with no writer would hang a plain open) and checks by its
 * type that it is a regular file of at most `maxBytes`, then hands the descriptor to `use`.
 * Errors name `label` (the path as the user wrote it).
 */
export function withRegularFile<T>(path: string, label: string, maxBytes: number, use: (fd: number, size: number) => T): T {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ENOENT') throw new FileRefusedError(`${label}: no such file`, true);
    throw new FileRefusedError(code === 'EACCES' ? `${label}: permission denied` : `${label}: ${(e as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new FileRefusedError(`${label} is ${kind(st)}, not a file`);
    if (st.size > maxBytes) throw new FileRefusedError(`${label}: ${(st.size / 2 ** 20).toFixed(0)} MB is larger than the ${(maxBytes / 2 ** 20).toFixed(0)} MB limit`);
    return use(fd, st.size);
  } finally {
    closeSync(fd);
  }
}

/** Parses a regular file as JSON, naming the file in the error when it is not JSON. */
export function readJsonFile<T>(path: string): T {
  const text = new TextDecoder().decode(readRegularFile(path));
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(`${path} is not valid JSON (${(e as Error).message})`);
  }
}

/** The whole of a regular file (see withRegularFile). */
export function readRegularFile(path: string, label = path, maxBytes = 2 ** 31 - 1): Uint8Array {
  return withRegularFile(path, label, maxBytes, (fd, size) => {
    const out = new Uint8Array(size);
    let at = 0;
    while (at < size) {
      const n = readSync(fd, out, at, size - at, at);
      if (n === 0) break; // the file shrank while being read
      at += n;
    }
    return out.subarray(0, at);
  });
}
