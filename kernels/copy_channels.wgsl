// Copies `count` channels of src [N, src_C, HW] starting at src_off into dst [N, dst_C, HW]
// starting at dst_off: channel concatenation (forward) and its slices (backward).
// With HALF both are mixed precision's f16 activations (a concatenation of f16 features).
//! include core/scalar_half.wgsl
struct U { N: u32, src_C: u32, src_off: u32, dst_C: u32, dst_off: u32 }
@group(0) @binding(0) var<uniform> u: U;
// The channels copied and the plane size are compiled in: lavapipe divides by a value known only
// at run time one lane at a time, by a constant with a multiply and a shift across the vector.
const COUNT = ${COUNT}u;
const HW = ${HW}u;
@group(0) @binding(1) var<storage, read> src: array<Act>;
@group(0) @binding(2) var<storage, read_write> dst: array<Act>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (i >= u.N * COUNT * HW) { return; }
  let n = i / (COUNT * HW);
  let c = (i / HW) % COUNT;
  let r = i % HW;
  dst[(n * u.dst_C + u.dst_off + c) * HW + r] = src[(n * u.src_C + u.src_off + c) * HW + r];
}
