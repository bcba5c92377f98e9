#if ${SUBGROUPS}
enable subgroups;
#endif
// BatchNorm2d over NCHW, per channel c (M = N*H*W values each):
//   stats:           batch mean and 1/sqrt(var + eps) (biased var, as used for normalizing), and
//                    running = (1 - momentum) * running + momentum * batch (unbiased var), as PyTorch
//   eval_stats:      mean and 1/sqrt(var + eps) from the running statistics
//   fold:            eval mode as a per-channel scale and shift, for a convolution's epilogue
//   apply:           y = (x - mean) * invstd * gamma + beta   (elementwise; then max(y, 0) with RELU)
//   backward_reduce: dbeta = sum(dy), dgamma = sum(dy * xhat)   with xhat = (x - mean) * invstd
//   backward_apply:  training: dx = gamma * invstd / M * (M * dy - dbeta - xhat * dgamma)
//                    eval:     dx = gamma * invstd * dy   (the statistics are constants)
// With RELU the backward passes first zero dy where the output y was clipped (ReLU's gradient),
// so a BatchNorm followed by a ReLU costs no separate elementwise passes.
// The per-channel passes use one workgroup per channel; the mean is taken before the variance
// (two passes over the data) so that large activations with a large mean keep their precision.
// Where a channel holds few values (the 4x4 and 2x2 planes at the end of a trunk) a workgroup per
// channel is mostly overhead - on lavapipe each workgroup's barriers cost more than its sums - so
// with THREAD_PER_CHANNEL one invocation sums a whole channel, 64 channels to a workgroup.
// The elementwise passes (apply, backward_apply) take 4 values of one plane per invocation as
// vec4s when VEC4 (planes a multiple of 4): one channel lookup and one set of per-channel loads
// per 4 values - on lavapipe they ran at a sixth of the copy bandwidth one value at a time.
struct U { N: u32, C: u32, HW: u32, eps: f32, momentum: f32 }
@group(0) @binding(0) var<uniform> u: U;

// stats / eval_stats
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> invstd: array<f32>;
@group(0) @binding(4) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> running_var: array<f32>;

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
  mean[c] = sum / f32(M);
  invstd[c] = 1.0 / sqrt(sq / f32(M) + u.eps);
#if ${UPDATE_RUNNING}
  let unbiased = sq / f32(max(M, 2u) - 1u);
  running_mean[c] = (1.0 - u.momentum) * running_mean[c] + u.momentum * sum / f32(M);
  running_var[c] = (1.0 - u.momentum) * running_var[c] + u.momentum * unbiased;
#endif
}

#if ${THREAD_PER_CHANNEL}
@compute @workgroup_size(64)
fn stats(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= u.C) { return; }
  var s = 0.0;
  for (var n = 0u; n < u.N; n++) {
    let base = (n * u.C + c) * u.HW;
    for (var p = 0u; p < u.HW; p++) { s += x[base + p]; }
  }
  let mu = s / f32(u.N * u.HW);
  var q = 0.0;
  for (var n = 0u; n < u.N; n++) {
    let base = (n * u.C + c) * u.HW;
    for (var p = 0u; p < u.HW; p++) {
      let d = x[base + p] - mu;
      q += d * d;
    }
  }
  write_stats(c, s, q);
}
#else
@compute @workgroup_size(RWG)
fn stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
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
    for (var p = lid; p < u.HW; p += RWG) { s += x[base + p]; }
  }
  let sum = workgroup_sum(lid, s);
  let mu = sum / f32(u.N * u.HW);
  var q = 0.0;
  for (var n = 0u; n < u.N; n++) {
    let base = (n * u.C + c) * u.HW;
    for (var p = lid; p < u.HW; p += RWG) {
      let d = x[base + p] - mu;
      q += d * d;
    }
  }
  let sq = workgroup_sum(lid, q);
  if (lid == 0u) { write_stats(c, sum, sq); }
}
#endif

// eval_stats reads the running statistics only.
@group(0) @binding(1) var<storage, read> eval_running_mean: array<f32>;
@group(0) @binding(2) var<storage, read> eval_running_var: array<f32>;
@group(0) @binding(3) var<storage, read_write> eval_mean: array<f32>;
@group(0) @binding(4) var<storage, read_write> eval_invstd: array<f32>;

@compute @workgroup_size(64)
fn eval_stats(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= u.C) { return; }
  eval_mean[c] = eval_running_mean[c];
  eval_invstd[c] = 1.0 / sqrt(eval_running_var[c] + u.eps);
}

// apply
#if ${VEC4}
@group(0) @binding(1) var<storage, read> ax: array<vec4<f32>>;
#else
@group(0) @binding(1) var<storage, read> ax: array<f32>;
#endif
@group(0) @binding(2) var<storage, read> amean: array<f32>;
@group(0) @binding(3) var<storage, read> ainvstd: array<f32>;
@group(0) @binding(4) var<storage, read> gamma: array<f32>;
@group(0) @binding(5) var<storage, read> beta: array<f32>;
#if ${VEC4}
@group(0) @binding(6) var<storage, read_write> y: array<vec4<f32>>;
const PER = 4u;
#else
@group(0) @binding(6) var<storage, read_write> y: array<f32>;
const PER = 1u;
#endif

