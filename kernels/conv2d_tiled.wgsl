// Convolution forward as an implicit GEMM with workgroup-memory tiles (NCHW):
//   out[n, k, oy, ox] = bias[k] + sum over r = (c, ky, kx) of w[k, r] * x[n, c, oy*s - p + ky, ox*s - p + kx]
// The same contract as conv2d.wgsl, computed as gemm_tiled.wgsl computes a GEMM: rows are output
// channels, columns output pixels (batch*OH*OW), depth C*KH*KW. Each step stages a
// (TM*WG_Y) x BK slice of the weights (contiguous along the depth) and the BK x (TN*WG_X) slice of
// the input patches it meets (im2col on the fly: window arithmetic per staged value, padding as
// zeros) in workgroup memory; every invocation then computes its TM x TN block from there.
// Pays on GPUs; src/engine/tune.ts offers it as a candidate ("s" tiles) and measurement decides
// (on lavapipe barriers cost more than the re-reads they save).
#if ${HALF}
enable f16;
alias In = f16;   // the operands are f16 copies (mixed precision); every load widens to f32
#else
alias In = f32;
#endif
struct U {
  N: u32, C: u32, H: u32, W: u32,      // input
  K: u32, OH: u32, OW: u32,            // output channels and size
  stride: u32, pad: u32,
}
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<In>;
@group(0) @binding(2) var<storage, read> w: array<In>;           // [K, C*KH*KW]
#if ${HAS_BIAS}
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
#elif ${AFFINE}
// An eval-mode BatchNorm folded into the epilogue: out = acc * scale[k] + shift[k].
@group(0) @binding(3) var<storage, read> scale: array<f32>;
@group(0) @binding(4) var<storage, read> shift: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
#else
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
#endif

const KH = ${KH}u;
const KW = ${KW}u;
const TM = ${TM}u;              // output channels per invocation
const NV = ${TN}u / 4u;         // groups of 4 output pixels per invocation
const WX = ${WG_X}u;
const WY = ${WG_Y}u;
const TILE_M = TM * WY;         // output channels per workgroup
const TILE_N = NV * 4u * WX;    // output pixels per workgroup
const BK = 16u;                 // depth staged per step
const THREADS = WX * WY;

var<workgroup> Ws: array<f32, BK * TILE_M>;            // Ws[r * TILE_M + channel]
var<workgroup> Xs: array<vec4<f32>, BK * TILE_N / 4u>; // Xs[r * TILE_N / 4 + pixel / 4]

// One value of the im2col matrix: depth r, output pixel p (zero outside the image or the matrix).
fn im2col(r: u32, p: u32) -> f32 {
  let depth = u.C * KH * KW;
  let P = u.N * u.OH * u.OW;
  if (r >= depth || p >= P) { return 0.0; }
  let c = r / (KH * KW);
  let tap = r % (KH * KW);
  let OHW = u.OH * u.OW;
  let n = p / OHW;
  let q = p % OHW;
  let iy = i32((q / u.OW) * u.stride + tap / KW) - i32(u.pad);
  let ix = i32((q % u.OW) * u.stride + tap % KW) - i32(u.pad);
  if (iy < 0 || ix < 0 || iy >= i32(u.H) || ix >= i32(u.W)) { return 0.0; }
  return f32(x[((n * u.C + c) * u.H + u32(iy)) * u.W + u32(ix)]);
}

@compute @workgroup_size(WX, WY)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let k0 = wid.y * TILE_M;        // the workgroup's first output channel and pixel
  let p0 = wid.x * TILE_N;
  let depth = u.C * KH * KW;
  var acc: array<array<vec4<f32>, NV>, TM>;

  for (var r0 = 0u; r0 < depth; r0 += BK) {
    // Weights: consecutive invocations take consecutive depths (w's memory order).
    for (var e = li; e < BK * TILE_M; e += THREADS) {
      let r = e % BK;
      let k = e / BK;
      var v = 0.0;
      if (k0 + k < u.K && r0 + r < depth) { v = f32(w[(k0 + k) * depth + r0 + r]); }
      Ws[r * TILE_M + k] = v;
    }
    // Patches: consecutive invocations take consecutive pixels (neighbours in x's rows).
    for (var e = li; e < BK * TILE_N / 4u; e += THREADS) {
      let r = e / (TILE_N / 4u);
      let p = p0 + (e % (TILE_N / 4u)) * 4u;
      Xs[e] = vec4<f32>(im2col(r0 + r, p), im2col(r0 + r, p + 1u), im2col(r0 + r, p + 2u), im2col(r0 + r, p + 3u));
    }
    workgroupBarrier();
    for (var r = 0u; r < BK; r++) {
      var xv: array<vec4<f32>, NV>;
      for (var v = 0u; v < NV; v++) { xv[v] = Xs[r * (TILE_N / 4u) + lid.x * NV + v]; }
      for (var i = 0u; i < TM; i++) {
        let wv = vec4<f32>(Ws[r * TILE_M + lid.y * TM + i]);
        for (var v = 0u; v < NV; v++) { acc[i][v] = fma(wv, xv[v], acc[i][v]); }
      }
    }
    workgroupBarrier();
  }

  let OHW = u.OH * u.OW;
  let P = u.N * OHW;
  for (var j = 0u; j < NV * 4u; j++) {
    let p = p0 + lid.x * NV * 4u + j;
    if (p >= P) { break; }
    let n = p / OHW;
    let q = p % OHW;
    for (var i = 0u; i < TM; i++) {
      let k = k0 + lid.y * TM + i;
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
      out[(n * u.K + k) * OHW + q] = value;
    }
  }
}
