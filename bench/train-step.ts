// `clothtag bench train-step`: one training step of the same small CNN in clothtag, in jax-js
// (its whole step jit-compiled: bench/jaxjs.ts) and in TensorFlow.js WebGPU - same adapter, same
// process, same batch: images per second of the whole step (forward, backward, Adam, reading the
// loss back), which is what a user waits for.
//
// The CNN: three 3x3 convolutions (3->16, 16->32 stride 2, 32->64 stride 2), each followed by
// training-mode BatchNorm and ReLU, global average pooling, a linear layer to 10 classes, softmax
// cross-entropy, Adam. Batch 32 of 32x32 images.
import * as ops from '../src/autograd/ops.js';
import { Adam } from '../src/autograd/optim.js';
import { backward } from '../src/autograd/tape.js';
import type { Engine } from '../src/engine/engine.js';
import { Init } from '../src/nets/module.js';
import { ConvBN, Linear } from '../src/nets/layers.js';
import { jaxjsStep } from './jaxjs.js';
import { type TfTensor, loadTfjs, median, registerTfjsGradients } from './tfjs.js';

export const SMALL_CNN = { batch: 32, size: 32, classes: 10, channels: [3, 16, 32, 64], strides: [1, 2, 2] };

/** Forward multiply-adds x2 of the small CNN for one batch; a training step is about 3x this. */
export function smallCnnFlops(batch = SMALL_CNN.batch, size = SMALL_CNN.size): number {
  let flops = 0, s = size;
  for (let i = 0; i < 3; i++) {
    s = Math.floor((s + 2 - 3) / SMALL_CNN.strides[i]!) + 1;
    flops += 2 * batch * s * s * SMALL_CNN.channels[i + 1]! * SMALL_CNN.channels[i]! * 9;
  }
  return flops + 2 * batch * 64 * SMALL_CNN.classes;
}

function inputs(batch: number, size: number) {
  const images = Float32Array.from({ length: batch * 3 * size * size }, (_, i) => Math.sin(i * 0.37));
  const labels = Float32Array.from({ length: batch }, (_, i) => i % SMALL_CNN.classes);
  return { images, labels };
}

async function timeSteps(step: () => Promise<void>, steps: number): Promise<number> {
  for (let i = 0; i < 3; i++) await step(); // warm-up: pipelines, buffers
  const ms: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    await step();
    ms.push(performance.now() - t0);
  }
  return median(ms);
}

/** Median milliseconds of one clothtag training step (the loss read back each step). */
export async function clothtagStep(engine: Engine, steps: number, batch = SMALL_CNN.batch, size = SMALL_CNN.size): Promise<{ ms: number; losses: number[] }> {
  const c = { engine, init: new Init(1) };
  const ch = SMALL_CNN.channels;
  const convs = [0, 1, 2].map((i) => new ConvBN(c, `conv${i}`, ch[i]!, ch[i + 1]!, 3, SMALL_CNN.strides[i]!, 1));
  const fc = new Linear(c, 'fc', ch[3]!, SMALL_CNN.classes);
  const params = [...convs.flatMap((m) => m.parameters()), ...fc.parameters()];
  const adam = new Adam(params, { lr: 1e-3 });
  const { images, labels } = inputs(batch, size);
  const x = engine.tensor(images, [batch, 3, size, size]).keep();
  const y = engine.tensor(labels, [batch]).keep();
  const losses: number[] = [];
  const ms = await timeSteps(async () => {
    const loss = engine.tidy(() => {
      let h = x;
      for (const conv of convs) h = conv.forward(h, true);
      const l = ops.softmaxCrossEntropy(fc.forward(ops.globalAvgPool(h)), y);
      backward(l);
      engine.noGrad(() => adam.update());
      adam.zeroGrad();
      return l;
    });
    losses.push((await loss.read())[0]!);
    loss.dispose();
  }, steps);
  for (const m of [...convs, fc]) m.dispose();
  adam.dispose();
  x.dispose();
  y.dispose();
  return { ms, losses };
}

