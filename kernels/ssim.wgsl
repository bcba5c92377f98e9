// SSIM loss between predicted heatmaps x and targets y, planes [P, H, W] (P = images * landmarks),
// with a Gaussian window (WINDOW x WINDOW, sigma SIGMA) applied as two separable passes, zero
// padding ("same" size, as the widely used pytorch-ssim), C1 = (0.01 L)^2, C2 = (0.03 L)^2.
// Per pixel, from the windowed moments mx, my, exx, eyy, exy:
//   A1 = 2 mx my + C1, A2 = 2 (exy - mx my) + C2, B1 = mx^2 + my^2 + C1, B2 = exx - mx^2 + eyy - my^2 + C2
//   S  = A1 A2 / (B1 B2)
// loss = 1 - (weighted mean of S, weight = the plane's mask: invisible landmarks drop out).
// Backward, from dS/dmx = S (2my/A1 - 2my/A2 - 2mx/B1 + 2mx/B2), dS/dexx = -S/B2, dS/dexy = 2S/A2:
//   dx = -dloss / sum(mask) * (G * D1 + 2 x (G * D2) + y (G * D3)),  G * = the same window
// (a zero-padded symmetric window is its own adjoint).
// Entry points, in order: moments_h, moments_v (with S and its derivatives), then for the
// backward grad_h, grad_v.
struct U { P: u32, H: u32, W: u32, c1: f32, c2: f32 }
@group(0) @binding(0) var<uniform> u: U;

const WINDOW = ${WINDOW}u;
const HALF = ${WINDOW}u / 2u;
// The normalized 1-D Gaussian, worked out on the CPU (src/engine/ssim.ts: gaussianWindow) and
// compiled in: no exp() per invocation.
const G = array<f32, WINDOW>(${WEIGHTS});

// The window passes run on a 2-D grid: x a column, y a row of all the planes stacked (R = plane *
// H + row), so that no invocation divides by the width (integer division is slow on CPU
// adapters) and the vertical passes divide once, by the height.

// --- moments_h: horizontal pass over x, y, x^2, y^2, xy
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> hx: array<f32>;
@group(0) @binding(4) var<storage, read_write> hy: array<f32>;
@group(0) @binding(5) var<storage, read_write> hxx: array<f32>;
@group(0) @binding(6) var<storage, read_write> hyy: array<f32>;
@group(0) @binding(7) var<storage, read_write> hxy: array<f32>;

@compute @workgroup_size(32, 8)
fn moments_h(@builtin(global_invocation_id) gid: vec3<u32>) {
  let col = gid.x;
  if (col >= u.W || gid.y >= u.P * u.H) { return; }
  let row = gid.y * u.W;
  let i = row + col;
  let g = G;
  var s = array<f32, 5>(0.0, 0.0, 0.0, 0.0, 0.0);
  for (var t = 0u; t < WINDOW; t++) {
    let c = i32(col) + i32(t) - i32(HALF);
    if (c < 0 || c >= i32(u.W)) { continue; }
    let a = x[row + u32(c)];
    let b = y[row + u32(c)];
    s[0] += g[t] * a;
    s[1] += g[t] * b;
    s[2] += g[t] * a * a;
    s[3] += g[t] * b * b;
    s[4] += g[t] * a * b;
  }
  hx[i] = s[0]; hy[i] = s[1]; hxx[i] = s[2]; hyy[i] = s[3]; hxy[i] = s[4];
}

// --- moments_v: the vertical pass, giving the windowed moments, and straight from them (in
// registers, never stored) S per pixel as a masked pair for the mean, and its derivatives.
// With VEC4 (a width that is a multiple of 4) each invocation takes 4 neighbouring columns as
// vec4s: a quarter of the loads, which is what this pass is bound by on CPU adapters.
#if ${VEC4}
alias VT = vec4<f32>;
const PER = 4u;
#else
alias VT = f32;
const PER = 1u;
#endif
@group(0) @binding(1) var<storage, read> vx: array<VT>;
@group(0) @binding(2) var<storage, read> vy: array<VT>;
@group(0) @binding(3) var<storage, read> vxx: array<VT>;
@group(0) @binding(4) var<storage, read> vyy: array<VT>;
@group(0) @binding(5) var<storage, read> vxy: array<VT>;
@group(0) @binding(6) var<storage, read> mask: array<f32>;            // one weight per plane
@group(0) @binding(7) var<storage, read_write> pair: array<VT>;       // [2, n]: mask * S, mask
@group(0) @binding(8) var<storage, read_write> d1: array<VT>;         // mask * dS/dmx
@group(0) @binding(9) var<storage, read_write> d2: array<VT>;         // mask * dS/dexx
@group(0) @binding(10) var<storage, read_write> d3: array<VT>;        // mask * dS/dexy

