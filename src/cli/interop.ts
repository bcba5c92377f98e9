// `clothtag export` (a checkpoint as ONNX) and `clothtag convert` (PyTorch checkpoints to safetensors).
import { parseArgs } from 'node:util';
import { exportOnnx } from '../interop/onnx.js';
import { readTorchCheckpoint } from '../interop/torch.js';
import { serializeSafetensors } from '../nets/safetensors.js';
import { checkpointLabeling } from '../label/labels.js';
import { loadCheckpoint } from '../nets/weights.js';
import { createNodeGpu } from '../node/gpu.js';
import { writeAtomic } from '../run/train.js';
import { UsageError, positiveInt, readFileOrThrow } from './util.js';

function batchFlag(v: string): number | 'dynamic' {
  if (v === 'dynamic') return v;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--batch takes a positive whole number or "dynamic", got "${v}"`);
  return n;
}

export async function exportVerb(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { checkpoint: { type: 'string' }, onnx: { type: 'string' }, batch: { type: 'string', default: 'dynamic' }, size: { type: 'string' } } });
  if (!values.checkpoint || !values.onnx) throw new UsageError('--checkpoint and --onnx are required');
  const batch = batchFlag(values.batch!);
  const bytes = readFileOrThrow(values.checkpoint);
  const gpu = await createNodeGpu();
  try {
    const { net, meta } = await loadCheckpoint(gpu.engine, bytes, values.checkpoint);
    // The size the network was trained at, unless asked otherwise.
    const size = values.size ? positiveInt(values.size, '--size') : checkpointLabeling(meta.extra, values.checkpoint).size;
    const repvgg = net.repBlocks().length > 0;
    if (repvgg && !meta.deployed) await net.reparameterize();
    const onnx = await exportOnnx(net, { size, batch });
    writeAtomic(values.onnx, onnx);
    const N = batch === 'dynamic' ? 'N' : batch;
    const outputs = [net.config.categories ? `category [${N}, ${net.config.categories}]` : '', net.config.attributes ? `attributes [${N}, ${net.config.attributes}]` : '', net.hasLandmarks ? `heatmaps [${N}, 8, ${size}, ${size}]` : ''].filter(Boolean);
    console.log(`${values.onnx}: ${net.config.net}${repvgg ? ' (deployed)' : ''}, input image ${N}x3x${size}x${size} (ImageNet-normalized RGB), outputs ${outputs.join(', ')}; ONNX opset 18, ${(onnx.length / 2 ** 20).toFixed(1)} MB`);
    net.dispose();
    return 0;
  } finally {
    await gpu.close();
  }
}

export async function convertVerb(args: string[]): Promise<number> {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
  const [input, output] = positionals;
  if (!input || !output || positionals.length !== 2) throw new UsageError('convert takes IN.pth and OUT.safetensors');
  if (!output.endsWith('.safetensors')) throw new UsageError(`the output should be a .safetensors file, got ${output}`);
  const tensors = readTorchCheckpoint(readFileOrThrow(input), input);
  writeAtomic(output, serializeSafetensors(tensors, { source: input }));
  const count = [...tensors.values()].reduce((s, t) => s + t.data.length, 0);
  console.log(`${output}: ${tensors.size} tensors (${(count / 1e6).toFixed(2)}M values, float32) from ${input}`);
  return 0;
}
