// Convolution backward-data (the gradient with respect to the input), as an implicit GEMM:
//   dx[n, c, iy, ix] = sum over (k, ky, kx) of w[k, c, ky, kx] * dy[n, k, oy, ox]
//                      where oy = (iy + p - ky) / s and ox = (ix + p - kx) / s divide exactly.
// Rows are input channels (C), columns input pixels (batch*H*W), depth K*KH*KW. Each invocation
// computes TM channels x TN pixels (4 or 8 each, chosen by src/engine/tune.ts). With stride s,
// only taps with kx = ix + pad (mod s) reach a pixel, so the columns of a row are visited phase
// by phase (x = phase, phase + s, ...): the pixels of an invocation mostly share their phase, and
// a tap (ky, kx) that none of a group of 4 can reach is skipped for that group - for stride 2
// that halves the work of every row and column.
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

@compute @workgroup_size(${WG_X}, ${WG_Y})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let HW = u.H * u.W;
  let OHW = u.OH * u.OW;
  let P = u.N * HW;
  let p0 = gid.x * NV * 4u;
  let c0 = gid.y * TM;
  if (p0 >= P || c0 >= u.C) { return; }

  var img: array<vec4<u32>, NV>;      // offset of the pixel's image in dy
  var ty: array<vec4<i32>, NV>;       // iy + pad
  var tx: array<vec4<i32>, NV>;
  var at: array<vec4<u32>, NV>;       // the pixel's offset in its plane of dx
  for (var v = 0u; v < NV; v++) {
    for (var j = 0u; j < 4u; j++) {
      let p = min(p0 + 4u * v + j, P - 1u);
      let n = p / HW;
      let r = p % HW;
      let iy = r / u.W;
      let ix = column(r % u.W);
      img[v][j] = n * u.K * OHW;
      ty[v][j] = i32(iy + u.pad);
      tx[v][j] = i32(ix + u.pad);
      at[v][j] = iy * u.W + ix;
    }
  }
  var wcol: array<u32, TM>;     // offset of each input channel's taps inside one filter
  for (var i = 0u; i < TM; i++) { wcol[i] = min(c0 + i, u.C - 1u) * KH * KW; }
  let s = vec4<i32>(i32(u.stride));
  let filter_size = u.C * KH * KW;

  var acc: Tile;   // acc[i][v][j]: channel c0 + i, pixel p0 + 4v + j
  for (var ky = 0u; ky < KH; ky++) {
    for (var kx = 0u; kx < KW; kx++) {
      var off: array<vec4<u32>, NV>;
      var ok: array<vec4<bool>, NV>;
      var any_ok = false;
      for (var v = 0u; v < NV; v++) {
        let ny = ty[v] - vec4<i32>(i32(ky));
        let oy = ny / s;
        let nx = tx[v] - vec4<i32>(i32(kx));
        let ox = nx / s;
        ok[v] = (ny >= vec4<i32>(0)) & (oy * s == ny) & (oy < vec4<i32>(i32(u.OH))) &
                (nx >= vec4<i32>(0)) & (ox * s == nx) & (ox < vec4<i32>(i32(u.OW)));
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
    let n = p / HW;
    for (var i = 0u; i < TM; i++) {
      let c = c0 + i;
      if (c >= u.C) { break; }
      var value = acc[i][j / 4u][j % 4u] * u.out_scale;
#if ${HAS_BIAS}
      value += bias[c];
#endif
      dx[(n * u.C + c) * HW + at[j / 4u][j % 4u]] = Out(value);
    }
  }
}
