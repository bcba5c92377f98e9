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
// Entry points, in order: moments_h, moments_v, ssim_map, then for the backward grad_h, grad_v.
struct U { P: u32, H: u32, W: u32, c1: f32, c2: f32 }
@group(0) @binding(0) var<uniform> u: U;

const WINDOW = ${WINDOW}u;
const HALF = ${WINDOW}u / 2u;
const SIGMA = ${SIGMA};

fn gauss() -> array<f32, WINDOW> {
  var g: array<f32, WINDOW>;
  var total = 0.0;
  for (var i = 0u; i < WINDOW; i++) {
    let d = f32(i) - f32(HALF);
    g[i] = exp(-d * d / (2.0 * SIGMA * SIGMA));
    total += g[i];
  }
  for (var i = 0u; i < WINDOW; i++) { g[i] /= total; }
  return g;
}

fn pixel(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * 256u + lid;
}

// --- moments_h: horizontal pass over x, y, x^2, y^2, xy
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> hx: array<f32>;
@group(0) @binding(4) var<storage, read_write> hy: array<f32>;
@group(0) @binding(5) var<storage, read_write> hxx: array<f32>;
@group(0) @binding(6) var<storage, read_write> hyy: array<f32>;
@group(0) @binding(7) var<storage, read_write> hxy: array<f32>;

@compute @workgroup_size(256)
fn moments_h(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
  let i = pixel(wid, nwg, lid);
  if (i >= u.P * u.H * u.W) { return; }
  let g = gauss();
  let col = i % u.W;
  let row = i - col;
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

// --- moments_v: vertical pass, giving the windowed moments
@group(0) @binding(1) var<storage, read> vx: array<f32>;
@group(0) @binding(2) var<storage, read> vy: array<f32>;
@group(0) @binding(3) var<storage, read> vxx: array<f32>;
@group(0) @binding(4) var<storage, read> vyy: array<f32>;
@group(0) @binding(5) var<storage, read> vxy: array<f32>;
@group(0) @binding(6) var<storage, read_write> mx: array<f32>;
@group(0) @binding(7) var<storage, read_write> my: array<f32>;
@group(0) @binding(8) var<storage, read_write> exx: array<f32>;
@group(0) @binding(9) var<storage, read_write> eyy: array<f32>;
@group(0) @binding(10) var<storage, read_write> exy: array<f32>;

@compute @workgroup_size(256)
fn moments_v(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
  let i = pixel(wid, nwg, lid);
  if (i >= u.P * u.H * u.W) { return; }
  let g = gauss();
  let plane = i / (u.H * u.W);
  let r = (i / u.W) % u.H;
  let col = i % u.W;
  var s = array<f32, 5>(0.0, 0.0, 0.0, 0.0, 0.0);
  for (var t = 0u; t < WINDOW; t++) {
    let rr = i32(r) + i32(t) - i32(HALF);
    if (rr < 0 || rr >= i32(u.H)) { continue; }
    let j = (plane * u.H + u32(rr)) * u.W + col;
    s[0] += g[t] * vx[j];
    s[1] += g[t] * vy[j];
    s[2] += g[t] * vxx[j];
    s[3] += g[t] * vyy[j];
    s[4] += g[t] * vxy[j];
  }
  mx[i] = s[0]; my[i] = s[1]; exx[i] = s[2]; eyy[i] = s[3]; exy[i] = s[4];
}

// --- ssim_map: S per pixel (as a masked pair for the mean) and its derivatives
@group(0) @binding(1) var<storage, read> m_x: array<f32>;
@group(0) @binding(2) var<storage, read> m_y: array<f32>;
@group(0) @binding(3) var<storage, read> m_xx: array<f32>;
@group(0) @binding(4) var<storage, read> m_yy: array<f32>;
@group(0) @binding(5) var<storage, read> m_xy: array<f32>;
@group(0) @binding(6) var<storage, read> mask: array<f32>;            // one weight per plane
@group(0) @binding(7) var<storage, read_write> pair: array<f32>;      // [2, n]: mask * S, mask
@group(0) @binding(8) var<storage, read_write> d1: array<f32>;        // mask * dS/dmx
@group(0) @binding(9) var<storage, read_write> d2: array<f32>;        // mask * dS/dexx
@group(0) @binding(10) var<storage, read_write> d3: array<f32>;       // mask * dS/dexy

@compute @workgroup_size(256)
fn ssim_map(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let n = u.P * u.H * u.W;
  let i = pixel(wid, nwg, lid);
  if (i >= n) { return; }
  let m = mask[i / (u.H * u.W)];
  let ax = m_x[i];
  let ay = m_y[i];
  let a1 = 2.0 * ax * ay + u.c1;
  let a2 = 2.0 * (m_xy[i] - ax * ay) + u.c2;
  let b1 = ax * ax + ay * ay + u.c1;
  let b2 = m_xx[i] - ax * ax + m_yy[i] - ay * ay + u.c2;
  let s = a1 * a2 / (b1 * b2);
  pair[i] = m * s;
  pair[n + i] = m;
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

@compute @workgroup_size(256)
fn grad_h(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  let i = pixel(wid, nwg, lid);
  if (i >= u.P * u.H * u.W) { return; }
  let g = gauss();
  let col = i % u.W;
  let row = i - col;
  var s = vec3<f32>(0.0);
  for (var t = 0u; t < WINDOW; t++) {
    let c = i32(col) + i32(t) - i32(HALF);
    if (c < 0 || c >= i32(u.W)) { continue; }
    let j = row + u32(c);
    s += g[t] * vec3<f32>(gd1[j], gd2[j], gd3[j]);
  }
  gh1[i] = s.x; gh2[i] = s.y; gh3[i] = s.z;
}

// --- grad_v: vertical pass and the combination into dx
@group(0) @binding(1) var<storage, read> v1: array<f32>;
@group(0) @binding(2) var<storage, read> v2: array<f32>;
@group(0) @binding(3) var<storage, read> v3: array<f32>;
@group(0) @binding(4) var<storage, read> px: array<f32>;
@group(0) @binding(5) var<storage, read> py: array<f32>;
@group(0) @binding(6) var<storage, read> sums: array<f32>;           // [sum mask*S, sum mask]
@group(0) @binding(7) var<storage, read> grad_loss: array<f32>;
@group(0) @binding(8) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(256)
fn grad_v(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  let i = pixel(wid, nwg, lid);
  if (i >= u.P * u.H * u.W) { return; }
  let g = gauss();
  let plane = i / (u.H * u.W);
  let r = (i / u.W) % u.H;
  let col = i % u.W;
  var s = vec3<f32>(0.0);
  for (var t = 0u; t < WINDOW; t++) {
    let rr = i32(r) + i32(t) - i32(HALF);
    if (rr < 0 || rr >= i32(u.H)) { continue; }
    let j = (plane * u.H + u32(rr)) * u.W + col;
    s += g[t] * vec3<f32>(v1[j], v2[j], v3[j]);
  }
  let scale = select(0.0, -grad_loss[0] / sums[1], sums[1] > 0.0);
  dx[i] = scale * (s.x + 2.0 * px[i] * s.y + py[i] * s.z);
}