interface TfTrain {
  variable(t: TfTensor): TfTensor;
  randomNormal(shape: number[], mean?: number, std?: number): TfTensor;
  zeros(shape: number[]): TfTensor;
  ones(shape: number[]): TfTensor;
  tensor4d(values: Float32Array, shape: [number, number, number, number]): TfTensor;
  oneHot(indices: TfTensor, depth: number): TfTensor;
  tensor1d(values: Int32Array, dtype: 'int32'): TfTensor;
  conv2d(x: TfTensor, f: TfTensor, strides: [number, number], pad: 'same' | 'valid' | number): TfTensor;
  moments(x: TfTensor, axes: number[]): { mean: TfTensor; variance: TfTensor };
  batchNorm(x: TfTensor, mean: TfTensor, variance: TfTensor, offset: TfTensor, scale: TfTensor, eps: number): TfTensor;
  relu(x: TfTensor): TfTensor;
  mean(x: TfTensor, axes: number[]): TfTensor;
  matMul(a: TfTensor, b: TfTensor): TfTensor;
  add(a: TfTensor, b: TfTensor): TfTensor;
  tidy<T>(f: () => T): T;
  losses: { softmaxCrossEntropy(onehot: TfTensor, logits: TfTensor): TfTensor };
  train: { adam(lr: number): { minimize(f: () => TfTensor, returnCost: boolean): TfTensor | null; dispose(): void } };
}

/** The same network and step in TensorFlow.js (NHWC, its native layout); null when tfjs is absent. */
export async function tfjsStep(engine: Engine, steps: number, batch = SMALL_CNN.batch, size = SMALL_CNN.size): Promise<{ ms: number; losses: number[] } | null> {
  const loaded = await loadTfjs(engine.device);
  if (!loaded || !(await registerTfjsGradients())) return null;
  const tf = loaded as unknown as TfTrain;
  const ch = SMALL_CNN.channels;
  const vars = [0, 1, 2].map((i) => ({
    w: tf.variable(tf.randomNormal([3, 3, ch[i]!, ch[i + 1]!], 0, Math.sqrt(2 / (9 * ch[i + 1]!)))),
    gamma: tf.variable(tf.ones([ch[i + 1]!])),
    beta: tf.variable(tf.zeros([ch[i + 1]!])),
  }));
  const fcW = tf.variable(tf.randomNormal([ch[3]!, SMALL_CNN.classes], 0, 0.1));
  const fcB = tf.variable(tf.zeros([SMALL_CNN.classes]));
  const { images, labels } = inputs(batch, size);
  const nhwc = new Float32Array(images.length);
  for (let n = 0; n < batch; n++) for (let c = 0; c < 3; c++) for (let i = 0; i < size * size; i++) nhwc[(n * size * size + i) * 3 + c] = images[(n * 3 + c) * size * size + i]!;
  const x = tf.tensor4d(nhwc, [batch, size, size, 3]);
  const onehot = tf.oneHot(tf.tensor1d(Int32Array.from(labels), 'int32'), SMALL_CNN.classes);
  const optimizer = tf.train.adam(1e-3);
  const losses: number[] = [];
  const ms = await timeSteps(async () => {
    const loss = optimizer.minimize(() => {
      let h = x;
      vars.forEach((v, i) => {
        const z = tf.conv2d(h, v.w, [SMALL_CNN.strides[i]!, SMALL_CNN.strides[i]!], 'same');
        const { mean, variance } = tf.moments(z, [0, 1, 2]);
        h = tf.relu(tf.batchNorm(z, mean, variance, v.beta, v.gamma, 1e-5));
      });
      const logits = tf.add(tf.matMul(tf.mean(h, [1, 2]), fcW), fcB);
      return tf.losses.softmaxCrossEntropy(onehot, logits);
    }, true)!;
    losses.push(((await loss.data()) as Float32Array)[0]!);
    loss.dispose();
  }, steps);
  optimizer.dispose();
  for (const t of [x, onehot, fcW, fcB, ...vars.flatMap((v) => [v.w, v.gamma, v.beta])]) t.dispose();
  return { ms, losses };
}

