#if ${SUBGROUPS}
enable subgroups;
#endif
// Sum or max over any set of axes (rank <= 4), times `scale` (1/count gives the mean).
//
// The input is seen as 4 dims. Each output element has "kept" coordinates (k0..k3, 1 on reduced
// axes) and walks the "reduced" coordinates (r0..r3, 1 on kept axes); the input offset is
// sum((kept_i + reduced_i) * stride_i).
// Two strategies, chosen on the CPU by reduceStrategy(): "per_thread" (one invocation per output,
// for many outputs with short reductions) and "per_workgroup" (256 invocations share one output and
// combine through workgroup memory, for few outputs with long reductions). The third, reductions
// over leading axes only, is reduce_leading.wgsl.
struct U { scale: f32 }
@group(0) @binding(0) var<uniform> u: U;
// The shape is compiled in: every input value's offset is split by it (core/split_index.wgsl).
const N_OUT = ${N_OUT}u;
const N_RED = ${N_RED}u;
const K1 = ${K1}u; const K2 = ${K2}u; const K3 = ${K3}u;
const R1 = ${R1}u; const R2 = ${R2}u; const R3 = ${R3}u;
const S0 = ${S0}u; const S1 = ${S1}u; const S2 = ${S2}u; const S3 = ${S3}u;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

//! include core/split_index.wgsl
const STRIDES = vec4<u32>(S0, S1, S2, S3);
fn kept_offset(o: u32) -> u32 { return dot(split_index(o, K1, K2, K3), STRIDES); }
fn reduced_offset(r: u32) -> u32 { return dot(split_index(r, R1, R2, R3), STRIDES); }

fn combine(acc: f32, v: f32) -> f32 {
#if ${IS_MAX}
  return max(acc, v);
#else
  return acc + v;
#endif
}

fn identity() -> f32 {
#if ${IS_MAX}
  return -3.4e38;
#else
  return 0.0;
#endif
}

@compute @workgroup_size(256)
fn per_thread(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
  let o = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (o >= N_OUT) { return; }
  let base = kept_offset(o);
  var acc = identity();
  for (var r = 0u; r < N_RED; r++) {
    acc = combine(acc, x[base + reduced_offset(r)]);
  }
  out[o] = acc * u.scale;
}

var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(256)
fn per_workgroup(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32,
#if ${SUBGROUPS}
                 @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) width: u32,
#endif
) {
  let o = wid.x + wid.y * nwg.x;   // uniform across the workgroup, so the barriers below are too
  var acc = identity();
  if (o < N_OUT) {
    let base = kept_offset(o);
    for (var r = lid; r < N_RED; r += 256u) {
      acc = combine(acc, x[base + reduced_offset(r)]);
    }
  }
#if ${SUBGROUPS}
  // Each subgroup combines its values at once; only the subgroups' results meet in workgroup
  // memory (one barrier instead of eight). Subgroups are runs of consecutive local indices.
#if ${IS_MAX}
  let s = subgroupMax(acc);
#else
  let s = subgroupAdd(acc);
#endif
  if (lane == 0u) { partial[lid / width] = s; }
  workgroupBarrier();
  if (lid == 0u && o < N_OUT) {
    var total = identity();
    for (var i = 0u; i < (256u + width - 1u) / width; i++) { total = combine(total, partial[i]); }
    out[o] = total * u.scale;
  }
#else
  partial[lid] = acc;
  workgroupBarrier();
  for (var half = 128u; half > 0u; half >>= 1u) {
    if (lid < half) { partial[lid] = combine(partial[lid], partial[lid + half]); }
    workgroupBarrier();
  }
  if (lid == 0u && o < N_OUT) { out[o] = partial[0] * u.scale; }
#endif
}
