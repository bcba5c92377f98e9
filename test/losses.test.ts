// The multi-task loss: the thesis's fixed weights, masked tasks, and uncertainty weighting.
import t from 'tap';
import * as ops from '../src/autograd/ops.js';
import { backward } from '../src/autograd/tape.js';
import { THESIS_LOSS, UncertaintyWeights, attributeWeightFor, columnSelector, groupLabels, multiTaskLoss } from '../src/train/losses.js';
import { groupSoftmaxAsLogits } from '../src/train/read.js';
import { Trainer } from '../src/train/step.js';
import { createNet } from '../src/nets/models.js';
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

t.test('the softmax attribute loss: a cross-entropy within each attribute type, its targets, and how labelling reads such a head', async (t) => {
  // Five attributes in three groups (numbered as the data numbers its types, not in order); three photos.
  const groups = [2, 1, 2, 3, 1];
  const targets = Float32Array.from([
    1, 0, 0, 1, 1, // group 1: columns 1, 4 -> answer at 4 (index 1); group 2: columns 0, 2 -> 0; group 3: column 3 -> 0
    0, 1, 0, 0, -1, // group 1 -> 0; group 2: none marked -> -1; group 3: marked 0 -> -1
    -1, 0, 1, -1, 0, // group 1: none -> -1; group 2 -> 1; group 3: unknown -> -1
  ]);
  const labels = groupLabels(targets, 3, groups);
  t.same(labels.map((g) => g.columns), [[1, 4], [0, 2], [3]], 'each group\'s columns, groups in ascending order');
  t.same(labels.map((g) => Array.from(g.labels)), [[1, 0, -1], [0, -1, 1], [0, -1, -1]], 'each photo\'s answer within the group, -1 where none is marked');
  t.throws(() => groupLabels(targets, 2, groups), /15 values, not 2 photos x 5 attributes/);
  t.same(Array.from(columnSelector(5, [1, 4])), [0, 0, 1, 0, 0, 0, 0, 0, 0, 1], 'the selector picks columns 1 and 4');

  const e = await gpuEngine(t);
  const logits = randn(15, 7);
  const select = labels.map((g) => ({ select: e.tensor(columnSelector(5, g.columns), [5, g.columns.length]), labels: e.tensor(g.labels, [3]) }));
  // Reference: per group, the mean over photos with an answer of logsumexp(group) - logit(answer); summed over groups.
  let expected = 0;
  for (const g of labels) {
    let sum = 0, count = 0;
    for (let i = 0; i < 3; i++) {
      if (g.labels[i]! < 0) continue;
      const row = g.columns.map((a) => logits[i * 5 + a]!);
      const max = Math.max(...row);
      sum += max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0)) - row[g.labels[i]!]!;
      count++;
    }
    expected += count ? sum / count : 0;
  }
  const out = { attributes: e.tensor(logits, [3, 5]) };
  const tg = { attributes: e.tensor(targets, [3, 5]), attributeGroups: select };
  const terms = multiTaskLoss(out, tg, { ...THESIS_LOSS, attributeLoss: 'softmax', ws: 1 });
  t.ok(Math.abs((await terms.attributes!.read())[0]! - expected) < 1e-5, 'the loss is the sum over groups of each group\'s mean cross-entropy');
  t.throws(() => multiTaskLoss(out, { attributes: tg.attributes }, { ...THESIS_LOSS, attributeLoss: 'softmax' }), /needs each attribute group's targets/);
  t.equal(attributeWeightFor('bce'), 20, 'BCE keeps the thesis\'s Ws');
  t.equal(attributeWeightFor('softmax'), 1, 'the softmax loss weighs 1');

  // Labelling: the logits given back are those whose sigmoid is the softmax within each group.
  const z = groupSoftmaxAsLogits(Float32Array.from(logits), groups);
  for (let i = 0; i < 3; i++) {
    for (const g of labels) {
      const row = g.columns.map((a) => logits[i * 5 + a]!);
      const norm = row.reduce((s, v) => s + Math.exp(v), 0);
      g.columns.forEach((a, j) => t.ok(Math.abs(1 / (1 + Math.exp(-z[i * 5 + a]!)) - Math.exp(row[j]!) / norm) < 1e-6, `photo ${i}, attribute ${a}: sigmoid(z) is its group's softmax`));
    }
  }
  t.equal(groupSoftmaxAsLogits(Float32Array.of(0), [1])[0], 1e4, 'a group of one is certain: clamped at 1e4');
  const sure = groupSoftmaxAsLogits(Float32Array.of(40, 0, 39), [1, 1, 1]);
  t.ok(sure[0]! > sure[2]! && sure[2]! > sure[1]!, 'p near 1 keeps its order against the others');
});

t.test('the trainer refuses a softmax attribute loss on a head without groups, and a grouped head trained with BCE', async (t) => {
  const e = await gpuEngine(t);
  const plain = createNet(e, { net: 'cloth_repvgg', categories: 0, attributes: 5, width: 0.0625 });
  t.throws(() => new Trainer(plain, { ...THESIS_LOSS, attributeLoss: 'softmax' }, 1e-3), /the softmax attribute loss needs a network whose attribute head has groups/);
  const grouped = createNet(e, { net: 'cloth_repvgg', categories: 0, attributes: 5, width: 0.0625, attributeGroups: [1, 1, 2, 2, 2] });
  t.throws(() => new Trainer(grouped, THESIS_LOSS, 1e-3), /attribute head has groups \(a softmax within each\), so it trains with the softmax attribute loss, not bce/);
  t.throws(() => createNet(e, { net: 'cloth_repvgg', categories: 0, attributes: 5, width: 0.0625, attributeGroups: [1, 2] }), /attributeGroups must list a group for each of the 5 attributes/);
  plain.dispose();
  grouped.dispose();
});
