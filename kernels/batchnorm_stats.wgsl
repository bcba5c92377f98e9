#if ${SUBGROUPS}
enable subgroups;
#endif
// Mixed precision: the activations x and y may be f16 (HALF); every sum stays f32.
//! include core/scalar_half.wgsl
// BatchNorm2d's per-channel sums over NCHW (M = N*H*W values a channel), one entry per pass:
//   forward:  the batch mean and 1/sqrt(var + eps) (biased var, as used for normalizing), and
//             running = (1 - momentum) * running + momentum * batch (unbiased var), as PyTorch
//   backward: dbeta = sum(dy), dgamma = sum(dy * xhat)   with xhat = (x - mean) * invstd;
//             with RELU dy is first zeroed where the output y was clipped (ReLU's gradient)
// One workgroup per channel; the mean is taken before the variance (two passes over the data) so
// that large activations with a large mean keep their precision. Where a channel holds few values
// (the 4x4 and 2x2 planes at the end of a trunk) a workgroup per channel is mostly overhead - on
// lavapipe each workgroup's barriers cost more than its sums - so with THREAD_PER_CHANNEL one
// invocation sums a whole channel, 64 channels to a workgroup.
// The elementwise halves are batchnorm_forward.wgsl and batchnorm_backward.wgsl; with APPLY this
// pass does them itself once its sums are known (one dispatch instead of two: where a channel holds
// few values the second dispatch costs more than its work), each invocation walking again the
// values it summed: forward y = x * scale + shift (+ residual with RESIDUAL, then ReLU with RELU),
// backward dx as batchnorm_backward.wgsl's training formula.
struct U { N: u32, C: u32, HW: u32, eps: f32, momentum: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<Act>;
// forward
@group(0) @binding(2) var<storage, read_write> batch_mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> batch_invstd: array<f32>;
@group(0) @binding(4) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> running_var: array<f32>;
// backward
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> mean: array<f32>;
@group(0) @binding(4) var<storage, read> invstd: array<f32>;
@group(0) @binding(5) var<storage, read> y: array<Act>;              // the output (RELU's mask)
@group(0) @binding(6) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(7) var<storage, read_write> dbeta: array<f32>;
#if ${APPLY}
@group(0) @binding(8) var<storage, read> gamma: array<f32>;            // both passes
@group(0) @binding(9) var<storage, read> beta: array<f32>;             // forward
#if ${RESIDUAL}
@group(0) @binding(10) var<storage, read> residual: array<Act>;        // forward
#endif
@group(0) @binding(11) var<storage, read_write> out: array<Act>;       // forward: y
@group(0) @binding(12) var<storage, read_write> dx: array<f32>;        // backward
#endif

const RWG = ${RWG}u; // invocations per channel in the per-channel passes
var<workgroup> partial: array<f32, RWG>;

// With SUBGROUPS (the adapter has the feature), each subgroup adds its values with subgroupAdd
// and only the subgroups' sums go through workgroup memory: one barrier instead of log2(RWG).
// Subgroups are taken to be runs of consecutive local indices, as every Vulkan driver lays out
// a 1-D workgroup.
var<private> sg_lane: u32;
var<private> sg_width: u32;

fn workgroup_sum(lid: u32, v: f32) -> f32 {
#if ${SUBGROUPS}
  let s = subgroupAdd(v);
  if (sg_lane == 0u) { partial[lid / sg_width] = s; }
  workgroupBarrier();
  var total = 0.0;
  for (var i = 0u; i < (RWG + sg_width - 1u) / sg_width; i++) { total += partial[i]; }
  workgroupBarrier();
  return total;
#else
  partial[lid] = v;
  workgroupBarrier();
  for (var half = RWG / 2u; half > 0u; half >>= 1u) {
    if (lid < half) { partial[lid] += partial[lid + half]; }
    workgroupBarrier();
  }
  let total = partial[0];
  workgroupBarrier();
  return total;
#endif
}

fn write_stats(c: u32, sum: f32, sq: f32) {
  let M = u.N * u.HW;
  batch_mean[c] = sum / f32(M);
  batch_invstd[c] = 1.0 / sqrt(sq / f32(M) + u.eps);
  let unbiased = sq / f32(max(M, 2u) - 1u);
  running_mean[c] = (1.0 - u.momentum) * running_mean[c] + u.momentum * sum / f32(M);
  running_var[c] = (1.0 - u.momentum) * running_var[c] + u.momentum * unbiased;
}

#if ${APPLY}
// Channel c's values normalized, from `first` in steps of `step` (the values this invocation summed).
fn apply_forward(c: u32, sum: f32, sq: f32, first: u32, step: u32) {
  let M = f32(u.N * u.HW);
  // As write_stats and batchnorm_forward.wgsl compute them, so that both routes round alike.
  let inv = 1.0 / sqrt(sq / M + u.eps);
  let scale = inv * gamma[c];
  let shift = beta[c] - sum / M * scale;
  for (var n = 0u; n < u.N; n++) {
    let base = (n * u.C + c) * u.HW;
    for (var p = first; p < u.HW; p += step) {
#if ${RESIDUAL}
      let v = f32(x[base + p]) * scale + shift + f32(residual[base + p]);
#else
      let v = f32(x[base + p]) * scale + shift;
#endif
#if ${RELU}
      out[base + p] = Act(max(v, 0.0));
#else
      out[base + p] = Act(v);
#endif
    }
  }
}
#endif

#if ${THREAD_PER_CHANNEL}
@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= u.C) { return; }
  var s = 0.0;
  for (var n = 0u; n < u.N; n++) {
    let base = (n * u.C + c) * u.HW;
    for (var p = 0u; p < u.HW; p++) { s += f32(x[base + p]); }
  }
  let mu = s / f32(u.N * u.HW);
  var q = 0.0;
  for (var n = 0u; n < u.N; n++) {
    let base = (n * u.C + c) * u.HW;
    for (var p = 0u; p < u.HW; p++) {
      let d = f32(x[base + p]) - mu;
      q += d * d;
    }
  }
  write_stats(c, s, q);
