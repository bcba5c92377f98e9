// The engine: one GPUDevice and what a step needs around it, each part in a file of its own -
// the buffer pool and tidy scopes (memory.ts), dispatch and its caches (recorder.ts), tensor I/O
// (io.ts), profiling (profile.ts) and the scoped modes (modes.ts). It imports nothing from Node:
// whoever embeds it hands it a GPUDevice.
import { type AnyDispatch, type Dispatch, KernelError, type KernelKey } from './dispatch.js';
import { readTensor, readTensors, writeTensor } from './io.js';
import { BufferPool, type EngineStats, TensorScopes } from './memory.js';
import { DEFAULT_MODES, type EngineModes, withModes } from './modes.js';
import { type KernelTiming, Profiler } from './profile.js';
import { Recorder } from './recorder.js';
import { type DType, Storage, Tensor, byteSize, shapeString, sizeOf } from './tensor.js';
import type { TuningTable } from './tune.js';

export { KernelError, type Dispatch, type KernelName } from './dispatch.js';
export { sizeClass } from './memory.js';
export type { EngineModes } from './modes.js';
export type { KernelTiming } from './profile.js';
export { DeviceLostError, foldWorkgroups } from './recorder.js';

export class TensorTooLargeError extends Error {
  override name = 'TensorTooLargeError';
}

/** The adapter's name as tuning tables key it: "vendor/architecture/description". */
export function adapterName(info: Pick<GPUAdapterInfo, 'vendor' | 'architecture' | 'description'> | undefined): string {
  return info ? `${info.vendor}/${info.architecture}/${info.description}` : 'unknown adapter';
}

export class Engine {
  readonly limits: GPUSupportedLimits;
  readonly hasTimestamps: boolean;
  /** The device has `shader-f16`: f16 tensors and the mixed-precision path are available. */
  readonly hasF16: boolean;
  /** A cap on the bytes one tensor may take: the adapter's storage-binding limit. */
  readonly maxTensorBytes: number;
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

  /** Counters: bytes held (now, at peak since resetPeak(), pooled), buffers created, dispatches, submits, FLOPs. */
  readonly stats: EngineStats = { allocatedBytes: 0, peakBytes: 0, largestTensorBytes: 0, pooledBytes: 0, buffersCreated: 0, bindGroupsCreated: 0, dispatches: 0, submits: 0, flops: 0 };

  private readonly current: EngineModes = { ...DEFAULT_MODES };
  private readonly pool: BufferPool;
  private readonly scopes = new TensorScopes();
  private readonly profiler: Profiler;
  private readonly recorder: Recorder;

  constructor(readonly device: GPUDevice, options: { adapter?: string; tuning?: TuningTable } = {}) {
    this.adapter = options.adapter ?? adapterName((device as { adapterInfo?: GPUAdapterInfo }).adapterInfo);
    this.tuning = options.tuning;
    this.useSubgroups = device.features.has('subgroups');
    this.limits = device.limits;
    this.hasTimestamps = device.features.has('timestamp-query');
    this.hasF16 = device.features.has('shader-f16');
    this.maxTensorBytes = device.limits.maxStorageBufferBindingSize;
    this.pool = new BufferPool(device, this.stats);
    this.profiler = new Profiler(device);
    this.recorder = new Recorder(device, this.stats, this.profiler);
  }

  // ----------------------------------------------------------------- modes

  /** The modes in force (set them for a call with `with`). */
  get modes(): Readonly<EngineModes> {
    return this.current;
  }

  get mixedPrecision(): boolean {
    return this.current.mixedPrecision;
  }

  get gradientScaling(): EngineModes['gradientScaling'] {
    return this.current.gradientScaling;
  }

  get countOnly(): boolean {
    return this.current.countOnly;
  }

  get traceShapes(): EngineModes['traceShapes'] {
    return this.current.traceShapes;
  }

  /**
   * Runs `fn` with `modes` in force and restores the previous ones when it returns or throws (for
   * an async `fn`, when its promise settles; nothing else may run on the engine meanwhile):
   * `engine.with({ mixedPrecision: true }, () => step())`.
   */
  with<T>(modes: Partial<EngineModes>, fn: () => T): T {
    if (modes.mixedPrecision && !this.hasF16) throw new KernelError('mixed precision needs the adapter\'s shader-f16 feature, which this one lacks');
    return withModes(this.current, modes, fn);
  }

  /** Runs `fn` without recording anything for autograd (evaluation, optimizer steps). */
  noGrad<T>(fn: () => T): T {
    return this.with({ grad: false }, fn);
  }

  // ---------------------------------------------------------------- tensors

