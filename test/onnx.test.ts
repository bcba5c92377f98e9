// ONNX export checked by an independent implementation: each of the five networks, exported,
// runs in onnxruntime-node's CPU provider on the same input as clothtag's own forward pass, and
// the outputs must agree to a relative error of 1e-4. This catches any layer built differently
// from what the graph says - for four of the networks, the only outside check there is.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import t from 'tap';
import { tempDir } from './helpers/tmp.js';
import { ONNX_OUTPUTS, adaptivePoolMatrix, exportOnnx } from '../src/interop/onnx.js';
import { BOX_INPUT } from '../src/nets/locator.js';
import { NET_NAMES, createNet } from '../src/nets/models.js';
import { saveCheckpoint } from '../src/nets/weights.js';
import { clothtag } from './helpers/cli.js';
import { gpuEngine } from './helpers/gpu.js';
import { randomizeBatchNorms } from './helpers/nets.js';
import { randn } from './helpers/random.js';

/** max |a - b| over max |b|: the error relative to the output's scale. */
function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let err = 0, scale = 0;
  for (let i = 0; i < b.length; i++) {
    err = Math.max(err, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return err / (scale || 1);
}

t.test('the adaptive pooling matrix averages PyTorch\'s windows', async (t) => {
  // 2 -> 3: windows [0,1), [0,2), [1,2).
  const m = adaptivePoolMatrix(1, 2, 1, 3);
  t.same(Array.from(m), [1, 0.5, 0, 0, 0.5, 1]);
  // 4 -> 2: plain 2-wide averages.
  t.same(Array.from(adaptivePoolMatrix(1, 4, 1, 2)), [0.5, 0, 0.5, 0, 0, 0.5, 0, 0.5]);
});

// The five networks, and FashionNet with a BatchNorm after each trunk convolution (--vgg-bn on).
const CASES = [...NET_NAMES.map((name) => [name, false] as const), ['fashionnet', true] as const];
for (const [name, vggBatchNorm] of CASES) {
  t.test(`${name}${vggBatchNorm ? ' with VGG BatchNorm' : ''}: the exported graph in ONNX Runtime (CPU) agrees with clothtag's forward pass`, async (t) => {
    const e = await gpuEngine();
    const net = createNet(e, { net: name, categories: 5, attributes: 7, width: name === 'fashionnet' ? 1 / 16 : 1 / 8, seed: 4, ...(name === 'new_fashionnet' ? { landmarkPrior: true, landmarkSkips: true } : {}), ...(vggBatchNorm ? { vggBatchNorm } : {}) });
    randomizeBatchNorms(e, net, 11);
    net.setTraining(false);
    if (name === 'cloth_repvgg') await net.reparameterize();
    const size = 64, batch = 2;
    const input = randn(batch * 3 * size * size, 5);
    const x = e.tensor(input, [batch, 3, size, size]).keep();
    const out = e.noGrad(() => net.forward(x));
    const expected: Record<string, Float32Array> = {};
    for (const k of ONNX_OUTPUTS) if (out[k]) expected[k] = await out[k]!.read();
    for (const k of ONNX_OUTPUTS) out[k]?.dispose();
    x.dispose();
    const bytes = await exportOnnx(net, { size, batch: 'dynamic' });
    const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'] });
    t.same([...session.outputNames].sort(), Object.keys(expected).sort(), 'outputs named category, attributes, heatmaps where the net has them');
    const got = await session.run({ image: new ort.Tensor('float32', input, [batch, 3, size, size]) });
    for (const [k, want] of Object.entries(expected)) {
      const have = got[k]!.data as Float32Array;
      t.equal(have.length, want.length, `${k}: ${want.length} values`);
      const err = relativeError(have, want);
      t.ok(err <= 1e-4, `${k}: relative error ${err.toExponential(2)} <= 1e-4`);
    }
    // A dynamic batch: one image gives the first image's outputs.
    const one = await session.run({ image: new ort.Tensor('float32', input.subarray(0, 3 * size * size), [1, 3, size, size]) });
    for (const [k, want] of Object.entries(expected)) {
      const err = relativeError(one[k]!.data as Float32Array, want.subarray(0, want.length / batch));
      t.ok(err <= 1e-4, `${k} at batch 1: relative error ${err.toExponential(2)}`);
    }
    await session.release();
    net.dispose();
  });
}

t.test('the garment-box head exports as a graph of its own (--part box) that ONNX Runtime agrees with', async (t) => {
  const e = await gpuEngine();
  const net = createNet(e, { net: 'cloth_repvgg', categories: 5, attributes: 0, width: 1 / 8, seed: 2, box: true });
  randomizeBatchNorms(e, net, 3);
  for (const p of net.find('box_locator.box').stateEntries()) for (const part of p.parts) e.write(part, randn(part.size, 9).map((v) => v * 0.05));
  net.setTraining(false);
  const batch = 3, input = randn(batch * 3 * BOX_INPUT * BOX_INPUT, 6);
  const x = e.tensor(input, [batch, 3, BOX_INPUT, BOX_INPUT]).keep();
  const box = e.noGrad(() => net.locate(x));
  const want = await box.read();
  box.dispose();
  x.dispose();
  const session = await ort.InferenceSession.create(await exportOnnx(net, { size: 64, batch: 'dynamic', part: 'box' }), { executionProviders: ['cpu'] });
  t.same([...session.inputNames, ...session.outputNames], ['photo', 'box']);
  const got = (await session.run({ photo: new ort.Tensor('float32', input, [batch, 3, BOX_INPUT, BOX_INPUT]) })).box!.data as Float32Array;
  const err = relativeError(got, want);
  t.ok(err <= 1e-4 && want.some((v) => Math.abs(v - 0.5) > 1e-3), `box: relative error ${err.toExponential(2)} <= 1e-4`);
  await session.release();
  net.dispose();
});

t.test('clothtag export writes a checkpoint as ONNX that ONNX Runtime runs, at a fixed batch', async (t) => {
  const e = await gpuEngine();
  const dir = tempDir(t, 'clothtag-onnx-');
  const net = createNet(e, { net: 'cloth_repvgg', categories: 3, attributes: 4, width: 1 / 8, seed: 2 });
  const vocabulary = JSON.stringify({ categories: ['a', 'b', 'c'], attributes: ['w', 'x', 'y', 'z'], attributeTypes: [1, 1, 2, 2], typeNames: { 1: 'p', 2: 'q' } });
  writeFileSync(join(dir, 'ckpt.safetensors'), await saveCheckpoint(net, { vocabulary, training: JSON.stringify({ imgSize: 32 }) }));
  net.dispose();
  const r = clothtag(['export', '--checkpoint', join(dir, 'ckpt.safetensors'), '--onnx', join(dir, 'net.onnx'), '--batch', '3']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /cloth_repvgg \(deployed\).*3x3x32x32.*category \[3, 3\], attributes \[3, 4\]/);
  const session = await ort.InferenceSession.create(readFileSync(join(dir, 'net.onnx')));
  const got = await session.run({ image: new ort.Tensor('float32', new Float32Array(3 * 3 * 32 * 32).fill(0.1), [3, 3, 32, 32]) });
  t.same(got.category!.dims, [3, 3]);
  await session.release();
  const bad = clothtag(['export', '--checkpoint', join(dir, 'ckpt.safetensors'), '--onnx', join(dir, 'x.onnx'), '--batch', 'many']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--batch takes a positive whole number or "dynamic"/);
});

t.test('bench infer times clothtag and ONNX Runtime (WebGPU and CPU) on the same exported graph', async (t) => {
  const e = await gpuEngine();
  const { benchInfer } = await import('../bench/infer.js');
  const lines: string[] = [];
  const r = await benchInfer(e, { net: 'cloth_repvgg', width: 1 / 16, sizes: [32], batches: [2], reps: 1, f16: false, log: (s) => lines.push(s) });
  t.equal(r.rows.length, 1);
  const row = r.rows[0]!;
  t.same([row.net, row.size, row.batch, row.precision], ['cloth_repvgg', 32, 2, 'f32']);
  t.ok(row.clothtag > 0, `clothtag ${row.clothtag.toFixed(1)} img/s`);
  // ORT runs as dist/bench/ort-infer.js (make test builds it first).
  t.ok(row.ort_cpu !== null && row.ort_cpu > 0, `ORT CPU ${row.ort_cpu}`);
  t.ok(row.ort_webgpu !== null && row.ort_webgpu > 0, `ORT WebGPU ${row.ort_webgpu}`);
  t.match(lines.join('\n'), /\| cloth_repvgg \| 32 +\| 2 +\| f32/);
});
