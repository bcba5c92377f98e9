import t from 'tap';
import { trainSpiralMlp } from '../src/autograd/mlp-demo.js';
import { gpuEngine } from './helpers/gpu.js';

t.test('a small MLP learns two spirals with Adam on the GPU', async (t) => {
  const e = await gpuEngine(t);
  const run = await trainSpiralMlp(e, 300);
  t.ok(run.losses.every(Number.isFinite), 'every loss is finite');
  t.ok(run.losses.at(-1)! < run.losses[0]! * 0.3, `loss falls: ${run.losses[0]!.toFixed(3)} -> ${run.losses.at(-1)!.toFixed(3)}`);
  t.ok(run.accuracy >= 0.9, `accuracy ${run.accuracy} (a linear model gets about 0.5-0.65)`);
});
