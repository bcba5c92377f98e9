// The typed contract between launchers and kernels (src/engine/dispatch.ts, reflect.ts).
// Its compile-time half is `wrongDispatches` below: each call there must stay a tsc error, and
// `make test` type-checks this file first (an @ts-expect-error that no longer errors fails it).
import t from 'tap';
import type { Engine } from '../src/engine/engine.js';
import type { AnyDispatch, Dispatch } from '../src/engine/dispatch.js';
import { reflectKernel } from '../src/engine/reflect.js';
import { kernelSpecs } from '../src/engine/wgsl.gen.js';
import type { Tensor } from '../src/engine/tensor.js';
import { gpuEngine } from './helpers/gpu.js';

// Never called: type-checked only.
export function wrongDispatches(e: Engine, x: Tensor, y: Tensor): void {
  const conv = { HALF: false, OUT_HALF: false, KH: 3, KW: 3, HAS_BIAS: false, AFFINE: false, TM: 4, TN: 4, WG_X: 8, WG_Y: 8 };
  const uniforms = { N: 1, C: 1, H: 4, W: 4, K: 1, OH: 4, OW: 4, stride: 1, pad: 1 };
  e.run({ kernel: 'conv2d', params: { ...conv, RELU: true }, uniforms, inputs: { x, w: y }, outputs: { out: y }, workgroups: 1 });
  // @ts-expect-error the misspelled flag RELLU leaves RELU missing (it used to drop the fused ReLU silently)
  e.run({ kernel: 'conv2d', params: { ...conv, RELLU: true }, uniforms, inputs: { x, w: y }, outputs: { out: y }, workgroups: 1 });
  // @ts-expect-error a flag is a boolean
  e.run({ kernel: 'unary', params: { EXPR: 'x', VEC4: 1 }, uniforms: { n: 4, alpha: 1, beta: 0 }, inputs: { a: x }, outputs: { out: y }, workgroups: 1 });
  // @ts-expect-error the weight binding is missing
  e.run({ kernel: 'conv2d', params: { ...conv, RELU: false }, uniforms, inputs: { x }, outputs: { out: y }, workgroups: 1 });
  // @ts-expect-error an input bound as an output
  e.run({ kernel: 'unary', params: { EXPR: 'x', VEC4: false }, uniforms: { n: 4, alpha: 1, beta: 0 }, inputs: {}, outputs: { a: x, out: y }, workgroups: 1 });
  // @ts-expect-error a uniform is missing (beta)
  e.run({ kernel: 'unary', params: { EXPR: 'x', VEC4: false }, uniforms: { n: 4, alpha: 1 }, inputs: { a: x }, outputs: { out: y }, workgroups: 1 });
  // @ts-expect-error a uniform of the wrong type
  e.run({ kernel: 'unary', params: { EXPR: 'x', VEC4: false }, uniforms: { n: 4, alpha: 'one', beta: 0 }, inputs: { a: x }, outputs: { out: y }, workgroups: 1 });
  // @ts-expect-error an entry point the kernel does not have
  e.run({ kernel: 'pool', entry: 'min_forward', uniforms: { P: 1, H: 2, W: 2, OH: 1, OW: 1, k: 2, stride: 2, pad: 0 }, inputs: { src: x }, outputs: { out: y }, workgroups: 1 });
  // @ts-expect-error the bindings of another entry point of the same kernel
  e.run({ kernel: 'pool', entry: 'avg_backward', uniforms: { P: 1, H: 2, W: 2, OH: 1, OW: 1, k: 2, stride: 2, pad: 0 }, inputs: { src: x }, outputs: { out: y }, workgroups: 1 });
}

