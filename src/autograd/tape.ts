// Reverse-mode autograd. A tensor made by a differentiable op points at its GradNode (inputs and
// a backward function); backward() sorts the graph once and walks it in reverse, so a tensor used
// twice (every ResNet skip) gets its gradients summed before it passes them on.
import { accumulate, binary } from '../engine/elementwise.js';
import { sumToShape } from '../engine/reduce.js';
import type { GradNode, Tensor } from '../engine/tensor.js';

/**
 * Marks `out` as computed by `op` from `inputs` when any of them needs a gradient, unless the
 * engine's grad mode is off (engine.noGrad). `saved` lists the tensors `backward` reads besides
 * its gradient (the inputs it needs, the output, statistics, masks, f16 copies): what the step has
 * to keep for it, which savedBytes() adds up.
 */
export function record(out: Tensor, op: string, inputs: readonly Tensor[], backward: GradNode['backward'], saved: readonly (Tensor | null | undefined)[] = []): Tensor {
  if (out.engine.modes.grad && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    // The layer that made `out` (engine scope) is kept, so that profiles attribute its backward too.
    out.node = { op, inputs, backward, scope: out.engine.currentScope, saved: saved.filter((t): t is Tensor => !!t) };
  }
  return out;
}

/**
 * The bytes of everything the backward pass from `root` must find on the device: the distinct
 * buffers its ops saved, trainable leaves (the parameters, counted with the optimizer's state)
 * excepted. With the weights' state it is the analytic floor of a training step's memory.
 */
export function savedBytes(root: Tensor): number {
  const storages = new Set<Tensor['storage']>();
  for (const t of topologicalOrder(root)) {
    for (const s of t.node?.saved ?? []) if (!(s.requiresGrad && !s.node)) storages.add(s.storage);
  }
  let bytes = 0;
  for (const s of storages) bytes += s.bytes;
  return bytes;
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

/** How backward() treats the graph's saved tensors. */
export interface BackwardOptions {
  /**
   * Free the graph's tensors as soon as backward is done with them, instead of at the end of the
   * enclosing tidy(): at its start those no backward reads (a BatchNorm's output that only a
   * residual add consumed), and each saved one after the last backward that reads it. A step's
   * memory then falls while backward proceeds, as the parameters' gradients grow. Only temporaries
   * of an open tidy() scope are freed, never `keep` (what the caller reads afterwards, e.g. the
   * loss terms): the caller must read no other tensor of the graph after backward.
   */
  release?: { keep: readonly Tensor[] };
}

/**
 * Accumulates d(root)/d(leaf) into `leaf.grad` for every leaf that requires grad.
 * `root` is a one-element tensor unless `seed` (the gradient of root) is given. Gradients of
 * intermediate tensors go back to the pool as soon as they have been passed on, and the graph is
 * released (nodes dropped) so that its activations can be freed by the enclosing tidy() (or, with
 * `release`, as soon as backward is done with them).
 */
export function backward(root: Tensor, seed?: Tensor, o: BackwardOptions = {}): void {
  if (!root.requiresGrad) throw new Error(`backward() from ${root.describe()}, which does not depend on anything that requires grad`);
  if (!seed && root.size !== 1) throw new Error(`backward() needs a scalar or an explicit seed gradient; got ${root.describe()}`);
  const engine = root.engine;
  const grads = new Map<Tensor, Tensor>();
  grads.set(root, seed ? seed.view(root.shape) : engine.full(root.shape, 1));
  const order = topologicalOrder(root);
  // Each tensor's node, taken now: freeing a saved tensor (dispose) drops its node, and a tensor
  // freed before its own turn must still pass its gradient on.
  const nodes = order.map((t) => t.node);
  // How many backward functions still have to read each saved tensor.
  const readers = new Map<Tensor, number>();
  const keep = new Set([root, ...(o.release?.keep ?? [])]);
  const free = (t: Tensor) => {
    if (!keep.has(t) && engine.isTemporary(t)) t.dispose();
  };
  if (o.release) {
    for (const t of order) for (const s of t.node?.saved ?? []) readers.set(s, (readers.get(s) ?? 0) + 1);
    for (const t of order) if (t.node && !readers.has(t)) free(t);
  }
  const doneReading = (saved: readonly Tensor[]) => {
    for (const s of saved) {
      const left = readers.get(s)! - 1;
      readers.set(s, left);
      if (left === 0) free(s);
    }
  };
  for (let i = order.length - 1; i >= 0; i--) {
    const t = order[i]!;
    const g = grads.get(t);
    if (!g) continue;
    grads.delete(t);
    for (const hook of t.gradHooks ?? []) hook(g);
    const node = nodes[i];
    if (!node) {
      // A leaf: keep (or add to) its gradient.
      t.grad = (t.grad ? sum(t.grad, g) : g.view(t.shape)).keep();
      g.dispose();
      continue;
    }
    const inputGrads = node.scope ? engine.scope(`${node.scope} (backward)`, () => node.backward(g)) : node.backward(g);
    g.dispose();
    if (o.release) doneReading(node.saved);
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
