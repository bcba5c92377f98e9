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
@group(0) @binding(2) var<storage, read> w: array<In>;           // [K, C*KH*KW]
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
const TM = ${TM}u;              // output channels per invocation
const NV = ${TN}u / 4u;         // groups of 4 output pixels per invocation
const WX = ${WG_X}u;
const WY = ${WG_Y}u;
//! include core/workgroup_tile.wgsl

fn mm_rows() -> u32 { return u.K; }
fn mm_cols() -> u32 { return u.N * u.OH * u.OW; }
fn mm_depth() -> u32 { return u.C * KH * KW; }

const A_K_FASTEST = true;       // a filter's depths are contiguous in w

// The weights: output channel k, depth r = (c, ky, kx).
fn mm_read_a(batch: u32, k: u32, r: u32) -> f32 {
  if (k >= u.K || r >= mm_depth()) { return 0.0; }
  return f32(w[k * mm_depth() + r]);
}

// One value of the im2col matrix: depth r, output pixel p (zero outside the image or the matrix).
fn mm_read_b(batch: u32, r: u32, p: u32) -> f32 {
  if (r >= mm_depth() || p >= mm_cols()) { return 0.0; }
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

fn mm_write(batch: u32, k: u32, p: u32, acc: f32) {
  let OHW = u.OH * u.OW;
  var value = acc;
#if ${HAS_BIAS}
  value += bias[k];
#elif ${AFFINE}
  value = value * scale[k] + shift[k];
#endif
#if ${RELU}
  value = max(value, 0.0);
#endif
  out[((p / OHW) * u.K + k) * OHW + p % OHW] = Out(value);
}

@compute @workgroup_size(WX, WY)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  mm_tiled(wid, lid, li);
}
