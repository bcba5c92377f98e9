// Device memory: the buffer pool, and the scopes that dispose what a step created (engine.tidy).
import { Tensor } from './tensor.js';

/** What the engine counts (engine.stats); the pool and the recorder each update their share. */
export interface EngineStats {
  /** Bytes held by live tensors now. */
  allocatedBytes: number;
  /** The most they held at once since the last resetPeak(): the high-water mark a step needs. */
  peakBytes: number;
  /** The largest single tensor since the last resetPeak() (what an adapter's binding limit meets). */
  largestTensorBytes: number;
  /** Freed buffers kept for reuse. */
  pooledBytes: number;
  buffersCreated: number;
  /** Bind groups created (a fixed-shape step finds all of them cached after its first). */
  bindGroupsCreated: number;
  dispatches: number;
  submits: number;
  /** Floating-point operations recorded (2 per multiply-add). */
  flops: number;
}

// WebGPU's flag values, spelled out so that the core needs no GPUBufferUsage global (Node has none).
export const MAP_READ = 0x1;
export const COPY_SRC = 0x4;
export const COPY_DST = 0x8;
export const UNIFORM = 0x40;
const STORAGE = 0x80;
export const QUERY_RESOLVE = 0x200;
export const MAP_MODE_READ = 0x1;

/**
 * Buffers are pooled by size class so that a training step with fixed shapes allocates nothing
 * after its first iteration. Classes are multiples of 256 bytes, then 1/8 of a power of two.
 */
export function sizeClass(bytes: number): number {
  const b = Math.max(bytes, 16);
  if (b <= 65536) return Math.ceil(b / 256) * 256;
  const step = 2 ** (Math.ceil(Math.log2(b)) - 3);
  return Math.ceil(b / step) * step;
}

const ids = new WeakMap<GPUBuffer, number>();
let nextId = 1;
/** A buffer's number, for cache keys (bind groups are keyed by the buffers they bind). */
export function bufferId(buffer: GPUBuffer): number {
  let id = ids.get(buffer);
  if (id === undefined) ids.set(buffer, (id = nextId++));
  return id;
}

/**
 * Buffers are handed out lowest number first (each size class's free list is kept sorted, the
 * lowest at its end): a step of fixed shapes then gets the very same buffers every time, whatever
 * order the previous step freed them in, so every bind group it needs is already in the
 * recorder's cache (measured: 507-584 bind groups created in every cloth_resnet_a step with a
 * last-freed-first pool once backward frees as it goes, none after the first step with this one).
 */
export class BufferPool {
  private readonly free = new Map<number, GPUBuffer[]>();
  /** What a dry run's tensors point at (engine.countOnly): counted, never allocated. */
  private placeholder: GPUBuffer | null = null;

  constructor(private readonly device: GPUDevice, private readonly stats: EngineStats) {}

  /**
   * A buffer of `bytes`' size class. `dryRun` counts the bytes as allocated but hands out a shared
   * 16-byte placeholder: a model's memory at any size measured without the device's memory.
   */
  acquire(bytes: number, dryRun = false): GPUBuffer {
    const size = sizeClass(bytes);
    this.stats.allocatedBytes += size;
    this.stats.peakBytes = Math.max(this.stats.peakBytes, this.stats.allocatedBytes);
    this.stats.largestTensorBytes = Math.max(this.stats.largestTensorBytes, bytes);
    if (dryRun) return (this.placeholder ??= this.device.createBuffer({ size: 16, usage: STORAGE }));
    const reused = this.free.get(size)?.pop();
    if (reused) {
      this.stats.pooledBytes -= size;
      return reused;
    }
    this.stats.buffersCreated++;
    const buffer = this.device.createBuffer({ size, usage: STORAGE | COPY_SRC | COPY_DST });
    bufferId(buffer); // numbered in creation order
    return buffer;
  }

  /** Whether `buffer` is a dry run's placeholder (no memory behind it). */
  isPlaceholder(buffer: GPUBuffer): boolean {
    return buffer === this.placeholder;
  }

  release(buffer: GPUBuffer, bytes: number): void {
    const size = sizeClass(bytes);
    this.stats.allocatedBytes -= size;
    if (this.isPlaceholder(buffer)) return;
    this.stats.pooledBytes += size;
    const list = this.free.get(size);
    if (!list) return void this.free.set(size, [buffer]);
    // Sorted by number, highest first: pop() takes the lowest.
    const id = bufferId(buffer);
    let lo = 0, hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (bufferId(list[mid]!) > id) lo = mid + 1;
      else hi = mid;
    }
    list.splice(lo, 0, buffer);
  }

  /** Destroys the pooled buffers (call after a submit: submitted work keeps them alive). */
  trim(): void {
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    this.stats.pooledBytes = 0;
  }
}

/**
 * The scopes of engine.tidy: each remembers the tensors created inside it, and disposes them at
 * its end except those returned (in an array or object too) and those marked with keep().
 */
export class TensorScopes {
  private readonly scopes: Set<Tensor>[] = [];

  run<T>(fn: () => T): T {
    this.scopes.push(new Set());
    let result: T | undefined;
    try {
      result = fn();
    } finally {
      this.end(result);
    }
    return result;
  }

  async runAsync<T>(fn: () => Promise<T>): Promise<T> {
    this.scopes.push(new Set());
    let result: T | undefined;
    try {
      result = await fn();
    } finally {
      this.end(result);
    }
    return result;
  }

  track(t: Tensor): void {
    this.scopes.at(-1)?.add(t);
  }

  untrack(t: Tensor): void {
    for (const scope of this.scopes) scope.delete(t);
  }

  /** Whether an open scope will dispose t at its end (t is a temporary of the work in progress). */
  tracks(t: Tensor): boolean {
    return this.scopes.some((scope) => scope.has(t));
  }

  private end(result: unknown): void {
    const scope = this.scopes.pop()!;
    const survivors = new Set<Tensor>();
    collectTensors(result, survivors);
    for (const t of scope) {
      if (survivors.has(t)) this.scopes.at(-1)?.add(t);
      else t.dispose();
    }
  }
}

function collectTensors(value: unknown, into: Set<Tensor>, depth = 0): void {
  if (value instanceof Tensor) into.add(value);
  else if (depth < 4 && value && typeof value === 'object') {
    for (const v of Object.values(value)) collectTensors(v, into, depth + 1);
  }
}
