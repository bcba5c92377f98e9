// jax-js, bench train-step's compiled baseline, on the same adapter: its step must train, or the
// ratio against it means nothing. Skipped where the dev dependency is not installed.
import t from 'tap';
import { loadJaxjs, jaxjsStep } from '../bench/jaxjs.js';
import { SMALL_CNN } from '../bench/train-step.js';
import { gpuEngine } from './helpers/gpu.js';

t.test('jax-js runs the small CNN on the engine\'s adapter and its loss falls', async (t) => {
  await gpuEngine(t); // Dawn's instance, which jax-js then finds as navigator.gpu
  if (!(await loadJaxjs())) return void t.pass('skipped: @jax-js/jax is not installed (npm install --include=dev)');
  const batch = 8, size = 16;
  const images = Float32Array.from({ length: batch * 3 * size * size }, (_, i) => Math.sin(i * 0.37));
  const labels = Float32Array.from({ length: batch }, (_, i) => i % SMALL_CNN.classes);
  let calls = 0;
  const run = await jaxjsStep({ ...SMALL_CNN, batch, size }, { images, labels }, 6, async (step, steps) => {
    for (let i = 0; i < steps; i++, calls++) await step();
    return 1;
  });
  t.ok(run, 'jax-js ran');
  t.equal(calls, 6);
  const losses = run!.losses;
  t.ok(losses.every(Number.isFinite), `finite losses ${losses.map((l) => l.toFixed(3)).join(' ')}`);
  t.ok(losses.at(-1)! < losses[0]! - 0.01, `the loss falls: ${losses[0]!.toFixed(3)} -> ${losses.at(-1)!.toFixed(3)}`);
});
