// The browser page: loads a checkpoint (served beside the page, or picked by the user), labels a
// photo the user picks with the browser's own WebGPU, and draws its landmarks and top labels.
// Nothing leaves the page: the photo is read locally and never uploaded.
import decodeJpeg from 'jpeg-js/lib/decoder.js';
import { Engine } from '../engine/engine.js';
import { requestEngineDevice } from '../engine/device.js';
import { DEFAULT_LABELING, type Labels, checkpointLabeling, labelImages, wholeImage } from '../label/labels.js';
import type { LandmarkDecode } from '../train/losses.js';
import type { RgbaImage } from '../label/pixels.js';
import type { ClothNet } from '../nets/models.js';
import { loadCheckpoint } from '../nets/weights.js';
import type { Vocabulary } from '../train/metrics.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = (text: string) => ($('status').textContent = text);

let engine: Engine | null = null;
let model: { net: ClothNet; vocab: Vocabulary; size: number; name: string; decode: LandmarkDecode } | null = null;

async function gpu(): Promise<Engine> {
  if (engine) return engine;
  if (!('gpu' in navigator)) throw new Error('this browser has no WebGPU (navigator.gpu is missing)');
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) throw new Error('WebGPU is present but no adapter was found');
  engine = new Engine(await requestEngineDevice(adapter));
  return engine;
}

async function useCheckpoint(bytes: ArrayBuffer, name: string): Promise<void> {
  status(`loading ${name}...`);
  const e = await gpu();
  model?.net.dispose();
  const { net, meta } = await loadCheckpoint(e, bytes, name);
  const { vocab, size, decode } = checkpointLabeling(meta.extra, name);
  model = { net, vocab, size, name, decode };
  status(`${name}: ${meta.config.net}, ${vocab.categories.length} categories, ${vocab.attributes.length} attributes, ${size}x${size}. Pick a photo.`);
}

/** JPEG through jpeg-js (the same decoder as the command line, so results match), others through the browser. */
async function decode(file: File): Promise<RgbaImage> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  if (bytes[0] === 0xff && bytes[1] === 0xd8) {
    const img = decodeJpeg(bytes, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: 50 });
    return { width: img.width, height: img.height, data: img.data };
  }
  const bitmap = await createImageBitmap(file);
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d')!;
  ctx.drawImage(bitmap, 0, 0);
  const { data } = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
  return { width: bitmap.width, height: bitmap.height, data };
}

const COLORS = ['#e6194b', '#3cb44b', '#ffe119', '#0082c8', '#f58230', '#911eb4', '#46f0f0', '#f032e6'];

function draw(img: RgbaImage, r: Labels): void {
  const canvas = $<HTMLCanvasElement>('overlay');
  const scale = Math.min(1, 480 / img.width);
  canvas.width = Math.round(img.width * scale);
  canvas.height = Math.round(img.height * scale);
  const ctx = canvas.getContext('2d')!;
  const full = new OffscreenCanvas(img.width, img.height);
  full.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(img.data), img.width, img.height), 0, 0);
  ctx.drawImage(full, 0, 0, canvas.width, canvas.height);
  for (const [s, l] of (r.landmarks ?? []).entries()) {
    // An unsure point (Labels.landmarks) is drawn as a hollow ring: a guess, not a finding.
    ctx.beginPath();
    ctx.arc(l.x * scale, l.y * scale, 5, 0, 2 * Math.PI);
    ctx.fillStyle = COLORS[s]!;
    ctx.strokeStyle = l.sure ? '#000' : COLORS[s]!;
    ctx.lineWidth = l.sure ? 1 : 2;
    if (l.sure) ctx.fill();
    ctx.stroke();
  }
  const lines = [
    ...(r.category ?? []).slice(0, 3).map((c) => `${c.name} ${(100 * c.p).toFixed(1)}%`),
    ...Object.entries(r.attributes?.by_type ?? {}).map(([type, xs]) => `${type}: ${xs[0]?.name ?? '-'} ${((xs[0]?.p ?? 0) * 100).toFixed(0)}%`),
  ];
  $('labels').textContent = lines.join('\n');
}

async function labelPhoto(file: File): Promise<void> {
  if (!model) throw new Error('load a checkpoint first');
  status(`labelling ${file.name}...`);
  const img = await decode(file);
  const t0 = performance.now();
  const [labels] = await labelImages(model.net, model.vocab, [{ img, box: wholeImage(img) }], model.size, DEFAULT_LABELING, model.decode);
  draw(img, labels!);
  $('result').textContent = JSON.stringify({ file: file.name, ...labels }, null, 2);
  status(`${file.name}: labelled in ${(performance.now() - t0).toFixed(0)} ms on this browser's GPU (nothing was uploaded)`);
}

function guard(fn: () => Promise<void>): void {
  fn().catch((e) => {
    status(`error: ${(e as Error).message}`);
    $('result').textContent = JSON.stringify({ error: (e as Error).message });
  });
}

$<HTMLInputElement>('checkpoint').addEventListener('change', (ev) => {
  const f = (ev.target as HTMLInputElement).files?.[0];
  if (f) guard(async () => useCheckpoint(await f.arrayBuffer(), f.name));
});
$<HTMLInputElement>('photo').addEventListener('change', (ev) => {
  const f = (ev.target as HTMLInputElement).files?.[0];
  if (f) guard(() => labelPhoto(f));
});

// A checkpoint served beside the page (clothtag serve-demo --checkpoint FILE) loads by itself.
guard(async () => {
  const r = await fetch('checkpoint.safetensors');
  if (r.ok) await useCheckpoint(await r.arrayBuffer(), r.headers.get('x-checkpoint-name') ?? 'checkpoint.safetensors');
  else status('Pick a checkpoint (.safetensors from clothtag train), then a photo.');
});
