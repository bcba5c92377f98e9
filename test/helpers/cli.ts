// Runs the built `clothtag` command (make test builds it first).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = `${ROOT}dist/src/cli/main.js`;

export function clothtag(args: string[], opts: { cwd?: string; timeout?: number; env?: Record<string, string> } = {}): { code: number; stdout: string; stderr: string } {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build (make test does)`);
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: opts.cwd ?? ROOT, encoding: 'utf8', timeout: opts.timeout ?? 300_000, env: { ...process.env, ...opts.env } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Runs the command `times` times, two at a time; returns how often each exit (code or signal)
 * came (test/exit-codes*.test.ts: a crash on exit shows up as a signal in a few runs of many).
 */
export async function exits(args: string[], times: number): Promise<Map<string, number>> {
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
