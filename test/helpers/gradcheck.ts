// Checks an op's GPU forward against a float64 reference, and its GPU gradient (autograd) against
// central finite differences of that reference: loss = sum(w * op(x)) with random weights w.
import type { Test } from 'tap';
import { backward } from '../../src/autograd/tape.js';
import * as ops from '../../src/autograd/ops.js';
import type { Engine } from '../../src/engine/engine.js';
import type { Tensor } from '../../src/engine/tensor.js';
import { assertClose } from './close.js';
import { randn, size } from './random.js';

export interface GradcheckCase {
  name: string;
  /** Inputs: a shape (random normal values) or explicit values with a shape. */
  inputs: ({ shape: number[]; data?: Float32Array; noGrad?: boolean })[];
  gpu: (xs: Tensor[]) => Tensor;
  ref: (xs: Float64Array[]) => Float64Array;
  seed?: number;
  eps?: number;
  atol?: number;
  rtol?: number;
}

export async function gradcheck(t: Test, engine: Engine, c: GradcheckCase): Promise<void> {
  const seed = c.seed ?? 1;
  const hosts = c.inputs.map((inp, i) => inp.data ?? randn(size(inp.shape), seed * 101 + i));
  await engine.tidyAsync(async () => {
    const xs = c.inputs.map((inp, i) => {
      const x = engine.tensor(hosts[i]!, inp.shape, `x${i}`);
      x.requiresGrad = !inp.noGrad;
      return x;
    });
    const out = c.gpu(xs);
    const w = randn(out.size, seed * 7 + 3);
    const wt = engine.tensor(w, out.shape);
    const loss = ops.sumAll(ops.mul(out, wt));
    backward(loss);

    const x64 = hosts.map((h) => Float64Array.from(h));
    const expected = c.ref(x64);
    assertClose(t, await out.read(), expected, `${c.name} forward`, c.atol ?? 1e-4, c.rtol ?? 1e-3);

    const objective = (xs: Float64Array[]) => {
      const y = c.ref(xs);
      let s = 0;
      for (let i = 0; i < y.length; i++) s += w[i]! * y[i]!;
      return s;
    };
    const eps = c.eps ?? 1e-4;
    for (let i = 0; i < xs.length; i++) {
      if (c.inputs[i]!.noGrad) continue;
      const numeric = new Float64Array(x64[i]!.length);
      for (let j = 0; j < numeric.length; j++) {
        const keep = x64[i]![j]!;
        x64[i]![j] = keep + eps;
        const up = objective(x64);
        x64[i]![j] = keep - eps;
        const down = objective(x64);
        x64[i]![j] = keep;
        numeric[j] = (up - down) / (2 * eps);
      }
      const grad = xs[i]!.grad;
      if (!grad) {
        t.fail(`${c.name}: input ${i} got no gradient`);
        continue;
      }
      assertClose(t, await grad.read(), numeric, `${c.name} d/dx${i}`, c.atol ?? 1e-3, c.rtol ?? 1e-3);
      grad.dispose();
      xs[i]!.grad = null;
    }
  });
}
