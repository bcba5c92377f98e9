// Softmax cross-entropy over rows of logits [N, C] with integer labels stored as floats.
// A negative label marks a row without a category (masked out of the mean).
// With label smoothing e the target is q_j = (1 - e) [j == label] + e / C (Szegedy et al. 2016):
//   forward:  pair[row] = logsumexp(x_row) - sum_j q_j x_row[j], pair[N + row] = 1 if the row counts
//   backward: dx[row, j] = (softmax(x_row)_j - q_j) * dloss / count
// The mean itself is reduce(pair) then loss_mean.wgsl, shared by every loss.
struct U { N: u32, C: u32, smoothing: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<f32>;
@group(0) @binding(3) var<storage, read_write> pair: array<f32>;       // forward only
@group(0) @binding(3) var<storage, read> sums: array<f32>;             // backward: [sum loss, count]
@group(0) @binding(4) var<storage, read> grad_loss: array<f32>;        // backward: [dloss]
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;         // backward

fn row_max_and_lse(base: u32) -> vec2<f32> {
  var m = -3.4e38;
  for (var j = 0u; j < u.C; j++) { m = max(m, logits[base + j]); }
  var s = 0.0;
  for (var j = 0u; j < u.C; j++) { s += exp(logits[base + j] - m); }
  return vec2<f32>(m, m + log(s));
}

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.x;
  if (row >= u.N) { return; }
  let label = labels[row];
  if (label < 0.0) {
    pair[row] = 0.0;
    pair[u.N + row] = 0.0;
    return;
  }
  let base = row * u.C;
  let lse = row_max_and_lse(base).y;
  var total = 0.0;
  for (var j = 0u; j < u.C; j++) { total += logits[base + j]; }
  let target_logit = (1.0 - u.smoothing) * logits[base + u32(label)] + u.smoothing * total / f32(u.C);
  pair[row] = lse - target_logit;
  pair[u.N + row] = 1.0;
}

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let row = gid.x;
  if (row >= u.N) { return; }
  let base = row * u.C;
  let label = labels[row];
  if (label < 0.0 || sums[1] <= 0.0) {
    for (var j = 0u; j < u.C; j++) { dx[base + j] = 0.0; }
    return;
  }
  let g = grad_loss[0] / sums[1];
  let lse = row_max_and_lse(base).y;
  let label_index = u32(label);
  for (var j = 0u; j < u.C; j++) {
    let p = exp(logits[base + j] - lse);
    let q = (1.0 - u.smoothing) * select(0.0, 1.0, j == label_index) + u.smoothing / f32(u.C);
    dx[base + j] = (p - q) * g;
  }
}
