// `clothtag tune`: measure tiles for a network's shapes on this adapter and save the winners.
import { parseArgs } from 'node:util';
import { NET_NAMES, isNetName } from '../nets/models.js';
import { createNodeGpu } from '../node/gpu.js';
import { loadTuning, saveTuning, tuningFile } from '../node/tuning.js';
import { traceTrainingShapes, tuneTraced } from '../run/tune.js';
import { UsageError, positiveInt } from './util.js';

export async function tuneVerb(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      net: { type: 'string', default: 'cloth_resnet_a' },
      width: { type: 'string', default: '0.25' },
      size: { type: 'string', default: '64' },
      batch: { type: 'string', default: '16' },
      reps: { type: 'string', default: '3' },
      limit: { type: 'string' },
      'dry-run': { type: 'boolean' },
    },
  });
  if (!isNetName(values.net!)) throw new UsageError(`--net must be one of ${NET_NAMES.join(', ')}`);
  const width = Number(values.width);
  if (!(width > 0 && width <= 1)) throw new UsageError(`--width must be in (0, 1], got ${values.width}`);
  const opts = { net: values.net, width, size: positiveInt(values.size!, '--size'), batch: positiveInt(values.batch!, '--batch') };
  const reps = positiveInt(values.reps!, '--reps');
  const file = tuningFile();
  if (process.env.CLOTHTAG_TUNING === 'none') throw new UsageError('CLOTHTAG_TUNING=none turns the tuning table off; unset it to tune');
  const gpu = await createNodeGpu();
  try {
    const engine = gpu.engine;
    const shapes = [...traceTrainingShapes(engine, opts)].slice(0, values.limit ? positiveInt(values.limit, '--limit') : undefined);
    console.log(`${shapes.length} GEMM and convolution shape buckets in a training step of ${opts.net} (width ${width}, ${opts.size}x${opts.size}, batch ${opts.batch}) on ${engine.adapter}`);
    const table = loadTuning(file);
    let defaultMs = 0, bestMs = 0;
    for (const [i, [key, shape]] of shapes.entries()) {
      const r = await tuneTraced(engine, key, shape, table, reps);
      const d = r.times[r.defaultTile]!, b = r.times[r.best]!;
      defaultMs += d;
      bestMs += b;
      console.log(`[${i + 1}/${shapes.length}] ${key.padEnd(44)} default ${r.defaultTile} ${d.toFixed(2)} ms  best ${r.best} ${b.toFixed(2)} ms  (${(d / b).toFixed(2)}x)`);
    }
    console.log(`sum over the shapes: default tiles ${defaultMs.toFixed(1)} ms, tuned ${bestMs.toFixed(1)} ms (${(defaultMs / Math.max(bestMs, 1e-9)).toFixed(2)}x)`);
    if (values['dry-run']) console.log('--dry-run: nothing saved');
    else {
      saveTuning(table, file);
      console.log(`saved to ${file} (used by every later command on this adapter; CLOTHTAG_TUNING=none ignores it)`);
    }
    return 0;
  } finally {
    await gpu.close();
  }
}
