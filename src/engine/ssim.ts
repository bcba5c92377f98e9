// SSIM heatmap loss launchers (kernels/ssim.wgsl).
import { f32 } from './engine.js';
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

function setup(x: Tensor, o: SsimOptions) {
  if (x.rank !== 4) throw new Error(`SSIM takes heatmaps [N, C, H, W], got ${x.describe()}`);
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const window = o.window ?? 11, sigma = o.sigma ?? 1.5, L = o.range ?? 1;
  if (!(window % 2 === 1 && window >= 1)) throw new Error(`SSIM window must be odd, got ${window}`);
  return {
    params: { WINDOW: window, SIGMA: sigma.toFixed(6) },
    uniforms: [N * C, H, W, f32((0.01 * L) ** 2), f32((0.03 * L) ** 2)],
    workgroups: Math.ceil(x.size / 256),
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
  const h = [0, 1, 2, 3, 4].map(() => e.empty(x.shape));
  e.run({ kernel: 'ssim', entry: 'moments_h', params: s.params, uniforms: s.uniforms, inputs: [x, y], outputs: h, workgroups: s.workgroups });
  const m = [0, 1, 2, 3, 4].map(() => e.empty(x.shape));
  e.run({ kernel: 'ssim', entry: 'moments_v', params: s.params, uniforms: s.uniforms, inputs: h, outputs: m, workgroups: s.workgroups });
  for (const t of h) t.dispose();
  const pair = e.empty([2, x.size]);
  const d: [Tensor, Tensor, Tensor] = [e.empty(x.shape), e.empty(x.shape), e.empty(x.shape)];
  e.run({ kernel: 'ssim', entry: 'ssim_map', params: s.params, uniforms: s.uniforms, inputs: [...m, planeMask], outputs: [pair, ...d], workgroups: s.workgroups });
  for (const t of m) t.dispose();
  if (!maskPerPlane) planeMask.dispose();
  const { loss: meanS, sums } = meanOfPair(e, pair);
  const loss = unary('affine', meanS, -1, 1);
  meanS.dispose();
  return { loss, sums, d };
}

export function ssimLossBackward(x: Tensor, y: Tensor, f: SsimForward, gradLoss: Tensor, o: SsimOptions = {}): Tensor {
  const s = setup(x, o);
  const e = x.engine;
  const gh = [0, 1, 2].map(() => e.empty(x.shape));
  e.run({ kernel: 'ssim', entry: 'grad_h', params: s.params, uniforms: s.uniforms, inputs: f.d, outputs: gh, workgroups: s.workgroups });
  const dx = e.empty(x.shape);
  e.run({ kernel: 'ssim', entry: 'grad_v', params: s.params, uniforms: s.uniforms, inputs: [...gh, x, y, f.sums, gradLoss], outputs: [dx], workgroups: s.workgroups });
  for (const t of gh) t.dispose();
  return dx;
}
