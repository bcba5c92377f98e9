// SSIM heatmap loss launchers (kernels/ssim.wgsl).
import { unary } from './elementwise.js';
import { maskPlane, meanOfPair } from './loss.js';
import type { Tensor } from './tensor.js';

export interface SsimOptions {
  window?: number;
  sigma?: number;
  /** Dynamic range of the maps (1 for heatmaps in [0, 1]). */
  range?: number;
}

export interface SsimForward {
  /** 1 - mean SSIM, shape [1]. */
  loss: Tensor;
  /** [sum mask*S, sum mask] */
  sums: Tensor;
  /** mask * dS/dmx, dS/dexx, dS/dexy per pixel, for the backward pass. */
  d: [Tensor, Tensor, Tensor];
}

/** The normalized 1-D Gaussian window (sums to 1), as the kernels compile it in. */
export function gaussianWindow(window: number, sigma: number): number[] {
  const half = (window - 1) / 2;
  const g = Array.from({ length: window }, (_, i) => Math.exp(-((i - half) ** 2) / (2 * sigma * sigma)));
  const total = g.reduce((a, b) => a + b, 0);
  return g.map((v) => v / total);
}

function setup(x: Tensor, o: SsimOptions) {
  if (x.rank !== 4) throw new Error(`SSIM takes heatmaps [N, C, H, W], got ${x.describe()}`);
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const window = o.window ?? 11, sigma = o.sigma ?? 1.5, L = o.range ?? 1;
  if (!(window % 2 === 1 && window >= 1)) throw new Error(`SSIM window must be odd, got ${window}`);
  return {
    params: { WINDOW: window, WEIGHTS: gaussianWindow(window, sigma).map((g) => g.toPrecision(9)).join(', '), VEC4: W % 4 === 0 },
    uniforms: { P: N * C, H, W, c1: (0.01 * L) ** 2, c2: (0.03 * L) ** 2 },
    /** The horizontal window passes: a 2-D grid of columns x stacked rows, 32 x 8 a workgroup. */
    grid: [Math.ceil(W / 32), Math.ceil((N * C * H) / 8), 1] as [number, number, number],
    /** The vertical ones: 4 columns an invocation where the width allows (VEC4), 16 x 16 a workgroup. */
    gridV: [Math.ceil(W / (W % 4 === 0 ? 4 : 1) / 16), Math.ceil((N * C * H) / 16), 1] as [number, number, number],
  };
}

/** Masked SSIM loss: mask has one weight per heatmap ([N, C] or one value for all). */
export function ssimLoss(x: Tensor, y: Tensor, mask: Tensor, o: SsimOptions = {}): SsimForward {
  if (x.size !== y.size || x.rank !== y.rank) throw new Error(`SSIM prediction ${x.describe()} and target ${y.describe()} differ`);
  maskPlane(x, mask);
  const s = setup(x, o);
  const e = x.engine;
  const maskPerPlane = mask.size === x.shape[0]! * x.shape[1]! ? mask : null;
  const planeMask = maskPerPlane ?? e.full([x.shape[0]! * x.shape[1]!], 1);
  if (!maskPerPlane) {
    // A single weight for everything: all planes count the same.
    if (mask.size !== 1) throw new Error(`SSIM mask ${mask.describe()} must have one weight per heatmap or one in all`);
  }
  const h = [0, 1, 2, 3, 4].map(() => e.empty(x.shape)) as [Tensor, Tensor, Tensor, Tensor, Tensor];
  const [hx, hy, hxx, hyy, hxy] = h;
  e.run({ kernel: 'ssim', entry: 'moments_h', params: s.params, uniforms: s.uniforms, inputs: { x, y }, outputs: { hx, hy, hxx, hyy, hxy }, workgroups: s.grid });
  const pair = e.empty([2, x.size]);
  const d: [Tensor, Tensor, Tensor] = [e.empty(x.shape), e.empty(x.shape), e.empty(x.shape)];
  e.run({ kernel: 'ssim', entry: 'moments_v', params: s.params, uniforms: s.uniforms, inputs: { vx: hx, vy: hy, vxx: hxx, vyy: hyy, vxy: hxy, mask: planeMask }, outputs: { pair, d1: d[0], d2: d[1], d3: d[2] }, workgroups: s.gridV });
  for (const t of h) t.dispose();
  if (!maskPerPlane) planeMask.dispose();
  const { loss: meanS, sums } = meanOfPair(e, pair);
  const loss = unary('affine', meanS, -1, 1);
  meanS.dispose();
  return { loss, sums, d };
}

export function ssimLossBackward(x: Tensor, y: Tensor, f: SsimForward, gradLoss: Tensor, o: SsimOptions = {}): Tensor {
  const s = setup(x, o);
  const e = x.engine;
  const gh = [0, 1, 2].map(() => e.empty(x.shape)) as [Tensor, Tensor, Tensor];
  const [gh1, gh2, gh3] = gh;
  e.run({ kernel: 'ssim', entry: 'grad_h', params: s.params, uniforms: s.uniforms, inputs: { gd1: f.d[0], gd2: f.d[1], gd3: f.d[2] }, outputs: { gh1, gh2, gh3 }, workgroups: s.grid });
  const dx = e.empty(x.shape);
  e.run({ kernel: 'ssim', entry: 'grad_v', params: s.params, uniforms: s.uniforms, inputs: { v1: gh1, v2: gh2, v3: gh3, px: x, py: y, sums: f.sums, grad_loss: gradLoss }, outputs: { dx }, workgroups: s.gridV });
  for (const t of gh) t.dispose();
  return dx;
}
