// The engine's modes: settings that change what the ops do, set for the length of a call
// (engine.with) instead of flipped and restored by hand.
import type { Tensor } from './tensor.js';
import type { ConvShape, GemmShape } from './tune.js';

export interface EngineModes {
  /**
   * Mixed precision: convolutions and linear layers (forward and both backward passes) take f16
   * operands and accumulate in f32; convolutions write f16 activations, which BatchNorm, pooling,
   * resizing, concatenation and the elementwise ops keep f16 (what backward saves takes half the
   * memory); gradients, statistics and the master weights stay f32, and a network's outputs come
   * back f32. Needs the adapter's shader-f16.
   */
  mixedPrecision: boolean;
  /**
   * Mixed precision's gradient scaling (src/autograd/scaler.ts): the scale of the f16 gradient
   * copies and the overflow flag their casts set. Null: a fixed scale of 1024, no flag.
   */
  gradientScaling: { scale: number; flag: Tensor } | null;
  /**
   * A dry run: dispatches are counted (stats.flops, stats.dispatches) but not recorded, and tensors
   * are counted in stats (allocatedBytes, peakBytes) but take no device memory (writes do nothing;
   * reads are refused). A model's FLOPs, shapes and memory at any size, without running it.
   */
  countOnly: boolean;
  /** When set, the GEMM and convolution launchers report every shape they run (for the tuner). */
  traceShapes: ((shape: { gemm: GemmShape } | { conv: ConvShape }) => void) | null;
  /** Autograd records the ops (off for evaluation and optimizer steps: engine.noGrad). */
  grad: boolean;
}

export const DEFAULT_MODES: EngineModes = { mixedPrecision: false, gradientScaling: null, countOnly: false, traceShapes: null, grad: true };

/**
 * Sets `changes` on `modes` for the call of `fn`, and restores what was there when it returns or
 * throws - for an async `fn`, when its promise settles (no other work on the engine meanwhile).
 */
export function withModes<T>(modes: EngineModes, changes: Partial<EngineModes>, fn: () => T): T {
  const before = Object.fromEntries(Object.keys(changes).map((k) => [k, modes[k as keyof EngineModes]])) as Partial<EngineModes>;
  Object.assign(modes, changes);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    Object.assign(modes, before);
    throw e;
  }
  if (result instanceof Promise) return result.finally(() => Object.assign(modes, before)) as T;
  Object.assign(modes, before);
  return result;
}
