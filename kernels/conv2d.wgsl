// Convolution forward as an implicit GEMM: no im2col buffer is ever written.
//   out[n, k, oy, ox] = bias[k] + sum over (c, ky, kx) of w[k, c, ky, kx] * x[n, c, oy*s - p + ky, ox*s - p + kx]
// Seen as a GEMM, rows are output channels (M = K), columns are output pixels (N = batch*OH*OW)
// and the depth is C*KH*KW; the "B" operand is read straight from x with the window arithmetic.
// Each invocation computes 4 output channels x 4 neighbouring output pixels (register blocking:
// each x value loaded feeds 4 FMAs, each weight 4). The loop runs over (ky, kx) outside and c
// inside, so the window arithmetic and the padding test are paid once per (ky, kx), not per FMA.
// KH and KW are compile-time constants (1, 3, 4, 7 in the networks). NHWC switches the
// activation layout for the layout measurement in bench/conv.ts; the networks use NCHW.
// Also the backward-data pass of a transposed convolution.
struct U {
  N: u32, C: u32, H: u32, W: u32,      // input
  K: u32, OH: u32, OW: u32,            // output channels and size
  stride: u32, pad: u32,
}
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;          // [K, C, KH, KW]
#if ${HAS_BIAS}
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
#else
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
#endif

const KH = ${KH}u;
const KW = ${KW}u;

@compute @workgroup_size(16, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let OHW = u.OH * u.OW;
  let P = u.N * OHW;
  let p0 = gid.x * 4u;
  let k0 = gid.y * 4u;
  if (p0 >= P || k0 >= u.K) { return; }

  // Where each of the 4 output pixels' windows start in the input (clamped to the last pixel).
  var img: vec4<u32>;      // offset of the pixel's image in x
  var y0: vec4<i32>;
  var x0: vec4<i32>;
  for (var j = 0u; j < 4u; j++) {
    let p = min(p0 + j, P - 1u);
    let n = p / OHW;
    let r = p % OHW;
#if ${NHWC}
    img[j] = n * u.H * u.W * u.C;
#else
    img[j] = n * u.C * u.H * u.W;
#endif
    y0[j] = i32((r / u.OW) * u.stride) - i32(u.pad);
    x0[j] = i32((r % u.OW) * u.stride) - i32(u.pad);
  }
  var wrow: vec4<u32>;     // offset of each output channel's filter in w
  for (var i = 0u; i < 4u; i++) { wrow[i] = min(k0 + i, u.K - 1u) * u.C * KH * KW; }

  let HW = u.H * u.W;
  var acc: array<vec4<f32>, 4>;   // acc[i][j]: channel k0 + i, pixel p0 + j
  for (var ky = 0u; ky < KH; ky++) {
    let iy = y0 + vec4<i32>(i32(ky));
    let row_ok = (iy >= vec4<i32>(0)) & (iy < vec4<i32>(i32(u.H)));
    if (!any(row_ok)) { continue; }
    for (var kx = 0u; kx < KW; kx++) {
      let ix = x0 + vec4<i32>(i32(kx));
      let ok = row_ok & (ix >= vec4<i32>(0)) & (ix < vec4<i32>(i32(u.W)));
      if (!any(ok)) { continue; }
      // Out-of-window pixels read offset 0 (always valid) and are zeroed by the select.
#if ${NHWC}
      let off = select(vec4<u32>(0u), img + (vec4<u32>(iy) * u.W + vec4<u32>(ix)) * u.C, ok);
      let cstride = 1u;
#else
      let off = select(vec4<u32>(0u), img + vec4<u32>(iy) * u.W + vec4<u32>(ix), ok);
      let cstride = HW;
#endif
      let tap = ky * KW + kx;
      for (var c = 0u; c < u.C; c++) {
        let co = c * cstride;
        let xv = select(vec4<f32>(0.0), vec4<f32>(x[off.x + co], x[off.y + co], x[off.z + co], x[off.w + co]), ok);
        let wc = c * KH * KW + tap;
        acc[0] = fma(vec4<f32>(w[wrow.x + wc]), xv, acc[0]);
        acc[1] = fma(vec4<f32>(w[wrow.y + wc]), xv, acc[1]);
        acc[2] = fma(vec4<f32>(w[wrow.z + wc]), xv, acc[2]);
        acc[3] = fma(vec4<f32>(w[wrow.w + wc]), xv, acc[3]);
      }
    }
  }

  for (var j = 0u; j < 4u; j++) {
    let p = p0 + j;
    if (p >= P) { break; }
    let n = p / OHW;
    let r = p % OHW;
    for (var i = 0u; i < 4u; i++) {
      let k = k0 + i;
      if (k >= u.K) { break; }
#if ${HAS_BIAS}
      let v = acc[i][j] + bias[k];
#else
      let v = acc[i][j];
#endif
#if ${NHWC}
      out[(n * OHW + r) * u.K + k] = v;
#else
      out[(n * u.K + k) * OHW + r] = v;
#endif
    }
  }
}
