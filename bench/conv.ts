// `clothtag bench conv`: forward, backward-data and backward-weight of every conv layer of
// ResNet-50, VGG-16 and RepVGG-A0 at batch 16, against TensorFlow.js WebGPU on the same device.
import type { Engine } from '../src/engine/engine.js';
import { conv2d, conv2dGradInput, conv2dGradWeight, convOutSize } from '../src/engine/conv.js';
import { matmul } from '../src/engine/gemm.js';
import { geomean } from './gemm.js';
import { convFlops, repvggA0Layers, resnet50Layers, vgg16Layers } from './layers.js';
import { type TfTensor, type Tfjs, loadTfjs, timeTfjs } from './tfjs.js';
import { measureRoof } from './roof.js';
import { table, timeKernels } from './timing.js';

export type ConvPass = 'forward' | 'backward_data' | 'backward_weight';

export interface ConvRecord {
  layer: string;
  net: string;
  pass: ConvPass;
  /** [N, C, H, W] -> K, kernel/stride */
  shape: string;
  count: number;
  ms: number;
  gflops: number;
  fraction_of_gemm: number;
  /** gflops as a fraction of the adapter's FMA peak measured in the same run (bench roof). */
  fraction_of_peak: number;
  baseline_gflops: number | null;
  ratio: number | null;
}

export interface ConvBenchOptions {
  batch: number;
  size: number;
  reps: number;
  nets: string[];
  passes: ConvPass[];
  log: (s: string) => void;
}

interface TfKernels extends Tfjs {
  engine(): { endScope(): void; runKernel(name: string, inputs: Record<string, TfTensor>, attrs: Record<string, unknown>): TfTensor } & ReturnType<Tfjs['engine']>;
}

/** The best GEMM rate of this adapter in this run (the roof the conv kernels are compared with). */
export async function bestGemmGflops(engine: Engine, log: (s: string) => void): Promise<number> {
  let best = 0;
  for (const n of [256, 512, 1024]) {
    const a = engine.full([n, n], 0.5), b = engine.full([n, n], 0.25);
    const ms = await timeKernels(engine, () => void matmul(a, b), 3);
    best = Math.max(best, (2 * n ** 3) / ms / 1e6);
    a.dispose();
    b.dispose();
  }
  log(`best GEMM rate in this run: ${best.toFixed(2)} GFLOP/s`);
  return best;
}

