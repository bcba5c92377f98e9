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
struct U {
  n_out: u32, n_red: u32, scale: f32,
  k0: u32, k1: u32, k2: u32, k3: u32,
  r0: u32, r1: u32, r2: u32, r3: u32,
  s0: u32, s1: u32, s2: u32, s3: u32,
}
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

fn kept_offset(o: u32) -> u32 {
  let c3 = o % u.k3;
  let q2 = o / u.k3;
  let c2 = q2 % u.k2;
  let q1 = q2 / u.k2;
  let c1 = q1 % u.k1;
  let c0 = q1 / u.k1;
  return c0 * u.s0 + c1 * u.s1 + c2 * u.s2 + c3 * u.s3;
}

fn reduced_offset(r: u32) -> u32 {
  let c3 = r % u.r3;
  let q2 = r / u.r3;
  let c2 = q2 % u.r2;
  let q1 = q2 / u.r2;
  let c1 = q1 % u.r1;
  let c0 = q1 / u.r1;
  return c0 * u.s0 + c1 * u.s1 + c2 * u.s2 + c3 * u.s3;
}

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
  if (o >= u.n_out) { return; }
  let base = kept_offset(o);
  var acc = identity();
  for (var r = 0u; r < u.n_red; r++) {
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
  if (o < u.n_out) {
    let base = kept_offset(o);
    for (var r = lid; r < u.n_red; r += 256u) {
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
  if (lid == 0u && o < u.n_out) {
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
  if (lid == 0u && o < u.n_out) { out[o] = partial[0] * u.scale; }
#endif
}
