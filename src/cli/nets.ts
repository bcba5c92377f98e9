// `clothtag nets` and `clothtag forward`.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Engine } from '../engine/engine.js';
import { NET_NAMES, type NetName, THESIS_PARAMS, createNet, isNetName } from '../nets/models.js';
import { parseSafetensors, serializeSafetensors, type TensorMap } from '../nets/safetensors.js';
import { loadState } from '../nets/weights.js';
import { createNodeGpu } from '../node/gpu.js';
import { UsageError, positiveInt, readFileOrThrow } from './util.js';

export interface NetSummary {
  name: NetName;
  params: number;
  params_thesis: number;
  params_deploy: number;
  gflops: number;
}

/** Parameters and forward GFLOPs (2 per multiply-add, convolutions and linear layers) at 224x224. */
export function summarizeNet(engine: Engine, name: NetName, categories = 50, attributes = 1000): NetSummary {
  // Count the dispatches of one forward pass without running them.
  return engine.with({ countOnly: true }, () => {
    const net = createNet(engine, { net: name, categories, attributes, width: 1 }).setTraining(false);
    const flopsBefore = engine.stats.flops;
    engine.tidy(() => engine.noGrad(() => net.forward(engine.empty([1, 3, 224, 224]))));
    const summary = { name, params: net.parameterCount(), params_thesis: THESIS_PARAMS[name], params_deploy: net.deployParameterCount(), gflops: (engine.stats.flops - flopsBefore) / 1e9 };
    net.dispose();
    return summary;
  });
}

export async function netsVerb(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean' }, categories: { type: 'string', default: '50' }, attributes: { type: 'string', default: '1000' } } });
  const gpu = await createNodeGpu();
  try {
    const rows = NET_NAMES.map((n) => summarizeNet(gpu.engine, n, positiveInt(values.categories!, '--categories'), positiveInt(values.attributes!, '--attributes')));
    if (values.json) {
      console.log(JSON.stringify(rows, null, 2));
      return 0;
    }
    const fmt = (n: number) => n.toLocaleString('en-US');
    console.log(`networks at full width, 224x224, ${values.categories} categories, ${values.attributes} attributes\n`);
    console.log(`${'network'.padEnd(16)} ${'parameters'.padStart(13)} ${'thesis'.padStart(13)} ${'deployed'.padStart(13)} ${'GFLOPs'.padStart(7)}`);
    for (const r of rows) console.log(`${r.name.padEnd(16)} ${fmt(r.params).padStart(13)} ${fmt(r.params_thesis).padStart(13)} ${fmt(r.params_deploy).padStart(13)} ${r.gflops.toFixed(2).padStart(7)}`);
    console.log('\nGFLOPs: one image, forward, 2 per multiply-add of convolutions and linear layers. deployed: RepVGG blocks fused.');
    return 0;
  } finally {
    await gpu.close();
  }
}

export async function forwardVerb(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      net: { type: 'string' },
      weights: { type: 'string' },
      input: { type: 'string' },
      out: { type: 'string' },
      categories: { type: 'string', default: '50' },
      attributes: { type: 'string', default: '1000' },
      width: { type: 'string', default: '1' },
    },
  });
  for (const flag of ['net', 'weights', 'input', 'out'] as const) if (!values[flag]) throw new UsageError(`--${flag} is required`);
  if (!isNetName(values.net!)) throw new UsageError(`--net must be one of ${NET_NAMES.join(', ')}; got "${values.net}"`);
  const width = Number(values.width);
  if (!(width > 0)) throw new UsageError(`--width takes a positive number, got "${values.width}"`);
  const weights = parseSafetensors(readFileOrThrow(values.weights!), values.weights!);
  const input = parseSafetensors(readFileOrThrow(values.input!), values.input!).tensors.get('input');
  if (!input) throw new Error(`${values.input} has no tensor named "input" (N x 3 x H x W)`);
  const gpu = await createNodeGpu();
  try {
    const e = gpu.engine;
    const net = createNet(e, { net: values.net, categories: Number(values.categories), attributes: Number(values.attributes), width });
    if (weights.metadata.deployed === 'true') await net.reparameterize();
    loadState(net, weights.tensors, 'strict', values.weights!);
    net.setTraining(false);
    const out = e.noGrad(() => net.forward(e.tensor(input.data, input.shape, 'input')));
    const result: TensorMap = new Map();
    for (const key of ['category', 'attributes', 'heatmaps'] as const) {
      const t = out[key];
      if (t) result.set(key, { shape: [...t.shape], data: await t.read() });
    }
    writeFileSync(values.out!, serializeSafetensors(result, { net: values.net!, mode: 'eval' }));
    console.log(`${values.out}: ${[...result].map(([k, v]) => `${k} [${v.shape.join(', ')}]`).join(', ')}`);
    return 0;
  } finally {
    await gpu.close();
  }
}
