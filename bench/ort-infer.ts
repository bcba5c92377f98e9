// A child process of `clothtag bench infer`: times one ONNX model in ONNX Runtime on one execution
// provider and prints {"imagesPerSecond", "msPerBatch"} as its last line. A process of its own,
// because ONNX Runtime's WebGPU provider carries its own Dawn, which is not shared with ours.
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';

const [model, provider, batchArg, sizeArg, repsArg] = process.argv.slice(2);
const batch = Number(batchArg), size = Number(sizeArg), reps = Number(repsArg);
const session = await ort.InferenceSession.create(readFileSync(model!), { executionProviders: [provider!] });
const input = new Float32Array(batch * 3 * size * size);
for (let i = 0; i < input.length; i++) input[i] = Math.sin(i) * 0.5;
const feeds = { image: new ort.Tensor('float32', input, [batch, 3, size, size]) };
// Two warm-up runs (ORT compiles its kernels on the first), then the median of `reps`.
for (let i = 0; i < 2; i++) await session.run(feeds);
const times: number[] = [];
for (let i = 0; i < reps; i++) {
  const t0 = performance.now();
  await session.run(feeds);
  times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);
const ms = times[Math.floor(times.length / 2)]!;
await session.release();
console.log(JSON.stringify({ imagesPerSecond: (1000 * batch) / ms, msPerBatch: ms }));
