// The engine: one GPUDevice, a buffer pool, a pipeline cache and one command encoder per step.
// It imports nothing from Node: whoever embeds it hands it a GPUDevice.
import { type AnyDispatch, type Dispatch, KernelError, type KernelKey, boundTensors, entryBindings, hasUniforms, kernelSource, pipelineKey, uniformWords } from './dispatch.js';
import { decodeHalf, encodeHalf } from './half.js';
import { type DType, Storage, Tensor, byteSize, shapeString, sizeOf } from './tensor.js';
import type { ConvShape, GemmShape, TuningTable } from './tune.js';
import type { BindingInfo } from './reflect.js';

export { KernelError, type Dispatch, type KernelName } from './dispatch.js';

export interface KernelTiming {
  kernel: string;
  key: string;
  /** The layer that recorded the dispatch (engine.scope), '' outside any. */
  scope: string;
  ms: number;
}

export class DeviceLostError extends Error {
  override name = 'DeviceLostError';
}
export class TensorTooLargeError extends Error {
  override name = 'TensorTooLargeError';
}

const MAX_WORKGROUPS = 65535;

/** The adapter's name as tuning tables key it: "vendor/architecture/description". */
export function adapterName(info: Pick<GPUAdapterInfo, 'vendor' | 'architecture' | 'description'> | undefined): string {
  return info ? `${info.vendor}/${info.architecture}/${info.description}` : 'unknown adapter';
}

/** Splits `count` workgroups into a grid that fits the per-dimension limit. Kernels index by x + y * nx. */
export function foldWorkgroups(count: number): [number, number, number] {
  if (count <= MAX_WORKGROUPS) return [Math.max(1, count), 1, 1];
  const y = Math.ceil(count / MAX_WORKGROUPS);
  if (y > MAX_WORKGROUPS) throw new KernelError(`${count} workgroups is more than one dispatch can hold`);
  return [Math.ceil(count / y), y, 1];
}

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

// WebGPU's flag values, spelled out so that the core needs no GPUBufferUsage global (Node has none).
const MAP_READ = 0x1;
const COPY_SRC = 0x4;
const COPY_DST = 0x8;
const UNIFORM = 0x40;
const STORAGE = 0x80;
const QUERY_RESOLVE = 0x200;
const SHADER_STAGE_COMPUTE = 0x4;
const MAP_MODE_READ = 0x1;
const STORAGE_USAGE = STORAGE | COPY_SRC | COPY_DST;

export class Engine {
  readonly limits: GPUSupportedLimits;
  readonly hasTimestamps: boolean;
  /** The device has `shader-f16`: f16 tensors and the mixed-precision path are available. */
  readonly hasF16: boolean;
  /**
   * Mixed precision: convolutions and linear layers (forward and both backward passes) take f16
   * copies of their operands and accumulate in f32; activations, gradients and the master weights
   * stay f32. Needs hasF16.
   */
  mixedPrecision = false;
  /**
   * Mixed precision's gradient scaling (src/autograd/scaler.ts): the scale of the f16 gradient
   * copies and the overflow flag their casts set. Null: a fixed scale of 1024, no flag.
   */
  gradientScaling: { scale: number; flag: Tensor } | null = null;
  /** A cap on the bytes one tensor may take: the adapter's storage-binding limit. */
  readonly maxTensorBytes: number;

  private readonly free = new Map<number, GPUBuffer[]>();
  /** Per specialization: the pipeline, its bind group layout and the bindings its entry point uses. */
  private readonly pipelines = new Map<string, { pipeline: GPUComputePipeline; id: number; group: GPUBindGroupLayout; bindings: BindingInfo[] }>();
  private readonly uniformBuffers = new Map<string, GPUBuffer>();
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private readonly bufferIds = new WeakMap<GPUBuffer, number>();
  private nextId = 1;

  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private pending = 0;
  private readonly errors: Error[] = [];
  private lost: string | null = null;
  private lastKernel = '(none yet)';
  private readonly scopes: Set<Tensor>[] = [];

  private profile: { querySet: GPUQuerySet; labels: { kernel: string; key: string; scope: string }[] } | null = null;
  private readonly layerScopes: string[] = [];

