// Binary cross-entropy on logits with separate weights for positives and negatives
// (the thesis: w_pos = 1, w_neg = 0.1). Targets: 1 present, 0 absent, negative = unknown (masked).
//   forward:  pair[i] = w * (max(x,0) - x*y + log(1 + exp(-|x|))), pair[n + i] = 1 if known
//   backward: dx[i] = w * (sigmoid(x) - y) * dloss / count
struct U { n: u32, w_pos: f32, w_neg: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<f32>;
@group(0) @binding(3) var<storage, read_write> pair: array<f32>;       // forward only
@group(0) @binding(3) var<storage, read> sums: array<f32>;             // backward: [sum loss, count]
@group(0) @binding(4) var<storage, read> grad_loss: array<f32>;        // backward
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;         // backward

fn weight(t: f32) -> f32 {
  if (t < 0.0) { return 0.0; }
  return select(u.w_neg, u.w_pos, t > 0.5);
}

@compute @workgroup_size(256)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (i >= u.n) { return; }
  let x = logits[i];
  let t = targets[i];
  let y = select(0.0, 1.0, t > 0.5);
  pair[i] = weight(t) * (max(x, 0.0) - x * y + log(1.0 + exp(-abs(x))));
  pair[u.n + i] = select(1.0, 0.0, t < 0.0);
}

@compute @workgroup_size(256)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (i >= u.n) { return; }
  let t = targets[i];
  let y = select(0.0, 1.0, t > 0.5);
  let s = 1.0 / (1.0 + exp(-logits[i]));
  let g = select(0.0, grad_loss[0] / sums[1], sums[1] > 0.0);
  dx[i] = weight(t) * (s - y) * g;
}
