// `clothtag export` (a checkpoint as ONNX) and `clothtag convert` (PyTorch checkpoints to safetensors).
import { parseArgs } from 'node:util';
import { exportOnnx } from '../interop/onnx.js';
import { readTorchCheckpoint } from '../interop/torch.js';
import { serializeSafetensors } from '../nets/safetensors.js';
import { checkpointLabeling } from '../label/labels.js';
import { loadCheckpoint } from '../nets/weights.js';
import { createNodeGpu } from '../node/gpu.js';
import { writeAtomic } from '../run/train.js';
import { BOX_INPUT, ZOOM_MARGIN } from '../nets/locator.js';
import { UsageError, positiveInt, readFileOrThrow } from './util.js';

function batchFlag(v: string): number | 'dynamic' {
  if (v === 'dynamic') return v;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--batch takes a positive whole number or "dynamic", got "${v}"`);
  return n;
}

export async function exportVerb(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { checkpoint: { type: 'string' }, onnx: { type: 'string' }, batch: { type: 'string', default: 'dynamic' }, size: { type: 'string' }, part: { type: 'string', default: 'labels' } } });
  if (!values.checkpoint || !values.onnx) throw new UsageError('--checkpoint and --onnx are required');
  const batch = batchFlag(values.batch!);
  if (values.part !== 'labels' && values.part !== 'box') throw new UsageError(`--part is labels or box, got "${values.part}"`);
  const part = values.part;
  const bytes = readFileOrThrow(values.checkpoint);
  const gpu = await createNodeGpu();
  try {
    const { net, meta } = await loadCheckpoint(gpu.engine, bytes, values.checkpoint);
    // The size the network was trained at, unless asked otherwise.
    const size = values.size ? positiveInt(values.size, '--size') : checkpointLabeling(meta.extra, values.checkpoint).size;
    const repvgg = net.repBlocks().length > 0;
    if (repvgg && !meta.deployed) await net.reparameterize();
    if (part === 'box' && !net.hasBox) throw new UsageError(`--part box: ${values.checkpoint} has no garment-box head (it was trained without boxes)`);
    const onnx = await exportOnnx(net, { size, batch, part });
    writeAtomic(values.onnx, onnx);
    const N = batch === 'dynamic' ? 'N' : batch;
    if (part === 'box') {
      console.log(`${values.onnx}: ${net.config.net}'s garment-box head, input photo ${N}x3x${BOX_INPUT}x${BOX_INPUT} (the whole photo, ImageNet-normalized RGB), output box [${N}, 4] (centre x, centre y, width, height as fractions of the photo); ONNX opset 18, ${(onnx.length / 2 ** 20).toFixed(1)} MB${net.config.boxRefine ? `\n(clothtag looks twice: it runs the head again on the window ${ZOOM_MARGIN} times the first box about its centre, moved inside the photo, and keeps that box)` : ''}`);
      net.dispose();
      return 0;
    }
    const outputs = [net.config.categories ? `category [${N}, ${net.config.categories}]` : '', net.config.attributes ? `attributes [${N}, ${net.config.attributes}]` : '', net.hasLandmarks ? `heatmaps [${N}, 8, ${size}, ${size}]` : ''].filter(Boolean);
    console.log(`${values.onnx}: ${net.config.net}${repvgg ? ' (deployed)' : ''}, input image ${N}x3x${size}x${size} (ImageNet-normalized RGB), outputs ${outputs.join(', ')}; ONNX opset 18, ${(onnx.length / 2 ** 20).toFixed(1)} MB${net.hasBox ? '\n(the garment-box head reads the whole photo, not the crop: export it on its own with --part box)' : ''}`);
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