  /** Bytes currently held by live tensors and by the pool. */
  /**
   * allocatedBytes: held by live tensors now; peakBytes: the most they held at once since the
   * last resetPeak() (the high-water mark a step needs); pooledBytes: freed buffers kept for reuse.
   */
  stats = { allocatedBytes: 0, peakBytes: 0, pooledBytes: 0, buffersCreated: 0, dispatches: 0, submits: 0, flops: 0 };

  /** Starts a new high-water mark (stats.peakBytes) from what is live now. */
  resetPeak(): void {
    this.stats.peakBytes = this.stats.allocatedBytes;
  }

  /**
   * When true, dispatches are counted (stats.flops, stats.dispatches) but not recorded: a model's
   * FLOPs and shapes can be traced without running it.
   */
  countOnly = false;

  /** When set, the GEMM and convolution launchers report every shape they run (for the tuner). */
  traceShapes: ((shape: { gemm: GemmShape } | { conv: ConvShape }) => void) | null = null;

  /**
   * Names the adapter for kernel choices (vendor/architecture/description). Tests reassign it to
   * run another adapter kind's choices (tiles, reductions) on this one.
   */
  adapter: string;
  /**
   * Whether kernels use subgroup operations (the device has the `subgroups` feature). Tests turn
   * it off to check the workgroup-memory path on the same adapter.
   */
  useSubgroups: boolean;
  /** Measured tile winners (src/engine/tune.ts); without them each kernel uses its default tile. */
  tuning: TuningTable | undefined;

  constructor(readonly device: GPUDevice, options: { adapter?: string; tuning?: TuningTable } = {}) {
    this.adapter = options.adapter ?? adapterName((device as { adapterInfo?: GPUAdapterInfo }).adapterInfo);
    this.tuning = options.tuning;
    this.useSubgroups = device.features.has('subgroups');
    this.limits = device.limits;
    this.hasTimestamps = device.features.has('timestamp-query');
    this.hasF16 = device.features.has('shader-f16');
    this.maxTensorBytes = device.limits.maxStorageBufferBindingSize;
    device.lost.then((info) => {
      this.lost = `${info.reason}: ${info.message}`;
    });
    device.onuncapturederror = (event: GPUUncapturedErrorEvent) => {
      this.errors.push(new KernelError(`GPU error after kernel ${this.lastKernel}: ${event.error.message}`));
    };
  }

  // ---------------------------------------------------------------- tensors

  /** An uninitialized tensor from the pool (float32 unless `dtype` says f16). */
  empty(shape: readonly number[], name?: string, dtype: DType = 'f32'): Tensor {
    if (dtype === 'f16' && !this.hasF16) throw new KernelError(`tensor ${name ? `"${name}" ` : ''}${shapeString(shape)}: this adapter has no shader-f16 feature, so no f16 tensors`);
    const bytes = byteSize(sizeOf(shape), dtype);
    if (shape.some((d) => !Number.isInteger(d) || d < 0)) {
      throw new Error(`impossible shape ${shapeString(shape)}${name ? ` for tensor "${name}"` : ''}`);
    }
    if (bytes > this.maxTensorBytes) {
      throw new TensorTooLargeError(
        `tensor ${name ? `"${name}" ` : ''}${shapeString(shape)} needs ${(bytes / 2 ** 20).toFixed(1)} MiB, ` +
          `over this adapter's maxStorageBufferBindingSize of ${(this.maxTensorBytes / 2 ** 20).toFixed(1)} MiB; ` +
          `use a smaller batch or image size`,
      );
    }
    return new Tensor(this, shape, new Storage(this.acquire(bytes), bytes), false, name, dtype);
  }

  /** A tensor holding `data` (copied to the GPU; rounded to the nearest half for f16). */
  tensor(data: ArrayLike<number>, shape: readonly number[], name?: string, dtype: DType = 'f32'): Tensor {
    const t = this.empty(shape, name, dtype);
    if (data.length !== t.size) {
      t.dispose();
      throw new Error(`${data.length} values given for tensor ${name ? `"${name}" ` : ''}of shape ${shapeString(shape)}`);
    }
    this.write(t, data instanceof Float32Array ? data : Float32Array.from(data));
    return t;
  }

