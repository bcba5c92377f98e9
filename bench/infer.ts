// `clothtag bench infer`: labelling speed (eval-mode forward passes, images/s) of one network in
// clothtag and in ONNX Runtime on the same exported model (clothtag export), ORT's WebGPU provider
// on the same adapter and its CPU provider for reference. ORT runs in child processes
// (bench/ort-infer.ts): its WebGPU provider brings its own Dawn.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Engine } from '../src/engine/engine.js';
import { exportOnnx } from '../src/interop/onnx.js';
import { type NetName, createNet } from '../src/nets/models.js';
import { disposeAll, predictBatch } from '../src/train/step.js';
import { kernelFamily, layerBlock, layerProfile } from './net.js';
import { table } from './timing.js';

export interface InferRow {
  net: string;
  batch: number;
  size: number;
  precision: 'f32' | 'f16';
  /** images/s */
  clothtag: number;
  ort_webgpu: number | null;
  ort_cpu: number | null;
}

export interface InferOptions {
  net: NetName;
  width: number;
  sizes: number[];
  batches: number[];
  reps: number;
  /** Also time clothtag in mixed precision (f16 operands) where the adapter has shader-f16. */
  f16: boolean;
  log(line: string): void;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** ORT's images/s for `model` on `provider`, or null (with the reason logged) when it cannot run. */
function ortImagesPerSecond(model: string, provider: string, batch: number, size: number, reps: number, log: (s: string) => void): number | null {
  // Beside this file when compiled (dist/bench); from the TypeScript sources, the compiled one.
  const script = [new URL('./ort-infer.js', import.meta.url), new URL('../dist/bench/ort-infer.js', import.meta.url)].map((u) => fileURLToPath(u)).find(existsSync);
  if (!script) {
    log(`  ORT ${provider}: bench/ort-infer.js is not built (npm run build)`);
    return null;
  }
  const r = spawnSync(process.execPath, [script, model, provider, String(batch), String(size), String(reps)], { encoding: 'utf8', timeout: 1_800_000 });
  const last = r.stdout?.trim().split('\n').at(-1) ?? '';
  try {
    return (JSON.parse(last) as { imagesPerSecond: number }).imagesPerSecond;
  } catch {
    log(`  ORT ${provider} failed: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').filter((l) => !/artificially reduced/.test(l)).slice(-2).join(' ')}`);
    return null;
  }
}

export async function benchInfer(engine: Engine, o: InferOptions): Promise<{ rows: InferRow[] }> {
  const rows: InferRow[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'clothtag-infer-'));
  try {
    // DeepFashion's heads: 50 categories, 1000 attributes.
    const net = createNet(engine, { net: o.net, categories: 50, attributes: 1000, width: o.width, seed: 0 });
    net.setTraining(false);
    if (net.repBlocks().length) await net.reparameterize();
    for (const size of o.sizes) {
      for (const batch of o.batches) {
        const input = new Float32Array(batch * 3 * size * size).map((_, i) => Math.sin(i) * 0.5);
        const timeClothtag = async (mixedPrecision: boolean) => engine.with({ mixedPrecision }, async () => {
          const once = async () => {
            const out = predictBatch(net, input, batch, size);
            await engine.readMany([out.category, out.attributes, out.heatmaps].filter((t) => t !== undefined));
            disposeAll([out.category, out.attributes, out.heatmaps]);
          };
          for (let i = 0; i < 2; i++) await once();
          const times: number[] = [];
          for (let i = 0; i < o.reps; i++) {
            const t0 = performance.now();
            await once();
            times.push(performance.now() - t0);
          }
          return (1000 * batch) / median(times);
        });
        const f32 = await timeClothtag(false);
        const model = join(dir, `${o.net}-${size}-${batch}.onnx`);
        writeFileSync(model, await exportOnnx(net, { size, batch }));
        const webgpu = ortImagesPerSecond(model, 'webgpu', batch, size, o.reps, o.log);
        const cpu = ortImagesPerSecond(model, 'cpu', batch, size, o.reps, o.log);
        rows.push({ net: o.net, batch, size, precision: 'f32', clothtag: f32, ort_webgpu: webgpu, ort_cpu: cpu });
        if (webgpu && f32 < webgpu && engine.hasTimestamps) {
          // Behind: where clothtag's forward pass spends its kernel time, by block of layers and by kernel family.
          let out: ReturnType<typeof predictBatch> | null = null;
          const timings = await engine.profileKernels(() => (out = predictBatch(net, input, batch, size)));
          const made = out as ReturnType<typeof predictBatch> | null;
          disposeAll([made?.category, made?.attributes, made?.heatmaps]);
          const kernelMs = timings.reduce((sum, k) => sum + k.ms, 0);
          o.log(`  behind ORT WebGPU here: the forward pass's ${timings.length} kernels take ${kernelMs.toFixed(1)} ms of ${((1000 * batch) / f32).toFixed(1)} ms a batch (the rest: recording, submission, reading back)`);
          const blocks = layerProfile(timings, layerBlock).slice(0, 8).map((r) => [r.key, r.dispatches, r.forward.toFixed(1), `${((100 * r.forward) / kernelMs).toFixed(0)}%`]);
          o.log(table(blocks, ['block', 'dispatches', 'forward ms', 'share']));
          const families = new Map<string, number>();
          for (const k of timings) families.set(kernelFamily(k.key), (families.get(kernelFamily(k.key)) ?? 0) + k.ms);
          o.log(table([...families].sort((a, b) => b[1] - a[1]).map(([f, ms]) => [f, ms.toFixed(1), `${((100 * ms) / kernelMs).toFixed(0)}%`]), ['kernels', 'ms', 'share']));
        }
        o.log(`${o.net} ${size}x${size} batch ${batch} f32: clothtag ${f32.toFixed(1)} img/s, ORT WebGPU ${webgpu?.toFixed(1) ?? '-'}, ORT CPU ${cpu?.toFixed(1) ?? '-'}${webgpu ? ` (${(f32 / webgpu).toFixed(2)}x ORT WebGPU)` : ''}`);
        if (o.f16 && engine.hasF16) {
          // ORT runs the fp32 graph only (an f16 graph would be another export): clothtag's mixed path alone.
          const f16 = await timeClothtag(true);
          rows.push({ net: o.net, batch, size, precision: 'f16', clothtag: f16, ort_webgpu: null, ort_cpu: null });
          o.log(`${o.net} ${size}x${size} batch ${batch} f16 operands: clothtag ${f16.toFixed(1)} img/s`);
        }
      }
    }
    net.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const fmt = (v: number | null) => (v === null ? '-' : v.toFixed(1));
  o.log('\n' + table(rows.map((r) => [r.net, r.size, r.batch, r.precision, fmt(r.clothtag), fmt(r.ort_webgpu), r.ort_webgpu ? `${(r.clothtag / r.ort_webgpu).toFixed(2)}x` : '-', fmt(r.ort_cpu)]), ['net', 'size', 'batch', 'precision', 'clothtag img/s', 'ORT WebGPU img/s', 'ratio', 'ORT CPU img/s']));
  return { rows };
}
