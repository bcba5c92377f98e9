// PyTorch checkpoints (torch.save) read without Python and without running anything: the zip
// format of PyTorch >= 1.6 (data.pkl plus one raw entry per storage) and the older single-stream
// format (pickles followed by the raw storages). The pickle goes through the restricted reader
// (pickle.ts) that knows tensors, ordered dicts and plain values only. Every tensor becomes
// float32 (float16 and bfloat16 widened), gathered through its strides and offset.
import { type NamedArray, type TensorMap, bfloat16, half } from '../nets/safetensors.js';
import { type Global, PickleError, unpickle } from './pickle.js';
import { isZip, zipEntries, zipRead } from './zip.js';

export class TorchFileError extends Error {
  override name = 'TorchFileError';
}

type Dtype = 'f32' | 'f64' | 'f16' | 'bf16' | 'i64' | 'i32' | 'i16' | 'i8' | 'u8' | 'bool';

/** torch's storage classes (as pickled) and the element type each holds. */
const STORAGES: Record<string, Dtype> = {
  FloatStorage: 'f32', DoubleStorage: 'f64', HalfStorage: 'f16', BFloat16Storage: 'bf16', LongStorage: 'i64',
  IntStorage: 'i32', ShortStorage: 'i16', CharStorage: 'i8', ByteStorage: 'u8', BoolStorage: 'bool',
};
const WIDTH: Record<Dtype, number> = { f32: 4, f64: 8, f16: 2, bf16: 2, i64: 8, i32: 4, i16: 2, i8: 1, u8: 1, bool: 1 };

interface StorageRef {
  storage: true;
  dtype: Dtype;
  key: string;
  /** Bytes once resolved. */
  bytes?: Uint8Array;
}

interface TensorRef {
  tensor: true;
  storage: StorageRef;
  offset: number;
  size: number[];
  stride: number[];
}

function element(view: DataView, dtype: Dtype, at: number): number {
  switch (dtype) {
    case 'f32': return view.getFloat32(at, true);
    case 'f64': return view.getFloat64(at, true);
    case 'f16': return half(view.getUint16(at, true));
    case 'bf16': return bfloat16(view.getUint16(at, true));
    case 'i64': return Number(view.getBigInt64(at, true));
    case 'i32': return view.getInt32(at, true);
    case 'i16': return view.getInt16(at, true);
    case 'i8': return view.getInt8(at);
    default: return view.getUint8(at);
  }
}