  /** Overwrites a tensor's contents from the CPU. */
  write(t: Tensor, data: Float32Array): void {
    if (data.length !== t.size) throw new Error(`${data.length} values written to tensor ${t.describe()}`);
    // queue.writeBuffer runs before any encoder not yet submitted: submit pending work first so that
    // earlier dispatches that used this (pooled) buffer see its old contents.
    if (this.pending > 0) this.flush();
    if (t.size === 0) return;
    const bytes = t.dtype === 'f16' ? encodeHalf(data) : data;
    this.device.queue.writeBuffer(t.buffer, 0, bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  zeros(shape: readonly number[], name?: string): Tensor {
    return this.full(shape, 0, name);
  }

  full(shape: readonly number[], value: number, name?: string): Tensor {
    const t = this.empty(shape, name);
    this.fill(t, value);
    return t;
  }

  /** Sets every element on the GPU (no upload). */
  fill(t: Tensor, value: number): void {
    if (t.size === 0) return;
    this.run({
      kernel: 'fill',
      uniforms: { n: t.size, value },
      inputs: {},
      outputs: { out: t },
      workgroups: Math.ceil(t.size / 256),
    });
  }

  async read(t: Tensor): Promise<Float32Array> {
    const bytes = byteSize(t.size, t.dtype);
    if (bytes === 0) return new Float32Array(0);
    const staging = this.device.createBuffer({ size: bytes, usage: MAP_READ | COPY_DST });
    this.endPass();
    this.commandEncoder().copyBufferToBuffer(t.buffer, 0, staging, 0, bytes);
    this.pending++;
    this.flush();
    try {
      await staging.mapAsync(MAP_MODE_READ);
    } catch (e) {
      this.throwIfBroken();
      throw new DeviceLostError(`reading tensor ${t.describe()} failed: ${(e as Error).message}`);
    }
    const raw = staging.getMappedRange().slice(0);
    const out = t.dtype === 'f16' ? decodeHalf(new Uint16Array(raw), t.size) : new Float32Array(raw);
    staging.unmap();
    staging.destroy();
    this.throwIfBroken();
    return out;
  }

  /**
   * Reads several tensors with one copy each into one staging buffer, submitted with the work
   * recorded so far (so a training step and its loss readback are one submission). The copies
   * are recorded now: the tensors may be disposed, and the next step recorded, before the promise
   * settles - which is how a training loop overlaps its CPU work with the GPU's.
   */
  readMany(tensors: readonly Tensor[]): Promise<Float32Array[]> {
    const half = tensors.find((t) => t.dtype !== 'f32');
    if (half) throw new KernelError(`readMany reads float32 tensors; read ${half.describe()} with read()`);
    const sizes = tensors.map((t) => t.size);
    const total = sizes.reduce((a, b) => a + b, 0);
    if (total === 0) return Promise.resolve(sizes.map(() => new Float32Array(0)));
    const staging = this.device.createBuffer({ size: total * 4, usage: MAP_READ | COPY_DST });
    this.endPass();
    const encoder = this.commandEncoder();
    let offset = 0;
    for (const t of tensors) {
      if (t.size > 0) encoder.copyBufferToBuffer(t.buffer, 0, staging, offset * 4, t.size * 4);
      offset += t.size;
    }
    this.pending++;
    this.flush();
    const names = tensors.map((t) => t.describe()).join(', ');
    return staging.mapAsync(MAP_MODE_READ).then(
      () => {
        const all = new Float32Array(staging.getMappedRange().slice(0));
        staging.unmap();
        staging.destroy();
        this.throwIfBroken();
        let at = 0;
        return sizes.map((n) => all.slice(at, (at += n)));
      },
      (e: Error) => {
        this.throwIfBroken();
        throw new DeviceLostError(`reading tensors ${names} failed: ${e.message}`);
      },
    );
  }

  /** Waits for all submitted work and reports any GPU error it raised. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.throwIfBroken();
  }

  // ------------------------------------------------------- scopes (memory)

  /**
   * Runs `fn` and then disposes every tensor it created, except those it returns (in an array or
   * object too) and those marked with `keep()`. Nested scopes hand survivors to the outer scope.
   */
  tidy<T>(fn: () => T): T {
    this.scopes.push(new Set());
    let result: T | undefined;
    try {
      result = fn();
    } finally {
      this.endScope(result);
    }
    return result;
  }

  /** tidy() for async work: no other tensor work may interleave with `fn` meanwhile. */
  async tidyAsync<T>(fn: () => Promise<T>): Promise<T> {
    this.scopes.push(new Set());
    let result: T | undefined;
    try {
      result = await fn();
    } finally {
      this.endScope(result);
    }
    return result;
  }

  private endScope(result: unknown): void {
    const scope = this.scopes.pop()!;
    const survivors = new Set<Tensor>();
    collectTensors(result, survivors);
    for (const t of scope) {
      if (survivors.has(t)) this.scopes.at(-1)?.add(t);
      else t.dispose();
    }
  }

  /** @internal called by Tensor */
  track(t: Tensor): void {
    this.scopes.at(-1)?.add(t);
  }

  /** @internal called by Tensor */
  untrack(t: Tensor): void {
    for (const scope of this.scopes) scope.delete(t);
  }

  // ------------------------------------------------------- scopes (layers)

  /**
   * Runs `fn` with dispatches attributed to `name` (a layer's dotted name) in profiles, so that a
   * profile of a training step says where the time goes layer by layer. Nested: the innermost wins.
   */
  scope<T>(name: string, fn: () => T): T {
    this.layerScopes.push(name);
    try {
      return fn();
    } finally {
      this.layerScopes.pop();
    }
  }

  /** The innermost scope's name, '' outside any. */
  get currentScope(): string {
    return this.layerScopes.at(-1) ?? '';
  }

  // ------------------------------------------------------------- buffers

  private acquire(bytes: number): GPUBuffer {
    const size = sizeClass(bytes);
    const list = this.free.get(size);
    const reused = list?.pop();
    this.stats.allocatedBytes += size;
    this.stats.peakBytes = Math.max(this.stats.peakBytes, this.stats.allocatedBytes);
    if (reused) {
      this.stats.pooledBytes -= size;
      return reused;
    }
    this.stats.buffersCreated++;
    const buffer = this.device.createBuffer({ size, usage: STORAGE_USAGE });
    this.bufferIds.set(buffer, this.nextId++);
    return buffer;
  }

  /** @internal called when the last view of a storage is disposed */
  release(storage: Storage): void {
    const size = storage.buffer.size;
    this.stats.allocatedBytes -= size;
    this.stats.pooledBytes += size;
    const list = this.free.get(size);
    if (list) list.push(storage.buffer);
    else this.free.set(size, [storage.buffer]);
  }

  /** Frees the pooled buffers (the next allocations create new ones). */
  trimPool(): void {
    this.flush();
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    this.bindGroups.clear();
    this.stats.pooledBytes = 0;
  }

  // ------------------------------------------------------------- kernels

  /** Records one dispatch into the current command encoder. Nothing runs until flush() or a read. */
  run(dispatch: Dispatch): void {
    const d = dispatch as AnyDispatch;
    if (this.lost) throw new DeviceLostError(`the GPU device was lost (${this.lost}); last kernel: ${this.lastKernel}`);
    this.stats.flops += d.flops ?? 0;
    if (this.countOnly) {
      this.stats.dispatches++;
      return;
    }
    const key = pipelineKey(d);
    this.lastKernel = key;
    const entry = this.pipeline(d, key);
    const tensors = boundTensors(d, entry.bindings, key);
    if (!d.half) {
      const wrong = tensors.find((t) => t.dtype !== 'f32');
      if (wrong) throw new KernelError(`kernel ${d.kernel} takes float32 tensors, got ${wrong.describe()}: cast it first (castTensor)`);
    }
    const pipeline = entry.pipeline;
    const bindGroup = this.bindGroup(d, key, entry, tensors);
    const [x, y, z] = typeof d.workgroups === 'number' ? foldWorkgroups(d.workgroups) : d.workgroups;
    if (x === 0 || y === 0 || z === 0) return;

    let pass: GPUComputePassEncoder;
    if (this.profile) {
      // One pass per dispatch so that each kernel gets its own pair of timestamps.
      this.endPass();
      const index = this.profile.labels.length;
      if (index >= 2048) throw new KernelError('a profile holds at most 2048 dispatches; end it sooner');
      this.profile.labels.push({ kernel: d.kernel, key, scope: this.currentScope });
      pass = this.commandEncoder().beginComputePass({
        timestampWrites: { querySet: this.profile.querySet, beginningOfPassWriteIndex: 2 * index, endOfPassWriteIndex: 2 * index + 1 },
      });
      this.pass = pass;
    } else {
      pass = this.computePass();
    }
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    if (this.profile) this.endPass();
    this.pending++;
    this.stats.dispatches++;
  }

  /** Compiles a kernel now and reports WGSL errors (with the kernel's name and specialization). */
  async compile(d: KernelKey): Promise<void> {
    const key = pipelineKey(d);
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code: kernelSource(d, key), label: key });
    const info = await module.getCompilationInfo();
    await this.device.popErrorScope();
    const errors = info.messages.filter((m) => m.type === 'error');
    if (errors.length) {
      throw new KernelError(`kernel ${key} does not compile:\n${errors.map((m) => `  line ${m.lineNum}:${m.linePos} ${m.message}`).join('\n')}`);
    }
  }

