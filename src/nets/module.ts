// Modules: parameters and buffers with torchvision-style dotted names, train/eval modes, and the
// state (what a safetensors checkpoint holds). A state entry may be stored as row chunks when one
// tensor would exceed the adapter's binding limit (VGG's 25088 x 4096 classifier on lavapipe).
import type { Engine } from '../engine/engine.js';
import { Tensor } from '../engine/tensor.js';

/** A named tensor of the state, possibly split along its first axis into parts. */
export interface StateEntry {
  name: string;
  shape: number[];
  parts: Tensor[];
  /** Trainable (a parameter) or not (a BatchNorm running statistic). */
  trainable: boolean;
}

/**
 * How convolutions start. 'fan-out': Kaiming normal over fan_out, as torchvision initializes
 * ResNet and VGG (bias 0). 'pytorch': PyTorch's own default for nn.Conv2d, Kaiming uniform with
 * a = sqrt(5) (weights and bias uniform in +-1/sqrt(fan_in)), which the official RepVGG keeps.
 * Behind BatchNorm the scale of a weight does not change what the layer computes, but it does set
 * how far a step of Adam (a fixed size per weight) turns it: the fan-out weights are 2-3x larger,
 * so the same rate moves them 2-3x less (docs/real-data.md).
 */
export type ConvInit = 'fan-out' | 'pytorch';
export const CONV_INITS: readonly ConvInit[] = ['fan-out', 'pytorch'];

/** Deterministic initial weights: each module draws from a stream seeded by its full name. */
export class Init {
  constructor(
    readonly seed: number,
    readonly convs: ConvInit = 'fan-out',
  ) {}

  /** A convolution's weight [out, in, k, k] under this policy. */
  convWeight(name: string, outChannels: number, inChannels: number, kernel: number): Float32Array {
    const n = outChannels * inChannels * kernel * kernel;
    if (this.convs === 'pytorch') return this.uniform(name, n, 1 / Math.sqrt(inChannels * kernel * kernel));
    return this.normal(name, n, Math.sqrt(2 / (outChannels * kernel * kernel)));
  }

  /** A convolution's bias [out] under this policy. */
  convBias(name: string, outChannels: number, inChannels: number, kernel: number): Float32Array {
    if (this.convs === 'pytorch') return this.uniform(name, outChannels, 1 / Math.sqrt(inChannels * kernel * kernel));
    return new Float32Array(outChannels);
  }

  private stream(name: string): () => number {
    let h = this.seed >>> 0;
    for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
    let a = h || 1;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  /** Normal(0, std). */
  normal(name: string, n: number, std: number): Float32Array {
    const r = this.stream(name), out = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      const u = Math.max(r(), 1e-12), v = r();
      const m = std * Math.sqrt(-2 * Math.log(u));
      out[i] = m * Math.cos(2 * Math.PI * v);
      if (i + 1 < n) out[i + 1] = m * Math.sin(2 * Math.PI * v);
    }
    return out;
  }

  /** Uniform(-bound, bound). */
  uniform(name: string, n: number, bound: number): Float32Array {
    const r = this.stream(name), out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = (2 * r() - 1) * bound;
    return out;
  }
}

export abstract class Module {
  training = true;
  private readonly children = new Map<string, Module>();
  private readonly entries = new Map<string, StateEntry>();

  constructor(
    readonly engine: Engine,
    /** The full dotted name of this module ('' for the root), used for seeds and errors. */
    readonly path: string,
  ) {}

  protected child(name: string): string {
    return this.path ? `${this.path}.${name}` : name;
  }

