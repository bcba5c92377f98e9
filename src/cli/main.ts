#!/usr/bin/env node
// The `clothtag` command. Each verb is a small async function; errors print one clear line.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { matmul } from '../engine/gemm.js';
import { createNodeGpu, INSTALL_HINT } from '../node/gpu.js';
import { NET_NAMES, type NetName, isNetName } from '../nets/models.js';
import { demoVerb } from './demo.js';
import { dataVerb, evalVerb, landmarkBranchOf, predictVerb, precisionOf, seedOf, stemStrideOf, trainVerb } from './job.js';
import { forwardVerb, netsVerb } from './nets.js';
import { UsageError, positiveInt, readFileOrThrow } from './util.js';
import { serveDemo } from '../node/serve.js';
import { tuneVerb } from './tune.js';
import { convertVerb, exportVerb, graftBoxVerb } from './interop.js';
import { indexVerb, searchVerb } from './catalog.js';
import { followParent, isFilteredChild, runWithQuietStderr } from './quiet.js';
import { fileURLToPath } from 'node:url';

interface Verb {
  summary: string;
  usage: string;
  run(args: string[]): Promise<number>;
}

const verbs: Record<string, Verb> = {
  data: {
    summary: 'check a dataset (layout, tasks, histograms, every problem as file:line), or synthesize one',
    usage: 'clothtag data check PATH [--json]\n       clothtag data synth OUT [--images 600] [--size 128] [--seed 0] [--force]',
    run: dataVerb,
  },
  train: {
    summary: 'train a network on a DeepFashion-layout or ImageFolder dataset (or --resume a run)',
    usage: 'clothtag train --data PATH --net NAME [--epochs 8] [--batch-size 16] [--img-size 224] [--width 1] [--stem-stride 2|1] [--conv-init fan-out|pytorch (default: cloth_repvgg pytorch, the others fan-out)] [--head-width W (landmark networks; default: --width)] [--landmark-skips on|off (landmark networks; default: on with soft-argmax)] [--vgg-bn on|off (fashionnet; default: off)] [--lr 3e-3 (fashionnet 2e-3)] [--schedule onecycle|cosine|exp] [--cycle-momentum on|off] [--lr-decay 0.95] [--warmup EPOCHS] [--weight-decay 0.05] [--label-smoothing 0] [--clip-norm 0] [--augment none|flip|light|strong] [--train-on train|train+val] [--ema DECAY] [--attribute-loss bce|softmax] [--wc 1] [--ws 20 (softmax: 1)] [--wl 20|2000] [--wb 1] [--box-zoom 0.5] [--box-views 1] [--box-frame SIDE (default: as --augment)] [--box-epochs N (default: --epochs)] [--landmark-loss softargmax|mse|ssim] [--weighting fixed|uncertainty] [--pretrained FILE.safetensors|FILE.pth] [--split official|random:0.7:200000] [--seed 0] [--workers N] [--steps-per-epoch N] [--val-limit N] [--precision f32|mixed] [--out DIR]\n       clothtag train --resume DIR [--epochs N] [--workers N]',
    run: trainVerb,
  },
  eval: {
    summary: 'evaluate a checkpoint with the DeepFashion protocol',
    usage: 'clothtag eval --checkpoint FILE --data PATH [--split test] [--boxes true|predicted] [--box-looks 1-4 (default: 2 where trained for it)] [--mirror] [--json OUT] [--batch-size 32] [--limit N]',
    run: evalVerb,
  },
  predict: {
    summary: 'label images: category top-5, attributes by type, landmarks; JSONL and PNG overlays',
    usage: 'clothtag predict IMAGES... --checkpoint FILE [--out DIR] [--jsonl FILE] [--sheet FILE.png] [--bbox LIST|whole] [--threshold 0.5] [--per-type 3] [--landmark-threshold 0.5] [--mirror] [--box-looks 1-4]',
    run: predictVerb,
  },
  index: {
    summary: 'label photos into a catalog (SQLite): box, category and attribute probabilities, landmarks, an embedding; incremental and resumable',
    usage: 'clothtag index PHOTOS... --checkpoint FILE --db catalog.sqlite [--reindex] [--prune] [--batch-size 16] [--box-looks 1-4 (default: as trained)]',
    run: indexVerb,
  },
  search: {
    summary: 'search a catalog by label probabilities and/or likeness to a photo',
    usage: 'clothtag search --db catalog.sqlite [--category NAME] [--attr NAME>P ...] [--like PHOTO] [--top 20] [--json] [--sheet OUT.png]',
    run: searchVerb,
  },
  'serve-demo': {
    summary: 'serve the browser page (labels a photo with the browser\'s WebGPU) on 127.0.0.1',
    usage: 'clothtag serve-demo [--checkpoint FILE] [--port 8080]',
    run: serveDemoVerb,
  },
  doctor: {
    summary: 'print the WebGPU adapter, its features and limits, and check a kernel result',
    usage: 'clothtag doctor',
    run: doctor,
  },
  demo: {
    summary: 'the main job end to end: synthesize data, train New FashionNet, evaluate, label (--engine: the MLP demo)',
    usage: 'clothtag demo [--out runs/demo] [--epochs 6] [--images 600]\n       clothtag demo --engine',
    run: demoVerb,
  },
  nets: {
    summary: 'parameters (ours, the thesis\'s, deployed) and GFLOPs at 224 of the five networks',
    usage: 'clothtag nets [--json] [--categories 50] [--attributes 1000]',
    run: netsVerb,
  },
  forward: {
    summary: 'one eval-mode forward pass on a safetensors input, outputs to safetensors',
    usage: 'clothtag forward --net NAME --weights FILE.safetensors --input FILE.safetensors --out FILE.safetensors [--categories N] [--attributes N] [--width W]',
    run: forwardVerb,
  },
  export: {
    summary: 'write a checkpoint as an ONNX graph (eval mode; RepVGG deployed) for ONNX Runtime and other runtimes',
    usage: 'clothtag export --checkpoint FILE --onnx OUT.onnx [--batch N|dynamic] [--size S] [--part labels|box]',
    run: exportVerb,
  },
  convert: {
    summary: 'convert a PyTorch checkpoint (torch.save: a state dict) to safetensors, without running any of its code',
    usage: 'clothtag convert IN.pth OUT.safetensors',
    run: convertVerb,
  },
  'graft-box': {
    summary: 'write a checkpoint with one checkpoint\'s labelling network and another\'s garment-box head (a head trained long once serves any network)',
    usage: 'clothtag graft-box --from BOX.safetensors --into LABELS.safetensors --out OUT.safetensors',
    run: graftBoxVerb,
  },
  tune: {
    summary: 'time every tile on the GEMM and convolution shapes of a network\'s training step; keep the winners for this adapter',
    usage: 'clothtag tune [--net cloth_resnet_a] [--width 0.25] [--size 64] [--batch 16] [--reps 3] [--limit N] [--dry-run]',
    run: tuneVerb,
  },
  bench: {
    summary: 'benchmarks: gemm, conv (against TensorFlow.js WebGPU in the same process), roof (the adapter\'s peaks), memory (bandwidth-bound kernels), net (a training step\'s profile per layer and its memory against the floor), fit (the largest batch within a memory budget), train-step (a small CNN against TensorFlow.js), infer (labelling against ONNX Runtime WebGPU), real-data (accuracy), catalog (a similarity scan at 100k and 1M photos)',
    usage: 'clothtag bench gemm [--quick] [--reps N] [--json FILE]\n       clothtag bench roof [--reps N] [--json FILE]\n       clothtag bench memory [--reps N] [--json FILE]\n       clothtag bench train-step [--steps 5] [--json FILE]\n       clothtag bench net [--net cloth_resnet_a] [--width 0.25] [--size 64] [--batch 16] [--steps 5] [--precision f32|mixed] [--no-torch] [--head-width W] [--landmark-skips on|off] [--landmark-loss mse|ssim|softargmax] [--json FILE]\n       clothtag bench fit [--net NAME,... (all five)] [--size 224] [--width 1] [--memory-mib 4096] [--precision f32,mixed] [--json FILE]\n       clothtag bench infer [--net cloth_resnet_a] [--width 1] [--size 64,224] [--batches 1,16] [--reps N] [--quick: f32 only] [--json FILE]\n       clothtag bench catalog [--rows 100000,1000000] [--dim 512] [--reps N] [--json FILE]\n       clothtag bench real-data [--epochs 12] [--size 64] [--width 0.25] [--landmark-width 0.25] [--stem-stride 1|2 (all jobs)] [--only clothing-small,deepfashion-fine,deepfashion-fine-transfer,deepfashion-fine-landmarks,clothing-small-transfer,clothing-small-landmark-transfer] [--runs DIR] [--seed 0 (every job)] [--shared ../shared/data] [--json FILE (the jobs run replace their entries in it)]\n       clothtag bench conv [--batch 16] [--size S] [--nets resnet50,vgg16,repvgg_a0] [--passes forward,backward_data,backward_weight] [--reps N] [--json FILE]',
    run: bench,
  },
};