t.test('the reader lays out uniforms by WGSL alignment and finds what each entry point binds', async (t) => {
  const r = reflectKernel(`
    struct U { n: u32, scale: f32, shift: vec4<f32>, size: vec2<u32>, last: f32 }
    @group(0) @binding(0) var<uniform> u: U;
    @group(0) @binding(1) var<storage, read> a: array<f32>;   // used through a helper
    #if \${VEC4}
    @group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
    #else
    @group(0) @binding(2) var<storage, read> b: array<f32>;
    #endif
    #if \${HAS_BIAS}
    @group(0) @binding(3) var<storage, read> bias: array<f32>;
    #endif
    @group(0) @binding(4) var<storage, read_write> out: array<f32>;
    @group(0) @binding(1) var<storage, read_write> other: array<f32>;
    fn helper(i: u32) -> f32 { return a[i]; }
    @compute @workgroup_size(\${WG})
    fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
      let other = 2.0;   // a local that shadows a binding's name
      out[gid.x] = helper(gid.x) + f32(b[0]) * other;
    }
    @compute @workgroup_size(64)
    fn second(@builtin(global_invocation_id) gid: vec3<u32>) { other[gid.x] = 0.0; }
  `);
  t.same(r.params, { HAS_BIAS: 'flag', VEC4: 'flag', WG: 'value' });
  t.same(r.uniforms.fields.map((f) => [f.name, f.offset]), [['n', 0], ['scale', 4], ['shift', 16], ['size', 32], ['last', 40]]);
  t.equal(r.uniforms.bytes, 48, 'the struct rounds up to its 16-byte alignment');
  const main = Object.fromEntries(r.entries.main!.map((b) => [b.name, [b.access, b.conditional]]));
  t.same(main, { a: ['read', false], b: ['read', false], out: ['read_write', false] }, 'b is declared in both branches; bias and other are not used by main');
  t.same(r.entries.second!.map((b) => b.name), ['other']);
  t.throws(() => reflectKernel('struct U { m: mat2x2<f32> }\n@compute @workgroup_size(1) fn main() {}', 'k'), /uniform field m has type mat2x2<f32>/);
  t.throws(() => reflectKernel('#if ${X}\n@compute @workgroup_size(1) fn main() {}', 'k'), /k: #if without #endif/);
});

t.test('every kernel has a descriptor, with its uniform fields in offset order', async (t) => {
  for (const [name, spec] of Object.entries(kernelSpecs)) {
    const offsets = spec.uniforms.map((f) => f.offset);
    t.same(offsets, [...offsets].sort((a, b) => a - b), `${name}: offsets ascend`);
    t.ok(Object.keys(spec.entries).length > 0, `${name}: has an entry point`);
    for (const [entry, e] of Object.entries(spec.entries)) {
      t.ok(Object.keys(e.outputs).length > 0, `${name}.${entry} writes something`);
    }
  }
  // The two padding words written by hand before this contract are gone; the offsets are computed.
  t.same(kernelSpecs.binary.uniforms.map((f) => f.name).slice(0, 4), ['n', 'alpha', 'beta', 'a0']);
  t.equal(kernelSpecs.binary.uniforms[3]!.offset, 12);
});

t.test('dispatches built at run time get the same checks when their pipeline is built', async (t) => {
  const e = await gpuEngine(t);
  const x = e.tensor([1, -2, 3, -4], [4]), y = e.empty([4]);
  const unary = (over: Partial<AnyDispatch>): AnyDispatch => ({
    kernel: 'unary', params: { EXPR: 'max(x, T(0.0))', VEC4: false, HALF: false }, uniforms: { n: 4, alpha: 1, beta: 0 }, inputs: { a: x }, outputs: { out: y }, workgroups: 1, ...over,
  });
  const run = (d: AnyDispatch) => () => e.run(d as Dispatch);
  run(unary({}))();
  t.same([...(await y.read())], [1, 0, 3, 0], 'a well-formed dispatch runs');
  t.throws(run(unary({ params: { EXPR: 'x', VEC4: false, HALF: false, RELLU: true } })), { name: 'KernelError', message: /kernel unary\{.*\}: unknown parameter RELLU \(it takes EXPR, HALF, VEC4\)/ });
  t.throws(run(unary({ params: { EXPR: 'x', HALF: false } })), /parameter VEC4 is missing/);
  t.throws(run(unary({ params: { EXPR: 'x', VEC4: 1, HALF: false } })), /flag VEC4 must be true or false, got 1/);
  t.throws(run(unary({ inputs: {} })), /kernel unary\{.*\}: inputs\.a is missing \(binding 1\)/);
  t.throws(run(unary({ inputs: { a: x, b: x } })), /inputs has no binding named b \(it has a\)/);
  t.throws(run(unary({ uniforms: { n: 4, alpha: 1 } })), /uniform beta is missing/);
  t.throws(run(unary({ uniforms: { n: 4, alpha: 1, beta: 0, gamma: 2 } })), /unknown uniform gamma/);
  t.throws(run(unary({ uniforms: { n: 4.5, alpha: 1, beta: 0 } })), /uniform n = 4.5 is not a u32/);
  t.throws(run(unary({ entry: 'forward' })), /no entry point forward \(it has main\)/);
  t.throws(run({ ...unary({}), kernel: 'no_such_kernel' as never }), /no kernel named no_such_kernel/);
  const gone = e.zeros([4]);
  gone.dispose();
  t.throws(run(unary({ inputs: { a: gone } })), /was given tensor .* as a after it was disposed/);
  // A binding that only some specializations declare: conv2d's bias exists with HAS_BIAS alone.
  t.same(kernelSpecs.conv2d.entries.main.inputs, { x: true, w: true, bias: false, scale: false, shift: false });
});

t.test('one GEMM core: the six GEMM and convolution kernels take their tile loop from kernels/core', async (t) => {
  const { readFileSync, readdirSync } = await import('node:fs');
  const dir = new URL('../kernels/', import.meta.url);
  const register = ['gemm', 'conv2d', 'conv2d_grad_input', 'conv2d_grad_weight'];
  const workgroup = ['gemm_tiled', 'conv2d_tiled'];
  for (const name of readdirSync(dir).filter((f) => f.endsWith('.wgsl'))) {
    const text = readFileSync(new URL(name, dir), 'utf8');
    const kernel = name.replace('.wgsl', '');
    // (roof.wgsl's FMA chain measures the adapter's peak; it multiplies no matrices.)
    if (kernel !== 'roof') t.notMatch(text, /fma\(/, `${name} multiplies and accumulates through the core, not a loop of its own`);
    if (register.includes(kernel)) t.match(text, /^\/\/! include core\/register_tile\.wgsl$/m, `${name} includes the register core`);
    if (workgroup.includes(kernel)) t.match(text, /^\/\/! include core\/workgroup_tile\.wgsl$/m, `${name} includes the workgroup-memory core`);
  }
  // The generator composes them: each kernel's source holds the core's mm_step once.
  const wgsl = await import('../src/engine/wgsl.gen.js');
  const sources: Record<string, string> = {
    gemm: wgsl.gemm({ HALF: false, OUT_HALF: false, HAS_BIAS: false, K_BLOCKED: true, RELU: false, TM: 4, TN: 4, TRANS_A: false, TRANS_B: true, VEC_B: false, WG_X: 8, WG_Y: 8 }),
    gemm_tiled: wgsl.gemm_tiled({ HALF: false, OUT_HALF: false, HAS_BIAS: false, RELU: false, TM: 4, TN: 4, TRANS_A: false, TRANS_B: false, WG_X: 8, WG_Y: 8 }),
  };
  for (const [name, source] of Object.entries(sources)) t.equal(source.match(/fn mm_step\(/g)?.length, 1, `${name}: one mm_step`);
});
