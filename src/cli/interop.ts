// `clothtag export` (a checkpoint as ONNX), `clothtag convert` (PyTorch checkpoints to safetensors)
// and `clothtag graft-box` (one checkpoint's labels with another's garment-box head).
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { exportOnnx } from '../interop/onnx.js';
import { readTorchCheckpoint } from '../interop/torch.js';
import { parseSafetensors, serializeSafetensors } from '../nets/safetensors.js';
import { checkpointLabeling } from '../label/labels.js';
import { boxHeadOf, loadCheckpoint, replaceBoxHead } from '../nets/weights.js';
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

/**
 * `clothtag graft-box`: a checkpoint with one checkpoint's labelling network and another's
 * garment-box head. The box head is a network of its own that reads whole photos and shares no
 * weight with the labels (src/nets/locator.ts), so a head trained long once (train --box-epochs)
 * can serve every labelling network trained on the same kind of photos, without training each
 * one's head again. The looks it was trained for (config.boxRefine) come with it.
 */
export async function graftBoxVerb(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { from: { type: 'string' }, into: { type: 'string' }, out: { type: 'string' } } });
  if (!values.from || !values.into || !values.out) throw new UsageError('--from (the box head), --into (the labelling network) and --out are required');
  if ([values.from, values.into].some((f) => resolve(f) === resolve(values.out!))) throw new UsageError(`--out ${values.out} is one of the inputs: write the grafted checkpoint to a new file`);
  const from = parseSafetensors(readFileOrThrow(values.from), values.from);
  const into = parseSafetensors(readFileOrThrow(values.into), values.into);
  const configOf = (metadata: Record<string, string>, source: string): Record<string, unknown> => {
    try {
      if (metadata.config) return JSON.parse(metadata.config) as Record<string, unknown>;
    } catch {
      // reported below
    }
    throw new Error(`${source} is not a clothtag checkpoint (no valid network configuration in its metadata)`);
  };
  const fromConfig = configOf(from.metadata, values.from), intoConfig = configOf(into.metadata, values.into);
  const tensors = replaceBoxHead(into.tensors, from.tensors, { into: values.into, from: values.from });
  const config = { ...intoConfig };
  if (fromConfig.boxRefine) config.boxRefine = true;
  else delete config.boxRefine;
  const boxEpoch = from.metadata.box_epoch ?? from.metadata.epoch;
  const metadata = { ...into.metadata, config: JSON.stringify(config), box_from: values.from, ...(boxEpoch ? { box_epoch: boxEpoch } : {}) };
  writeAtomic(values.out, serializeSafetensors(tensors, metadata));
  console.log(`${values.out}: ${values.into}'s labelling network with ${values.from}'s garment-box head (${boxHeadOf(from.tensors).length} tensors${boxEpoch ? `, trained ${boxEpoch} epochs` : ''}; ${config.boxRefine ? 'two looks' : 'one look'} by default)`);
  return 0;
}
