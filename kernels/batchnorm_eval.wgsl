// An eval-mode BatchNorm2d's per-channel constants, from the running statistics:
//   stats: mean and 1/sqrt(var + eps), for batchnorm_forward.wgsl
//   fold:  the whole map as a scale and shift for a convolution's epilogue (conv2d's AFFINE),
//          scale = gamma / sqrt(running_var + eps),  shift = beta - running_mean * scale
struct U { C: u32, eps: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> running_mean: array<f32>;
@group(0) @binding(2) var<storage, read> running_var: array<f32>;
// stats
@group(0) @binding(3) var<storage, read_write> mean: array<f32>;
@group(0) @binding(4) var<storage, read_write> invstd: array<f32>;
// fold
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> scale: array<f32>;
@group(0) @binding(6) var<storage, read_write> shift: array<f32>;

@compute @workgroup_size(64)
fn stats(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= u.C) { return; }
  mean[c] = running_mean[c];
  invstd[c] = 1.0 / sqrt(running_var[c] + u.eps);
}

@compute @workgroup_size(64)
fn fold(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= u.C) { return; }
  let s = gamma[c] / sqrt(running_var[c] + u.eps);
  scale[c] = s;
  shift[c] = beta[c] - running_mean[c] * s;
}
