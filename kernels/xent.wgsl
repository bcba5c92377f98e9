// Softmax cross-entropy over rows of logits [N, C] with integer labels stored as floats.
// A negative label marks a row without a category (masked out of the mean).
//   forward:  pair[row] = logsumexp(x_row) - x_row[label], pair[N + row] = 1 if the row counts
//   backward: dx[row, j] = (softmax(x_row)_j - [j == label]) * dloss / count
// The mean itself is reduce(pair) then loss_mean.wgsl, shared by every loss.
struct U { N: u32, C: u32 }
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
  pair[row] = lse - logits[base + u32(label)];
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
    dx[base + j] = (p - select(0.0, 1.0, j == label_index)) * g;
  }
}
