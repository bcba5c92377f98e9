// End to end in a real browser: headless Chromium (Debian's, driven by playwright-core) labels a
// photo through the page with its own WebGPU (SwiftShader here), and the labels must match
// `clothtag predict` in Node on the same checkpoint and photo.
// Tolerances: probabilities within 1e-3; each landmark within one heatmap pixel (scaled to the
// photo) or, where two heatmap positions tie, with the same peak value within 1e-3.
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import t from 'tap';
import { tempDir } from './helpers/tmp.js';
import { synthesize } from '../src/data/synth.js';
import { predictFiles } from '../src/run/predict.js';
import { DEFAULT_TRAIN, runTraining } from '../src/run/train.js';
import { serveDemo } from '../src/node/serve.js';
import { THESIS_LOSS } from '../src/train/losses.js';
import { ROOT } from './helpers/cli.js';
import { gpuEngine } from './helpers/gpu.js';

const CHROMIUM = '/usr/bin/chromium';
const SMALL = join(ROOT, '..', 'shared', 'data', 'clothing-small');
const require = createRequire(import.meta.url);
let playwright: typeof import('playwright-core') | null = null;
try {
  playwright = require('playwright-core');
} catch {
  playwright = null;
}
const skip = !existsSync(CHROMIUM) ? `${CHROMIUM} is not installed (apt-get install chromium; make test's setup installs it)` : !playwright ? 'playwright-core is not installed (npm ci)' : !existsSync(join(ROOT, 'dist/web/clothtag.js')) ? 'the page is not built (npm run build)' : false;

t.test('the browser page labels a photo like clothtag predict does', { skip, timeout: 600_000 }, async (t) => {
  const e = await gpuEngine(t);
  const tmp = tempDir(t, 'clothtag-browser-');
  const data = join(tmp, 'synth');
  synthesize(data, { images: 48, size: 64, seed: 2 });
  // A small New FashionNet (category, attributes and landmark heads), briefly trained.
  await runTraining(e, join(tmp, 'run'), { ...DEFAULT_TRAIN, data, net: 'new_fashionnet', width: 0.0625, imgSize: 32, batchSize: 8, epochs: 1, stepsPerEpoch: 3, valLimit: 8, lr: 2e-3, loss: { ...THESIS_LOSS, landmarkLoss: 'ssim' }, workers: 0 }, { log: () => {} }, false);
  const checkpoint = join(tmp, 'run', 'weights', 'best.safetensors');
  const photo = existsSync(SMALL) ? join(SMALL, 'val', 'dress', readdirSync(join(SMALL, 'val', 'dress')).sort()[0]!) : join(data, 'img', readdirSync(join(data, 'img'))[0]!, readdirSync(join(data, 'img', readdirSync(join(data, 'img'))[0]!))[0]!);
  const node = (await predictFiles(e, [photo], { checkpoint, threshold: 0.5, perType: 3, batchSize: 1 }, () => {})).results[0]!;

  const server = await serveDemo({ checkpoint, webDir: join(ROOT, 'dist/web') });
  const browser = await playwright!.chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--enable-unsafe-webgpu', '--enable-features=Vulkan', '--disable-background-networking'] });
  t.teardown(async () => {
    await browser.close();
    await server.close();
  });
  const page = await browser.newPage({ viewport: { width: 1000, height: 760 } });
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto(server.url);
  await page.waitForFunction(() => /Pick a photo/.test(document.getElementById('status')!.textContent ?? ''), undefined, { timeout: 120_000 });
  await page.setInputFiles('#photo', photo);
  await page.waitForFunction(() => (document.getElementById('result')!.textContent ?? '').length > 0, undefined, { timeout: 300_000 });
  const inBrowser = JSON.parse((await page.textContent('#result'))!);
  if (process.env.CLOTHTAG_SCREENSHOT) await page.screenshot({ path: process.env.CLOTHTAG_SCREENSHOT });
  t.same(errors, [], 'no errors in the page');
  t.notOk(inBrowser.error, inBrowser.error ?? 'labelled');
  t.equal(inBrowser.width, node.width);
  t.same(inBrowser.category.map((c: { name: string }) => c.name), node.category!.map((c) => c.name), 'the same category ranking');
  const probs = (l: typeof node) => [...l.category!.map((c) => c.p), ...Object.values(l.attributes!.by_type).flat().map((a) => a.p)];
  const worst = Math.max(...probs(inBrowser).map((p, i) => Math.abs(p - probs(node)[i]!)));
  t.ok(worst <= 1e-3, `category and attribute probabilities within 1e-3 (worst ${worst.toExponential(1)})`);
  const cell = Math.max(node.width, node.height) / 32;
  node.landmarks!.forEach((l, s) => {
    const b = inBrowser.landmarks[s];
    const near = Math.abs(b.x - l.x) <= cell + 1e-6 && Math.abs(b.y - l.y) <= cell + 1e-6;
    t.ok(near || Math.abs(b.confidence - l.confidence) <= 1e-3, `${l.slot}: browser (${b.x}, ${b.y}) node (${l.x}, ${l.y})`);
  });
  writeFileSync(join(tmp, 'labels.json'), JSON.stringify({ node, inBrowser }, null, 2));
});