export interface TrainStepResult {
  batch: number;
  size: number;
  clothtag: { imagesPerSecond: number; ms: number; firstLoss: number; lastLoss: number };
  /** The same step in mixed precision (f16 operands, f32 accumulation), where the adapter has shader-f16. */
  mixed: { imagesPerSecond: number; ms: number; firstLoss: number; lastLoss: number } | null;
  tfjs: { imagesPerSecond: number; ms: number; firstLoss: number; lastLoss: number } | null;
  /** The same network, batch and adapter in jax-js, its whole step jit-compiled (bench/jaxjs.ts). */
  jaxjs: { imagesPerSecond: number; ms: number; firstLoss: number; lastLoss: number } | null;
  /** clothtag's images/s over TensorFlow.js's. */
  ratio: number | null;
  /** clothtag's images/s over jax-js's. */
  ratioJaxjs: number | null;
}

export async function benchTrainStep(engine: Engine, o: { steps: number; log: (s: string) => void }): Promise<TrainStepResult> {
  const { batch, size } = SMALL_CNN;
  const summary = (r: { ms: number; losses: number[] }) => ({ imagesPerSecond: (1000 * batch) / r.ms, ms: r.ms, firstLoss: r.losses[0]!, lastLoss: r.losses.at(-1)! });
  const ours = summary(await clothtagStep(engine, o.steps));
  o.log(`clothtag:        ${ours.imagesPerSecond.toFixed(1).padStart(7)} images/s (${ours.ms.toFixed(1)} ms a step; loss ${ours.firstLoss.toFixed(3)} -> ${ours.lastLoss.toFixed(3)})`);
  let mixed: TrainStepResult['mixed'] = null;
  if (engine.hasF16) {
    mixed = summary(await engine.with({ mixedPrecision: true }, () => clothtagStep(engine, o.steps)));
    o.log(`clothtag mixed:  ${mixed.imagesPerSecond.toFixed(1).padStart(7)} images/s (${mixed.ms.toFixed(1)} ms a step; loss ${mixed.firstLoss.toFixed(3)} -> ${mixed.lastLoss.toFixed(3)}; f16 operands, f32 accumulation)`);
  }
  // jax-js first: it needs the real navigator.gpu, where TensorFlow.js's loader leaves a stand-in.
  const jaxRun = await jaxjsStep(SMALL_CNN, inputs(batch, size), o.steps, timeSteps);
  const jaxjs = jaxRun ? summary(jaxRun) : null;
  if (jaxjs) o.log(`jax-js webgpu:   ${jaxjs.imagesPerSecond.toFixed(1).padStart(7)} images/s (${jaxjs.ms.toFixed(1)} ms a step, jit-compiled; loss ${jaxjs.firstLoss.toFixed(3)} -> ${jaxjs.lastLoss.toFixed(3)})`);
  else o.log('jax-js is not installed (npm install --include=dev): no jax-js baseline.');
  const tfRun = await tfjsStep(engine, o.steps);
  const theirs = tfRun ? summary(tfRun) : null;
  if (theirs) o.log(`tfjs-webgpu:     ${theirs.imagesPerSecond.toFixed(1).padStart(7)} images/s (${theirs.ms.toFixed(1)} ms a step; loss ${theirs.firstLoss.toFixed(3)} -> ${theirs.lastLoss.toFixed(3)})`);
  else o.log('TensorFlow.js is not installed (npm install --include=dev): no baseline.');
  const ratio = theirs ? ours.imagesPerSecond / theirs.imagesPerSecond : null;
  if (ratio) o.log(`ratio: ${ratio.toFixed(2)}x TensorFlow.js WebGPU`);
  const ratioJaxjs = jaxjs ? ours.imagesPerSecond / jaxjs.imagesPerSecond : null;
  if (ratioJaxjs) o.log(`ratio: ${ratioJaxjs.toFixed(2)}x jax-js WebGPU`);
  return { batch, size, clothtag: ours, mixed, tfjs: theirs, ratio, jaxjs, ratioJaxjs };
}
