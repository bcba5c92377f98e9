// Sum or max over leading axes only, times `scale` (1/count gives the mean): the reduced axes all
// come before the kept ones, so output o combines x[r * n_out + o] for r < n_red - no index
// arithmetic at all, and with VEC4 (n_out a multiple of 4) 4 outputs per invocation as vec4s.
// This serves the split-K partial sums of a weight gradient and a linear layer's bias gradient;
// any other reduction is reduce.wgsl.
struct U { n_out: u32, n_red: u32, scale: f32 }
@group(0) @binding(0) var<uniform> u: U;
//! include core/vec4.wgsl
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read_write> out: array<T>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let o = (wid.x + wid.y * nwg.x) * 256u + lid;   // the o-th output (or vec4 of outputs)
  let n = u.n_out / PER;
  if (o >= n) { return; }
#if ${IS_MAX}
  var acc = T(-3.4e38);
  for (var r = 0u; r < u.n_red; r++) { acc = max(acc, x[r * n + o]); }
#else
  var acc = T(0.0);
  for (var r = 0u; r < u.n_red; r++) { acc += x[r * n + o]; }
#endif
  out[o] = acc * u.scale;
}
