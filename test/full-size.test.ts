// Slow, and run in CI: every network at full width (the thesis's), 224x224, batch 1, one
// training step on the software GPU with a finite loss. This is the proof that full-size
// networks fit the adapter's binding limits (VGG's 25088x4096 classifier is held in row chunks).
import t from 'tap';
import { Adam } from '../src/autograd/optim.js';
import { backward } from '../src/autograd/tape.js';
import { NET_NAMES, createNet } from '../src/nets/models.js';
import { THESIS_LOSS, multiTaskLoss } from '../src/train/losses.js';
import { gpuEngine } from './helpers/gpu.js';
import { randn, uniform } from './helpers/random.js';

t.test('each network at full width, 224x224, batch 1: one training step', async (t) => {
  const e = await gpuEngine(t);
  for (const name of NET_NAMES) {
    const started = performance.now();
    const net = createNet(e, { net: name, categories: 50, attributes: 1000, width: 1, seed: 1 });
    const adam = new Adam(net.parameters(), { lr: 1e-4 });
    const loss = e.tidy(() => {
      const out = net.forward(e.tensor(randn(3 * 224 * 224, 1), [1, 3, 224, 224]));
      const targets = {
        category: e.tensor([7], [1]),
        attributes: e.tensor(Float32Array.from(uniform(1000, 2), (v) => (v > 0.9 ? 1 : 0)), [1, 1000]),
        heatmaps: net.hasLandmarks ? e.zeros([1, 8, 224, 224]) : undefined,
        landmarkMask: net.hasLandmarks ? e.full([1, 8], 1) : undefined,
      };
      const terms = multiTaskLoss(out, targets, { ...THESIS_LOSS, landmarkLoss: name === 'new_fashionnet' ? 'ssim' : 'mse' });
      backward(terms.total);
      e.noGrad(() => adam.update());
      adam.zeroGrad();
      return terms.total;
    });
    const value = (await loss.read())[0]!;
    t.ok(Number.isFinite(value), `${name}: ${(net.parameterCount() / 1e6).toFixed(2)}M parameters, loss ${value.toFixed(3)}, ${((performance.now() - started) / 1000).toFixed(1)} s`);
    loss.dispose();
    adam.dispose();
    net.dispose();
    e.trimPool();
  }
});
