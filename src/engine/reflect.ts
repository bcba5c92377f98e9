// What a WGSL kernel takes, read from its text: the one reader of kernels' interfaces.
//
// scripts/build-kernels.mjs runs it on each kernels/*.wgsl as written (placeholders and #if blocks
// still in) to type every launcher against its kernel (kernelSpecs in wgsl.gen.ts); the engine runs
// it again on each specialization it builds, where the #if blocks are resolved, to know exactly
// which binding numbers that pipeline's entry point uses. It imports nothing, so the build script
// can load it before anything is compiled.

export type BindingAccess = 'read' | 'read_write';

export interface UniformField {
  name: string;
  /** u32, i32, f32 or a vecN of them */
  type: string;
  offset: number;
}

export interface BindingInfo {
  name: string;
  /** The @binding number; -1 where #if branches give it different numbers (raw text only). */
  binding: number;
  access: BindingAccess;
  /** Some specialization leaves the declaration out (it sits in an #if without a twin in #else). */
  conditional: boolean;
}

export interface KernelReflection {
  /** Placeholders: 'flag' where #if/#elif tests it, else 'value' (a number or a WGSL snippet). */
  params: Record<string, 'flag' | 'value'>;
  uniforms: { fields: UniformField[]; bytes: number };
  /** Entry point -> the storage bindings its body, or a function it calls, names. */
  entries: Record<string, BindingInfo[]>;
}

/** Size and alignment of the types a uniform struct may hold (WGSL's alignment rules). */
const LAYOUT: Record<string, [size: number, align: number]> = {
  u32: [4, 4], i32: [4, 4], f32: [4, 4],
  'vec2<u32>': [8, 8], 'vec2<i32>': [8, 8], 'vec2<f32>': [8, 8],
  'vec3<u32>': [12, 16], 'vec3<i32>': [12, 16], 'vec3<f32>': [12, 16],
  'vec4<u32>': [16, 16], 'vec4<i32>': [16, 16], 'vec4<f32>': [16, 16],
};

/** The text with comments blanked, line for line. */
function stripComments(src: string): string {
  return src.replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' ')).replace(/\/\/[^\n]*/g, '');
}

/** `struct U { ... }`: its fields in order with their byte offsets, and its size (a multiple of 16). */
function uniformLayout(code: string, where: string): KernelReflection['uniforms'] {
  const m = /struct\s+U\s*\{([^}]*)\}/.exec(code);
  if (!m) return { fields: [], bytes: 0 };
  let offset = 0, align = 16;
  const fields: UniformField[] = [];
  for (const part of m[1]!.split(',').map((s) => s.trim()).filter(Boolean)) {
    const f = /^(\w+)\s*:\s*([\w<>]+)$/.exec(part);
    if (!f) throw new Error(`${where}: cannot read uniform field "${part}"`);
    const layout = LAYOUT[f[2]!];
    if (!layout) throw new Error(`${where}: uniform field ${f[1]} has type ${f[2]}, which is not laid out here`);
    offset = Math.ceil(offset / layout[1]) * layout[1];
    fields.push({ name: f[1]!, type: f[2]!, offset });
    offset += layout[0];
    align = Math.max(align, layout[1]);
  }
  return { fields, bytes: Math.ceil(offset / align) * align };
}

/**
 * Storage bindings by name. A binding is conditional when declared inside an #if block but not in
 * every branch of it (a declaration repeated in #if and #else, as vec4 or scalar say, is always there).
 */
