// Convolution backward-data (the gradient with respect to the input), as an implicit GEMM:
//   dx[n, c, iy, ix] = sum over (k, ky, kx) of w[k, c, ky, kx] * dy[n, k, oy, ox]
//                      where oy = (iy + p - ky) / s and ox = (ix + p - kx) / s divide exactly.
// Rows are input channels (C), columns input pixels (batch*H*W), depth K*KH*KW. Each invocation
// computes 4 channels x 4 pixels of one row. With stride s, only taps with kx = ix + pad (mod s)
// reach a pixel, so the columns of a row are visited phase by phase (x = phase, phase + s, ...):
// the 4 pixels of an invocation share their phase, and a tap (ky, kx) that none of them can reach
// is skipped whole - for stride 2 that halves the work of every row and column.
// The same kernel is the forward pass of a transposed convolution (dy = its input, w = its
// weight [Cin, Cout, KH, KW] read as [K, C, KH, KW]), with an optional bias over C.
struct U {
  N: u32, C: u32, H: u32, W: u32,      // dx (the convolution's input)
  K: u32, OH: u32, OW: u32,            // dy (the convolution's output)
  stride: u32, pad: u32,
}
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;          // [K, C, KH, KW]
#if ${HAS_BIAS}
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
#else
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
#endif

const KH = ${KH}u;
const KW = ${KW}u;

// The q-th column of a row in phase order: all x with x % stride == 0, then 1, ...
fn column(q: u32) -> u32 {
  var rest = q;
  for (var phase = 0u; phase < u.stride; phase++) {
    let count = (u.W - min(phase, u.W) + u.stride - 1u) / u.stride;
    if (rest < count) { return phase + rest * u.stride; }
    rest -= count;
  }
  return q;
}

@compute @workgroup_size(16, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let HW = u.H * u.W;
  let OHW = u.OH * u.OW;
  let P = u.N * HW;
  let p0 = gid.x * 4u;
  let c0 = gid.y * 4u;
  if (p0 >= P || c0 >= u.C) { return; }

  var img: vec4<u32>;      // offset of the pixel's image in dy
  var ty: vec4<i32>;       // iy + pad
  var tx: vec4<i32>;
  var at: vec4<u32>;       // the pixel's offset in its plane of dx
  for (var j = 0u; j < 4u; j++) {
    let p = min(p0 + j, P - 1u);
    let n = p / HW;
    let r = p % HW;
    let iy = r / u.W;
    let ix = column(r % u.W);
    img[j] = n * u.K * OHW;
    ty[j] = i32(iy + u.pad);
    tx[j] = i32(ix + u.pad);
    at[j] = iy * u.W + ix;
  }
  var wcol: vec4<u32>;     // offset of each input channel's taps inside one filter
  for (var i = 0u; i < 4u; i++) { wcol[i] = min(c0 + i, u.C - 1u) * KH * KW; }
  let s = vec4<i32>(i32(u.stride));
  let filter_size = u.C * KH * KW;

  var acc: array<vec4<f32>, 4>;   // acc[i][j]: channel c0 + i, pixel p0 + j
  for (var ky = 0u; ky < KH; ky++) {
    let ny = ty - vec4<i32>(i32(ky));
    let oy = ny / s;
    let row_ok = (ny >= vec4<i32>(0)) & (oy * s == ny) & (oy < vec4<i32>(i32(u.OH)));
    if (!any(row_ok)) { continue; }
    for (var kx = 0u; kx < KW; kx++) {
      let nx = tx - vec4<i32>(i32(kx));
      let ox = nx / s;
      let ok = row_ok & (nx >= vec4<i32>(0)) & (ox * s == nx) & (ox < vec4<i32>(i32(u.OW)));
      if (!any(ok)) { continue; }
      let off = select(vec4<u32>(0u), img + vec4<u32>(oy) * u.OW + vec4<u32>(ox), ok);
      let tap = ky * KW + kx;
      for (var k = 0u; k < u.K; k++) {
        let ko = k * OHW;
        let g = select(vec4<f32>(0.0), vec4<f32>(dy[off.x + ko], dy[off.y + ko], dy[off.z + ko], dy[off.w + ko]), ok);
        let wk = k * filter_size + tap;
        acc[0] = fma(vec4<f32>(w[wk + wcol.x]), g, acc[0]);
        acc[1] = fma(vec4<f32>(w[wk + wcol.y]), g, acc[1]);
        acc[2] = fma(vec4<f32>(w[wk + wcol.z]), g, acc[2]);
        acc[3] = fma(vec4<f32>(w[wk + wcol.w]), g, acc[3]);
      }
    }
  }

  for (var j = 0u; j < 4u; j++) {
    let p = p0 + j;
    if (p >= P) { break; }
    let n = p / HW;
    for (var i = 0u; i < 4u; i++) {
      let c = c0 + i;
      if (c >= u.C) { break; }
#if ${HAS_BIAS}
      dx[(n * u.C + c) * HW + at[j]] = acc[i][j] + bias[c];
#else
      dx[(n * u.C + c) * HW + at[j]] = acc[i][j];
#endif
    }
  }
}
