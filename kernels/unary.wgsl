// out[i] = EXPR(x = a[i]) for one elementwise op; EXPR may use the scalars u.alpha and u.beta.
// The expression is the specialization: relu, sigmoid, scale, ... each get their own pipeline.
struct U { n: u32, alpha: f32, beta: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (i >= u.n) { return; }
  let x = a[i];
  out[i] = ${EXPR};
}
