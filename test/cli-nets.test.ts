import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { tempDir } from './helpers/tmp.js';
import { createNet } from '../src/nets/models.js';
import { parseSafetensors, serializeSafetensors } from '../src/nets/safetensors.js';
import { readState } from '../src/nets/weights.js';
import { clothtag } from './helpers/cli.js';
import { gpuEngine } from './helpers/gpu.js';
import { randn } from './helpers/random.js';

t.test('clothtag doctor: the adapter and a checked kernel, or what to install', async (t) => {
  const ok = clothtag(['doctor']);
  t.equal(ok.code, 0, ok.stderr);
  t.match(ok.stdout, /adapter: /);
  t.match(ok.stdout, /maxStorageBufferBindingSize\s+\d+/);
  t.match(ok.stdout, /kernel check \(2x2 GEMM\): ok/);
  const none = clothtag(['doctor'], { env: { VK_ICD_FILENAMES: '/nonexistent/icd.json' } });
  t.equal(none.code, 1);
  t.match(none.stderr, /No WebGPU adapter was found/);
  t.match(none.stderr, /apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1/);
  t.match(none.stderr, /VK_ICD_FILENAMES=\/usr\/share\/vulkan\/icd.d\/lvp_icd.json/);
});

t.test('clothtag nets --json', async (t) => {
  const r = clothtag(['nets', '--json']);
  t.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as { name: string; params: number; params_thesis: number; params_deploy: number; gflops: number }[];
  t.same(rows.map((x) => x.name), ['cloth_resnet_a', 'cloth_resnet_b', 'cloth_repvgg', 'fashionnet', 'new_fashionnet']);
  const a = rows[0]!;
  t.equal(a.params, 25_557_032 - 2048 * 1000 - 1000 + 2048 * 1050 + 1050, 'ResNet-50 trunk plus heads for 50 categories and 1000 attributes');
  t.ok(Math.abs(a.gflops - 8.18) < 0.05, `ResNet-50 at 224: ${a.gflops.toFixed(2)} GFLOPs (4.1 GMACs)`);
  const rep = rows[2]!;
  t.ok(rep.params_deploy < rep.params, 're-parameterization removes parameters');
  t.equal(rows[3]!.params_thesis, 76_298_024);
});

t.test('clothtag forward matches the in-process forward pass; a wrong weights file is explained', async (t) => {
  const e = await gpuEngine(t);
  const dir = tempDir(t, 'clothtag-forward-');
  const config = { net: 'new_fashionnet' as const, categories: 3, attributes: 4, width: 1 / 16, seed: 2 };
  const net = createNet(e, config).setTraining(false);
  const input = randn(2 * 3 * 32 * 32, 3);
  writeFileSync(join(dir, 'w.safetensors'), serializeSafetensors(await readState(net)));
  writeFileSync(join(dir, 'x.safetensors'), serializeSafetensors(new Map([['input', { shape: [2, 3, 32, 32], data: input }]])));
  const r = clothtag(['forward', '--net', 'new_fashionnet', '--weights', join(dir, 'w.safetensors'), '--input', join(dir, 'x.safetensors'), '--out', join(dir, 'y.safetensors'), '--categories', '3', '--attributes', '4', '--width', String(1 / 16)]);
  t.equal(r.code, 0, r.stderr);
  const { readFileSync } = await import('node:fs');
  const y = parseSafetensors(readFileSync(join(dir, 'y.safetensors'))).tensors;
  const ref = e.noGrad(() => net.forward(e.tensor(input, [2, 3, 32, 32])));
  for (const key of ['category', 'attributes', 'heatmaps'] as const) {
    const mine = await ref[key]!.read();
    const theirs = y.get(key)!.data;
    t.same(y.get(key)!.shape, ref[key]!.shape, `${key} shape`);
    t.ok(mine.every((v, i) => Math.abs(v - theirs[i]!) <= 1e-5 + 1e-5 * Math.abs(v)), `${key} values`);
  }
  const wrong = clothtag(['forward', '--net', 'cloth_resnet_a', '--weights', join(dir, 'w.safetensors'), '--input', join(dir, 'x.safetensors'), '--out', join(dir, 'z.safetensors'), '--width', String(1 / 16)]);
  t.equal(wrong.code, 1);
  t.match(wrong.stderr, /w.safetensors does not fit this network/);
  t.match(wrong.stderr, /unexpected \(\d+\): landmarks/);
  const missing = clothtag(['forward', '--net', 'cloth_resnet_a', '--weights', join(dir, 'nope.safetensors'), '--input', 'x', '--out', 'y']);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /nope.safetensors: no such file/);
  const usage = clothtag(['forward', '--net', 'resnet9']);
  t.equal(usage.code, 2);
  t.match(usage.stderr, /--weights is required|--net must be one of/);
});
