// Mean squared error with a mask: mask[i / plane] weighs a whole plane (one heatmap of one image,
// so invisible landmarks drop out), plane = n with a one-element mask for a plain MSE.
//   forward:  pair[i] = m * (p - t)^2, pair[n + i] = m
//   backward: dp[i] = 2 * m * (p - t) * dloss / sum(m)
// With L1, the mean absolute error instead (landmark points: the x and y of one point share a mask):
//   forward:  pair[i] = m * |p - t|;  backward: dp[i] = m * sign(p - t) * dloss / sum(m)
struct U { n: u32, plane: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> pred: array<f32>;
@group(0) @binding(2) var<storage, read> truth: array<f32>;
@group(0) @binding(3) var<storage, read> mask: array<f32>;
@group(0) @binding(4) var<storage, read_write> pair: array<f32>;       // forward only
@group(0) @binding(4) var<storage, read> sums: array<f32>;             // backward
@group(0) @binding(5) var<storage, read> grad_loss: array<f32>;        // backward
@group(0) @binding(6) var<storage, read_write> dp: array<f32>;         // backward

@compute @workgroup_size(256)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (i >= u.n) { return; }
  let m = mask[i / u.plane];
  let d = pred[i] - truth[i];
#if ${L1}
  pair[i] = m * abs(d);
#else
  pair[i] = m * d * d;
#endif
  pair[u.n + i] = m;
}

@compute @workgroup_size(256)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (i >= u.n) { return; }
  let m = mask[i / u.plane];
  let g = select(0.0, grad_loss[0] / sums[1], sums[1] > 0.0);
#if ${L1}
  dp[i] = m * sign(pred[i] - truth[i]) * g;
#else
  dp[i] = 2.0 * m * (pred[i] - truth[i]) * g;
#endif
}
