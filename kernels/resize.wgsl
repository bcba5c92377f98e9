// Bilinear resize of NCHW planes with half-pixel centres (PyTorch's align_corners=False):
// output pixel o samples the input at (o + 0.5) * in / out - 0.5, clamped to the edge.
//   forward:  out = the weighted four neighbours
//   backward: dx[i] = sum over the output pixels that sampled i of dy * its weight (a gather: each
//             input pixel searches the few output pixels that can reach it; no atomics)
// With HALF (the forward entry only) src and dst are mixed precision's f16 activations; the
// arithmetic is f32, and the gradients always are.
//! include core/scalar_half.wgsl
struct U { P: u32 }
@group(0) @binding(0) var<uniform> u: U;
// The sizes are compiled in (as in pool.wgsl): lavapipe divides by a value known only at run time
// one lane at a time, by a constant with a multiply and a shift across the vector.
const H = ${H}u;
const W = ${W}u;
const OH = ${OH}u;
const OW = ${OW}u;
@group(0) @binding(1) var<storage, read> src: array<Act>;
@group(0) @binding(2) var<storage, read_write> dst: array<Act>;

// For output coordinate o along an axis of in -> out: the two input taps and the second's weight.
struct Taps { a: u32, b: u32, t: f32 }
fn taps(o: u32, size_in: u32, size_out: u32) -> Taps {
  let scale = f32(size_in) / f32(size_out);
  let src_pos = max((f32(o) + 0.5) * scale - 0.5, 0.0);
  let a = min(u32(i32(floor(src_pos))), size_in - 1u); // through i32: x86 has no vector f32-to-u32
  let b = min(a + 1u, size_in - 1u);
  return Taps(a, b, src_pos - f32(a));
}

fn weight_at(i: u32, o: u32, size_in: u32, size_out: u32) -> f32 {
  let tp = taps(o, size_in, size_out);
  var w = 0.0;
  if (tp.a == i) { w += 1.0 - tp.t; }
  if (tp.b == i) { w += tp.t; }
  return w;
}

@compute @workgroup_size(256)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (i >= u.P * OH * OW) { return; }
  let plane = i / (OH * OW);
  let r = i % (OH * OW);
  let ty = taps(r / OW, H, OH);
  let tx = taps(r % OW, W, OW);
  let base = plane * H * W;
  let top = mix(f32(src[base + ty.a * W + tx.a]), f32(src[base + ty.a * W + tx.b]), tx.t);
  let bottom = mix(f32(src[base + ty.b * W + tx.a]), f32(src[base + ty.b * W + tx.b]), tx.t);
  dst[i] = Act(mix(top, bottom, ty.t));
}

// Output coordinates that may sample input coordinate t (a superset; weight_at filters).
fn reach(t: u32, size_in: u32, size_out: u32) -> vec2<u32> {
  let scale = f32(size_in) / f32(size_out);
  let lo = i32(floor((f32(t) - 1.0 + 0.5) / scale - 0.5)) - 1;
  let hi = i32(ceil((f32(t) + 1.0 + 0.5) / scale - 0.5)) + 1;
  return vec2<u32>(u32(max(lo, 0)), u32(clamp(hi, 0, i32(size_out) - 1)));
}

@compute @workgroup_size(256)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  // Here src is dy [P, OH, OW] and dst is dx [P, H, W].
  let i = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (i >= u.P * H * W) { return; }
  let plane = i / (H * W);
  let iy = (i % (H * W)) / W;
  let ix = i % W;
  let ry = reach(iy, H, OH);
  let rx = reach(ix, W, OW);
  var g = 0.0;
  for (var oy = ry.x; oy <= ry.y; oy++) {
    let wy = weight_at(iy, oy, H, OH);
    if (wy == 0.0) { continue; }
    for (var ox = rx.x; ox <= rx.y; ox++) {
      let wx = weight_at(ix, ox, W, OW);
      if (wx == 0.0) { continue; }
      g += wy * wx * f32(src[plane * OH * OW + oy * OW + ox]);
    }
  }
  dst[i] = Act(g);
}
