import type { Engine } from './engine.js';

/** A GPU buffer shared by a tensor and its reshaped views; back to the pool when the last one goes. */
export class Storage {
  refs = 1;
  constructor(
    readonly buffer: GPUBuffer,
    /** Bytes in use: the buffer itself may be a little larger (pool size classes). */
    readonly bytes: number,
  ) {}
}

/** How a tensor was computed, for reverse-mode autograd (see src/autograd/tape.ts). */
export interface GradNode {
  /** The op's name, for error messages and profiles. */
  readonly op: string;
  readonly inputs: readonly Tensor[];
  /** Given d(loss)/d(output), returns d(loss)/d(input) for each input (null where none is needed). */
  readonly backward: (gradOutput: Tensor) => (Tensor | null)[];
  /** The layer (engine scope) that recorded it, for profiles. */
  readonly scope?: string;
  /**
   * What the backward function reads besides its gradient: the activations (and per-step copies)
   * a step must keep until backward. Their bytes are the floor of a step's memory (savedBytes).
   */
  readonly saved: readonly Tensor[];
}

/**
 * Element types: float32 everywhere, and float16 for the operands of the mixed-precision path
 * (src/engine/cast.ts). Kernels take float32 unless they say otherwise (engine.run checks).
 */
export type DType = 'f32' | 'f16';

/** Bytes a tensor of `size` elements takes: a whole number of 4-byte words (a binding's granule). */
export function byteSize(size: number, dtype: DType): number {
  return dtype === 'f16' ? Math.ceil(size / 2) * 4 : size * 4;
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeString(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/**
 * An n-dimensional float32 (or float16) array in a GPU buffer, row-major (NCHW for images).
 * Reading it back is explicit and async (`await t.read()`).
 */
export class Tensor {
  readonly size: number;
  /** Gradient accumulated by backward() for tensors that require it. */
  grad: Tensor | null = null;
  /** Set by differentiable ops; null for leaves and for results computed without grad. */
  node: GradNode | null = null;
  /**
   * Called by backward() with this tensor's whole gradient, before it is passed on (module
   * backward hooks). The gradient is freed right after: copy it (engine.readMany records the copy
   * at once) rather than keep it.
   */
  gradHooks: ((grad: Tensor) => void)[] | null = null;
  disposed = false;
  /** Its buffer went back to the pool (dropValues) while it stays in the graph. */
  valuesDropped = false;

  constructor(
    readonly engine: Engine,
    readonly shape: readonly number[],
    readonly storage: Storage,
    public requiresGrad = false,
    public name?: string,
    readonly dtype: DType = 'f32',
  ) {
    this.size = sizeOf(shape);
    engine.track(this);
  }

  get buffer(): GPUBuffer {
    if (this.disposed) throw new Error(`tensor ${this.describe()} was used after it was disposed`);
    if (this.valuesDropped) throw new Error(`tensor ${this.describe()} was read after its values were dropped (dropValues)`);
    return this.storage.buffer;
  }

  get rank(): number {
    return this.shape.length;
  }

  describe(): string {
    return `${this.name ? `"${this.name}" ` : ''}${shapeString(this.shape)}${this.dtype === 'f16' ? ' f16' : ''}`;
  }

  /** A view with another shape on the same buffer (no copy). Not recorded for autograd: use ops.reshape. */
  view(shape: readonly number[]): Tensor {
    if (this.valuesDropped || this.disposed) throw new Error(`cannot view tensor ${this.describe()}: its buffer is gone`);
    const resolved = resolveShape(shape, this.size, this);
    this.storage.refs++;
    return new Tensor(this.engine, resolved, this.storage, false, this.name, this.dtype);
  }

  /** Copies the values back to the CPU (flushes pending GPU work first). */
  read(): Promise<Float32Array> {
    return this.engine.read(this);
  }

  /** Returns the buffer to the engine's pool (once every view of it is disposed too). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.node = null;
    if (!this.valuesDropped && --this.storage.refs === 0) this.engine.release(this.storage);
    this.engine.untrack(this);
  }

  /**
   * Returns the buffer to the pool now but keeps the tensor in the autograd graph (its shape and
   * node): for an intermediate that has had its last reader and that no backward reads - a
   * residual join's input once the join is computed - so that a step's forward pass does not hold
   * it until backward. Reading it afterwards is an error.
   */
  dropValues(): void {
    if (this.disposed || this.valuesDropped) return;
    this.valuesDropped = true;
    if (--this.storage.refs === 0) this.engine.release(this.storage);
  }

  /** Keeps this tensor alive past the enclosing engine.tidy() scope. */
  keep(): this {
    this.engine.untrack(this);
    return this;
  }
}

/** Resolves one -1 in a shape and checks the element count. */
export function resolveShape(shape: readonly number[], size: number, of: Tensor): number[] {
  const out = [...shape];
  const unknown = out.indexOf(-1);
  if (unknown >= 0) {
    const known = out.reduce((p, d, i) => (i === unknown ? p : p * d), 1);
    out[unknown] = known > 0 ? size / known : 0;
  }
  if (out.some((d) => !Number.isInteger(d) || d < 0) || sizeOf(out) !== size) {
    throw new Error(`cannot view tensor ${of.describe()} (${size} elements) as ${shapeString(shape)}`);
  }
  return out;
}
