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
struct U { P: u32, H: u32, W: u32, OH: u32, OW: u32, k: u32, stride: u32, pad: u32 }
@group(0) @binding(0) var<uniform> u: U;
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
  if (i >= u.P * u.OH * u.OW) { return; }
  let plane = i / (u.OH * u.OW);
  let r = i % (u.OH * u.OW);
  let y0 = i32((r / u.OW) * u.stride) - i32(u.pad);
  let x0 = i32((r % u.OW) * u.stride) - i32(u.pad);
  var best = -3.4e38;
  var best_at = 0u;
  for (var ky = 0; ky < i32(u.k); ky++) {
    let y = y0 + ky;
    if (y < 0 || y >= i32(u.H)) { continue; }
    for (var kx = 0; kx < i32(u.k); kx++) {
      let x = x0 + kx;
      if (x < 0 || x >= i32(u.W)) { continue; }
      let at = u32(y) * u.W + u32(x);
      let v = f32(src[plane * u.H * u.W + at]);
      if (v > best) { best = v; best_at = at; }
    }
  }
  out[i] = Act(best);
  arg[i] = f32(best_at);
}

// The output windows [lo, hi] that cover input coordinate t (per axis).
fn covering(t: u32, size_out: u32) -> vec2<i32> {
  let lo = (i32(t) + i32(u.pad) - i32(u.k) + i32(u.stride)) / i32(u.stride);   // ceil((t + p - k + 1) / s)
  let hi = (i32(t) + i32(u.pad)) / i32(u.stride);
  return vec2<i32>(max(lo, 0), min(hi, i32(size_out) - 1));
}

@compute @workgroup_size(256)
fn max_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let i = linear_id(wid, nwg, lid);
  if (i >= u.P * u.H * u.W) { return; }
  let plane = i / (u.H * u.W);
  let at = i % (u.H * u.W);
  let ys = covering(at / u.W, u.OH);
  let xs = covering(at % u.W, u.OW);
  var g = 0.0;
  for (var oy = ys.x; oy <= ys.y; oy++) {
    for (var ox = xs.x; ox <= xs.y; ox++) {
      let o = plane * u.OH * u.OW + u32(oy) * u.OW + u32(ox);
      if (u32(argmax[o]) == at) { g += f32(src[o]); }
    }
  }
  dx[i] = g;
}

@compute @workgroup_size(256)
fn avg_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let i = linear_id(wid, nwg, lid);
  if (i >= u.P * u.OH * u.OW) { return; }
  let plane = i / (u.OH * u.OW);
  let r = i % (u.OH * u.OW);
  let y0 = i32((r / u.OW) * u.stride) - i32(u.pad);
  let x0 = i32((r % u.OW) * u.stride) - i32(u.pad);
  var s = 0.0;
  for (var ky = 0; ky < i32(u.k); ky++) {
    let y = y0 + ky;
    if (y < 0 || y >= i32(u.H)) { continue; }
    for (var kx = 0; kx < i32(u.k); kx++) {
      let x = x0 + kx;
      if (x < 0 || x >= i32(u.W)) { continue; }
      s += f32(src[plane * u.H * u.W + u32(y) * u.W + u32(x)]);
    }
  }
  out[i] = Act(s / f32(u.k * u.k));
}

@compute @workgroup_size(256)
fn avg_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let i = linear_id(wid, nwg, lid);
  if (i >= u.P * u.H * u.W) { return; }
  let plane = i / (u.H * u.W);
  let at = i % (u.H * u.W);
  let ys = covering(at / u.W, u.OH);
  let xs = covering(at % u.W, u.OW);
  var g = 0.0;
  for (var oy = ys.x; oy <= ys.y; oy++) {
    for (var ox = xs.x; ox <= xs.y; ox++) {
      g += f32(src[plane * u.OH * u.OW + u32(oy) * u.OW + u32(ox)]);
    }
  }
  avg_dx[i] = g / f32(u.k * u.k);
}

// The input range [start, end) that adaptive pooling cell o of size_out averages.
fn cell(o: u32, size_in: u32, size_out: u32) -> vec2<u32> {
  return vec2<u32>((o * size_in) / size_out, ((o + 1u) * size_in + size_out - 1u) / size_out);
}

@compute @workgroup_size(256)
fn adaptive_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
  let i = linear_id(wid, nwg, lid);
  if (i >= u.P * u.OH * u.OW) { return; }
  let plane = i / (u.OH * u.OW);
  let r = i % (u.OH * u.OW);
  let ys = cell(r / u.OW, u.H, u.OH);
  let xs = cell(r % u.OW, u.W, u.OW);
  var s = 0.0;
  for (var y = ys.x; y < ys.y; y++) {
    for (var x = xs.x; x < xs.y; x++) { s += f32(src[(plane * u.H + y) * u.W + x]); }
  }
  out[i] = Act(s / f32((ys.y - ys.x) * (xs.y - xs.x)));
}

@compute @workgroup_size(256)
fn adaptive_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     @builtin(local_invocation_index) lid: u32) {
  let i = linear_id(wid, nwg, lid);
  if (i >= u.P * u.H * u.W) { return; }
  let plane = i / (u.H * u.W);
  let iy = (i % (u.H * u.W)) / u.W;
  let ix = i % u.W;
  // The cells that may contain (iy, ix), a superset checked against each cell's range.
  let oy0 = (iy * u.OH) / u.H;
  let ox0 = (ix * u.OW) / u.W;
  var g = 0.0;
  for (var oy = select(0u, oy0 - 1u, oy0 > 0u); oy < min(oy0 + 2u + u.OH / u.H, u.OH); oy++) {
    let ys = cell(oy, u.H, u.OH);
    if (iy < ys.x || iy >= ys.y) { continue; }
    for (var ox = select(0u, ox0 - 1u, ox0 > 0u); ox < min(ox0 + 2u + u.OW / u.W, u.OW); ox++) {
      let xs = cell(ox, u.W, u.OW);
      if (ix < xs.x || ix >= xs.y) { continue; }
      g += f32(src[(plane * u.OH + oy) * u.OW + ox]) / f32((ys.y - ys.x) * (xs.y - xs.x));
    }
  }
  avg_dx[i] = g;
}