  /** An uninitialized tensor from the pool (float32 unless `dtype` says f16). */
  empty(shape: readonly number[], name?: string, dtype: DType = 'f32'): Tensor {
    if (dtype === 'f16' && !this.hasF16) throw new KernelError(`tensor ${name ? `"${name}" ` : ''}${shapeString(shape)}: this adapter has no shader-f16 feature, so no f16 tensors`);
    const bytes = byteSize(sizeOf(shape), dtype);
    if (shape.some((d) => !Number.isInteger(d) || d < 0)) {
      throw new Error(`impossible shape ${shapeString(shape)}${name ? ` for tensor "${name}"` : ''}`);
    }
    // A dry run sizes any step: the one-tensor limit of this adapter is reported, not enforced.
    if (bytes > this.maxTensorBytes && !this.current.countOnly) {
      throw new TensorTooLargeError(
        `tensor ${name ? `"${name}" ` : ''}${shapeString(shape)} needs ${(bytes / 2 ** 20).toFixed(1)} MiB, ` +
          `over this adapter's maxStorageBufferBindingSize of ${(this.maxTensorBytes / 2 ** 20).toFixed(1)} MiB; ` +
          `use a smaller batch or image size`,
      );
    }
    return new Tensor(this, shape, new Storage(this.pool.acquire(bytes, this.current.countOnly), bytes), false, name, dtype);
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
    this.run({ kernel: 'fill', uniforms: { n: t.size, value }, inputs: {}, outputs: { out: t }, workgroups: Math.ceil(t.size / 256) });
  }

  /** Overwrites a tensor's contents from the CPU (nothing in a dry run: engine.countOnly). */
  write(t: Tensor, data: Float32Array): void {
    // (A placeholder's write of the wrong length still reaches writeTensor, which refuses it.)
    if (this.pool.isPlaceholder(t.buffer) && data.length === t.size) return;
    writeTensor(this.device, this.recorder, t, data);
  }

  async read(t: Tensor): Promise<Float32Array> {
    this.refuseDryRun([t]);
    return readTensor(this.device, this.recorder, t);
  }

  /** Several tensors in one submission with the work before them (see io.ts). */
  async readMany(tensors: readonly Tensor[]): Promise<Float32Array[]> {
    this.refuseDryRun(tensors);
    return readTensors(this.device, this.recorder, tensors);
  }

  private refuseDryRun(tensors: readonly Tensor[]): void {
    const counted = tensors.find((t) => this.pool.isPlaceholder(t.buffer));
    if (counted) throw new KernelError(`tensor ${counted.describe()} was made in a dry run (countOnly): it has no values on the device`);
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
    return this.scopes.run(fn);
  }

  /** tidy() for async work: no other tensor work may interleave with `fn` meanwhile. */
  tidyAsync<T>(fn: () => Promise<T>): Promise<T> {
    return this.scopes.runAsync(fn);
  }

  /** @internal called by Tensor */
  track(t: Tensor): void {
    this.scopes.track(t);
  }

  /** @internal called by Tensor */
  untrack(t: Tensor): void {
    this.scopes.untrack(t);
  }

  /** Whether an open tidy() scope will dispose t at its end: t is a temporary of the work in progress. */
  isTemporary(t: Tensor): boolean {
    return this.scopes.tracks(t);
  }

  /** @internal called when the last view of a storage is disposed */
  release(storage: Storage): void {
    this.pool.release(storage.buffer, storage.bytes);
  }

  /** Starts a new high-water mark (stats.peakBytes, stats.largestTensorBytes) from what is live now. */
  resetPeak(): void {
    this.stats.peakBytes = this.stats.allocatedBytes;
    this.stats.largestTensorBytes = 0;
  }

  /** Frees the pooled buffers (the next allocations create new ones). */
  trimPool(): void {
    this.flush();
    this.pool.trim();
    this.recorder.forgetBindGroups();
  }

  // ------------------------------------------------------- scopes (layers)

  /**
   * Runs `fn` with dispatches attributed to `name` (a layer's dotted name) in profiles, so that a
   * profile of a training step says where the time goes layer by layer. Nested: the innermost wins.
   */
  scope<T>(name: string, fn: () => T): T {
    return this.profiler.scope(name, fn);
  }

  /** The innermost scope's name, '' outside any. */
  get currentScope(): string {
    return this.profiler.currentScope;
  }

  // ------------------------------------------------------------- kernels

  /** Records one dispatch into the current command encoder. Nothing runs until flush() or a read. */
  run(dispatch: Dispatch): void {
    const d = dispatch as AnyDispatch;
    this.recorder.checkAlive();
    this.stats.flops += d.flops ?? 0;
    if (this.current.countOnly) {
      this.stats.dispatches++;
      return;
    }
    this.recorder.run(d);
  }

  /** Compiles a kernel now and reports WGSL errors (with the kernel's name and specialization). */
  compile(d: KernelKey): Promise<void> {
    return this.recorder.compile(d);
  }

  /** Submits everything recorded so far as one command buffer. */
  flush(): void {
    this.recorder.flush();
  }

  /**
   * Times every dispatch recorded inside `fn` with timestamp queries, one pass each.
   * Returns the results in dispatch order.
   */
  profileKernels(fn: () => void): Promise<KernelTiming[]> {
    if (!this.hasTimestamps) return Promise.reject(new KernelError('this adapter has no timestamp-query feature'));
    return this.profiler.profile(this.recorder, fn);
  }

  destroy(): void {
    this.trimPool();
    this.recorder.dropCaches();
    this.device.destroy();
  }

  /** Throws the first GPU error raised since the last check (compile errors, validation, loss). */
  throwIfBroken(): void {
    this.recorder.throwIfBroken();
  }
}
