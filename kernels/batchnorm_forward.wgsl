// BatchNorm2d's elementwise forward pass over NCHW: y = (x - mean) * invstd * gamma + beta, plus
// `residual` with RESIDUAL (a residual join fused: ResNet's bn3 + identity, RepVGG's branch sums),
// then max(y, 0) with RELU (a following ReLU fused). A fused join keeps its sum out of memory: the
// BatchNorm's own output, which no backward reads, is never written. mean and invstd are the batch's in training
// (batchnorm_stats.wgsl) and the running statistics' in eval (batchnorm_eval.wgsl).
// With VEC4 (planes a multiple of 4) each invocation takes 4 values of one plane as a vec4: one
// channel lookup and one set of per-channel loads per 4 values - on lavapipe the pass ran at a sixth
// of the copy bandwidth one value at a time.
// With HALF (mixed precision) x, the residual and y are f16 activations; the arithmetic is f32.
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
@group(0) @binding(1) var<storage, read> x: array<Act>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> invstd: array<f32>;
@group(0) @binding(4) var<storage, read> gamma: array<f32>;
@group(0) @binding(5) var<storage, read> beta: array<f32>;
#if ${RESIDUAL}
@group(0) @binding(6) var<storage, read> residual: array<Act>;
#endif
@group(0) @binding(7) var<storage, read_write> y: array<Act>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid;   // the i-th value (or vec4 of values)
  if (i * PER >= u.N * C * HW) { return; }
  let c = (i * PER / HW) % C;
  // y = x * scale + shift, with the per-channel scale and shift worked out once.
  let scale = invstd[c] * gamma[c];
  let shift = beta[c] - mean[c] * scale;
#if ${RESIDUAL}
  let v = T(x[i]) * scale + shift + T(residual[i]);
#else
  let v = T(x[i]) * scale + shift;
#endif
#if ${RELU}
  y[i] = Act(max(v, T(0.0)));
#else
  y[i] = Act(v);
#endif
}
