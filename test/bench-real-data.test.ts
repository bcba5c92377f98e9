// `clothtag bench real-data` end to end on a synthesized stand-in for ../shared/data (the real
// sets take an hour): the landmark job trains, evaluates, and scores its final weights again with
// test-time flips, and the JSON holds both tables beside the baselines.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { tempDir } from './helpers/tmp.js';
import { synthesize } from '../src/data/synth.js';
import { clothtag } from './helpers/cli.js';

t.test('bench real-data: the landmark job, with and without test-time flips', async (t) => {
  const tmp = tempDir(t, 'clothtag-bench-real-');
  const shared = join(tmp, 'shared');
  mkdirSync(shared);
  synthesize(join(shared, 'deepfashion-fine'), { images: 120, size: 64, seed: 4 });
  const json = join(tmp, 'real.json');
  const r = clothtag(['bench', 'real-data', '--shared', shared, '--only', 'deepfashion-fine-landmarks', '--epochs', '1', '--size', '32', '--landmark-width', '0.125', '--runs', join(tmp, 'runs'), '--json', json], { timeout: 500_000 });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /deepfashion-fine-landmarks \(attributes and 8 landmarks\): new_fashionnet, width 0\.125 \(branches 0\.5\)/);
  t.match(r.stdout, /each crop averaged with its mirror image \(test-time flips, eval --mirror\):\nimages: \d+/);
  t.match(r.stdout, /most-frequent-attributes baseline/);
  const out = JSON.parse(readFileSync(json, 'utf8'));
  const job = out['deepfashion-fine-landmarks'];
  t.equal(job.eval.images, job.eval_mirror.images, 'both tables score the same validation photos');
  t.equal(job.eval_mirror.mirror, true);
  t.ok(job.eval.landmarks.nme > 0 && job.eval_mirror.landmarks.nme > 0, `NME ${job.eval.landmarks.nme}, with flips ${job.eval_mirror.landmarks.nme}`);
  t.equal(job.eval_mirror.landmarks.mean_position_nme, job.eval.landmarks.mean_position_nme, 'the same mean-position baseline beside both');
  t.ok(job.eval_mirror.attributes.per_image.top3.all > 0, 'attribute recall with flips');
  t.ok(out['deepfashion-fine-most-frequent'].attributes, 'the most-frequent baseline');
});
