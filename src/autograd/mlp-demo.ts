// The engine's own demo: a small MLP learns a nonlinear task (two interleaved spirals) with Adam,
// entirely on the GPU. Used by `clothtag demo --engine` and by the tests.
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/tensor.js';
import * as ops from './ops.js';
import { Adam } from './optim.js';
import { backward } from './tape.js';

/** Two spirals, `n` points each, labels 0 and 1; deterministic. */
export function spirals(n: number): { x: Float32Array; y: Float32Array } {
  const x = new Float32Array(4 * n), y = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    const r = (i / n) * 5 + 0.5, a = (i / n) * 3 * Math.PI;
    for (let c = 0; c < 2; c++) {
      const k = c * n + i, s = c === 0 ? 1 : -1;
      x[2 * k] = (s * r * Math.cos(a)) / 5.5;
      x[2 * k + 1] = (s * r * Math.sin(a)) / 5.5;
      y[k] = c;
    }
  }
  return { x, y };
}

export interface MlpRun {
  losses: number[];
  accuracy: number;
}

/** Trains a 2-64-64-2 MLP for `steps` full-batch Adam steps; returns losses and final accuracy. */
export async function trainSpiralMlp(engine: Engine, steps: number, onProgress?: (step: number, loss: number) => void): Promise<MlpRun> {
  const n = 128;
  const data = spirals(n);
  const x = engine.tensor(data.x, [2 * n, 2], 'spiral.x').keep();
  const y = engine.tensor(data.y, [2 * n], 'spiral.y').keep();
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const param = (shape: number[], fanIn: number, name: string): Tensor => {
    const p = engine.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => (rand() * Math.sqrt(6 / fanIn)) / Math.sqrt(3)), shape, name).keep();
    p.requiresGrad = true;
    return p;
  };
  const params = [param([64, 2], 2, 'w1'), param([64], 64, 'b1'), param([64, 64], 64, 'w2'), param([64], 64, 'b2'), param([2, 64], 64, 'w3'), param([2], 2, 'b3')];
  const [w1, b1, w2, b2, w3, b3] = params as [Tensor, Tensor, Tensor, Tensor, Tensor, Tensor];
  const forward = () => ops.linear(ops.relu(ops.linear(ops.relu(ops.linear(x, w1, b1)), w2, b2)), w3, b3);
  const adam = new Adam(params, { lr: 0.01 });
  const losses: number[] = [];
  for (let step = 0; step < steps; step++) {
    const loss = engine.tidy(() => {
      const l = ops.softmaxCrossEntropy(forward(), y);
      backward(l);
      engine.noGrad(() => adam.update());
      adam.zeroGrad();
      return l;
    });
    // Reading the loss every step is a choice of this demo (for its curve), not of the engine.
    const value = (await loss.read())[0]!;
    loss.dispose();
    losses.push(value);
    onProgress?.(step, value);
  }
  const logits = engine.noGrad(forward);
  const out = await logits.read();
  let correct = 0;
  for (let i = 0; i < 2 * n; i++) if ((out[2 * i + 1]! > out[2 * i]! ? 1 : 0) === data.y[i]) correct++;
  for (const t of [logits, x, y, ...params]) t.dispose();
  adam.dispose();
  return { losses, accuracy: correct / (2 * n) };
}
