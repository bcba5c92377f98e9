// TensorFlow.js's WebGPU backend as the in-process baseline, on the engine's own GPUDevice
// (same adapter, same process). A dev dependency, for benchmarks only.
import { createRequire } from 'node:module';

// Only the few tfjs calls the benchmarks use.
export interface TfTensor {
  dispose(): void;
  data(): Promise<unknown>;
}
export interface Tfjs {
  randomNormal(shape: number[]): TfTensor;
  matMul(a: TfTensor, b: TfTensor, transposeA?: boolean, transposeB?: boolean): TfTensor;
  conv2d(x: TfTensor, filter: TfTensor, strides: [number, number], pad: 'same' | 'valid' | number, dataFormat?: 'NHWC' | 'NCHW'): TfTensor;
  time(f: () => TfTensor | TfTensor[] | void): Promise<{ kernelMs: number | { error: string }; wallMs: number }>;
  tidy<T>(f: () => T): T;
  engine(): { endScope(): void };
}

let loaded: Tfjs | null = null;

/** Loads tfjs-core and tfjs-backend-webgpu and points the 'webgpu' backend at `device`; null when not installed. */
export async function loadTfjs(device: GPUDevice): Promise<Tfjs | null> {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  let tf: Tfjs & { removeBackend(n: string): void; registerBackend(n: string, f: () => unknown): void; setBackend(n: string): Promise<boolean>; ready(): Promise<void> };
  let webgpu: { WebGPUBackend: new (device: GPUDevice) => unknown };
  try {
    // tfjs looks for a browser or worker global and navigator.gpu before it agrees to run.
    const g = globalThis as Record<string, unknown>;
    g.WorkerGlobalScope ??= class {};
    g.navigator ??= {};
    (g.navigator as Record<string, unknown>).gpu ??= {};
    tf = require('@tensorflow/tfjs-core');
    webgpu = require('@tensorflow/tfjs-backend-webgpu');
  } catch {
    return null;
  }
  tf.removeBackend('webgpu');
  tf.registerBackend('webgpu', () => new webgpu.WebGPUBackend(device));
  await tf.setBackend('webgpu');
  await tf.ready();
  loaded = tf;
  return tf;
}

/** Median kernel time (ms) of `op` in tfjs, by its timestamp-query profiler, after warm-up. */
export async function timeTfjs(tf: Tfjs, op: () => TfTensor, reps: number): Promise<number> {
  for (let i = 0; i < 2; i++) {
    const t = op();
    await t.data();
    t.dispose();
  }
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    let out: TfTensor | null = null;
    const info = await tf.time(() => (out = op()));
    (out as TfTensor | null)?.dispose();
    times.push(typeof info.kernelMs === 'number' ? info.kernelMs : info.wallMs);
  }
  return median(times);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

let gradientsRegistered = false;

/**
 * tfjs-core's Node bundle ships without the gradient functions (the @tensorflow/tfjs umbrella
 * package adds them). Its ES sources have them, but with extension-less imports Node cannot
 * load, so esbuild (a dev dependency already) bundles them into a temporary CommonJS file
 * (or CLOTHTAG_TFJS_GRADIENTS names one bundled before).
 * They register into tfjs's global registry, which every copy of tfjs-core shares.
 */
export async function registerTfjsGradients(): Promise<boolean> {
  if (gradientsRegistered) return true;
  const require = createRequire(import.meta.url);
  try {
    // The GPU runbook carries them pre-bundled (bench/gpu/pack.sh).
    const prebuilt = process.env.CLOTHTAG_TFJS_GRADIENTS;
    if (prebuilt) {
      require(prebuilt);
      gradientsRegistered = true;
      return true;
    }
    const { buildSync } = require('esbuild') as { buildSync(o: Record<string, unknown>): unknown };
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'clothtag-tfjs-'));
    const outfile = join(dir, 'gradients.cjs');
    try {
      buildSync({ entryPoints: [require.resolve('@tensorflow/tfjs-core/dist/register_all_gradients.js')], bundle: true, format: 'cjs', platform: 'node', outfile, logLevel: 'error' });
      require(outfile); // loaded once: the file is not needed after
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  } catch {
    return false;
  }
  gradientsRegistered = true;
  return true;
}
