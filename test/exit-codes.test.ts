// Issue #12: every verb, on its error paths, exits with its own code run after run - never
// SIGSEGV or SIGABRT from Dawn's instance being dropped with a callback pending (src/node/gpu.ts;
// the crash came 9 times in 40 where it was seen, so 24 runs of one verb all pass with it in about
// 2 of 1000 test runs, and the four verbs' 52 runs together far more rarely). The success paths are
// in exit-codes-success.test.ts. 120 runs here took three minutes on two idle cores.
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { tempDir } from './helpers/tmp.js';
import { synthesize } from '../src/data/synth.js';
import { exits } from './helpers/cli.js';

const tmp = tempDir(t, 'clothtag-exit-codes-');
const data = join(tmp, 'synth');
synthesize(data, { images: 24, size: 48, seed: 5 });

t.test('every verb exits with its own code on error, run after run', async (t) => {
  const garbage = join(tmp, 'garbage.safetensors');
  writeFileSync(garbage, Buffer.alloc(1000, 7));
  const noConfig = join(tmp, 'no-config.safetensors');
  const header = Buffer.from(JSON.stringify({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(header.length));
  writeFileSync(noConfig, Buffer.concat([length, header, Buffer.alloc(4)]));
  const photo = join(data, 'img', readdirSync(join(data, 'img'))[0]!);
  const cases: [string, string[], string, number][] = [
    ['predict, unreadable checkpoint', ['predict', photo, '--checkpoint', garbage], '1', 24],
    ['predict, checkpoint without config', ['predict', photo, '--checkpoint', noConfig], '1', 12],
    ['eval, checkpoint without config', ['eval', '--checkpoint', noConfig, '--data', data, '--workers', '0'], '1', 12],
    ['a usage error', ['train', '--data', data], '2', 4],
  ];
  for (const [what, args, code, times] of cases) {
    const seen = await exits(args, times);
    t.same(Object.fromEntries(seen), { [code]: times }, `${what}: exit ${code} all ${times} times`);
  }
});

