// `clothtag demo --engine`: the engine's own demo, a small MLP learning two spirals on the GPU.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { trainSpiralMlp } from '../autograd/mlp-demo.js';
import { createNodeGpu } from '../node/gpu.js';
import { plotLines } from '../node/plot.js';
import { positiveInt } from './util.js';

export async function engineDemo(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { steps: { type: 'string', default: '300' }, out: { type: 'string', default: 'runs/engine-demo' } } });
  const steps = positiveInt(values.steps!, '--steps');
  const gpu = await createNodeGpu();
  console.log(`engine demo on ${gpu.info.description || gpu.info.device}: a 2-64-64-2 MLP learns two interleaved spirals (${steps} Adam steps, full batch)`);
  const t0 = performance.now();
  const run = await trainSpiralMlp(gpu.engine, steps, (step, loss) => {
    if (step % 25 === 0 || step === steps - 1) process.stdout.write(`\r  step ${String(step + 1).padStart(4)}/${steps}  loss ${loss.toFixed(4)}`);
  });
  process.stdout.write('\n');
  mkdirSync(values.out!, { recursive: true });
  const curve = join(values.out!, 'loss.png');
  plotLines(curve, 'spiral mlp: training loss', [{ name: 'loss', values: run.losses, color: [200, 40, 40] }], { logY: true });
  writeFileSync(join(values.out!, 'losses.json'), JSON.stringify(run.losses));
  console.log(`  accuracy ${(run.accuracy * 100).toFixed(1)}% in ${((performance.now() - t0) / 1000).toFixed(1)} s; loss curve: ${curve}`);
  await gpu.close();
  return run.accuracy > 0.9 ? 0 : 1;
}

