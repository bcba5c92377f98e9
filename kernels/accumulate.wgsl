// acc[i] += alpha * x[i], in place: how gradients accumulate into an existing .grad.
// With LERP, acc[i] += alpha * (x[i] - acc[i]): a moving average (the weights' EMA) in one pass.
// With VEC4 (a size that is a multiple of 4) each invocation takes 4 values as one vec4.
struct U { n: u32, alpha: f32 }
@group(0) @binding(0) var<uniform> u: U;
//! include core/vec4.wgsl
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read_write> acc: array<T>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid;
#if ${LERP}
  if (i * PER < u.n) { acc[i] = acc[i] + u.alpha * (x[i] - acc[i]); }
#else
  if (i * PER < u.n) { acc[i] = acc[i] + u.alpha * x[i]; }
#endif
}
