// Soft-argmax launchers (kernels/soft_argmax.wgsl): heatmap logits [N, K, H, W] to expected
// landmark positions [N, K, 2] as fractions of the map (x, y), and the gradient back.
import type { Tensor } from './tensor.js';

export interface SoftArgmaxResult {
  /** [N, K, 2]: x and y of each plane's expected pixel centre, in [0, 1]. */
  coords: Tensor;
  /** [N, K, 2]: each plane's max and sum of exp(x - max), for the backward pass. */
  stats: Tensor;
}

export function softArgmax(x: Tensor): SoftArgmaxResult {
  if (x.rank !== 4) throw new Error(`soft-argmax takes heatmaps [N, K, H, W], got ${x.describe()}`);
  const [N, K, H, W] = x.shape as [number, number, number, number];
  const e = x.engine;
  const coords = e.empty([N, K, 2], 'soft_argmax.coords');
  const stats = e.empty([N, K, 2], 'soft_argmax.stats');
  e.run({ kernel: 'soft_argmax', entry: 'forward', uniforms: { planes: N * K, H, W }, inputs: { x }, outputs: { coords, stats }, workgroups: N * K, flops: 8 * x.size });
  return { coords, stats };
}

export function softArgmaxBackward(x: Tensor, f: SoftArgmaxResult, gradCoords: Tensor): Tensor {
  const [N, K, H, W] = x.shape as [number, number, number, number];
  if (gradCoords.size !== N * K * 2) throw new Error(`soft-argmax gradient ${gradCoords.describe()} does not match ${x.describe()}`);
  const dx = x.engine.empty(x.shape);
  x.engine.run({ kernel: 'soft_argmax', entry: 'backward', uniforms: { planes: N * K, H, W }, inputs: { x, saved_stats: f.stats, saved_coords: f.coords, grad_coords: gradCoords }, outputs: { dx }, workgroups: N * K, flops: 8 * x.size });
  return dx;
}
