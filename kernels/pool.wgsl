// 2-d pooling over NCHW planes (P = N*C planes), square window k, stride s, zero padding p.
//   max_forward:  out = max over the window (padding never wins), arg = its flat index in the plane
//   max_backward: dx[i] = sum of dy over the windows whose maximum was i (a gather: no atomics,
//                 overlapping 3x3/s2 windows included)
//   avg_forward:  out = sum over the window / (k*k)   (padding counts as zeros, as PyTorch's default)
//   avg_backward: dx[i] = sum of dy / (k*k) over the windows that contain i
//   adaptive_forward / adaptive_backward: adaptive average pooling to OH x OW (torchvision's VGG
//                 pools to 7x7 before its classifier): cell o averages [floor(o*H/OH), ceil((o+1)*H/OH))
// With HALF (the forward entries only) src and out are mixed precision's f16 activations; the
// sums and comparisons are f32, and the gradients always are.
//! include core/scalar_half.wgsl
struct U { P: u32 }
@group(0) @binding(0) var<uniform> u: U;
// The geometry is compiled in: lavapipe divides by a value known only at run time one lane at a
// time, and every entry splits its index into plane, row and column (max_backward was 15-20x
// slower than a copy of the same tensor with these in the uniforms); by a constant it is a
// multiply and a shift across the vector, and the window loops unroll.
const H = ${H}u;
const W = ${W}u;
const OH = ${OH}u;
const OW = ${OW}u;
const K = ${K}u;
const STRIDE = ${STRIDE}u;
const PAD = ${PAD}u;
@group(0) @binding(1) var<storage, read> src: array<Act>;
@group(0) @binding(2) var<storage, read_write> out: array<Act>;
@group(0) @binding(3) var<storage, read_write> arg: array<f32>;      // max_forward only
@group(0) @binding(2) var<storage, read> argmax: array<f32>;         // max_backward
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;       // max_backward
@group(0) @binding(2) var<storage, read_write> avg_dx: array<f32>;   // avg_backward

fn linear_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * 256u + lid;
}

@compute @workgroup_size(256)
fn max_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let i = linear_id(wid, nwg, lid);
  if (i >= u.P * OH * OW) { return; }
  let plane = i / (OH * OW);
  let r = i % (OH * OW);
  let y0 = i32((r / OW) * STRIDE) - i32(PAD);
  let x0 = i32((r % OW) * STRIDE) - i32(PAD);
  var best = -3.4e38;
  var best_at = 0u;
  for (var ky = 0; ky < i32(K); ky++) {
    let y = y0 + ky;
    if (y < 0 || y >= i32(H)) { continue; }
    for (var kx = 0; kx < i32(K); kx++) {
      let x = x0 + kx;
      if (x < 0 || x >= i32(W)) { continue; }
      let at = u32(y) * W + u32(x);
      let v = f32(src[plane * H * W + at]);
      if (v > best) { best = v; best_at = at; }
    }
  }
  out[i] = Act(best);
  arg[i] = f32(best_at);
}

// The most output windows that cover one input coordinate, per axis: max_backward loops this many
// times whatever the pixel, so that every lane runs the same unrolled loop (the stem's 3x3/2 max
// pool, on every network's path; it halved that pass on lavapipe).
const REACH = (K + STRIDE - 1u) / STRIDE;

// The output windows [lo, hi] that cover input coordinate t (per axis), at most REACH of them.
fn covering(t: u32, size_out: u32) -> vec2<i32> {
  let lo = (i32(t) + i32(PAD) - i32(K) + i32(STRIDE)) / i32(STRIDE);   // ceil((t + p - k + 1) / s)
  let hi = (i32(t) + i32(PAD)) / i32(STRIDE);
  return vec2<i32>(max(lo, 0), min(hi, i32(size_out) - 1));
}

