// Reverse-mode autograd. A tensor made by a differentiable op points at its GradNode (inputs and
// a backward function); backward() sorts the graph once and walks it in reverse, so a tensor used
// twice (every ResNet skip) gets its gradients summed before it passes them on.
import { accumulate, binary } from '../engine/elementwise.js';
import { sumToShape } from '../engine/reduce.js';
import type { GradNode, Tensor } from '../engine/tensor.js';

/**
 * Marks `out` as computed by `op` from `inputs` when any of them needs a gradient, unless the
 * engine's grad mode is off (engine.noGrad).
 */
export function record(out: Tensor, op: string, inputs: readonly Tensor[], backward: GradNode['backward']): Tensor {
  if (out.engine.modes.grad && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    // The layer that made `out` (engine.scope) is kept, so that profiles attribute its backward too.
    out.node = { op, inputs, backward, scope: out.engine.currentScope };
  }
  return out;
}

/**
 * prev + g, in place when prev owns its buffer alone. Backward functions may hand the same buffer
 * to several inputs as views (the two operands of an add), so a shared buffer is never written.
 */
function sum(prev: Tensor, g: Tensor): Tensor {
  if (prev.storage.refs === 1 && prev.storage !== g.storage) {
    accumulate(prev, g);
    return prev;
  }
  const out = binary('add', prev, g);
  prev.dispose();
  return out;
}

/**
 * A backward function's gradient for one input, in that input's shape. Broadcasting is undone here
 * for every op at once: a gradient in the broadcast output's shape is summed over the axes the
 * input was stretched along (tinygrad's choice). Any other mismatch is a bug in `op`'s backward.
 */
function toInputShape(g: Tensor, input: Tensor, op: string): Tensor {
  const [gs, xs] = [g.shape, input.shape];
  if (gs.length === xs.length && gs.every((d, j) => d === xs[j])) return g;
  const lead = gs.length - xs.length;
  if (lead < 0 || xs.some((d, j) => d !== 1 && d !== gs[lead + j])) throw new Error(`backward of ${op} gave a gradient ${g.describe()} for input ${input.describe()}`);
  const out = sumToShape(g, xs);
  g.dispose();
  return out;
}

/** Tensors reachable from `root` through grad nodes, inputs before the tensors made from them. */
function topologicalOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>([root]);
  const stack: [Tensor, number][] = [[root, 0]];
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const [t, next] = top;
    const inputs = t.node?.inputs ?? [];
    if (next < inputs.length) {
      top[1]++;
      const input = inputs[next]!;
      if (input.requiresGrad && !seen.has(input)) {
        seen.add(input);
        stack.push([input, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order;
}

/**
 * Accumulates d(root)/d(leaf) into `leaf.grad` for every leaf that requires grad.
 * `root` is a one-element tensor unless `seed` (the gradient of root) is given. Gradients of
 * intermediate tensors go back to the pool as soon as they have been passed on, and the graph is
 * released (nodes dropped) so that its activations can be freed by the enclosing tidy().
 */
export function backward(root: Tensor, seed?: Tensor): void {
  if (!root.requiresGrad) throw new Error(`backward() from ${root.describe()}, which does not depend on anything that requires grad`);
  if (!seed && root.size !== 1) throw new Error(`backward() needs a scalar or an explicit seed gradient; got ${root.describe()}`);
  const engine = root.engine;
  const grads = new Map<Tensor, Tensor>();
  grads.set(root, seed ? seed.view(root.shape) : engine.full(root.shape, 1));
  const order = topologicalOrder(root);
  for (let i = order.length - 1; i >= 0; i--) {
    const t = order[i]!;
    const g = grads.get(t);
    if (!g) continue;
    grads.delete(t);
    for (const hook of t.gradHooks ?? []) hook(g);
    const node = t.node;
    if (!node) {
      // A leaf: keep (or add to) its gradient.
      t.grad = (t.grad ? sum(t.grad, g) : g.view(t.shape)).keep();
      g.dispose();
      continue;
    }
    const inputGrads = node.scope ? engine.scope(`${node.scope} (backward)`, () => node.backward(g)) : node.backward(g);
    g.dispose();
    node.inputs.forEach((input, k) => {
      const gi = inputGrads[k];
      if (!gi) return;
      if (!input.requiresGrad) {
        gi.dispose();
        return;
      }
      const shaped = toInputShape(gi, input, node.op);
      const prev = grads.get(input);
      if (prev) {
        grads.set(input, sum(prev, shaped));
        shaped.dispose();
      } else grads.set(input, shaped);
    });
    t.node = null;
  }
}
