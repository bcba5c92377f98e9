// `clothtag demo`: the main job end to end on an embedded default, nothing downloaded:
// synthesize a dataset, train a narrow New FashionNet for a few minutes on this machine's GPU
// (a software one here), evaluate it, label held-back images, and say where everything is.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { makeSplits, openDataset } from '../data/dataset.js';
import { createNodeGpu } from '../node/gpu.js';
import { bestWeightsOf } from '../run/train.js';
import { dataVerb, evalVerb, predictVerb, trainVerb } from './job.js';
import { positiveInt } from './util.js';

export async function demoVerb(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { out: { type: 'string', default: 'runs/demo' }, epochs: { type: 'string', default: '6' }, images: { type: 'string', default: '600' }, engine: { type: 'boolean' } } });
  if (values.engine) return (await import('./engine-demo.js')).engineDemo([]);
  const out = values.out!;
  const dataDir = join(out, 'data'), run = join(out, 'run');
  // One device reference for the whole demo: each step opens and closes its own, and Dawn's
  // instance must outlive them all.
  const keep = await createNodeGpu();
  try {
    const step = (n: number, what: string) => console.log(`\n== ${n}/4 ${what}`);
    step(1, 'synthesize a DeepFashion-layout dataset of drawn garments');
    if (existsSync(join(dataDir, 'Eval', 'list_eval_partition.txt'))) console.log(`${dataDir} exists; reusing it`);
    else if ((await dataVerb(['synth', dataDir, '--images', values.images!, '--size', '128', '--seed', '7'])) !== 0) return 1;
    step(2, 'train a narrow New FashionNet (width 1/4, 64x64) on the GPU');
    const resume = existsSync(join(run, 'config.json'));
    const trainArgs = resume
      ? ['--resume', run, '--epochs', values.epochs!]
      : ['--data', dataDir, '--net', 'new_fashionnet', '--width', '0.25', '--img-size', '64', '--batch-size', '16', '--epochs', String(positiveInt(values.epochs!, '--epochs')),
          // Six epochs of 26 steps: a rate that starts high and decays per epoch gets further in so few
          // steps than a one-cycle warm-up (measured: category top-1 50% at epoch 5 against 99%, and landmarks learned only with the latter).
          '--lr', '2e-3', '--schedule', 'exp', '--lr-decay', '0.9', '--weight-decay', '0.05', '--augment', 'flip', '--landmark-loss', 'softargmax', '--wl', '20', '--out', run];
    const trained = await trainVerb(trainArgs);
    if (trained !== 0) return trained;
    step(3, 'evaluate on the held-out test split (DeepFashion protocol)');
    if ((await evalVerb(['--checkpoint', bestWeightsOf(run), '--data', dataDir, '--split', 'test', '--json', join(out, 'eval.json')])) !== 0) return 1;
    step(4, 'label held-back images: JSONL and PNG overlays');
    const ds = await openDataset(dataDir);
    const held = makeSplits(ds, 'official', 0).test.slice(0, 12).map((i) => join(dataDir, ds.items[i]!.path));
    if ((await predictVerb([...held, '--checkpoint', bestWeightsOf(run), '--bbox', join(dataDir, 'Anno', 'list_bbox.txt'), '--out', join(out, 'overlays'), '--jsonl', join(out, 'labels.jsonl'), '--sheet', join(out, 'sheet.png')])) !== 0) return 1;
    const ev = JSON.parse(readFileSync(join(out, 'eval.json'), 'utf8'));
    console.log(`
done. Test split: category top-1 ${(100 * ev.category.top1).toFixed(1)}% (chance ${(100 / 6).toFixed(1)}%), attribute recall@3 ${(100 * ev.attributes.per_image.top3.all).toFixed(1)}% (per image), landmark NME ${ev.landmarks.nme.toFixed(3)} (predicting each point's mean position: ${ev.landmarks.mean_position_nme?.toFixed(3) ?? '-'}; its garment type's mean: ${ev.landmarks.mean_position_by_type_nme?.toFixed(3) ?? '-'}).
  curves:    ${join(run, 'loss.png')}, ${join(run, 'metrics.png')}
  metrics:   ${join(run, 'metrics.csv')}
  eval:      ${join(out, 'eval.json')}
  labels:    ${join(out, 'labels.jsonl')}
  overlays:  ${join(out, 'overlays')}/ and the contact sheet ${join(out, 'sheet.png')}
  weights:   ${bestWeightsOf(run)}
Run it again to continue training where it stopped (clothtag demo --epochs N), or remove ${out} to start over.`);
    return 0;
  } finally {
    await keep.close();
  }
}