@compute @workgroup_size(256)
fn max_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let i = linear_id(wid, nwg, lid);
  if (i >= u.P * H * W) { return; }
  let plane = i / (H * W);
  let at = i % (H * W);
  let ys = covering(at / W, OH);
  let xs = covering(at % W, OW);
  var g = 0.0;
  for (var jy = 0; jy < i32(REACH); jy++) {
    let oy = ys.x + jy;
    if (oy > ys.y) { break; }
    for (var jx = 0; jx < i32(REACH); jx++) {
      let ox = xs.x + jx;
      if (ox > xs.y) { break; }
      let o = plane * OH * OW + u32(oy) * OW + u32(ox);
      if (i32(argmax[o]) == i32(at)) { g += f32(src[o]); }
    }
  }
  dx[i] = g;
}

@compute @workgroup_size(256)
fn avg_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let i = linear_id(wid, nwg, lid);
  if (i >= u.P * OH * OW) { return; }
  let plane = i / (OH * OW);
  let r = i % (OH * OW);
  let y0 = i32((r / OW) * STRIDE) - i32(PAD);
  let x0 = i32((r % OW) * STRIDE) - i32(PAD);
  var s = 0.0;
  for (var ky = 0; ky < i32(K); ky++) {
    let y = y0 + ky;
    if (y < 0 || y >= i32(H)) { continue; }
    for (var kx = 0; kx < i32(K); kx++) {
      let x = x0 + kx;
      if (x < 0 || x >= i32(W)) { continue; }
      s += f32(src[plane * H * W + u32(y) * W + u32(x)]);
    }
  }
  out[i] = Act(s / f32(K * K));
}

@compute @workgroup_size(256)
fn avg_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let i = linear_id(wid, nwg, lid);
  if (i >= u.P * H * W) { return; }
  let plane = i / (H * W);
  let at = i % (H * W);
  let ys = covering(at / W, OH);
  let xs = covering(at % W, OW);
  var g = 0.0;
  for (var oy = ys.x; oy <= ys.y; oy++) {
    for (var ox = xs.x; ox <= xs.y; ox++) {
      g += f32(src[plane * OH * OW + u32(oy) * OW + u32(ox)]);
    }
  }
  avg_dx[i] = g / f32(K * K);
}

// The input range [start, end) that adaptive pooling cell o of size_out averages.
fn cell(o: u32, size_in: u32, size_out: u32) -> vec2<u32> {
  return vec2<u32>((o * size_in) / size_out, ((o + 1u) * size_in + size_out - 1u) / size_out);
}

@compute @workgroup_size(256)
fn adaptive_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
  let i = linear_id(wid, nwg, lid);
  if (i >= u.P * OH * OW) { return; }
  let plane = i / (OH * OW);
  let r = i % (OH * OW);
  let ys = cell(r / OW, H, OH);
  let xs = cell(r % OW, W, OW);
  var s = 0.0;
  for (var y = ys.x; y < ys.y; y++) {
    for (var x = xs.x; x < xs.y; x++) { s += f32(src[(plane * H + y) * W + x]); }
  }
  out[i] = Act(s / f32((ys.y - ys.x) * (xs.y - xs.x)));
}

@compute @workgroup_size(256)
fn adaptive_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
  let i = linear_id(wid, nwg, lid);
  if (i >= u.P * H * W) { return; }
  let plane = i / (H * W);
  let iy = (i % (H * W)) / W;
  let ix = i % W;
  // The cells that may contain (iy, ix), a superset checked against each cell's range.
  let oy0 = (iy * OH) / H;
  let ox0 = (ix * OW) / W;
  var g = 0.0;
  for (var oy = select(0u, oy0 - 1u, oy0 > 0u); oy < min(oy0 + 2u + OH / H, OH); oy++) {
    let ys = cell(oy, H, OH);
    if (iy < ys.x || iy >= ys.y) { continue; }
    for (var ox = select(0u, ox0 - 1u, ox0 > 0u); ox < min(ox0 + 2u + OW / W, OW); ox++) {
      let xs = cell(ox, W, OW);
      if (ix < xs.x || ix >= xs.y) { continue; }
      g += f32(src[(plane * OH + oy) * OW + ox]) / f32((ys.y - ys.x) * (xs.y - xs.x));
    }
  }
  avg_dx[i] = g;
}