  protected add<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    // Every registered child's forward runs inside an engine scope named by its path, so that a
    // profile attributes each dispatch (and, through the tape, its backward) to a layer.
    // The same wrapper calls the module's hooks (onForward, onBackward) with what it made.
    const forward = (m as unknown as { forward?: unknown }).forward;
    if (typeof forward === 'function') {
      Object.defineProperty(m, 'forward', {
        value: (...args: unknown[]) => {
          const out = m.engine.scope(m.path, () => forward.apply(m, args)) as unknown;
          for (const hook of m.forwardHooks) hook(out, args);
          if (m.backwardHooks.length && out instanceof Tensor) (out.gradHooks ??= []).push(...m.backwardHooks);
          return out;
        },
        configurable: true,
        writable: true,
      });
    }
    return m;
  }

  private readonly forwardHooks: ((output: unknown, inputs: unknown[]) => void)[] = [];
  private readonly backwardHooks: ((gradOutput: Tensor) => void)[] = [];

  /**
   * Calls `hook(output, inputs)` after every forward pass of this module (a registered child),
   * e.g. to read an activation by layer path: `net.find('trunk.layer2.0').onForward(...)`.
   * An output that only a residual join reads is freed once the join exists (tensor.dropValues):
   * read it in the hook (`engine.readMany` records the copy at once) rather than keep it.
   * Returns a function that removes the hook.
   */
  onForward(hook: (output: unknown, inputs: unknown[]) => void): () => void {
    this.forwardHooks.push(hook);
    return () => void this.forwardHooks.splice(this.forwardHooks.indexOf(hook), 1);
  }

  /**
   * Calls `hook(gradient)` in backward() with the gradient of this module's output (when its
   * forward returns one tensor), before it flows into the module. The gradient is freed right
   * after the hook: copy it (engine.readMany) rather than keep it. Returns the remover.
   */
  onBackward(hook: (gradOutput: Tensor) => void): () => void {
    this.backwardHooks.push(hook);
    return () => void this.backwardHooks.splice(this.backwardHooks.indexOf(hook), 1);
  }

  /** The module at a dotted path below this one (`trunk.layer2.0`), or an error naming the path. */
  find(path: string): Module {
    const found = this.modules().find((m) => m.path === path);
    if (!found) throw new Error(`no module at "${path}" (e.g. ${this.modules().slice(1, 4).map((m) => m.path).join(', ')})`);
    return found;
  }

  /** Registers a tensor of the state, uploaded from `data` and split into row chunks if it must be. */
  protected state(name: string, shape: number[], data: Float32Array, trainable: boolean): Tensor[] {
    const full = this.child(name);
    const rowElems = shape.slice(1).reduce((a, b) => a * b, 1);
    const rowsPerPart = Math.max(1, Math.floor(this.engine.maxTensorBytes / 4 / Math.max(rowElems, 1)));
    const parts: Tensor[] = [];
    for (let row = 0; row < (shape[0] ?? 1); row += rowsPerPart) {
      const rows = Math.min(rowsPerPart, shape[0]! - row);
      const partShape = shape.length ? [rows, ...shape.slice(1)] : [1];
      const t = this.engine.tensor(data.subarray(row * rowElems, (row + rows) * rowElems), partShape, parts.length ? `${full}[part ${parts.length}]` : full).keep();
      t.requiresGrad = trainable;
      parts.push(t);
      if (!shape.length) break;
    }
    this.entries.set(name, { name: full, shape, parts, trainable });
    return parts;
  }

  protected param(name: string, shape: number[], data: Float32Array): Tensor {
    return this.state(name, shape, data, true)[0]!;
  }

  protected buffer(name: string, shape: number[], data: Float32Array): Tensor {
    return this.state(name, shape, data, false)[0]!;
  }

  /** Removes a state entry (and frees it): used when re-parameterization replaces branches. */
  protected dropState(name: string): void {
    const e = this.entries.get(name);
    for (const t of e?.parts ?? []) t.dispose();
    this.entries.delete(name);
  }

  protected dropChild(name: string): void {
    this.children.get(name)?.dispose();
    this.children.delete(name);
  }

  /** Every state entry of this module and its children, in definition order, with full names. */
  stateEntries(): StateEntry[] {
    const out: StateEntry[] = [...this.entries.values()];
    for (const c of this.children.values()) out.push(...c.stateEntries());
    return out;
  }

  /** Trainable tensors (the parts of every parameter), for the optimizer. */
  parameters(): Tensor[] {
    return this.stateEntries().filter((e) => e.trainable).flatMap((e) => e.parts);
  }

  /** Number of values in trainable parameters (what papers call the parameter count). */
  parameterCount(): number {
    return this.stateEntries().filter((e) => e.trainable).reduce((s, e) => s + e.shape.reduce((a, b) => a * b, 1), 0);
  }

  setTraining(training: boolean): this {
    this.training = training;
    for (const c of this.children.values()) c.setTraining(training);
    return this;
  }

  modules(): Module[] {
    return [this, ...[...this.children.values()].flatMap((c) => c.modules())];
  }

  dispose(): void {
    for (const e of this.entries.values()) for (const t of e.parts) t.dispose();
    for (const c of this.children.values()) c.dispose();
  }
}