  /** Submits everything recorded so far as one command buffer. */
  flush(): void {
    this.endPass();
    if (this.encoder) {
      this.device.queue.submit([this.encoder.finish()]);
      this.stats.submits++;
      this.encoder = null;
    }
    this.pending = 0;
    if (this.uniformBuffers.size > 8192) this.dropUniformCache();
  }

  /**
   * Times every dispatch recorded inside `fn` with timestamp queries, one pass each.
   * Returns the results in dispatch order.
   */
  async profileKernels(fn: () => void): Promise<KernelTiming[]> {
    if (!this.hasTimestamps) throw new KernelError('this adapter has no timestamp-query feature');
    this.flush();
    const querySet = this.device.createQuerySet({ type: 'timestamp', count: 4096 });
    this.profile = { querySet, labels: [] };
    try {
      fn();
    } finally {
      this.endPass();
    }
    const labels = this.profile.labels;
    this.profile = null;
    if (labels.length === 0) {
      querySet.destroy();
      return [];
    }
    const bytes = labels.length * 16;
    const resolve = this.device.createBuffer({ size: bytes, usage: QUERY_RESOLVE | COPY_SRC });
    const staging = this.device.createBuffer({ size: bytes, usage: MAP_READ | COPY_DST });
    const encoder = this.commandEncoder();
    encoder.resolveQuerySet(querySet, 0, labels.length * 2, resolve, 0);
    encoder.copyBufferToBuffer(resolve, 0, staging, 0, bytes);
    this.flush();
    await staging.mapAsync(MAP_MODE_READ);
    const stamps = new BigUint64Array(staging.getMappedRange().slice(0));
    staging.unmap();
    for (const b of [staging, resolve]) b.destroy();
    querySet.destroy();
    this.throwIfBroken();
    return labels.map((l, i) => ({ ...l, ms: Number(stamps[2 * i + 1]! - stamps[2 * i]!) / 1e6 }));
  }

