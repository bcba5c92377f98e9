// A record of the ops a forward pass runs, for writing the network out as a graph (ONNX export).
// Every differentiable op in ops.ts reports itself here while a trace is active: its kind, the
// tensors it read (in order), the tensor it made, and the attributes that shaped it. Tensors no
// traced op made (weights, BatchNorm statistics, constants) are the graph's initializers; the
// trace keeps a view of each so that its values can still be read after the pass.
import type { Tensor } from '../engine/tensor.js';

export interface TracedOp {
  op: string;
  inputs: Tensor[];
  output: Tensor;
  attrs: Record<string, number | boolean | number[]>;
}

export interface Trace {
  ops: TracedOp[];
  /** Views of the tensors the ops read but no op made, kept alive for reading; dispose() frees them. */
  constants: Map<Tensor, Tensor>;
  dispose(): void;
}

let active: Trace | null = null;
let made: Set<Tensor> | null = null;

/** Runs `fn` (a forward pass) and returns what it computed and the ops it ran, in order. */
export function traceOps<T>(fn: () => T): { result: T; trace: Trace } {
  if (active) throw new Error('traceOps: a trace is already running');
  const trace: Trace = {
    ops: [],
    constants: new Map(),
    dispose() {
      for (const v of this.constants.values()) v.dispose();
      this.constants.clear();
    },
  };
  active = trace;
  made = new Set();
  try {
    return { result: fn(), trace };
  } catch (e) {
    trace.dispose();
    throw e;
  } finally {
    active = null;
    made = null;
  }
}

/**
 * Reports an op to the running trace (if any) and returns its output. `inputs` are in the order
 * the exporter expects for `op` (see src/interop/onnx.ts); `undefined` marks an absent optional one.
 */
export function traced(op: string, inputs: readonly (Tensor | undefined)[], output: Tensor, attrs: TracedOp['attrs'] = {}): Tensor {
  if (!active) return output;
  const present = inputs.filter((t): t is Tensor => t !== undefined);
  for (const t of present) {
    if (!made!.has(t) && !active.constants.has(t)) active.constants.set(t, t.view(t.shape));
  }
  active.ops.push({ op, inputs: inputs.map((t) => t as Tensor), output, attrs });
  made!.add(output);
  return output;
}

export function isTracing(): boolean {
  return active !== null;
}
