// out = EXPR(a, b) elementwise, with numpy broadcasting up to rank 4.
// Shapes are right-aligned and padded to 4 dims; a broadcast dimension has stride 0, so one
// kernel serves "same shape", "bias over channels" and "scalar" alike. When BROADCAST is false
// both operands have the output's shape and the index arithmetic is skipped, and with VEC4 (a
// size that is a multiple of 4) each invocation takes 4 values as vec4s. Expressions are written
// in terms of T (f32 or vec4<f32>) so that one text serves both. Mixed precision's f16 activations:
// with A_HALF, B_HALF, OUT_HALF that operand (or the result) is f16 - a forward op on two f16
// activations gives one (add, mul), a gradient read against a saved f16 activation is f32 (the
// ReLU's mask) - and the expression is computed in f32. HALF: any of them (enables f16).
#if ${HALF}
enable f16;
#endif
struct U {
  n: u32, alpha: f32, beta: f32,
  a0: u32, a1: u32, a2: u32, a3: u32,      // strides of a (0 where broadcast)
  b0: u32, b1: u32, b2: u32, b3: u32,      // strides of b (0 where broadcast)
}
@group(0) @binding(0) var<uniform> u: U;
// The output's last three dimensions, by which a broadcast splits its index, are compiled in
// (core/split_index.wgsl; 1 without BROADCAST, so those pipelines stay shared).
const D1 = ${D1}u;
const D2 = ${D2}u;
const D3 = ${D3}u;
//! include core/split_index.wgsl
//! include core/vec4.wgsl
//! include core/vec4_half.wgsl
#if ${A_HALF}
alias TA = Act;
#else
alias TA = T;
#endif
#if ${B_HALF}
alias TB = Act;
#else
alias TB = T;
#endif
#if ${OUT_HALF}
alias TOut = Act;
#else
alias TOut = T;
#endif
@group(0) @binding(1) var<storage, read> A: array<TA>;
@group(0) @binding(2) var<storage, read> B: array<TB>;
@group(0) @binding(3) var<storage, read_write> out: array<TOut>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid;   // the i-th value (or vec4 of values)
  if (i * PER >= u.n) { return; }
#if ${BROADCAST}
  let c = split_index(i, D1, D2, D3);
  let a = T(A[dot(c, vec4<u32>(u.a0, u.a1, u.a2, u.a3))]);
  let b = T(B[dot(c, vec4<u32>(u.b0, u.b1, u.b2, u.b3))]);
#else
  let a = T(A[i]);
  let b = T(B[i]);
#endif
  out[i] = TOut(${EXPR});
}
