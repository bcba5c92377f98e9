// Network set-up the tests share.
import type { Engine } from '../../src/engine/engine.js';
import { BatchNorm2d } from '../../src/nets/layers.js';
import { randn, uniform } from './random.js';

/** Random BatchNorm statistics and affine weights, so that folding and re-parameterization have something to fuse. */
export function randomizeBatchNorms(e: Engine, root: { modules(): unknown[] }, seed: number): void {
  let s = seed;
  for (const m of root.modules()) {
    if (!(m instanceof BatchNorm2d)) continue;
    const C = m.channels;
    e.write(m.weight, uniform(C, s++, 0.5, 1.5));
    e.write(m.bias, randn(C, s++, 0.2));
    e.write(m.runningMean, randn(C, s++, 0.2));
    e.write(m.runningVar, uniform(C, s++, 0.5, 2));
  }
}
