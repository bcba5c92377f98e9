// What goes wrong gets a clear error naming the kernel or tensor, never a hang.
import t from 'tap';
import { unary } from '../src/engine/elementwise.js';
import { createNodeGpu, gpuEngine } from './helpers/gpu.js';

t.test('a WGSL compile error names the kernel and its specialization', async (t) => {
  const e = await gpuEngine(t);
  await t.rejects(e.compile({ kernel: 'unary', params: { EXPR: 'x +* 2.0', VEC4: false, HALF: false } }), /kernel unary\{EXPR=x \+\* 2\.0,VEC4=false,HALF=false\} does not compile:\n\s+line \d+/);
  // The same error surfaces at the next read after a dispatch of the broken kernel.
  const x = e.zeros([4]);
  e.run({ kernel: 'unary', params: { EXPR: 'x +* 3.0', VEC4: false, HALF: false }, uniforms: { n: 4, alpha: 1, beta: 0 }, inputs: { a: x }, outputs: { out: e.empty([4]) }, workgroups: 1 });
  await t.rejects(x.read(), { name: 'KernelError', message: /kernel unary\{EXPR=x \+\* 3\.0,VEC4=false,HALF=false\} failed to build/ });
});

t.test('a tensor over the binding limit is refused with its name and the limit', async (t) => {
  const e = await gpuEngine(t);
  const limitMiB = e.maxTensorBytes / 2 ** 20;
  t.throws(() => e.empty([16, 64, 224, 224], 'vgg.conv1_1.out'), { name: 'TensorTooLargeError' });
  t.throws(() => e.empty([16, 64, 224, 224], 'vgg.conv1_1.out'), new RegExp(`"vgg.conv1_1.out" \\[16, 64, 224, 224\\] needs 196.0 MiB, over this adapter's maxStorageBufferBindingSize of ${limitMiB.toFixed(1)} MiB`));
});

t.test('a lost device becomes an error, not a hang', async (t) => {
  const gpu = await createNodeGpu();
  t.teardown(() => gpu.close());
  const e = gpu.engine;
  const x = e.full([8], 1);
  await x.read();
  e.device.destroy();
  await e.device.lost;
  t.throws(() => unary('relu', x), { name: 'DeviceLostError' });
  t.throws(() => unary('relu', x), /the GPU device was lost \(destroyed/);
});