function help(): string {
  const width = Math.max(...Object.keys(verbs).map((v) => v.length));
  return [
    'clothtag — a WebGPU deep-learning engine and the clothing-labelling networks built on it',
    '',
    'usage: clothtag <command> [options]',
    '',
    ...Object.entries(verbs).map(([name, v]) => `  ${name.padEnd(width)}  ${v.summary}`),
    '',
    'Each command takes --help. Set VK_ICD_FILENAMES to pick a Vulkan driver (lavapipe is used when',
    'it is installed and no GPU is present).',
  ].join('\n');
}

async function doctor(): Promise<number> {
  let gpu;
  try {
    gpu = await createNodeGpu();
  } catch (e) {
    console.error((e as Error).message === INSTALL_HINT ? INSTALL_HINT : `WebGPU start-up failed: ${(e as Error).message}\n\n${INSTALL_HINT}`);
    return 1;
  }
  const { engine, adapter, info } = gpu;
  console.log(`adapter:  ${info.description || info.device || '(unnamed)'}`);
  console.log(`vendor:   ${info.vendor || '-'}   architecture: ${info.architecture || '-'}   backend: ${info.backend}`);
  console.log(`driver:   VK_ICD_FILENAMES=${process.env.VK_ICD_FILENAMES ?? '(loader default)'}`);
  console.log(`features: ${[...adapter.features].sort().join(', ')}`);
  // What the performance work depends on, in one line: half precision, subgroups (and their
  // width), and subgroup matrices (Dawn's experimental cooperative-matrix feature).
  const has = (f: string) => (adapter.features.has(f) ? 'yes' : 'no');
  const sg = adapter.info as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
  const width = sg.subgroupMinSize ? ` (width ${sg.subgroupMinSize}${sg.subgroupMaxSize !== sg.subgroupMinSize ? `-${sg.subgroupMaxSize}` : ''})` : '';
  console.log(`compute:  shader-f16 ${has('shader-f16')}, subgroups ${has('subgroups')}${width}, subgroup matrices ${has('chromium-experimental-subgroup-matrix')}, timestamp-query ${has('timestamp-query')}`);
  const l = engine.limits;
  console.log('limits:');
  for (const key of ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupsPerDimension', 'maxStorageBuffersPerShaderStage'] as const) {
    console.log(`  ${key.padEnd(36)} ${l[key]}`);
  }
  // A tiny kernel whose answer is known: [[1,2],[3,4]] x [[5,6],[7,8]] = [[19,22],[43,50]].
  const c = matmul(engine.tensor([1, 2, 3, 4], [2, 2]), engine.tensor([5, 6, 7, 8], [2, 2]));
  const got = Array.from(await c.read());
  const ok = JSON.stringify(got) === JSON.stringify([19, 22, 43, 50]);
  console.log(`kernel check (2x2 GEMM): ${ok ? 'ok' : `WRONG: got ${got}`}`);
  await gpu.close();
  return ok ? 0 : 1;
}