/** A tensor's values in row-major order, read through its strides from its storage. */
function materialize(t: TensorRef, name: string, source: string): NamedArray {
  const bytes = t.storage.bytes!;
  const width = WIDTH[t.storage.dtype];
  const count = t.size.reduce((a, b) => a * b, 1);
  const data = new Float32Array(count);
  if (!count) return { shape: [...t.size], data };
  let last = t.offset;
  for (let d = 0; d < t.size.length; d++) last += (t.size[d]! - 1) * t.stride[d]!;
  if (t.offset < 0 || (last + 1) * width > bytes.length) throw new TorchFileError(`${source}: tensor ${name} [${t.size}] reaches past its storage (${bytes.length / width} elements)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const index = new Array(t.size.length).fill(0);
  for (let k = 0; k < count; k++) {
    let at = t.offset;
    for (let d = 0; d < index.length; d++) at += index[d] * t.stride[d]!;
    data[k] = element(view, t.storage.dtype, at * width);
    for (let d = index.length - 1; d >= 0; d--) {
      if (++index[d] < t.size[d]!) break;
      index[d] = 0;
    }
  }
  return { shape: [...t.size], data };
}

const isTensor = (v: unknown): v is TensorRef => !!v && typeof v === 'object' && 'tensor' in v;

const ints = (v: unknown, what: string, source: string): number[] => {
  if (!Array.isArray(v) || v.some((d) => !Number.isInteger(d) || d < 0)) throw new TorchFileError(`${source}: a tensor's ${what} is not a list of whole numbers`);
  return v as number[];
};

/** What the pickle may name: tensors, parameters, ordered dicts, storage classes. Nothing else. */
function allowedGlobals(source: string): Record<string, (args: unknown[]) => unknown> {
  const rebuild = (args: unknown[]): TensorRef => {
    const [storage, offset, size, stride] = args as [StorageRef, number, unknown, unknown];
    if (!storage || !(storage as StorageRef).storage) throw new TorchFileError(`${source}: a tensor without a storage`);
    return { tensor: true, storage, offset: Number(offset), size: ints(size, 'size', source), stride: ints(stride, 'stride', source) };
  };
  const globals: Record<string, (args: unknown[]) => unknown> = {
    'collections.OrderedDict': () => new Map(),
    'torch._utils._rebuild_tensor_v2': rebuild,
    'torch._utils._rebuild_tensor': rebuild,
    'torch._utils._rebuild_parameter': (args) => args[0],
    'torch._utils._rebuild_parameter_with_state': (args) => args[0],
  };
  for (const name of Object.keys(STORAGES)) globals[`torch.${name}`] = () => {
    throw new TorchFileError(`${source}: a storage class called as a function`);
  };
  return globals;
}

function storageRef(pid: unknown, source: string): StorageRef {
  // ('storage', storage_class, key, location, numel[, view metadata])
  if (!Array.isArray(pid) || pid[0] !== 'storage') throw new TorchFileError(`${source}: a persistent id that is not a storage`);
  const cls = (pid[1] as Global | undefined)?.global?.replace(/^torch\./, '') ?? '';
  const dtype = STORAGES[cls];
  if (!dtype) throw new TorchFileError(`${source}: storage type ${cls || JSON.stringify(pid[1])} is not read`);
  return { storage: true, dtype, key: String(pid[2]) };
}

/** The storages a pickle names by persistent id, one StorageRef per key (tensors may share one). */
function storageTable(source: string): { storages: Map<string, StorageRef>; persistentLoad: (pid: unknown) => StorageRef } {
  const storages = new Map<string, StorageRef>();
  const persistentLoad = (pid: unknown) => {
    const ref = storageRef(pid, source);
    if (!storages.has(ref.key)) storages.set(ref.key, ref);
    return storages.get(ref.key)!;
  };
  return { storages, persistentLoad };
}

/**
 * The tensors of a state dict (or of a checkpoint dict holding one under `state_dict`, `model`,
 * `model_state_dict` or `state`), with `module.` (DataParallel's prefix) removed when every name has it.
 */
function stateDict(root: unknown, source: string): Map<string, TensorRef> {
  let dict = root;
  if (dict instanceof Map && ![...dict.values()].some(isTensor)) {
    const key = ['state_dict', 'model', 'model_state_dict', 'state'].find((k) => (dict as Map<unknown, unknown>).get(k) instanceof Map);
    if (key) dict = (dict as Map<unknown, unknown>).get(key);
  }
  if (!(dict instanceof Map)) throw new TorchFileError(`${source} does not hold a state dict (a dict of tensors); save model.state_dict(), not the model`);
  const out = new Map<string, TensorRef>();
  for (const [k, v] of dict) if (typeof k === 'string' && isTensor(v)) out.set(k, v);
  if (!out.size) throw new TorchFileError(`${source}: its dict holds no tensors`);
  const prefixed = [...out.keys()].every((k) => k.startsWith('module.'));
  return prefixed ? new Map([...out].map(([k, v]) => [k.slice('module.'.length), v])) : out;
}

/** The legacy (PyTorch < 1.6) stream starts with this magic number, pickled. */
const LEGACY_MAGIC = Number(0x1950a86a20f9469cfc6cn);

/** Reads a PyTorch checkpoint's tensors (see the top of this file). */
export function readTorchCheckpoint(bytes: Uint8Array, source: string): TensorMap {
  const globals = allowedGlobals(source);
  const wrap = (e: unknown): never => {
    if (e instanceof PickleError || e instanceof TorchFileError) throw e;
    throw new TorchFileError(`${source}: ${(e as Error).message}`);
  };
  try {
    if (isZip(bytes)) {
      const entries = zipEntries(bytes, source);
      const pkl = [...entries.keys()].find((n) => n.endsWith('data.pkl') && !n.slice(0, -'data.pkl'.length).replace(/\/$/, '').includes('/'));
      if (!pkl) {
        if ([...entries.keys()].some((n) => n.endsWith('constants.pkl'))) throw new TorchFileError(`${source} is a TorchScript archive, not a torch.save checkpoint`);
        throw new TorchFileError(`${source}: a zip without data.pkl (not a torch.save checkpoint)`);
      }
      const prefix = pkl.slice(0, -'data.pkl'.length);
      const { storages, persistentLoad } = storageTable(source);
      const root = unpickle(zipRead(bytes, entries.get(pkl)!, source), { globals, persistentLoad }, `${source} (${pkl})`).value;
      for (const ref of storages.values()) {
        const entry = entries.get(`${prefix}data/${ref.key}`);
        if (!entry) throw new TorchFileError(`${source}: storage ${ref.key} is missing from the archive`);
        ref.bytes = zipRead(bytes, entry, source);
      }
      return new Map([...stateDict(root, source)].map(([k, t]) => [k, materialize(t, k, source)]));
    }
    // The legacy stream: magic, protocol version, system info, the object, the storage keys, then
    // each storage as an 8-byte element count and its raw bytes, in the order of the keys.
    const magic = unpickle(bytes, { globals }, source);
    if (magic.value !== LEGACY_MAGIC) {
      throw new TorchFileError(`${source} is neither a torch.save zip archive nor a legacy PyTorch file`);
    }
    const version = unpickle(bytes, { globals }, source, magic.end);
    const info = unpickle(bytes, { globals }, source, version.end);
    const { storages, persistentLoad } = storageTable(source);
    const object = unpickle(bytes, { globals, persistentLoad }, source, info.end);
    const keys = unpickle(bytes, { globals }, source, object.end);
    if (!Array.isArray(keys.value)) throw new TorchFileError(`${source}: the legacy storage list is missing`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let at = keys.end;
    for (const key of keys.value as unknown[]) {
      const ref = storages.get(String(key));
      if (!ref || at + 8 > bytes.length) throw new TorchFileError(`${source}: legacy storage ${String(key)} is missing`);
      const size = Number(view.getBigInt64(at, true)) * WIDTH[ref.dtype];
      if (at + 8 + size > bytes.length) throw new TorchFileError(`${source}: legacy storage ${String(key)} runs past the end of the file`);
      ref.bytes = bytes.subarray(at + 8, at + 8 + size);
      at += 8 + size;
    }
    return new Map([...stateDict(object.value, source)].map(([k, t]) => [k, materialize(t, k, source)]));
  } catch (e) {
    return wrap(e);
  }
}

/** Whether bytes look like a PyTorch checkpoint (zip or legacy) rather than safetensors. */
export function isTorchCheckpoint(bytes: Uint8Array): boolean {
  return isZip(bytes) || (bytes[0] === 0x80 && bytes[1] === 0x02);
}