@compute @workgroup_size(16, 16)
fn moments_v(@builtin(global_invocation_id) gid: vec3<u32>) {
  let cols = u.W / PER;
  let col = gid.x;
  if (col >= cols || gid.y >= u.P * u.H) { return; }
  let plane = gid.y / u.H;
  let r = gid.y - plane * u.H;
  let i = gid.y * cols + col;
  var ax = VT(0.0);
  var ay = VT(0.0);
  var exx = VT(0.0);
  var eyy = VT(0.0);
  var exy = VT(0.0);
  for (var t = 0u; t < WINDOW; t++) {
    let rr = i32(r) + i32(t) - i32(HALF);
    if (rr < 0 || rr >= i32(u.H)) { continue; }
    let j = (plane * u.H + u32(rr)) * cols + col;
    let w = G[t];
    ax += w * vx[j];
    ay += w * vy[j];
    exx += w * vxx[j];
    eyy += w * vyy[j];
    exy += w * vxy[j];
  }
  let m = mask[plane];
  let a1 = 2.0 * ax * ay + u.c1;
  let a2 = 2.0 * (exy - ax * ay) + u.c2;
  let b1 = ax * ax + ay * ay + u.c1;
  let b2 = exx - ax * ax + eyy - ay * ay + u.c2;
  let s = a1 * a2 / (b1 * b2);
  pair[i] = m * s;
  pair[u.P * u.H * cols + i] = VT(m);
  d1[i] = m * s * (2.0 * ay / a1 - 2.0 * ay / a2 - 2.0 * ax / b1 + 2.0 * ax / b2);
  d2[i] = m * s * (-1.0 / b2);
  d3[i] = m * s * (2.0 / a2);
}

// --- grad_h: horizontal pass over the three derivative maps
@group(0) @binding(1) var<storage, read> gd1: array<f32>;
@group(0) @binding(2) var<storage, read> gd2: array<f32>;
@group(0) @binding(3) var<storage, read> gd3: array<f32>;
@group(0) @binding(4) var<storage, read_write> gh1: array<f32>;
@group(0) @binding(5) var<storage, read_write> gh2: array<f32>;
@group(0) @binding(6) var<storage, read_write> gh3: array<f32>;

@compute @workgroup_size(32, 8)
fn grad_h(@builtin(global_invocation_id) gid: vec3<u32>) {
  let col = gid.x;
  if (col >= u.W || gid.y >= u.P * u.H) { return; }
  let row = gid.y * u.W;
  let i = row + col;
  let g = G;
  var s = vec3<f32>(0.0);
  for (var t = 0u; t < WINDOW; t++) {
    let c = i32(col) + i32(t) - i32(HALF);
    if (c < 0 || c >= i32(u.W)) { continue; }
    let j = row + u32(c);
    s += g[t] * vec3<f32>(gd1[j], gd2[j], gd3[j]);
  }
  gh1[i] = s.x; gh2[i] = s.y; gh3[i] = s.z;
}

// --- grad_v: vertical pass and the combination into dx (4 columns at a time with VEC4)
@group(0) @binding(1) var<storage, read> v1: array<VT>;
@group(0) @binding(2) var<storage, read> v2: array<VT>;
@group(0) @binding(3) var<storage, read> v3: array<VT>;
@group(0) @binding(4) var<storage, read> px: array<VT>;
@group(0) @binding(5) var<storage, read> py: array<VT>;
@group(0) @binding(6) var<storage, read> sums: array<f32>;           // [sum mask*S, sum mask]
@group(0) @binding(7) var<storage, read> grad_loss: array<f32>;
@group(0) @binding(8) var<storage, read_write> dx: array<VT>;

@compute @workgroup_size(16, 16)
fn grad_v(@builtin(global_invocation_id) gid: vec3<u32>) {
  let cols = u.W / PER;
  let col = gid.x;
  if (col >= cols || gid.y >= u.P * u.H) { return; }
  let plane = gid.y / u.H;
  let r = gid.y - plane * u.H;
  let i = gid.y * cols + col;
  var s1 = VT(0.0);
  var s2 = VT(0.0);
  var s3 = VT(0.0);
  for (var t = 0u; t < WINDOW; t++) {
    let rr = i32(r) + i32(t) - i32(HALF);
    if (rr < 0 || rr >= i32(u.H)) { continue; }
    let j = (plane * u.H + u32(rr)) * cols + col;
    let w = G[t];
    s1 += w * v1[j];
    s2 += w * v2[j];
    s3 += w * v3[j];
  }
  let scale = select(0.0, -grad_loss[0] / sums[1], sums[1] > 0.0);
  dx[i] = scale * (s1 + 2.0 * px[i] * s2 + py[i] * s3);
}