#if ${APPLY}
  apply_forward(c, s, q, 0u, 1u);
#endif
}
#else
@compute @workgroup_size(RWG)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
#if ${SUBGROUPS}
       @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) width: u32,
#endif
) {
#if ${SUBGROUPS}
  sg_lane = lane;
  sg_width = width;
#endif
  let c = wid.x;
  // Image by image, pixels strided over the workgroup: no division per element.
  var s = 0.0;
  for (var n = 0u; n < u.N; n++) {
    let base = (n * u.C + c) * u.HW;
    for (var p = lid; p < u.HW; p += RWG) { s += f32(x[base + p]); }
  }
  let sum = workgroup_sum(lid, s);
  let mu = sum / f32(u.N * u.HW);
  var q = 0.0;
  for (var n = 0u; n < u.N; n++) {
    let base = (n * u.C + c) * u.HW;
    for (var p = lid; p < u.HW; p += RWG) {
      let d = f32(x[base + p]) - mu;
      q += d * d;
    }
  }
  let sq = workgroup_sum(lid, q);
  if (lid == 0u) { write_stats(c, sum, sq); }
#if ${APPLY}
  apply_forward(c, sum, sq, lid, RWG);
#endif
}
#endif

fn masked(g: f32, y_out: f32) -> f32 {
#if ${RELU}
  return select(0.0, g, y_out > 0.0);
#else
  return g;
#endif
}

#if ${APPLY}
// Channel c's input gradient from its sums (dbeta_c, dgamma_c), over the values this invocation summed.
fn apply_backward(c: u32, dbeta_c: f32, dgamma_c: f32, first: u32, step: u32) {
  let M = f32(u.N * u.HW);
  let mu = mean[c];
  let inv = invstd[c];
  let k = gamma[c] * inv / M;
  for (var n = 0u; n < u.N; n++) {
    let base = (n * u.C + c) * u.HW;
    for (var p = first; p < u.HW; p += step) {
      let g = masked(dy[base + p], f32(y[base + p]));
      let xhat = (f32(x[base + p]) - mu) * inv;
      dx[base + p] = k * (M * g - dbeta_c - xhat * dgamma_c);
    }
  }
}
#endif

#if ${THREAD_PER_CHANNEL}
@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= u.C) { return; }
  let mu = mean[c];
  let inv = invstd[c];
  var sg = 0.0;
  var sgx = 0.0;
  for (var n = 0u; n < u.N; n++) {
    let base = (n * u.C + c) * u.HW;
    for (var p = 0u; p < u.HW; p++) {
      let g = masked(dy[base + p], f32(y[base + p]));
      sg += g;
      sgx += g * (f32(x[base + p]) - mu) * inv;
    }
  }
  dbeta[c] = sg;
  dgamma[c] = sgx;
#if ${APPLY}
  apply_backward(c, sg, sgx, 0u, 1u);
#endif
}
#else
@compute @workgroup_size(RWG)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
#if ${SUBGROUPS}
       @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) width: u32,
#endif
) {
#if ${SUBGROUPS}
  sg_lane = lane;
  sg_width = width;
#endif
  let c = wid.x;
  let mu = mean[c];
  let inv = invstd[c];
  var sg = 0.0;
  var sgx = 0.0;
  for (var n = 0u; n < u.N; n++) {
    let base = (n * u.C + c) * u.HW;
    for (var p = lid; p < u.HW; p += RWG) {
      let g = masked(dy[base + p], f32(y[base + p]));
      sg += g;
      sgx += g * (f32(x[base + p]) - mu) * inv;
    }
  }
  let total_g = workgroup_sum(lid, sg);
  let total_gx = workgroup_sum(lid, sgx);
  if (lid == 0u) {
    dbeta[c] = total_g;
    dgamma[c] = total_gx;
  }
#if ${APPLY}
  apply_backward(c, total_g, total_gx, lid, RWG);
#endif
}
#endif
