// Soft-argmax (integral regression, Sun et al. 2018) over planes of logits [planes, H, W]: each
// plane's softmax is a distribution over pixels, and its expected pixel centre is the landmark.
// Coordinates are fractions of the map, pixel centres at (col + 0.5) / W and (row + 0.5) / H, so a
// loss on them is in units of the image size (as NME is) whatever the resolution.
//   forward:  p = softmax(x), coords[2k] = sum p * u, coords[2k + 1] = sum p * v,
//             stats[2k] = max x, stats[2k + 1] = sum exp(x - max)   (what backward needs)
//   backward: dx = p * ((u - ex) * gx + (v - ey) * gy)
// One workgroup per plane: a strided walk then a tree sum in workgroup memory.
struct U { planes: u32, H: u32, W: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> coords: array<f32>;     // forward
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;      // forward
@group(0) @binding(2) var<storage, read> saved_stats: array<f32>;      // backward
@group(0) @binding(3) var<storage, read> saved_coords: array<f32>;     // backward
@group(0) @binding(4) var<storage, read> grad_coords: array<f32>;      // backward
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;         // backward

const WG = 256u;
var<workgroup> acc: array<vec3<f32>, 256>;

fn plane_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.x + wid.y * nwg.x;
}

// Sums acc[0..WG) into acc[0] (every invocation takes part).
fn tree_sum(lid: u32) {
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    workgroupBarrier();
    if (lid < stride) { acc[lid] = acc[lid] + acc[lid + stride]; }
  }
  workgroupBarrier();
}

@compute @workgroup_size(256)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let k = plane_index(wid, nwg);
  if (k >= u.planes) { return; } // uniform across the workgroup: barriers stay uniform
  let P = u.H * u.W;
  let base = k * P;
  var m = -3.4e38;
  for (var i = lid; i < P; i += WG) { m = max(m, x[base + i]); }
  acc[lid] = vec3<f32>(m, 0.0, 0.0);
  for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
    workgroupBarrier();
    if (lid < stride) { acc[lid].x = max(acc[lid].x, acc[lid + stride].x); }
  }
  workgroupBarrier();
  m = acc[0].x;
  workgroupBarrier();
  var s = vec3<f32>(0.0);
  for (var i = lid; i < P; i += WG) {
    let e = exp(x[base + i] - m);
    let col = f32(i % u.W);
    let row = f32(i / u.W);
    s += vec3<f32>(e, e * (col + 0.5), e * (row + 0.5));
  }
  acc[lid] = s;
  tree_sum(lid);
  if (lid == 0u) {
    let total = acc[0];
    coords[2u * k] = total.y / total.x / f32(u.W);
    coords[2u * k + 1u] = total.z / total.x / f32(u.H);
    stats[2u * k] = m;
    stats[2u * k + 1u] = total.x;
  }
}

@compute @workgroup_size(256)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let k = plane_index(wid, nwg);
  if (k >= u.planes) { return; }
  let P = u.H * u.W;
  let base = k * P;
  let m = saved_stats[2u * k];
  let inv_sum = 1.0 / saved_stats[2u * k + 1u];
  let ex = saved_coords[2u * k];
  let ey = saved_coords[2u * k + 1u];
  let gx = grad_coords[2u * k];
  let gy = grad_coords[2u * k + 1u];
  for (var i = lid; i < P; i += WG) {
    let p = exp(x[base + i] - m) * inv_sum;
    let cu = (f32(i % u.W) + 0.5) / f32(u.W);
    let cv = (f32(i / u.W) + 0.5) / f32(u.H);
    dx[base + i] = p * ((cu - ex) * gx + (cv - ey) * gy);
  }
}