@compute @workgroup_size(256)
fn apply(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid;   // the i-th value (or vec4 of values)
  if (i * PER >= u.N * u.C * u.HW) { return; }
  let c = (i * PER / u.HW) % u.C;
  // y = x * scale + shift, with the per-channel scale and shift worked out once.
  let scale = ainvstd[c] * gamma[c];
  let shift = beta[c] - amean[c] * scale;
  let v = ax[i] * scale + shift;
#if ${RELU}
  y[i] = max(v, ${ZERO});
#else
  y[i] = v;
#endif
}

// backward_reduce
@group(0) @binding(1) var<storage, read> bdy: array<f32>;
@group(0) @binding(2) var<storage, read> bx: array<f32>;
@group(0) @binding(3) var<storage, read> bmean: array<f32>;
@group(0) @binding(4) var<storage, read> binvstd: array<f32>;
@group(0) @binding(5) var<storage, read> by: array<f32>;              // the output (RELU's mask)
@group(0) @binding(6) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(7) var<storage, read_write> dbeta: array<f32>;

fn masked(g: f32, y_out: f32) -> f32 {
#if ${RELU}
  return select(0.0, g, y_out > 0.0);
#else
  return g;
#endif
}

#if ${THREAD_PER_CHANNEL}
@compute @workgroup_size(64)
fn backward_reduce(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= u.C) { return; }
  let mu = bmean[c];
  let inv = binvstd[c];
  var sg = 0.0;
  var sgx = 0.0;
  for (var n = 0u; n < u.N; n++) {
    let base = (n * u.C + c) * u.HW;
    for (var p = 0u; p < u.HW; p++) {
      let g = masked(bdy[base + p], by[base + p]);
      sg += g;
      sgx += g * (bx[base + p] - mu) * inv;
    }
  }
  dbeta[c] = sg;
  dgamma[c] = sgx;
}
#else
@compute @workgroup_size(RWG)
fn backward_reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
#if ${SUBGROUPS}
       @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) width: u32,
#endif
) {
#if ${SUBGROUPS}
  sg_lane = lane;
  sg_width = width;
#endif
  let c = wid.x;
  let mu = bmean[c];
  let inv = binvstd[c];
  var sg = 0.0;
  var sgx = 0.0;
  for (var n = 0u; n < u.N; n++) {
    let base = (n * u.C + c) * u.HW;
    for (var p = lid; p < u.HW; p += RWG) {
      let g = masked(bdy[base + p], by[base + p]);
      sg += g;
      sgx += g * (bx[base + p] - mu) * inv;
    }
  }
  let total_g = workgroup_sum(lid, sg);
  let total_gx = workgroup_sum(lid, sgx);
  if (lid == 0u) {
    dbeta[c] = total_g;
    dgamma[c] = total_gx;
  }
}
#endif

// backward_apply
#if ${VEC4}
@group(0) @binding(1) var<storage, read> cdy: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> cx: array<vec4<f32>>;
#else
@group(0) @binding(1) var<storage, read> cdy: array<f32>;
@group(0) @binding(2) var<storage, read> cx: array<f32>;
#endif
@group(0) @binding(3) var<storage, read> cmean: array<f32>;
@group(0) @binding(4) var<storage, read> cinvstd: array<f32>;
@group(0) @binding(5) var<storage, read> cgamma: array<f32>;
@group(0) @binding(6) var<storage, read> cdgamma: array<f32>;
@group(0) @binding(7) var<storage, read> cdbeta: array<f32>;
#if ${VEC4}
@group(0) @binding(8) var<storage, read> cy: array<vec4<f32>>;       // the output (RELU's mask)
@group(0) @binding(9) var<storage, read_write> dx: array<vec4<f32>>;
#else
@group(0) @binding(8) var<storage, read> cy: array<f32>;             // the output (RELU's mask)
@group(0) @binding(9) var<storage, read_write> dx: array<f32>;
#endif

@compute @workgroup_size(256)
fn backward_apply(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid;   // the i-th value (or vec4 of values)
  if (i * PER >= u.N * u.C * u.HW) { return; }
  let c = (i * PER / u.HW) % u.C;
  let inv = cinvstd[c];
#if ${RELU}
  let g = select(${ZERO}, cdy[i], cy[i] > ${ZERO});
#else
  let g = cdy[i];
#endif
#if ${TRAINING}
  let M = f32(u.N * u.HW);
  let xhat = (cx[i] - cmean[c]) * inv;
  dx[i] = cgamma[c] * inv / M * (M * g - cdbeta[c] - xhat * cdgamma[c]);
#else
  dx[i] = cgamma[c] * inv * g;
#endif
}

// fold: an eval-mode BatchNorm as a per-channel affine map for a convolution's epilogue,
//   scale = gamma / sqrt(running_var + eps),  shift = beta - running_mean * scale
@group(0) @binding(1) var<storage, read> fold_mean: array<f32>;
@group(0) @binding(2) var<storage, read> fold_var: array<f32>;
@group(0) @binding(3) var<storage, read> fold_gamma: array<f32>;
@group(0) @binding(4) var<storage, read> fold_beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> fold_scale: array<f32>;
@group(0) @binding(6) var<storage, read_write> fold_shift: array<f32>;

@compute @workgroup_size(64)
fn fold(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= u.C) { return; }
  let s = fold_gamma[c] / sqrt(fold_var[c] + u.eps);
  fold_scale[c] = s;
  fold_shift[c] = fold_beta[c] - fold_mean[c] * s;
}
