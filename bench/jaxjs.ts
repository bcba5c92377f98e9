// bench train-step's small CNN in jax-js (@jax-js/jax): the WebGPU training engine with a
// compiler - jit() fuses the whole step (forward, valueAndGrad's backward, Adam) into its own
// kernels. jax-js has no way to take a GPUDevice; it asks navigator.gpu for an adapter, so Node
// gets one that hands out Dawn's instance behind clothtag's engine: the same adapter.
// Its Adam is written here with jax-js ops inside the jitted step (jax-js ships no optimizer
// package on npm); the network, batch, data and initial scale are bench train-step's.
import { createRequire } from 'node:module';
import { dawnInstance } from '../src/node/gpu.js';

/** The slice of jax-js's API used here (it is a dev dependency, loaded only when installed). */
interface JaxArray {
  readonly ref: JaxArray;
  add(x: JaxArray | number): JaxArray;
  sub(x: JaxArray | number): JaxArray;
  mul(x: JaxArray | number): JaxArray;
  div(x: JaxArray | number): JaxArray;
  reshape(shape: number[]): JaxArray;
  data(): Promise<Float32Array>;
  dispose(): void;
}
type Params = Record<string, JaxArray>;
interface Jax {
  init(...devices: string[]): Promise<string[]>;
  defaultDevice(device: string): void;
  jit<F extends (...args: never[]) => unknown>(f: F): F;
  valueAndGrad<F extends (p: Params, ...rest: JaxArray[]) => JaxArray>(f: F): (p: Params, ...rest: JaxArray[]) => [JaxArray, Params];
  numpy: {
    array(data: Float32Array | Int32Array | number, o?: { dtype?: unknown }): JaxArray;
    ones(shape: number[]): JaxArray;
    zeros(shape: number[]): JaxArray;
    mean(x: JaxArray, axis: number[] | number, o?: { keepdims?: boolean }): JaxArray;
    sum(x: JaxArray, axis: number): JaxArray;
    square(x: JaxArray): JaxArray;
    sqrt(x: JaxArray): JaxArray;
    power(base: number, x: JaxArray): JaxArray;
    subtract(a: number, b: JaxArray): JaxArray;
    matmul(a: JaxArray, b: JaxArray): JaxArray;
    int32: unknown;
  };
  lax: { conv(x: JaxArray, w: JaxArray, strides: number[], padding: [number, number][]): JaxArray };
  nn: { relu(x: JaxArray): JaxArray; logSoftmax(x: JaxArray, axis: number): JaxArray; oneHot(x: JaxArray, n: number): JaxArray };
}

let loaded: Jax | null | undefined;

/** jax-js on the WebGPU adapter of the open engine; null when it is not installed or cannot start. */
export async function loadJaxjs(): Promise<Jax | null> {
  if (loaded !== undefined) return loaded;
  loaded = null;
  const gpu = dawnInstance();
  if (!gpu) return null;
  try {
    createRequire(import.meta.url).resolve('@jax-js/jax');
  } catch {
    return null;
  }
  // jax-js reads navigator.gpu (and navigator.userAgent, to spot Firefox). TensorFlow.js's loader
  // puts an empty stand-in there, so the real one goes first and replaces a stand-in.
  const g = globalThis as unknown as { navigator?: Record<string, unknown> };
  if (!g.navigator) Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true });
  const nav = g.navigator!;
  if (!nav.gpu || typeof (nav.gpu as { requestAdapter?: unknown }).requestAdapter !== 'function') nav.gpu = gpu;
  nav.userAgent ??= `Node.js/${process.version}`;
  const jax = (await import('@jax-js/jax' as string)) as Jax;
  if (!(await jax.init('webgpu')).includes('webgpu')) return null;
  jax.defaultDevice('webgpu');
  loaded = jax;
  return jax;
}

export interface SmallCnn {
  batch: number;
  size: number;
  classes: number;
  channels: number[];
  strides: number[];
}

/** Seeded uniform values in [-scale, scale] (the same stream every run). */
function uniform(n: number, scale: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 16807) % 2147483647;
    return (s / 2147483647 - 0.5) * 2 * scale;
  });
}

/**
 * Median milliseconds of one jit-compiled jax-js training step (the loss read back each step) and
 * the losses; null when jax-js is absent. The first call compiles: it is among the warm-up steps.
 */