function storageBindings(code: string, where: string): Map<string, BindingInfo> {
  const bindings = new Map<string, BindingInfo & { always: boolean }>();
  const blocks: { branches: Set<string>[]; complete: boolean }[] = [];
  const declare = (name: string) => {
    if (blocks.length) blocks.at(-1)!.branches.at(-1)!.add(name);
    else bindings.get(name)!.always = true;
  };
  for (const line of code.split('\n')) {
    if (/^\s*#if\b/.test(line)) blocks.push({ branches: [new Set()], complete: false });
    else if (/^\s*#elif\b/.test(line)) blocks.at(-1)?.branches.push(new Set());
    else if (/^\s*#else\b/.test(line)) {
      blocks.at(-1)?.branches.push(new Set());
      if (blocks.length) blocks.at(-1)!.complete = true;
    } else if (/^\s*#endif\b/.test(line)) {
      const block = blocks.pop();
      if (!block) throw new Error(`${where}: #endif without #if`);
      if (block.complete) for (const name of block.branches[0]!) if (block.branches.every((b) => b.has(name))) declare(name);
    }
    const m = /@group\(0\)\s*@binding\((\d+)\)\s*var<(\w+)(?:\s*,\s*(\w+))?>\s*(\w+)/.exec(line);
    if (!m) continue;
    const [, number, space, access, name] = m as unknown as [string, string, string, string | undefined, string];
    if (space === 'uniform') {
      if (number !== '0' || name !== 'u') throw new Error(`${where}: the uniforms must be "u" at binding 0, got ${name} at ${number}`);
      continue;
    }
    const mode: BindingAccess = access === 'read_write' ? 'read_write' : 'read';
    const seen = bindings.get(name);
    if (seen && seen.access !== mode) throw new Error(`${where}: binding ${name} is declared both ${seen.access} and ${mode}`);
    if (!seen) bindings.set(name, { name, binding: Number(number), access: mode, conditional: false, always: false });
    else if (seen.binding !== Number(number)) seen.binding = -1;
    declare(name);
  }
  if (blocks.length) throw new Error(`${where}: #if without #endif`);
  const out = new Map<string, BindingInfo>();
  for (const [name, b] of bindings) out.set(name, { name, binding: b.binding, access: b.access, conditional: !b.always });
  return out;
}

/** Functions (name -> identifiers their bodies use) and the @compute entry points among them. */
function functions(code: string, where: string) {
  const fns = new Map<string, Set<string>>();
  const entries: string[] = [];
  const re = /(@compute(?:[^;{]|\$\{\w+\})*?)?\bfn\s+(\w+)\s*\(/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(code))) {
    let open = re.lastIndex;
    while (open < code.length && (code[open] !== '{' || code[open - 1] === '$')) open++; // past any ${} in the signature
    let depth = 0, end = open;
    for (; end < code.length; end++) {
      if (code[end] === '{') depth++;
      else if (code[end] === '}' && --depth === 0) break;
    }
    if (depth !== 0) throw new Error(`${where}: unbalanced braces in fn ${m[2]}`);
    // Identifiers the function names, less member accesses (v.x) and its own parameters and locals.
    const text = code.slice(re.lastIndex, end);
    const locals = new Set([...text.matchAll(/(?:\b(?:let|var|const)\s+|[(,]\s*)(\w+)\s*[:=]/g)].map((l) => l[1]!));
    const words = [...text.matchAll(/(?<![.\w])[A-Za-z_]\w*/g)].map((w) => w[0]).filter((w) => !locals.has(w));
    // A function written twice (in #if and #else) unites both bodies.
    fns.set(m[2]!, new Set([...(fns.get(m[2]!) ?? []), ...words]));
    if (m[1] && !entries.includes(m[2]!)) entries.push(m[2]!);
    re.lastIndex = end;
  }
  return { fns, entries };
}

/** Reads a kernel's interface from its WGSL text (as written, or one specialization of it). */
export function reflectKernel(source: string, where = 'kernel'): KernelReflection {
  const code = stripComments(source);
  const placeholders = [...new Set([...code.matchAll(/\$\{(\w+)\}/g)].map((m) => m[1]!))].sort();
  const flags = new Set([...code.matchAll(/#(?:if|elif)\s*\$\{(\w+)\}/g)].map((m) => m[1]!));
  const params = Object.fromEntries(placeholders.map((p) => [p, flags.has(p) ? 'flag' : 'value'] as const));
  const bindings = storageBindings(code, where);
  const { fns, entries } = functions(code, where);
  if (!entries.length) throw new Error(`${where}: no @compute entry point`);
  const byEntry: Record<string, BindingInfo[]> = {};
  for (const entry of entries) {
    const used = new Set<string>();
    const visit = (name: string, seen: Set<string>) => {
      if (seen.has(name)) return;
      seen.add(name);
      for (const w of fns.get(name)!) {
        if (bindings.has(w)) used.add(w);
        if (fns.has(w)) visit(w, seen);
      }
    };
    visit(entry, new Set());
    byEntry[entry] = [...bindings.values()].filter((b) => used.has(b.name));
  }
  return { params, uniforms: uniformLayout(code, where), entries: byEntry };
}
