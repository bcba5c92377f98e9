// The contract between a launcher and its WGSL kernel, typed from the kernel itself.
//
// scripts/build-kernels.mjs reads each kernels/*.wgsl (src/engine/reflect.ts) into kernelSpecs; the
// types below turn that into one Dispatch type per kernel and entry point, so that a launcher names
// what it binds and `tsc` refuses a misspelled flag, a missing binding or uniform, or an unknown one:
//
//   e.run({
//     kernel: 'unary',
//     params: { EXPR: UNARY.relu, VEC4: true },
//     uniforms: { n: x.size, alpha: 1, beta: 0 },
//     inputs: { a: x },
//     outputs: { out: y },
//     workgroups: Math.ceil(x.size / 4 / 256),
//   });
//
// Uniforms are laid out from the struct's field types and offsets (padding is computed, never
// written), and the same checks run when a pipeline is built, for dispatches put together at run
// time (where the compiler cannot see the literal).
import * as wgslKernels from './wgsl.gen.js';
import { kernelSpecs } from './wgsl.gen.js';
import { type BindingInfo, reflectKernel } from './reflect.js';
import type { Tensor } from './tensor.js';

type Specs = typeof kernelSpecs;
export type KernelName = keyof Specs;
type EntryName<K extends KernelName> = keyof Specs[K]['entries'] & string;
export type KernelParam = number | string | boolean;

/** Placeholders: #if flags are booleans, the rest numbers (tile sizes) or WGSL snippets. */
export type KernelParams<K extends KernelName> = {
  -readonly [P in keyof Specs[K]['params']]: Specs[K]['params'][P] extends 'flag' ? boolean : number | string;
};
type UniformValue<T> = T extends `vec${string}` ? readonly number[] : number;
export type KernelUniforms<K extends KernelName> = {
  [F in Specs[K]['uniforms'][number] as F['name']]: UniformValue<F['type']>;
};
/** Bindings every specialization has are required; those inside an #if are optional. */
type Bound<M> = { [N in keyof M as M[N] extends true ? N : never]: Tensor } & {
  [N in keyof M as M[N] extends true ? never : N]?: Tensor;
};

interface DispatchCommon {
  /** Workgroup counts; a single count over the 65535 limit is folded into x and y. */
  workgroups: number | readonly [number, number, number];
  /** Floating-point operations this dispatch performs (2 per multiply-add), for stats.flops. */
  flops?: number;
  /** The kernel takes f16 tensors (where its parameters say so); any other refuses them. */
  half?: boolean;
}

type Side<K extends KernelName, E extends EntryName<K>, S extends 'inputs' | 'outputs'> =
  Specs[K]['entries'][E] extends { [P in S]: infer M } ? Bound<M> : never;

type DispatchOf<K extends KernelName, E extends EntryName<K>> = DispatchCommon & {
  kernel: K;
  /** Read-only storage bindings by name. */
  inputs: Side<K, E, 'inputs'>;
  /** Read-write storage bindings by name. */
  outputs: Side<K, E, 'outputs'>;
} & (E extends 'main' ? { entry?: 'main' } : { entry: E })
  // Specialization (part of the pipeline cache key) and the `U` struct's fields (not part of it).
  & (keyof Specs[K]['params'] extends never ? { params?: Record<string, never> } : { params: KernelParams<K> })
  & (Specs[K]['uniforms'] extends readonly [] ? { uniforms?: Record<string, never> } : { uniforms: KernelUniforms<K> });

/** One kernel launch: a kernel, its entry point, and what it binds, all by name. */
export type Dispatch = { [K in KernelName]: { [E in EntryName<K>]: DispatchOf<K, E> }[EntryName<K>] }[KernelName];

/** A kernel and its specialization, without bindings: what `compile` and the pipeline cache take. */
export interface KernelKey {
  kernel: KernelName;
  entry?: string;
  params?: Record<string, KernelParam>;
}

/** A dispatch seen without its per-kernel types, as the engine handles it. */
export interface AnyDispatch extends KernelKey, DispatchCommon {
  uniforms?: Record<string, number | readonly number[]>;
  inputs: Record<string, Tensor | undefined>;
  outputs: Record<string, Tensor | undefined>;
}

export class KernelError extends Error {
  override name = 'KernelError';
}

interface Spec {
  params: Record<string, 'flag' | 'value'>;
  uniforms: readonly { name: string; type: string; offset: number }[];
  uniformBytes: number;
  entries: Record<string, { inputs: Record<string, boolean>; outputs: Record<string, boolean> }>;
}

function specOf(kernel: string): Spec {
  const spec = (kernelSpecs as unknown as Record<string, Spec>)[kernel];
  if (!spec) throw new KernelError(`no kernel named ${kernel}`);
  return spec;
}

/** Whether the kernel has a `U` struct (bound at 0). */
export function hasUniforms(kernel: KernelName): boolean {
  return specOf(kernel).uniforms.length > 0;
}

export function pipelineKey(d: KernelKey): string {
  const params = d.params ? Object.entries(d.params).map(([k, v]) => `${k}=${v}`).join(',') : '';
  return `${d.kernel}${d.entry ? `.${d.entry}` : ''}${params ? `{${params}}` : ''}`;
}