  destroy(): void {
    this.trimPool();
    this.dropUniformCache();
    this.device.destroy();
  }

  /** Throws the first GPU error raised since the last check (compile errors, validation, loss). */
  throwIfBroken(): void {
    if (this.lost) throw new DeviceLostError(`the GPU device was lost (${this.lost}); last kernel: ${this.lastKernel}`);
    const e = this.errors.shift();
    if (e) {
      this.errors.length = 0;
      throw e;
    }
  }

  // -------------------------------------------------------------- private

  private commandEncoder(): GPUCommandEncoder {
    return (this.encoder ??= this.device.createCommandEncoder());
  }

  private computePass(): GPUComputePassEncoder {
    return (this.pass ??= this.commandEncoder().beginComputePass());
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = null;
  }

  private pipeline(d: AnyDispatch, key: string) {
    let entry = this.pipelines.get(key);
    if (!entry) {
      const code = kernelSource(d, key);
      // The bindings this specialization's entry point uses, numbered as its text numbers them.
      const bindings = entryBindings(d, code, key);
      const layoutEntries: GPUBindGroupLayoutEntry[] = [];
      if (hasUniforms(d.kernel)) layoutEntries.push({ binding: 0, visibility: SHADER_STAGE_COMPUTE, buffer: { type: 'uniform' } });
      for (const b of bindings) {
        layoutEntries.push({ binding: b.binding, visibility: SHADER_STAGE_COMPUTE, buffer: { type: b.access === 'read' ? 'read-only-storage' : 'storage' } });
      }
      const group = this.device.createBindGroupLayout({ entries: layoutEntries, label: key });
      this.device.pushErrorScope('validation');
      const module = this.device.createShaderModule({ code, label: key });
      const pipeline = this.device.createComputePipeline({
        label: key,
        layout: this.device.createPipelineLayout({ bindGroupLayouts: [group] }),
        compute: { module, entryPoint: d.entry ?? 'main' },
      });
      this.device.popErrorScope().then((error) => {
        if (error) this.errors.unshift(new KernelError(`kernel ${key} failed to build: ${error.message}`));
      });
      entry = { pipeline, id: this.nextId++, group, bindings };
      this.pipelines.set(key, entry);
    }
    return entry;
  }

