import type { Engine } from '../src/engine/engine.js';
import { median } from './tfjs.js';

/**
 * Median GPU time (ms) of the dispatches `step` records, by timestamp queries: the first two runs
 * are warm-up (pipeline creation, first-touch of buffers) and are discarded.
 */
export async function timeKernels(engine: Engine, step: () => void, reps: number): Promise<number> {
  for (let i = 0; i < 2; i++) {
    engine.tidy(step);
    await engine.sync();
  }
  const totals: number[] = [];
  for (let i = 0; i < reps; i++) {
    const timings = await engine.profileKernels(() => engine.tidy(step));
    totals.push(timings.reduce((s, k) => s + k.ms, 0));
  }
  return median(totals);
}

export function table(rows: (string | number)[][], header: string[]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  const line = (r: string[]) => '| ' + r.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
  return [line(header), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...rows.map((r) => line(r.map(String)))].join('\n');
}
