// Convolution backward-data (the gradient with respect to the input), as an implicit GEMM:
//   dx[n, c, iy, ix] = sum over (k, ky, kx) of w[k, c, ky, kx] * dy[n, k, oy, ox]
//                      where oy = (iy + p - ky) / s and ox = (ix + p - kx) / s divide exactly.
// Rows are input channels (C), columns input pixels (batch*H*W), depth K*KH*KW. Each invocation
// computes TM channels x TN pixels (4 or 8 each, chosen by src/engine/tune.ts).
// With stride s, a pixel is reached only by the taps with ky = iy + p and kx = ix + p (mod s):
// the pixels fall into s*s stride phases (iy mod s, ix mod s), each reached by its own subset of
// the taps (a 3x3 kernel at stride 2: 4, 2, 2 and 1 of the 9). So the dispatch's z index is the
// phase: an invocation's pixels all share it and it walks exactly that phase's taps, every one
// of them useful to all of its pixels - a stride-1 convolution with a smaller kernel. (A walk over
// all pixels that skipped the taps a group could not reach ran at 0.4-0.6x the forward rate at
// stride 2: an invocation spanning two phases paid for the union of their taps.) At stride 1
// there is one phase and every tap.
// The same kernel is the forward pass of a transposed convolution (dy = its input, w = its
// weight [Cin, Cout, KH, KW] read as [K, C, KH, KW]), with an optional bias over C.
// With HALF, dy and w are f16 (the mixed-precision path), accumulated in f32; dx is f32, or f16
// with OUT_HALF (a transposed convolution's output kept in f16).
#if ${HALF}
enable f16;
alias In = f16;   // the operands are f16 copies (mixed precision); every load widens to f32
#else
alias In = f32;
#endif
#if ${OUT_HALF}
alias Out = f16;  // a transposed convolution's activation in mixed precision: stored in f16
#else
alias Out = f32;
#endif
struct U {
  N: u32, C: u32, H: u32, W: u32,      // dx (the convolution's input)
  K: u32, OH: u32, OW: u32,            // dy (the convolution's output)
  stride: u32, pad: u32,
  out_scale: f32,                      // undoes the mixed-precision gradient scale (1 otherwise)
}
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> dy: array<In>;
@group(0) @binding(2) var<storage, read> w: array<In>;           // [K, C, KH, KW]
#if ${HAS_BIAS}
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<Out>;
#else
@group(0) @binding(3) var<storage, read_write> dx: array<Out>;
#endif

const KH = ${KH}u;
const KW = ${KW}u;
const TM = ${TM}u;          // input channels per invocation
const NV = ${TN}u / 4u;     // groups of 4 input pixels per invocation
//! include core/register_tile.wgsl

@compute @workgroup_size(${WG_X}, ${WG_Y})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let HW = u.H * u.W;
  let OHW = u.OH * u.OW;
  // This invocation's phase (py, px) and its grid of pixels iy = py + s*a, ix = px + s*b (the
  // grid of phase 0, the largest; pixels past the edge of a smaller phase are computed, not kept).
  let py = gid.z / u.stride;
  let px = gid.z % u.stride;
  let GH = (u.H + u.stride - 1u) / u.stride;
  let GW = (u.W + u.stride - 1u) / u.stride;
  let GHW = GH * GW;
  let P = u.N * GHW;
  let p0 = gid.x * NV * 4u;
  let c0 = gid.y * TM;
  if (p0 >= P || c0 >= u.C) { return; }

  var img: array<vec4<u32>, NV>;      // offset of the pixel's image in dy
  var ty: array<vec4<i32>, NV>;       // (iy + pad - the phase's first ky) / stride: oy at that tap
  var tx: array<vec4<i32>, NV>;
  var at: array<vec4<u32>, NV>;       // the pixel's offset in its plane of dx; HW when off the edge
  let ky0 = (py + u.pad) % u.stride;  // the phase's taps: ky0, ky0 + s, ...
  let kx0 = (px + u.pad) % u.stride;
  for (var v = 0u; v < NV; v++) {
    for (var j = 0u; j < 4u; j++) {
      let p = min(p0 + 4u * v + j, P - 1u);
      let n = p / GHW;
      let r = p % GHW;
      let iy = py + (r / GW) * u.stride;
      let ix = px + (r % GW) * u.stride;
      img[v][j] = n * u.K * OHW;
      ty[v][j] = (i32(iy + u.pad) - i32(ky0)) / i32(u.stride);
      tx[v][j] = (i32(ix + u.pad) - i32(kx0)) / i32(u.stride);
      at[v][j] = select(HW, iy * u.W + ix, iy < u.H && ix < u.W);
    }
  }
  var wcol: array<u32, TM>;     // offset of each input channel's taps inside one filter
  for (var i = 0u; i < TM; i++) { wcol[i] = min(c0 + i, u.C - 1u) * KH * KW; }
  let filter_size = u.C * KH * KW;

  var acc: Tile;   // acc[i][v][j]: channel c0 + i, pixel p0 + 4v + j
  for (var ky = ky0; ky < KH; ky += u.stride) {
    for (var kx = kx0; kx < KW; kx += u.stride) {
      // Each further tap of the phase moves the window one output row (column) back.
      let dty = i32((ky - ky0) / u.stride);
      let dtx = i32((kx - kx0) / u.stride);
      var off: array<vec4<u32>, NV>;
      var ok: array<vec4<bool>, NV>;
      var any_ok = false;
      for (var v = 0u; v < NV; v++) {
        let oy = ty[v] - vec4<i32>(dty);
        let ox = tx[v] - vec4<i32>(dtx);
        ok[v] = (oy >= vec4<i32>(0)) & (oy < vec4<i32>(i32(u.OH))) &
                (ox >= vec4<i32>(0)) & (ox < vec4<i32>(i32(u.OW)));
        any_ok = any_ok || any(ok[v]);
        off[v] = select(vec4<u32>(0u), img[v] + vec4<u32>(oy) * u.OW + vec4<u32>(ox), ok[v]);
      }
      if (!any_ok) { continue; }
      let tap = ky * KW + kx;
      for (var k = 0u; k < u.K; k++) {
        let ko = k * OHW;
        var g: array<vec4<f32>, NV>;
        for (var v = 0u; v < NV; v++) {
          let o = off[v] + vec4<u32>(ko);
          g[v] = select(vec4<f32>(0.0), vec4<f32>(f32(dy[o.x]), f32(dy[o.y]), f32(dy[o.z]), f32(dy[o.w])), ok[v]);
        }
        let wk = k * filter_size + tap;
        var wv: array<f32, TM>;
        for (var i = 0u; i < TM; i++) { wv[i] = f32(w[wk + wcol[i]]); }
        mm_step(&acc, &wv, &g);
      }
    }
  }

  for (var j = 0u; j < NV * 4u; j++) {
    let p = p0 + j;
    if (p >= P) { break; }
    let plane_offset = at[j / 4u][j % 4u];
    if (plane_offset == HW) { continue; }   // past the edge of this (smaller) phase
    let n = p / GHW;
    for (var i = 0u; i < TM; i++) {
      let c = c0 + i;
      if (c >= u.C) { break; }
      var value = acc[i][j / 4u][j % 4u] * u.out_scale;
#if ${HAS_BIAS}
      value += bias[c];
#endif
      dx[(n * u.C + c) * HW + plane_offset] = Out(value);
    }
  }
}
