// The adapter's own limits, for benchmarks to compare against:
//   fma:  every invocation runs ITERS rounds of 16 independent vec4 FMAs on registers
//         (no memory traffic): the arithmetic peak.
//   copy: out[i] = x[i] as vec4s: the memory bandwidth a streaming kernel can reach.
struct U { n: u32, iters: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(256)
fn fma_peak(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (i >= u.n) { return; }
  let s = x[i % arrayLength(&x)];
  var a: array<vec4<f32>, 16>;
  for (var j = 0u; j < 16u; j++) { a[j] = s + vec4<f32>(f32(j)); }
  let m = vec4<f32>(0.9999);
  let c = vec4<f32>(0.0001);
  for (var it = 0u; it < u.iters; it++) {
    for (var j = 0u; j < 16u; j++) { a[j] = fma(a[j], m, c); }
  }
  var total = vec4<f32>(0.0);
  for (var j = 0u; j < 16u; j++) { total += a[j]; }
  out[i % arrayLength(&out)] = total;
}

@compute @workgroup_size(256)
fn copy(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (i < u.n) { out[i] = x[i]; }
}
