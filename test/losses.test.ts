// The multi-task loss: the thesis's fixed weights, masked tasks, and uncertainty weighting.
import t from 'tap';
import * as ops from '../src/autograd/ops.js';
import { backward } from '../src/autograd/tape.js';
import { THESIS_LOSS, UncertaintyWeights, multiTaskLoss } from '../src/train/losses.js';
import { gpuEngine } from './helpers/gpu.js';
import { randn } from './helpers/random.js';
import { bceRef, softmaxXentRef } from './helpers/reference.js';

t.test('L = Wc Lc + Ws La + Wl Ll, and uncertainty weighting learns its log-variances', async (t) => {
  const e = await gpuEngine(t);
  const cat = randn(4 * 5, 1), attr = randn(4 * 6, 2);
  const labels = [1, 0, -1, 4], targets = Float32Array.from({ length: 24 }, (_, i) => [1, 0, 0, -1][i % 4]!);
  const out = { category: e.tensor(cat, [4, 5]), attributes: e.tensor(attr, [4, 6]) };
  const tg = { category: e.tensor(labels, [4]), attributes: e.tensor(targets, [4, 6]) };
  const lc = softmaxXentRef(Float64Array.from(cat), labels, 4, 5), la = bceRef(Float64Array.from(attr), targets, 1, 0.1);
  const fixed = multiTaskLoss(out, tg, THESIS_LOSS);
  t.ok(Math.abs((await fixed.total.read())[0]! - (lc + 20 * la)) < 1e-4, 'the thesis weights Wc = 1, Ws = 20, w_neg = 0.1');
  t.throws(() => multiTaskLoss({}, tg, THESIS_LOSS), /no task to train/);

  const u = new UncertaintyWeights(e);
  for (const p of [out.category, out.attributes]) p.requiresGrad = true;
  const terms = multiTaskLoss(out, tg, { ...THESIS_LOSS, weighting: 'uncertainty' }, u);
  t.ok(Math.abs((await terms.total.read())[0]! - (lc + la)) < 1e-4, 'with s = 0 every task weighs 1');
  backward(terms.total);
  // d/ds (exp(-s) L + s) = 1 - L at s = 0
  t.ok(Math.abs((await u.logVars.category.grad!.read())[0]! - (1 - lc)) < 1e-4, 'd/ds_category = 1 - Lc');
  t.ok(Math.abs((await u.logVars.attributes.grad!.read())[0]! - (1 - la)) < 1e-4, 'd/ds_attributes = 1 - La');
  t.notOk(u.logVars.landmarks.grad, 'no landmark task, no gradient');
  t.ok(ops, 'ops loaded');
});