async function bench(args: string[]): Promise<number> {
  const [what, ...rest] = args;
  const { values } = parseArgs({
    args: rest,
    options: {
      quick: { type: 'boolean' },
      reps: { type: 'string', default: '5' },
      json: { type: 'string' },
      batch: { type: 'string', default: '16' },
      size: { type: 'string' },
      nets: { type: 'string', default: 'resnet50,vgg16,repvgg_a0' },
      passes: { type: 'string', default: 'forward,backward_data,backward_weight' },
      epochs: { type: 'string', default: '12' },
      'landmark-width': { type: 'string', default: '0.25' }, 'stem-stride': { type: 'string' },
      seed: { type: 'string', default: '0' },
      only: { type: 'string' },
      runs: { type: 'string' },
      net: { type: 'string', default: 'cloth_resnet_a' },
      steps: { type: 'string', default: '5' },
      width: { type: 'string', default: '0.25' },
      shared: { type: 'string', default: '../shared/data' },
      batches: { type: 'string', default: '1,16' },
      rows: { type: 'string' }, dim: { type: 'string' }, precision: { type: 'string' }, 'memory-mib': { type: 'string', default: '4096' }, 'no-torch': { type: 'boolean' },
      'head-width': { type: 'string' }, 'landmark-skips': { type: 'string' }, 'landmark-loss': { type: 'string' },
    },
  });
  const reps = positiveInt(values.reps!, '--reps');
  if (!['gemm', 'conv', 'real-data', 'roof', 'memory', 'net', 'fit', 'train-step', 'infer', 'catalog'].includes(what ?? '')) throw new UsageError(`unknown benchmark "${what ?? ''}": gemm, conv, roof, memory, net, fit, train-step, infer, real-data or catalog`);
  if (what === 'catalog') {
    // No GPU: a scan of stored embeddings.
    const { benchCatalog } = await import('../../bench/catalog.js');
    console.log(`an exact similarity scan over a catalog (SQLite, synthetic rows), median of ${reps}`);
    const r = benchCatalog({ rows: (values.rows ?? '100000,1000000').split(',').map((x) => positiveInt(x, '--rows')), dim: positiveInt(values.dim ?? '512', '--dim'), reps, log: (s: string) => console.log(s) });
    if (values.json) writeFileSync(values.json, JSON.stringify({ rows: r }, null, 2));
    return 0;
  }
  const gpu = await createNodeGpu();
  const adapter = gpu.info.description || gpu.info.device;
  try {
    if (what === 'roof') {
      const { measureRoof } = await import('../../bench/roof.js');
      const r = await measureRoof(gpu.engine, reps);
      console.log(`${adapter}: arithmetic peak ${r.fmaGflops.toFixed(1)} GFLOP/s (register FMAs), streaming copy ${r.copyGBs.toFixed(1)} GB/s`);
      if (values.json) writeFileSync(values.json, JSON.stringify({ adapter: gpu.info, ...r }, null, 2));
      return 0;
    }
    if (what === 'memory') {
      const { benchMemory, memoryTable } = await import('../../bench/memory.js');
      console.log(`bandwidth-bound kernels on ${adapter} (timestamp queries, median of ${reps})`);
      const r = await benchMemory(gpu.engine, { reps, log: (s: string) => console.log(s) });
      console.log('\n' + memoryTable(r.records));
      if (values.json) writeFileSync(values.json, JSON.stringify({ adapter: gpu.info, ...r }, null, 2));
      return 0;
    }
    if (what === 'train-step') {
      const { benchTrainStep } = await import('../../bench/train-step.js');
      console.log(`a small CNN's training step, clothtag against jax-js and TensorFlow.js WebGPU on ${adapter} (median of ${values.steps} steps after 3 of warm-up)`);
      const r = await benchTrainStep(gpu.engine, { steps: positiveInt(values.steps!, '--steps'), log: (s: string) => console.log(s) });
      if (values.json) writeFileSync(values.json, JSON.stringify({ adapter: gpu.info, ...r }, null, 2));
      return 0;
    }
    if (what === 'net') {
      const { benchNet } = await import('../../bench/net.js');
      if (!isNetName(values.net!)) throw new UsageError(`--net must be one of ${NET_NAMES.join(', ')}`);
      const r = await benchNet(gpu.engine, {
        net: values.net, width: Number(values.width ?? 1), size: values.size ? positiveInt(values.size, '--size') : 64,
        batch: positiveInt(values.batch!, '--batch'), steps: positiveInt(values.steps!, '--steps'), precision: precisionOf(values.precision), torch: !values['no-torch'], log: (s: string) => console.log(s),
        ...landmarkBranchOf(values.net, values),
      });
      if (values.json) writeFileSync(values.json, JSON.stringify({ adapter: gpu.info, ...r }, null, 2));
      return 0;
    }
    if (what === 'fit') {
      const { benchFit } = await import('../../bench/fit.js');
      const given = (flag: string) => rest.some((a) => a === flag || a.startsWith(`${flag}=`));
      const nets = given('--net') ? values.net!.split(',') : [...NET_NAMES];
      const unknown = nets.find((n) => !isNetName(n));
      if (unknown) throw new UsageError(`--net takes names among ${NET_NAMES.join(', ')}; got ${unknown}`);
      const precisions = (values.precision ?? (gpu.engine.hasF16 ? 'f32,mixed' : 'f32')).split(',').map(precisionOf);
      const o = { nets: nets as NetName[], size: values.size ? positiveInt(values.size, '--size') : 224, width: given('--width') ? Number(values.width) : 1, budgetMiB: positiveInt(values['memory-mib']!, '--memory-mib'), precisions };
      console.log(`the largest batch of each network at ${o.size}x${o.size}, width ${o.width}, whose training step peaks within ${o.budgetMiB} MiB of device memory (dry runs: every tensor counted at its pool size, nothing run)`);
      const rows = benchFit(gpu.engine, { ...o, log: (s: string) => console.log(s) });
      if (values.json) writeFileSync(values.json, JSON.stringify({ adapter: gpu.info, rows }, null, 2));
      return 0;
    }
    if (what === 'infer') {
      const { benchInfer } = await import('../../bench/infer.js');
      if (!isNetName(values.net!)) throw new UsageError(`--net must be one of ${NET_NAMES.join(', ')}`);
      const list = (v: string, flag: string) => v.split(',').map((x) => positiveInt(x, flag));
      console.log(`labelling (eval-mode forward) on ${adapter}: clothtag against ONNX Runtime on the same exported graph (WebGPU provider, same adapter; CPU provider for reference), median of ${reps}`);
      const r = await benchInfer(gpu.engine, {
        net: values.net, width: Number(values.width ?? 1), sizes: list(values.size ?? '64,224', '--size'), batches: list(values.batches!, '--batches'),
        reps, f16: !values.quick, log: (s: string) => console.log(s),
      });
      if (values.json) writeFileSync(values.json, JSON.stringify({ adapter: gpu.info, ...r }, null, 2));
      return 0;
    }
    if (what === 'real-data') {
      const { benchRealData, readResults, writeResults, REAL_DATA_JOBS } = await import('../../bench/real-data.js');
      if (values.json) readResults(values.json); // a file that cannot take the results fails now, not after hours of training
      const only = values.only?.split(',');
      const unknown = only?.filter((name) => !REAL_DATA_JOBS.some((j) => j.name === name));
      if (unknown?.length) throw new UsageError(`--only: no job named ${unknown.join(', ')}; the jobs are ${REAL_DATA_JOBS.map((j) => j.name).join(', ')}`);
      const results = await benchRealData(gpu.engine, {
        shared: values.shared!, epochs: positiveInt(values.epochs!, '--epochs'), size: values.size ? positiveInt(values.size, '--size') : 64,
        width: Number(values.width), landmarkWidth: Number(values['landmark-width']), workers: 1, log: (s: string) => console.log(s),
        stemStride: values['stem-stride'] === undefined ? undefined : stemStrideOf(values['stem-stride']), only, runs: values.runs,
        seed: seedOf(values.seed),
      });
      if (values.json) writeResults(values.json, results);
      return 0;
    }
    if (what === 'gemm') {
      const { benchGemm, gemmTable, geomean } = await import('../../bench/gemm.js');
      console.log(`gemm on ${adapter} (timestamp queries, median of ${reps})`);
      const results = await benchGemm(gpu.engine, { quick: values.quick, reps });
      console.log('\n' + gemmTable(results));
      const ratios = results.filter((r) => r.baselineGflops).map((r) => r.gflops / r.baselineGflops!);
      if (ratios.length) console.log(`\ngeometric mean ratio against tfjs-webgpu: ${geomean(ratios).toFixed(2)}x`);
      if (values.json) writeFileSync(values.json, JSON.stringify({ adapter: gpu.info, results }, null, 2));
      return 0;
    }
    const { benchConv, convSummary, convTable } = await import('../../bench/conv.js');
    // A CPU adapter runs the layers at 64x64 instead of 224x224 (the same channels and strides).
    const cpu = gpu.info.architecture === 'software' || /llvmpipe|swiftshader|lavapipe/i.test(adapter);
    const size = values.size ? positiveInt(values.size, '--size') : cpu ? 64 : 224;
    if (size % 32 !== 0) throw new UsageError(`--size must be a multiple of 32 (the trunks downsample 32x), got ${size}`);
    const opts = {
      batch: positiveInt(values.batch!, '--batch'),
      size,
      reps,
      nets: values.nets!.split(','),
      passes: values.passes!.split(',') as ('forward' | 'backward_data' | 'backward_weight')[],
      log: (s: string) => console.log(s),
    };
    console.log(`conv layers at batch ${opts.batch}, ${size}x${size} input${cpu && !values.size ? ' (scaled down from 224: CPU adapter)' : ''}, on ${adapter} (timestamp queries, median of ${reps})`);
    const records = await benchConv(gpu.engine, opts);
    console.log('\n' + convTable(records) + '\n\n' + convSummary(records).join('\n'));
    if (values.json) writeFileSync(values.json, JSON.stringify({ adapter: gpu.info, size, batch: opts.batch, records }, null, 2));
    return 0;
  } finally {
    await gpu.close();
  }
}


