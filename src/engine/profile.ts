// Profiling: every dispatch timed with timestamp queries (one pass each), and the layer scopes
// that say which layer recorded it, so that a profile splits a step by layer and by pass.
import { KernelError } from './dispatch.js';
import { COPY_DST, COPY_SRC, MAP_MODE_READ, MAP_READ, QUERY_RESOLVE } from './memory.js';
import type { Recorder } from './recorder.js';

export interface KernelTiming {
  kernel: string;
  key: string;
  /** The layer that recorded the dispatch (engine.scope), '' outside any. */
  scope: string;
  /** Floating-point operations the dispatch does (2 per multiply-add; 0 where not counted). */
  flops: number;
  ms: number;
}

/** A profile holds at most this many dispatches (two timestamps each). */
const MAX_DISPATCHES = 2048;

export class Profiler {
  private session: { querySet: GPUQuerySet; labels: Omit<KernelTiming, 'ms'>[] } | null = null;
  private readonly layers: string[] = [];

  constructor(private readonly device: GPUDevice) {}

  get active(): boolean {
    return this.session !== null;
  }

  /** Runs `fn` with dispatches attributed to layer `name`; nested, the innermost wins. */
  scope<T>(name: string, fn: () => T): T {
    this.layers.push(name);
    try {
      return fn();
    } finally {
      this.layers.pop();
    }
  }

  get currentScope(): string {
    return this.layers.at(-1) ?? '';
  }

  /** A compute pass of its own for one dispatch, with timestamps at its start and end. */
  timedPass(encoder: GPUCommandEncoder, kernel: string, key: string, flops = 0): GPUComputePassEncoder {
    const s = this.session!;
    const index = s.labels.length;
    if (index >= MAX_DISPATCHES) throw new KernelError(`a profile holds at most ${MAX_DISPATCHES} dispatches; end it sooner`);
    s.labels.push({ kernel, key, scope: this.currentScope, flops });
    return encoder.beginComputePass({ timestampWrites: { querySet: s.querySet, beginningOfPassWriteIndex: 2 * index, endOfPassWriteIndex: 2 * index + 1 } });
  }

  /** Times every dispatch `fn` records; the results in dispatch order. */
  async profile(recorder: Recorder, fn: () => void): Promise<KernelTiming[]> {
    recorder.flush();
    const querySet = this.device.createQuerySet({ type: 'timestamp', count: 2 * MAX_DISPATCHES });
    this.session = { querySet, labels: [] };
    try {
      fn();
    } finally {
      recorder.endPass();
    }
    const labels = this.session.labels;
    this.session = null;
    if (labels.length === 0) {
      querySet.destroy();
      return [];
    }
    const bytes = labels.length * 16;
    const resolve = this.device.createBuffer({ size: bytes, usage: QUERY_RESOLVE | COPY_SRC });
    const staging = this.device.createBuffer({ size: bytes, usage: MAP_READ | COPY_DST });
    const encoder = recorder.commandEncoder();
    encoder.resolveQuerySet(querySet, 0, labels.length * 2, resolve, 0);
    encoder.copyBufferToBuffer(resolve, 0, staging, 0, bytes);
    recorder.flush();
    await staging.mapAsync(MAP_MODE_READ);
    const stamps = new BigUint64Array(staging.getMappedRange().slice(0));
    staging.unmap();
    for (const b of [staging, resolve]) b.destroy();
    querySet.destroy();
    recorder.throwIfBroken();
    return labels.map((l, i) => ({ ...l, ms: Number(stamps[2 * i + 1]! - stamps[2 * i]!) / 1e6 }));
  }
}
