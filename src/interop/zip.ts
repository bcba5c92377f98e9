// Reading the entries of a zip archive from its bytes (what torch.save writes since PyTorch 1.6):
// the central directory, stored and deflated entries, and the zip64 extensions large files use.
import { inflateRawSync } from 'node:zlib';

export class ZipError extends Error {
  override name = 'ZipError';
}

export interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  /** Offset of the entry's local header. */
  offset: number;
}

const EOCD = 0x06054b50, EOCD64_LOCATOR = 0x07064b50, EOCD64 = 0x06064b50, CENTRAL = 0x02014b50, LOCAL = 0x04034b50;

export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

/** The archive's entries by name (from its central directory). */
export function zipEntries(bytes: Uint8Array, source: string): Map<string, ZipEntry> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u64 = (at: number) => Number(view.getBigUint64(at, true));
  // The end-of-central-directory record is in the last 64 KiB + 22 bytes (after an optional comment).
  let end = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 65557); i--) {
    if (view.getUint32(i, true) === EOCD) {
      end = i;
      break;
    }
  }
  if (end < 0) throw new ZipError(`${source}: not a zip archive (no end-of-central-directory record)`);
  let count = view.getUint16(end + 10, true);
  let at = view.getUint32(end + 16, true);
  if ((count === 0xffff || at === 0xffffffff) && end >= 20 && view.getUint32(end - 20, true) === EOCD64_LOCATOR) {
    const eocd64 = u64(end - 12);
    if (eocd64 + 56 > bytes.length || view.getUint32(eocd64, true) !== EOCD64) throw new ZipError(`${source}: a broken zip64 end record`);
    count = u64(eocd64 + 32);
    at = u64(eocd64 + 48);
  }
  const entries = new Map<string, ZipEntry>();
  for (let k = 0; k < count; k++) {
    if (at + 46 > bytes.length || view.getUint32(at, true) !== CENTRAL) throw new ZipError(`${source}: central directory entry ${k} is broken`);
    const method = view.getUint16(at + 10, true);
    let compressedSize = view.getUint32(at + 20, true), size = view.getUint32(at + 24, true);
    const nameLength = view.getUint16(at + 28, true), extraLength = view.getUint16(at + 30, true), commentLength = view.getUint16(at + 32, true);
    let offset = view.getUint32(at + 42, true);
    const name = new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLength));
    // Zip64: the fields that overflowed 32 bits are in extra field 1, in this order.
    for (let e = at + 46 + nameLength; e + 4 <= at + 46 + nameLength + extraLength; ) {
      const id = view.getUint16(e, true), length = view.getUint16(e + 2, true);
      if (id === 1) {
        let f = e + 4;
        if (size === 0xffffffff) (size = u64(f), (f += 8));
        if (compressedSize === 0xffffffff) (compressedSize = u64(f), (f += 8));
        if (offset === 0xffffffff) offset = u64(f);
      }
      e += 4 + length;
    }
    entries.set(name, { name, method, compressedSize, size, offset });
    at += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

/** An entry's contents (stored or deflated). */
export function zipRead(bytes: Uint8Array, entry: ZipEntry, source: string): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (entry.offset + 30 > bytes.length || view.getUint32(entry.offset, true) !== LOCAL) throw new ZipError(`${source}: entry ${entry.name} has no local header`);
  const start = entry.offset + 30 + view.getUint16(entry.offset + 26, true) + view.getUint16(entry.offset + 28, true);
  if (start + entry.compressedSize > bytes.length) throw new ZipError(`${source}: entry ${entry.name} runs past the end of the file`);
  const raw = bytes.subarray(start, start + entry.compressedSize);
  if (entry.method === 0) return raw;
  if (entry.method === 8) return new Uint8Array(inflateRawSync(raw, { maxOutputLength: entry.size }));
  throw new ZipError(`${source}: entry ${entry.name} uses compression method ${entry.method} (only stored and deflated are read)`);
}