export async function benchConv(engine: Engine, o: ConvBenchOptions): Promise<ConvRecord[]> {
  const tf = (await loadTfjs(engine.device)) as TfKernels | null;
  if (!tf) o.log('TensorFlow.js is not installed (npm install --include=dev): no baseline column.');
  const roof = await bestGemmGflops(engine, o.log);
  const { fmaGflops } = await measureRoof(engine, o.reps);
  o.log(`FMA peak on this adapter: ${fmaGflops.toFixed(1)} GFLOP/s`);
  const layers = [...resnet50Layers(o.size), ...vgg16Layers(o.size), ...repvggA0Layers(o.size)].filter((l) => o.nets.includes(l.net));
  const records: ConvRecord[] = [];
  for (const l of layers) {
    const N = o.batch, OH = convOutSize(l.H, l.kernel, l.stride, l.pad);
    const g = { stride: l.stride, pad: l.pad };
    const flops = convFlops(l, N);
    const x = engine.full([N, l.C, l.H, l.H], 0.5);
    const w = engine.full([l.K, l.C, l.kernel, l.kernel], 0.01);
    const dy = engine.full([N, l.K, OH, OH], 0.1);
    const ours: Record<ConvPass, () => void> = {
      forward: () => void conv2d(x, w, undefined, g),
      backward_data: () => void conv2dGradInput(dy, w, x.shape, g),
      backward_weight: () => void conv2dGradWeight(dy, x, w.shape, g),
    };
    let theirs: Record<ConvPass, () => TfTensor> | null = null;
    let tfTensors: TfTensor[] = [];
    if (tf) {
      // TensorFlow.js in its native layout (NHWC, filters HWIO) and explicit padding.
      const tx = tf.randomNormal([N, l.H, l.H, l.C]), tw = tf.randomNormal([l.kernel, l.kernel, l.C, l.K]), tdy = tf.randomNormal([N, OH, OH, l.K]);
      tfTensors = [tx, tw, tdy];
      const attrs = { strides: [l.stride, l.stride], pad: l.pad, dataFormat: 'NHWC', dimRoundingMode: undefined, dilations: [1, 1] };
      theirs = {
        forward: () => tf.conv2d(tx, tw, [l.stride, l.stride], l.pad),
        backward_data: () => tf.engine().runKernel('Conv2DBackpropInput', { dy: tdy, filter: tw }, { ...attrs, inputShape: [N, l.H, l.H, l.C] }),
        backward_weight: () => tf.engine().runKernel('Conv2DBackpropFilter', { x: tx, dy: tdy }, { ...attrs, filterShape: [l.kernel, l.kernel, l.C, l.K] }),
      };
    }
    for (const pass of o.passes) {
      const ms = await timeKernels(engine, ours[pass], o.reps);
      const gflops = flops / ms / 1e6;
      let baseline: number | null = null;
      if (theirs) {
        try {
          baseline = flops / (await timeTfjs(tf!, theirs[pass], o.reps)) / 1e6;
        } catch (e) {
          o.log(`  (tfjs ${pass} failed on ${l.name}: ${(e as Error).message})`);
        }
      }
      const r: ConvRecord = {
        layer: `${l.net} ${l.name}`,
        net: l.net,
        pass,
        shape: `[${N}, ${l.C}, ${l.H}, ${l.H}] -> ${l.K} k${l.kernel}/${l.stride}`,
        count: l.count,
        ms,
        gflops,
        fraction_of_gemm: gflops / roof,
        fraction_of_peak: gflops / fmaGflops,
        baseline_gflops: baseline,
        ratio: baseline ? gflops / baseline : null,
      };
      records.push(r);
      o.log(`  ${r.layer.padEnd(34)} ${pass.padEnd(15)} ${gflops.toFixed(2).padStart(6)} GFLOP/s  ${(100 * r.fraction_of_gemm).toFixed(0).padStart(3)}% of GEMM  tfjs ${baseline?.toFixed(2) ?? '-'}`);
    }
    for (const t of [x, w, dy]) t.dispose();
    for (const t of tfTensors) t.dispose();
  }
  return records;
}

export function convTable(records: ConvRecord[]): string {
  return table(
    records.map((r) => [r.layer, r.pass, r.shape, r.gflops.toFixed(2), `${(100 * r.fraction_of_gemm).toFixed(0)}%`, `${(100 * r.fraction_of_peak).toFixed(0)}%`, r.baseline_gflops?.toFixed(2) ?? '-', r.ratio ? `${r.ratio.toFixed(2)}x` : '-']),
    ['layer', 'pass', 'shape', 'GFLOP/s', 'of GEMM', 'of FMA peak', 'tfjs GFLOP/s', 'ratio'],
  );
}

/** Geometric-mean ratio against tfjs per pass, over 3x3 layers and over all layers. */
export function convSummary(records: ConvRecord[]): string[] {
  const lines: string[] = [];
  for (const pass of ['forward', 'backward_data', 'backward_weight'] as ConvPass[]) {
    for (const [label, filter] of [['3x3', (r: ConvRecord) => / k3\//.test(r.shape)], ['all', () => true]] as const) {
      const rs = records.filter((r) => r.pass === pass && r.ratio && filter(r));
      const peak = rs.reduce((s, r) => s + r.fraction_of_peak, 0) / Math.max(rs.length, 1);
      if (rs.length) lines.push(`${pass.padEnd(15)} ${label.padEnd(3)} layers: geometric mean ${geomean(rs.map((r) => r.ratio!)).toFixed(2)}x tfjs-webgpu over ${rs.length} layers; mean ${(100 * peak).toFixed(0)}% of the FMA peak`);
    }
  }
  return lines;
}