/** The WGSL of one specialization, after checking its parameters against the kernel's. */
export function kernelSource(d: KernelKey, key = pipelineKey(d)): string {
  const spec = specOf(d.kernel);
  const entry = d.entry ?? 'main';
  if (!spec.entries[entry]) throw new KernelError(`kernel ${key}: no entry point ${entry} (it has ${Object.keys(spec.entries).join(', ')})`);
  const given = d.params ?? {};
  for (const name of Object.keys(given)) {
    if (!(name in spec.params)) throw new KernelError(`kernel ${key}: unknown parameter ${name} (it takes ${Object.keys(spec.params).join(', ') || 'none'})`);
  }
  for (const [name, kind] of Object.entries(spec.params)) {
    const v = given[name];
    if (v === undefined) throw new KernelError(`kernel ${key}: parameter ${name} is missing`);
    if (kind === 'flag' && typeof v !== 'boolean') throw new KernelError(`kernel ${key}: flag ${name} must be true or false, got ${JSON.stringify(v)}`);
    if (kind === 'value' && typeof v === 'boolean') throw new KernelError(`kernel ${key}: parameter ${name} takes a number or WGSL text, got ${v}`);
  }
  const build = wgslKernels[d.kernel] as (p: Record<string, KernelParam>) => string;
  try {
    return build(given);
  } catch (e) {
    throw new KernelError(`kernel ${key}: ${(e as Error).message}`);
  }
}

/** The storage bindings one specialization's entry point uses, with their binding numbers. */
export function entryBindings(d: KernelKey, source: string, key: string): BindingInfo[] {
  try {
    return reflectKernel(source, `kernel ${key}`).entries[d.entry ?? 'main'] ?? [];
  } catch (e) {
    throw new KernelError((e as Error).message);
  }
}

/** Checks a dispatch's bindings against its pipeline's, and returns the tensors in that order. */
export function boundTensors(d: AnyDispatch, bindings: readonly BindingInfo[], key: string): Tensor[] {
  const entry = specOf(d.kernel).entries[d.entry ?? 'main']!;
  for (const [side, names] of [['inputs', entry.inputs], ['outputs', entry.outputs]] as const) {
    for (const name of Object.keys(d[side])) {
      if (!(name in names)) throw new KernelError(`kernel ${key}: ${side} has no binding named ${name} (it has ${Object.keys(names).join(', ') || 'none'})`);
    }
  }
  return bindings.map((b) => {
    const side = b.access === 'read' ? 'inputs' : 'outputs';
    const t = d[side][b.name];
    if (!t) throw new KernelError(`kernel ${key}: ${side}.${b.name} is missing (binding ${b.binding})`);
    if (t.disposed) throw new KernelError(`kernel ${key} was given tensor ${t.describe()} as ${b.name} after it was disposed`);
    return t;
  });
}

/** Where uniforms are assembled (one set at a time: recording is synchronous), seen as u32, f32, i32. */
const SCRATCH = (() => {
  const buffer = new ArrayBuffer(256);
  return { u32: new Uint32Array(buffer), f32: new Float32Array(buffer), i32: new Int32Array(buffer) };
})();

/** The kernel's `U` struct filled from named values (offsets and padding from the kernel's text). */
export function uniformWords(d: AnyDispatch, key: string): Uint32Array | null {
  const spec = specOf(d.kernel);
  const given = d.uniforms ?? {};
  for (const name of Object.keys(given)) {
    if (!spec.uniforms.some((f) => f.name === name)) throw new KernelError(`kernel ${key}: unknown uniform ${name} (its fields: ${spec.uniforms.map((f) => f.name).join(', ') || 'none'})`);
  }
  if (!spec.uniforms.length) return null;
  if (!d.uniforms) throw new KernelError(`kernel ${key}: its uniforms (${spec.uniforms.map((f) => f.name).join(', ')}) are missing`);
  const words = spec.uniformBytes / 4;
  if (words > SCRATCH.u32.length) throw new KernelError(`kernel ${key}: a ${spec.uniformBytes}-byte uniform struct is more than the engine holds`);
  SCRATCH.u32.fill(0, 0, words);
  for (const f of spec.uniforms) {
    const v = given[f.name];
    if (v === undefined) throw new KernelError(`kernel ${key}: uniform ${f.name} is missing`);
    const values = typeof v === 'number' ? [v] : v;
    const scalar = /^vec(\d)<(\w+)>$/.exec(f.type);
    const count = scalar ? Number(scalar[1]) : 1;
    const type = scalar ? scalar[2]! : f.type;
    if (values.length !== count) throw new KernelError(`kernel ${key}: uniform ${f.name} is a ${f.type}, got ${values.length} values`);
    values.forEach((x, i) => {
      const at = f.offset / 4 + i;
      if (type === 'f32') SCRATCH.f32[at] = x;
      else if (!Number.isInteger(x) || (type === 'u32' ? x < 0 || x > 0xffffffff : x < -(2 ** 31) || x >= 2 ** 31)) {
        throw new KernelError(`kernel ${key}: uniform ${f.name} = ${x} is not a ${type}`);
      } else if (type === 'u32') SCRATCH.u32[at] = x;
      else SCRATCH.i32[at] = x;
    });
  }
  return SCRATCH.u32.subarray(0, words);
}
