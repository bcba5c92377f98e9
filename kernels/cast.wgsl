// Conversions between float32 and float16 tensors (the mixed-precision path's operand copies).
//   to_half:  out16[i] = f16(scale * x32[i])   (round to nearest even; beyond ±65504 is ±inf)
//   to_float: out32[i] = scale * f32(x16[i])
// `scale` is 1 but for the mixed-precision path's gradient copies (see src/autograd/ops.ts).
//   to_half_checked: to_half, and flag[0] = 1 when a scaled value does not fit f16 (or is not a
//                    number): how mixed precision's gradient scaler learns that a step overflowed
// Two values per invocation, so that each f16 pair is one 4-byte word of the buffer.
enable f16;

struct U { n: u32, scale: f32 }
@group(0) @binding(0) var<uniform> u: U;

@group(0) @binding(1) var<storage, read> x32: array<f32>;
@group(0) @binding(2) var<storage, read_write> out16: array<f16>;

@compute @workgroup_size(256)
fn to_half(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let i = 2u * ((wid.x + wid.y * nwg.x) * 256u + lid);
  if (i >= u.n) { return; }
  out16[i] = f16(u.scale * x32[i]);
  if (i + 1u < u.n) { out16[i + 1u] = f16(u.scale * x32[i + 1u]); }
}

@group(0) @binding(1) var<storage, read> x16: array<f16>;
@group(0) @binding(2) var<storage, read_write> out32: array<f32>;

@compute @workgroup_size(256)
fn to_float(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let i = 2u * ((wid.x + wid.y * nwg.x) * 256u + lid);
  if (i >= u.n) { return; }
  out32[i] = u.scale * f32(x16[i]);
  if (i + 1u < u.n) { out32[i + 1u] = u.scale * f32(x16[i + 1u]); }
}

@group(0) @binding(3) var<storage, read_write> flag: array<atomic<u32>>;

fn checked(v: f32) -> f16 {
  if (!(abs(v) <= 65504.0)) { atomicMax(&flag[0], 1u); }
  return f16(clamp(v, -65504.0, 65504.0));
}

@compute @workgroup_size(256)
fn to_half_checked(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
  let i = 2u * ((wid.x + wid.y * nwg.x) * 256u + lid);
  if (i >= u.n) { return; }
  out16[i] = checked(u.scale * x32[i]);
  if (i + 1u < u.n) { out16[i + 1u] = checked(u.scale * x32[i + 1u]); }
}