async function serveDemoVerb(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { checkpoint: { type: 'string' }, port: { type: 'string', default: '8080' } } });
  if (values.checkpoint) readFileOrThrow(values.checkpoint);
  const server = await serveDemo({ checkpoint: values.checkpoint, port: positiveInt(values.port!, '--port') });
  console.log(`open ${server.url} in a browser with WebGPU${values.checkpoint ? ` (checkpoint ${values.checkpoint} served beside the page)` : ''}; Ctrl-C stops`);
  await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
  await server.close();
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(help());
    return name ? 0 : 2;
  }
  const verb = verbs[name];
  if (!verb) {
    console.error(`clothtag: unknown command "${name}"\n\n${help()}`);
    return 2;
  }
  if (args.includes('--help') || args.includes('-h')) {
    console.log(`usage: ${verb.usage}\n\n${verb.summary}`);
    return 0;
  }
  try {
    return await verb.run(args);
  } catch (e) {
    const err = e as Error;
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`clothtag ${name}: ${err.message}\nusage: ${verb.usage}`);
      return 2;
    }
    console.error(`clothtag ${name}: ${err.message}`);
    if (process.env.CLOTHTAG_DEBUG) console.error(err.stack);
    return 1;
  }
}

const argv = process.argv.slice(2);
const verbName = argv[0] ?? '';
if (!isFilteredChild() && Object.hasOwn(verbs, verbName) && process.env.CLOTHTAG_RAW_STDERR !== '1') {
  // Every verb may start Dawn: run it as a child whose stderr loses Dawn's start-up notices (quiet.ts).
  process.exitCode = await runWithQuietStderr(fileURLToPath(import.meta.url), argv);
} else {
  if (isFilteredChild()) followParent();
  process.exitCode = await main(argv);
}
