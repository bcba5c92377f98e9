// The safetensors format (Hugging Face), read and written from bytes: no framework and no file
// system, so the core can load weights in a browser. Layout: an unsigned 64-bit little-endian
// header length, a JSON header { name: { dtype, shape, data_offsets: [begin, end] }, __metadata__ },
// then the raw little-endian tensor data.

export interface NamedArray {
  shape: number[];
  data: Float32Array;
}

export type TensorMap = Map<string, NamedArray>;

export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

const DTYPE_BYTES: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

/** An IEEE binary16 value from its bits (safetensors' F16, PyTorch's HalfStorage). */
export function half(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f, frac = bits & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

/** A bfloat16 value from its bits: the top half of a float32. */
export function bfloat16(bits: number): number {
  return new Float32Array(new Uint32Array([bits << 16]).buffer)[0]!;
}

/** Parses a safetensors file; every tensor is converted to float32 (integers too). */
export function parseSafetensors(bytes: ArrayBuffer | Uint8Array, source = 'safetensors data'): { tensors: TensorMap; metadata: Record<string, string> } {
  const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const view = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  if (u8.byteLength < 8) throw new SafetensorsError(`${source}: ${u8.byteLength} bytes is too short for a safetensors file`);
  const headerLength = Number(view.getBigUint64(0, true));
  if (headerLength > u8.byteLength - 8 || headerLength > 100 * 2 ** 20) {
    throw new SafetensorsError(`${source}: header length ${headerLength} does not fit a ${u8.byteLength}-byte file (not a safetensors file?)`);
  }
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(new TextDecoder().decode(u8.subarray(8, 8 + headerLength)));
  } catch (e) {
    throw new SafetensorsError(`${source}: the header is not valid JSON (${(e as Error).message})`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) throw new SafetensorsError(`${source}: the header is not a JSON object of tensors`);
  const dataStart = 8 + headerLength;
  const tensors: TensorMap = new Map();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!entry || typeof entry !== 'object' || Object.values(entry).some((v) => typeof v !== 'string')) throw new SafetensorsError(`${source}: __metadata__ must map names to strings`);
      metadata = entry as Record<string, string>;
      continue;
    }
    if (!entry || typeof entry !== 'object') throw new SafetensorsError(`${source}: tensor "${name}" has a malformed header entry (${JSON.stringify(entry)})`);
    const { dtype, shape, data_offsets } = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const width = DTYPE_BYTES[dtype];
    if (!width) throw new SafetensorsError(`${source}: tensor "${name}" has unsupported dtype ${dtype}`);
    if (!Array.isArray(shape) || !Array.isArray(data_offsets) || data_offsets.length !== 2) throw new SafetensorsError(`${source}: tensor "${name}" has a malformed header entry`);
    if (shape.some((d) => !Number.isInteger(d) || d < 0) || data_offsets.some((o) => !Number.isInteger(o))) throw new SafetensorsError(`${source}: tensor "${name}" has shape ${JSON.stringify(shape)} and offsets ${JSON.stringify(data_offsets)}: dimensions and offsets must be whole numbers >= 0`);
    const count = shape.reduce((a, b) => a * b, 1);
    const [begin, end] = data_offsets;
    if (end - begin !== count * width || dataStart + end > u8.byteLength || begin < 0) {
      throw new SafetensorsError(`${source}: tensor "${name}" ${JSON.stringify(shape)} ${dtype} claims bytes ${begin}..${end}, which do not fit`);
    }
    const at = dataStart + begin;
    const data = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      const o = at + i * width;
      switch (dtype) {
        case 'F32': data[i] = view.getFloat32(o, true); break;
        case 'F64': data[i] = view.getFloat64(o, true); break;
        case 'F16': data[i] = half(view.getUint16(o, true)); break;
        case 'BF16': data[i] = bfloat16(view.getUint16(o, true)); break;
        case 'I64': data[i] = Number(view.getBigInt64(o, true)); break;
        case 'I32': data[i] = view.getInt32(o, true); break;
        case 'I16': data[i] = view.getInt16(o, true); break;
        case 'I8': data[i] = view.getInt8(o); break;
        default: data[i] = view.getUint8(o);
      }
    }
    tensors.set(name, { shape: [...shape], data });
  }
  return { tensors, metadata };
}

/** Writes float32 tensors (in the given order) and string metadata as a safetensors file. */
export function serializeSafetensors(tensors: TensorMap, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of tensors) {
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) throw new SafetensorsError(`tensor "${name}": ${t.data.length} values for shape ${JSON.stringify(t.shape)}`);
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + count * 4] };
    offset += count * 4;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so that the data starts 8-byte aligned (as the reference writer does).
  json += ' '.repeat((8 - ((8 + new TextEncoder().encode(json).length) % 8)) % 8);
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let at = 8 + head.length;
  for (const t of tensors.values()) {
    // Explicitly little-endian, whatever the host.
    for (let i = 0; i < t.data.length; i++, at += 4) view.setFloat32(at, t.data[i]!, true);
  }
  return out;
}
