// Dispatch and its caches: pipelines per specialization, uniform buffers by content, bind groups
// by the buffers they bind, and the one command encoder (and compute pass) that a step records
// into. Also where GPU errors and a lost device are collected and turned into exceptions.
import { type AnyDispatch, KernelError, type KernelKey, boundTensors, entryBindings, hasUniforms, kernelSource, pipelineKey, uniformWords } from './dispatch.js';
import { type EngineStats, UNIFORM, bufferId } from './memory.js';
import type { Profiler } from './profile.js';
import type { BindingInfo } from './reflect.js';
import { type Tensor, byteSize } from './tensor.js';

export class DeviceLostError extends Error {
  override name = 'DeviceLostError';
}

const MAX_WORKGROUPS = 65535;
const SHADER_STAGE_COMPUTE = 0x4;

/** Splits `count` workgroups into a grid that fits the per-dimension limit. Kernels index by x + y * nx. */
export function foldWorkgroups(count: number): [number, number, number] {
  if (count <= MAX_WORKGROUPS) return [Math.max(1, count), 1, 1];
  const y = Math.ceil(count / MAX_WORKGROUPS);
  if (y > MAX_WORKGROUPS) throw new KernelError(`${count} workgroups is more than one dispatch can hold`);
  return [Math.ceil(count / y), y, 1];
}

interface Pipeline {
  pipeline: GPUComputePipeline;
  id: number;
  group: GPUBindGroupLayout;
  /** The storage bindings this specialization's entry point uses, numbered as its text numbers them. */
  bindings: BindingInfo[];
}

export class Recorder {
  private readonly pipelines = new Map<string, Pipeline>();
  private readonly uniformBuffers = new Map<string, GPUBuffer>();
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private nextPipelineId = 1;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  /** Commands recorded and not yet submitted. */
  pending = 0;
  private readonly errors: Error[] = [];
  private lost: string | null = null;
  private lastKernel = '(none yet)';

  constructor(private readonly device: GPUDevice, private readonly stats: EngineStats, private readonly profiler: Profiler) {
    device.lost.then((info) => {
      this.lost = `${info.reason}: ${info.message}`;
    });
    device.onuncapturederror = (event: GPUUncapturedErrorEvent) => {
      this.errors.push(new KernelError(`GPU error after kernel ${this.lastKernel}: ${event.error.message}`));
    };
  }

  /** Throws if the device is gone: nothing may be recorded on a lost device. */
  checkAlive(): void {
    if (this.lost) throw new DeviceLostError(`the GPU device was lost (${this.lost}); last kernel: ${this.lastKernel}`);
  }

  /** Throws the first GPU error raised since the last check (compile errors, validation, loss). */
  throwIfBroken(): void {
    this.checkAlive();
    const e = this.errors.shift();
    if (e) {
      this.errors.length = 0;
      throw e;
    }
  }

  /** Records one dispatch (the engine has checked that the device is alive: engine.run). */
  run(d: AnyDispatch): void {
    const key = pipelineKey(d);
    this.lastKernel = key;
    const entry = this.pipeline(d, key);
    const tensors = boundTensors(d, entry.bindings, key);
    if (!d.half) {
      const wrong = tensors.find((t) => t.dtype !== 'f32');
      if (wrong) throw new KernelError(`kernel ${d.kernel} takes float32 tensors, got ${wrong.describe()}: cast it first (castTensor)`);
    }
    const bindGroup = this.bindGroup(d, key, entry, tensors);
    const [x, y, z] = typeof d.workgroups === 'number' ? foldWorkgroups(d.workgroups) : d.workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    let pass: GPUComputePassEncoder;
    if (this.profiler.active) {
      // One pass per dispatch so that each kernel gets its own pair of timestamps.
      this.endPass();
      pass = this.pass = this.profiler.timedPass(this.commandEncoder(), d.kernel, key, d.flops ?? 0);
    } else {
      pass = this.pass ??= this.commandEncoder().beginComputePass();
    }
    pass.setPipeline(entry.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    if (this.profiler.active) this.endPass();
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

  /** The encoder that the next command goes into (the current pass ended first). */
  commandEncoder(): GPUCommandEncoder {
    this.endPass();
    return (this.encoder ??= this.device.createCommandEncoder());
  }

  endPass(): void {
    this.pass?.end();
    this.pass = null;
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
    if (this.uniformBuffers.size > 8192) this.dropCaches();
  }

  /** Forgets the bind groups (their buffers are being destroyed). */
  forgetBindGroups(): void {
    this.bindGroups.clear();
  }

  /** Forgets bind groups and uniform buffers (only right after a submit: submitted work keeps them alive). */
  dropCaches(): void {
    for (const b of this.uniformBuffers.values()) b.destroy();
    this.uniformBuffers.clear();
    this.bindGroups.clear();
  }

  private pipeline(d: AnyDispatch, key: string): Pipeline {
    let entry = this.pipelines.get(key);
    if (!entry) {
      const code = kernelSource(d, key);
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
      entry = { pipeline, id: this.nextPipelineId++, group, bindings };
      this.pipelines.set(key, entry);
    }
    return entry;
  }

  private bindGroup(d: AnyDispatch, key: string, p: Pipeline, tensors: Tensor[]): GPUBindGroup {
    // The key (pipeline, uniform buffer, each buffer and its bound size) first: a fixed-shape
    // step finds every group in the cache, and then builds nothing else.
    const u = this.uniformBuffer(d, key);
    let cacheKey = `${p.id}${u ? `,u${bufferId(u)}` : ''}`;
    for (const t of tensors) cacheKey += `,${bufferId(t.buffer)}:${byteSize(t.size, t.dtype)}`;
    let group = this.bindGroups.get(cacheKey);
    if (!group) {
      const entries: GPUBindGroupEntry[] = u ? [{ binding: 0, resource: { buffer: u } }] : [];
      tensors.forEach((t, i) => entries.push({ binding: p.bindings[i]!.binding, resource: { buffer: t.buffer, size: Math.max(byteSize(t.size, t.dtype), 4) } }));
      if (this.bindGroups.size > 16384) this.bindGroups.clear();
      group = this.device.createBindGroup({ layout: p.group, entries });
      this.stats.bindGroupsCreated++;
      this.bindGroups.set(cacheKey, group);
    }
    return group;
  }

  /** Uniform buffers are immutable and cached by content: a fixed-shape step reuses them all. */
  private uniformBuffer(d: AnyDispatch, kernelKey: string): GPUBuffer | null {
    const words = uniformWords(d, kernelKey);
    if (!words) return null;
    const key = words.join(':');
    let buffer = this.uniformBuffers.get(key);
    if (!buffer) {
      buffer = this.device.createBuffer({ size: words.byteLength, usage: UNIFORM, mappedAtCreation: true });
      new Uint32Array(buffer.getMappedRange()).set(words);
      buffer.unmap();
      this.uniformBuffers.set(key, buffer);
    }
    return buffer;
  }
}