export async function jaxjsStep(
  net: SmallCnn,
  data: { images: Float32Array; labels: Float32Array },
  steps: number,
  timeSteps: (step: () => Promise<void>, steps: number) => Promise<number>,
): Promise<{ ms: number; losses: number[] } | null> {
  const jax = await loadJaxjs();
  if (!jax) return null;
  const { numpy: np, lax, nn } = jax;
  const { batch, size, classes, channels: ch, strides } = net;
  let params: Params = {};
  for (let i = 0; i < 3; i++) {
    // He-uniform: variance 2 / fan-in, as clothtag's Init.
    params[`w${i}`] = np.array(uniform(ch[i + 1]! * ch[i]! * 9, Math.sqrt(6 / (ch[i]! * 9)), i + 1)).reshape([ch[i + 1]!, ch[i]!, 3, 3]);
    params[`gamma${i}`] = np.ones([1, ch[i + 1]!, 1, 1]);
    params[`beta${i}`] = np.zeros([1, ch[i + 1]!, 1, 1]);
  }
  params.fcW = np.array(uniform(ch[3]! * classes, Math.sqrt(1 / ch[3]!), 7)).reshape([ch[3]!, classes]);
  params.fcB = np.zeros([classes]);
  const names = Object.keys(params);
  const x = np.array(data.images).reshape([batch, 3, size, size]);
  const y = nn.oneHot(np.array(Int32Array.from(data.labels), { dtype: np.int32 }), classes);

  // Every array passed to a jax-js function is consumed: `.ref` keeps one for a later use.
  const loss = (p: Params, images: JaxArray, onehot: JaxArray): JaxArray => {
    let h = images;
    for (let i = 0; i < 3; i++) {
      h = lax.conv(h, p[`w${i}`]!, [strides[i]!, strides[i]!], [[1, 1], [1, 1]]);
      // Training-mode BatchNorm (biased variance over N, H, W), then ReLU.
      const centred = h.ref.sub(np.mean(h, [0, 2, 3], { keepdims: true }));
      const variance = np.mean(np.square(centred.ref), [0, 2, 3], { keepdims: true });
      h = nn.relu(centred.div(np.sqrt(variance.add(1e-5))).mul(p[`gamma${i}`]!).add(p[`beta${i}`]!));
    }
    const logits = np.matmul(np.mean(h, [2, 3]), p.fcW!).add(p.fcB!);
    return np.mean(np.sum(nn.logSoftmax(logits, -1).mul(onehot), -1), 0).mul(-1);
  };
  const lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  let m: Params = Object.fromEntries(names.map((k) => [k, np.zeros(shapeOf(params[k]!))]));
  let v: Params = Object.fromEntries(names.map((k) => [k, np.zeros(shapeOf(params[k]!))]));
  const step = jax.jit((p: Params, mp: Params, vp: Params, t: JaxArray, images: JaxArray, onehot: JaxArray): [JaxArray, Params, Params, Params] => {
    const [value, grads] = jax.valueAndGrad(loss)(Object.fromEntries(names.map((k) => [k, p[k]!.ref])), images, onehot);
    const c1 = np.subtract(1, np.power(beta1, t.ref));
    const c2 = np.subtract(1, np.power(beta2, t));
    const next: Params = {}, m2: Params = {}, v2: Params = {};
    for (const k of names) {
      const g = grads[k]!;
      m2[k] = mp[k]!.mul(beta1).add(g.ref.mul(1 - beta1));
      v2[k] = vp[k]!.mul(beta2).add(np.square(g).mul(1 - beta2));
      const update = m2[k]!.ref.div(c1.ref).mul(lr).div(np.sqrt(v2[k]!.ref.div(c2.ref)).add(eps));
      next[k] = p[k]!.sub(update);
    }
    c1.dispose();
    c2.dispose();
    return [value, next, m2, v2];
  });
  const losses: number[] = [];
  let t = 0;
  const ms = await timeSteps(async () => {
    t++;
    const [value, p2, m2, v2] = step(params, m, v, np.array(t), x.ref, y.ref);
    params = p2;
    m = m2;
    v = v2;
    losses.push((await value.data())[0]!);
  }, steps);
  for (const a of [x, y, ...Object.values(params), ...Object.values(m), ...Object.values(v)]) a.dispose();
  return { ms, losses };
}

function shapeOf(a: JaxArray): number[] {
  return (a as unknown as { shape: number[] }).shape;
}