  private bindGroup(d: AnyDispatch, key: string, p: { id: number; group: GPUBindGroupLayout; bindings: BindingInfo[] }, tensors: Tensor[]): GPUBindGroup {
    // The key (pipeline, uniform buffer, each buffer and its bound size) first: a fixed-shape
    // step finds every group in the cache, and then builds nothing else.
    const u = this.uniformBuffer(d, key);
    let cacheKey = `${p.id}${u ? `,${u.key}` : ''}`;
    for (const t of tensors) cacheKey += `,${this.bufferIds.get(t.buffer)!}:${byteSize(t.size, t.dtype)}`;
    let group = this.bindGroups.get(cacheKey);
    if (!group) {
      const entries: GPUBindGroupEntry[] = u ? [{ binding: 0, resource: { buffer: u.buffer } }] : [];
      tensors.forEach((t, i) => entries.push({ binding: p.bindings[i]!.binding, resource: { buffer: t.buffer, size: Math.max(byteSize(t.size, t.dtype), 4) } }));
      if (this.bindGroups.size > 16384) this.bindGroups.clear();
      group = this.device.createBindGroup({ layout: p.group, entries });
      this.bindGroups.set(cacheKey, group);
    }
    return group;
  }

  /** Uniform buffers are immutable and cached by content: a fixed-shape step reuses them all. */
  private uniformBuffer(d: AnyDispatch, kernelKey: string): { buffer: GPUBuffer; key: string } | null {
    const words = uniformWords(d, kernelKey);
    if (!words) return null;
    const key = words.join(':');
    let buffer = this.uniformBuffers.get(key);
    if (!buffer) {
      buffer = this.device.createBuffer({ size: words.byteLength, usage: UNIFORM, mappedAtCreation: true });
      new Uint32Array(buffer.getMappedRange()).set(words);
      buffer.unmap();
      this.bufferIds.set(buffer, this.nextId++);
      this.uniformBuffers.set(key, buffer);
    }
    return { buffer, key: `u${this.bufferIds.get(buffer)}` };
  }

  private dropUniformCache(): void {
    // Only called right after a submit: work already submitted keeps destroyed buffers alive.
    for (const b of this.uniformBuffers.values()) b.destroy();
    this.uniformBuffers.clear();
    this.bindGroups.clear();
  }
}

function collectTensors(value: unknown, into: Set<Tensor>, depth = 0): void {
  if (value instanceof Tensor) into.add(value);
  else if (depth < 4 && value && typeof value === 'object') {
    for (const v of Object.values(value)) collectTensors(v, into, depth + 1);
  }
}
