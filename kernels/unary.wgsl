// out[i] = EXPR(x = a[i]) for one elementwise op; EXPR may use the scalars u.alpha and u.beta.
// The expression is the specialization: relu, sigmoid, scale, ... each get their own pipeline.
// With VEC4 (a size that is a multiple of 4) each invocation takes 4 values as one vec4: on
// lavapipe a pass ran at a third of the copy bandwidth one value at a time. Expressions are
// written in terms of T (f32 or vec4<f32>) so that one text serves both. With HALF (mixed
// precision's f16 activations) a and out are f16 and the expression is computed in f32.
#if ${HALF}
enable f16;
#endif
struct U { n: u32, alpha: f32, beta: f32 }
@group(0) @binding(0) var<uniform> u: U;
//! include core/vec4.wgsl
//! include core/vec4_half.wgsl
@group(0) @binding(1) var<storage, read> a: array<Act>;
@group(0) @binding(2) var<storage, read_write> out: array<Act>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid;   // the i-th value (or vec4 of values)
  if (i * PER >= u.n) { return; }
  let x = T(a[i]);
  out[i] = Act(${EXPR});
}
