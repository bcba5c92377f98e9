// BatchNorm2d's elementwise backward pass over NCHW (M = N*H*W values a channel):
//   training: dx = gamma * invstd / M * (M * dy - dbeta - xhat * dgamma),  xhat = (x - mean) * invstd
//             (dbeta and dgamma from batchnorm_stats.wgsl's backward entry)
//   eval:     dx = gamma * invstd * dy   (the statistics are constants)
// With RELU, dy is first zeroed where the output y was clipped (the fused ReLU's gradient), so a
// BatchNorm followed by a ReLU costs no separate elementwise passes. VEC4 as in the forward pass.
// With HALF (mixed precision) x and y are f16 activations; dy, dx and the arithmetic are f32.
#if ${HALF}
enable f16;
#endif
struct U { N: u32 }
@group(0) @binding(0) var<uniform> u: U;
// The plane size and the channel count are compiled in: lavapipe divides by a value known only at
// run time one lane at a time (that division took half of this pass), by a constant with a
// multiply and a shift across the whole vector.
const C = ${C}u;
const HW = ${HW}u;
//! include core/vec4.wgsl
//! include core/vec4_half.wgsl
@group(0) @binding(1) var<storage, read> dy: array<T>;
@group(0) @binding(2) var<storage, read> x: array<Act>;
@group(0) @binding(3) var<storage, read> mean: array<f32>;
@group(0) @binding(4) var<storage, read> invstd: array<f32>;
@group(0) @binding(5) var<storage, read> gamma: array<f32>;
@group(0) @binding(6) var<storage, read> dgamma: array<f32>;
@group(0) @binding(7) var<storage, read> dbeta: array<f32>;
@group(0) @binding(8) var<storage, read> y: array<Act>;              // the output (RELU's mask)
@group(0) @binding(9) var<storage, read_write> dx: array<T>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid;   // the i-th value (or vec4 of values)
  if (i * PER >= u.N * C * HW) { return; }
  let c = (i * PER / HW) % C;
  let inv = invstd[c];
#if ${RELU}
  let g = select(T(0.0), dy[i], T(y[i]) > T(0.0));
#else
  let g = dy[i];
#endif
#if ${TRAINING}
  let M = f32(u.N * HW);
  let xhat = (T(x[i]) - mean[c]) * inv;
  dx[i] = gamma[c] * inv / M * (M * g - dbeta[c] - xhat * dgamma[c]);
#else
  dx[i] = gamma[c] * inv * g;
#endif
}
