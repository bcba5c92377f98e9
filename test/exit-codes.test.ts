// Issue #12: every verb, on success and on its error paths, exits with its own code run after run
// - never SIGSEGV or SIGABRT from Dawn's instance being dropped with a callback pending
// (src/node/gpu.ts). About two minutes on two cores: the crash came 9 times in 40 where it was seen.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { synthesize } from '../src/data/synth.js';
import { CLI, clothtag } from './helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'clothtag-exit-codes-'));
const data = join(tmp, 'synth');
synthesize(data, { images: 24, size: 48, seed: 5 });
const TINY = ['--net', 'cloth_resnet_a', '--width', '0.125', '--img-size', '32', '--batch-size', '4', '--workers', '0'];

/** Runs the command `times` times, two at a time; returns how often each exit (code or signal) came. */
async function exits(args: string[], times: number): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  const one = () =>
    new Promise<void>((resolve) => {
      const child = spawn(process.execPath, [CLI, ...args], { stdio: 'ignore' });
      child.on('exit', (code, signal) => {
        const key = signal ?? String(code);
        seen.set(key, (seen.get(key) ?? 0) + 1);
        resolve();
      });
    });
  let started = 0;
  const lane = async () => {
    while (started < times) {
      started++;
      await one();
    }
  };
  await Promise.all([lane(), lane()]);
  return seen;
}

t.test('every verb exits with its own code, on success and on error, run after run', async (t) => {
  const train = clothtag(['train', '--data', data, ...TINY, '--epochs', '1', '--steps-per-epoch', '2', '--out', join(tmp, 'run')]);
  t.equal(train.code, 0, train.stderr);
  const checkpoint = join(tmp, 'run', 'weights', 'last.safetensors');
  const garbage = join(tmp, 'garbage.safetensors');
  writeFileSync(garbage, Buffer.alloc(1000, 7));
  const noConfig = join(tmp, 'no-config.safetensors');
  const header = Buffer.from(JSON.stringify({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(header.length));
  writeFileSync(noConfig, Buffer.concat([length, header, Buffer.alloc(4)]));
  const photo = join(data, 'img', readdirSync(join(data, 'img'))[0]!);
  const cases: [string, string[], string, number][] = [
    ['predict, unreadable checkpoint', ['predict', photo, '--checkpoint', garbage], '1', 50],
    ['predict, checkpoint without config', ['predict', photo, '--checkpoint', noConfig], '1', 30],
    ['eval, checkpoint without config', ['eval', '--checkpoint', noConfig, '--data', data, '--workers', '0'], '1', 30],
    ['doctor', ['doctor'], '0', 20],
    ['predict', ['predict', photo, '--checkpoint', checkpoint], '0', 10],
    ['eval', ['eval', '--checkpoint', checkpoint, '--data', data, '--workers', '0'], '0', 10],
    ['a usage error', ['train', '--data', data], '2', 10],
  ];
  for (const [what, args, code, times] of cases) {
    const seen = await exits(args, times);
    t.same(Object.fromEntries(seen), { [code]: times }, `${what}: exit ${code} all ${times} times`);
  }
});

t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
