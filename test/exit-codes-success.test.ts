// Issue #12: every verb, on success, exits with code 0 run after run - never SIGSEGV or SIGABRT
// from Dawn's instance being dropped with a callback pending (src/node/gpu.ts). The error paths
// are in exit-codes.test.ts.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { tempDir } from './helpers/tmp.js';
import { synthesize } from '../src/data/synth.js';
import { clothtag, exits } from './helpers/cli.js';

const tmp = tempDir(t, 'clothtag-exit-codes-success-');
const data = join(tmp, 'synth');
synthesize(data, { images: 24, size: 48, seed: 5 });
const TINY = ['--net', 'cloth_resnet_a', '--width', '0.125', '--img-size', '32', '--batch-size', '4', '--workers', '0'];

t.test('every verb exits with 0 on success, run after run', async (t) => {
  const train = clothtag(['train', '--data', data, ...TINY, '--epochs', '1', '--steps-per-epoch', '2', '--out', join(tmp, 'run')]);
  t.equal(train.code, 0, train.stderr);
  const checkpoint = join(tmp, 'run', 'weights', 'last.safetensors');
  const photo = join(data, 'img', readdirSync(join(data, 'img'))[0]!);
  const cases: [string, string[], number][] = [
    ['doctor', ['doctor'], 12],
    ['predict', ['predict', photo, '--checkpoint', checkpoint], 6],
    ['eval', ['eval', '--checkpoint', checkpoint, '--data', data, '--workers', '0'], 6],
  ];
  for (const [what, args, times] of cases) {
    const seen = await exits(args, times);
    t.same(Object.fromEntries(seen), { '0': times }, `${what}: exit 0 all ${times} times`);
  }
});

