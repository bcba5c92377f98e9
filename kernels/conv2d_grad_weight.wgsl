// Convolution backward-weight, as an implicit GEMM with split-K:
//   dw[k, c, ky, kx] = sum over (n, oy, ox) of dy[n, k, oy, ox] * x[n, c, oy*s - p + ky, ox*s - p + kx]
// Rows are output channels (K), columns the filter taps (C*KH*KW), depth every output pixel
// (batch*OH*OW) - long, so the depth is cut into `splits` chunks (workgroup z): each writes its
// partial sums to partial[split], and a second pass (reduce.wgsl) adds them in a fixed order.
// Deterministic: no atomics. Each invocation computes TM channels x TN taps (4 or 8 each,
// chosen by src/engine/tune.ts).
// With dy and x swapped this is also the weight gradient of a transposed convolution.
// With HALF, dy and x are f16 (the mixed-precision path), accumulated in f32; the partials are f32.
#if ${HALF}
enable f16;
alias In = f16;   // the operands are f16 copies (mixed precision); every load widens to f32
#else
alias In = f32;
#endif
struct U {
  N: u32, C: u32, H: u32, W: u32,      // x
  K: u32, OH: u32, OW: u32,            // dy
  stride: u32, pad: u32,
  chunk: u32,                          // output pixels per split
  out_scale: f32,                      // undoes the mixed-precision gradient scale (1 otherwise)
}
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> dy: array<In>;
@group(0) @binding(2) var<storage, read> x: array<In>;
@group(0) @binding(3) var<storage, read_write> partial: array<f32>;   // [splits, K, C*KH*KW]

const KH = ${KH}u;
const KW = ${KW}u;
const TM = ${TM}u;          // output channels per invocation
const NV = ${TN}u / 4u;     // groups of 4 taps per invocation
//! include core/register_tile.wgsl

@compute @workgroup_size(${WG_X}, ${WG_Y})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let taps = u.C * KH * KW;
  let t0 = gid.x * NV * 4u;
  let k0 = gid.y * TM;
  let split = gid.z;
  if (t0 >= taps || k0 >= u.K) { return; }
  let HW = u.H * u.W;
  let OHW = u.OH * u.OW;
  let P = u.N * OHW;

  // Per tap: its channel's plane in x and its offset from the window corner.
  var cplane: array<vec4<u32>, NV>;
  var dyy: array<vec4<i32>, NV>;
  var dxx: array<vec4<i32>, NV>;
  for (var v = 0u; v < NV; v++) {
    for (var j = 0u; j < 4u; j++) {
      let t = min(t0 + 4u * v + j, taps - 1u);
      let c = t / (KH * KW);
      let r = t % (KH * KW);
      cplane[v][j] = c * HW;
      dyy[v][j] = i32(r / KW) - i32(u.pad);
      dxx[v][j] = i32(r % KW) - i32(u.pad);
    }
  }
  var krow: array<u32, TM>;
  for (var i = 0u; i < TM; i++) { krow[i] = min(k0 + i, u.K - 1u) * OHW; }

  let first = split * u.chunk;
  let last = min(first + u.chunk, P);
  var acc: Tile;   // acc[i][v][j]: channel k0 + i, tap t0 + 4v + j
  if (first < last) {
    // Walk the pixels with counters instead of dividing at every step.
    var n = first / OHW;
    var oy = (first % OHW) / u.OW;
    var ox = first % u.OW;
    for (var p = first; p < last; p++) {
      let r = oy * u.OW + ox;
      let gbase = n * u.K * OHW + r;
      let image = vec4<u32>(n * u.C * HW);
      var xv: array<vec4<f32>, NV>;
      for (var v = 0u; v < NV; v++) {
        let iy = vec4<i32>(i32(oy * u.stride)) + dyy[v];
        let ix = vec4<i32>(i32(ox * u.stride)) + dxx[v];
        let ok = (iy >= vec4<i32>(0)) & (iy < vec4<i32>(i32(u.H))) & (ix >= vec4<i32>(0)) & (ix < vec4<i32>(i32(u.W)));
        let off = select(vec4<u32>(0u), image + cplane[v] + vec4<u32>(iy) * u.W + vec4<u32>(ix), ok);
        xv[v] = select(vec4<f32>(0.0), vec4<f32>(f32(x[off.x]), f32(x[off.y]), f32(x[off.z]), f32(x[off.w])), ok);
      }
      var g: array<f32, TM>;
      for (var i = 0u; i < TM; i++) { g[i] = f32(dy[gbase + krow[i]]); }
      mm_step(&acc, &g, &xv);
      ox++;
      if (ox == u.OW) {
        ox = 0u;
        oy++;
        if (oy == u.OH) { oy = 0u; n++; }
      }
    }
  }

  let base = split * u.K * taps;
  for (var i = 0u; i < TM; i++) {
    let k = k0 + i;
    if (k >= u.K) { break; }
    for (var j = 0u; j < NV * 4u; j++) {
      let t = t0 + j;
      if (t >= taps) { break; }
      partial[base + k * taps + t] = acc[i][j / 4u][j % 4u] * u.out_scale;
    }
  }
}
