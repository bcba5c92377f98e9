// Convolution forward as an implicit GEMM: no im2col buffer is ever written.
//   out[n, k, oy, ox] = bias[k] + sum over (c, ky, kx) of w[k, c, ky, kx] * x[n, c, oy*s - p + ky, ox*s - p + kx]
// Seen as a GEMM, rows are output channels (M = K), columns are output pixels (N = batch*OH*OW)
// and the depth is C*KH*KW; the "B" operand is read straight from x with the window arithmetic.
// Each invocation computes TM output channels x TN neighbouring output pixels (register blocking:
// each x value loaded feeds TM FMAs, each weight TN; TM, TN in {4, 8} and the workgroup shape are
// chosen per adapter and shape by src/engine/tune.ts). The loop runs over (ky, kx) outside and c
// inside, so the window arithmetic and the padding test are paid once per (ky, kx), not per FMA.
// Fused epilogue: bias (or, with AFFINE, a per-channel scale and shift: an eval-mode BatchNorm
// folded in), then ReLU when RELU is set. With HALF, x and w are f16 (the mixed-precision
// path), accumulated in f32; the output is f32, or f16 with OUT_HALF (an activation kept in f16).
// KH and KW are compile-time constants (1, 3, 4, 7 in the networks). Activations are NCHW (the
// layout chosen by measurement: README, "Layout: NCHW").
// Also the backward-data pass of a transposed convolution.
#if ${HALF}
enable f16;
alias In = f16;   // the operands are f16 copies (mixed precision); every load widens to f32
#else
alias In = f32;
#endif
#if ${OUT_HALF}
alias Out = f16;  // mixed precision's activations: the result is stored in f16
#else
alias Out = f32;
#endif
struct U {
  N: u32, C: u32, H: u32, W: u32,      // input
  K: u32, OH: u32, OW: u32,            // output channels and size
  stride: u32, pad: u32,
}
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<In>;
@group(0) @binding(2) var<storage, read> w: array<In>;           // [K, C, KH, KW]
#if ${HAS_BIAS}
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<Out>;
#elif ${AFFINE}
// An eval-mode BatchNorm folded into the epilogue: out = acc * scale[k] + shift[k].
@group(0) @binding(3) var<storage, read> scale: array<f32>;
@group(0) @binding(4) var<storage, read> shift: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<Out>;
#else
@group(0) @binding(3) var<storage, read_write> out: array<Out>;
#endif

const KH = ${KH}u;
const KW = ${KW}u;
const TM = ${TM}u;          // output channels per invocation
const NV = ${TN}u / 4u;     // groups of 4 output pixels per invocation
//! include core/register_tile.wgsl

@compute @workgroup_size(${WG_X}, ${WG_Y})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let OHW = u.OH * u.OW;
  let P = u.N * OHW;
  let p0 = gid.x * NV * 4u;
  let k0 = gid.y * TM;
  if (p0 >= P || k0 >= u.K) { return; }

  // Where each output pixel's window starts in the input (clamped to the last pixel), 4 at a time.
  var img: array<vec4<u32>, NV>;      // offset of the pixel's image in x
  var y0: array<vec4<i32>, NV>;
  var x0: array<vec4<i32>, NV>;
  for (var v = 0u; v < NV; v++) {
    for (var j = 0u; j < 4u; j++) {
      let p = min(p0 + 4u * v + j, P - 1u);
      let n = p / OHW;
      let r = p % OHW;
      img[v][j] = n * u.C * u.H * u.W;
      y0[v][j] = i32((r / u.OW) * u.stride) - i32(u.pad);
      x0[v][j] = i32((r % u.OW) * u.stride) - i32(u.pad);
    }
  }
  var wrow: array<u32, TM>;     // offset of each output channel's filter in w
  for (var i = 0u; i < TM; i++) { wrow[i] = min(k0 + i, u.K - 1u) * u.C * KH * KW; }

  let HW = u.H * u.W;
  var acc: Tile;   // acc[i][v][j]: channel k0 + i, pixel p0 + 4v + j
  for (var ky = 0u; ky < KH; ky++) {
    for (var kx = 0u; kx < KW; kx++) {
      // Out-of-window pixels read offset 0 (always valid) and are zeroed by the select.
      var off: array<vec4<u32>, NV>;
      var ok: array<vec4<bool>, NV>;
      var any_ok = false;
      for (var v = 0u; v < NV; v++) {
        let iy = y0[v] + vec4<i32>(i32(ky));
        let ix = x0[v] + vec4<i32>(i32(kx));
        ok[v] = (iy >= vec4<i32>(0)) & (iy < vec4<i32>(i32(u.H))) & (ix >= vec4<i32>(0)) & (ix < vec4<i32>(i32(u.W)));
        any_ok = any_ok || any(ok[v]);
        off[v] = select(vec4<u32>(0u), img[v] + vec4<u32>(iy) * u.W + vec4<u32>(ix), ok[v]);
      }
      if (!any_ok) { continue; }
      let tap = ky * KW + kx;
      for (var c = 0u; c < u.C; c++) {
        let co = c * HW;
        var xv: array<vec4<f32>, NV>;
        for (var v = 0u; v < NV; v++) {
          let o = off[v] + vec4<u32>(co);
          xv[v] = select(vec4<f32>(0.0), vec4<f32>(f32(x[o.x]), f32(x[o.y]), f32(x[o.z]), f32(x[o.w])), ok[v]);
        }
        let wc = c * KH * KW + tap;
        var wv: array<f32, TM>;
        for (var i = 0u; i < TM; i++) { wv[i] = f32(w[wrow[i] + wc]); }
        mm_step(&acc, &wv, &xv);
      }
    }
  }

  for (var j = 0u; j < NV * 4u; j++) {
    let p = p0 + j;
    if (p >= P) { break; }
    let n = p / OHW;
    let r = p % OHW;
    for (var i = 0u; i < TM; i++) {
      let k = k0 + i;
      if (k >= u.K) { break; }
      var value = acc[i][j / 4u][j % 4u];
#if ${HAS_BIAS}
      value += bias[k];
#elif ${AFFINE}
      value = value * scale[k] + shift[k];
#endif
#if ${RELU}
      value = max(value, 0.0);
#endif
      out[(n * u.K + k) * OHW + r] = Out(value);
    }
  }
}
