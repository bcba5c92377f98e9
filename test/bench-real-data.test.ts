// `clothtag bench real-data` end to end on a synthesized stand-in for ../shared/data (the real
// sets take an hour): the landmark job trains, evaluates, and scores its final weights again with
// test-time flips, and the JSON holds both tables beside the baselines.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { tempDir } from './helpers/tmp.js';
import { synthesize } from '../src/data/synth.js';
import { clothtag } from './helpers/cli.js';

t.test('bench real-data: the landmark job, with and without test-time flips', async (t) => {
  const tmp = tempDir(t, 'clothtag-bench-real-');
  const shared = join(tmp, 'shared');
  mkdirSync(shared);
  synthesize(join(shared, 'deepfashion-fine'), { images: 120, size: 64, seed: 4 });
  const json = join(tmp, 'real.json');
  const r = clothtag(['bench', 'real-data', '--shared', shared, '--only', 'deepfashion-fine-landmarks', '--epochs', '1', '--size', '32', '--landmark-width', '0.125', '--seed', '3', '--runs', join(tmp, 'runs'), '--json', json], { timeout: 500_000 });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /deepfashion-fine-landmarks \(attributes and 8 landmarks\): fashionnet with BatchNorm in its VGG trunk, width 0\.125 \(branches 0\.5, joined to the trunk's finer maps\)/);
  const config = JSON.parse(readFileSync(join(tmp, 'runs', 'deepfashion-fine-landmarks', 'config.json'), 'utf8'));
  t.equal(config.landmarkSkips, true, 'the job trains the branch with the skips');
  t.equal(config.convInit, 'fan-out', "the job starts FashionNet's convolutions as torchvision's VGG does");
  t.equal(config.lr, 2e-3, "the job trains FashionNet at its own rate");
  t.equal(config.vggBatchNorm, true, "the job's FashionNet has a BatchNorm after each trunk convolution");
  t.equal(config.cycleMomentum, true, 'the job cycles beta1 with the rate');
  t.equal(config.seed, 3, '--seed reaches the job');
  t.match(r.stdout, /from scratch, seed 3\n/);
  t.match(r.stdout, /each crop averaged with its mirror image \(test-time flips, eval --mirror\):\nimages: \d+/);
  t.match(r.stdout, /most-frequent-attributes baseline/);
  const out = JSON.parse(readFileSync(json, 'utf8'));
  const job = out['deepfashion-fine-landmarks'];
  t.equal(job.seed, 3, 'the entry records its seed');
  t.equal(job.eval.images, job.eval_mirror.images, 'both tables score the same validation photos');
  t.equal(job.eval_mirror.mirror, true);
  t.ok(job.eval.landmarks.nme > 0 && job.eval_mirror.landmarks.nme > 0, `NME ${job.eval.landmarks.nme}, with flips ${job.eval_mirror.landmarks.nme}`);
  t.equal(job.eval_mirror.landmarks.mean_position_nme, job.eval.landmarks.mean_position_nme, 'the same mean-position baseline beside both');
  t.ok(job.eval_mirror.attributes.per_image.top3.all > 0, 'attribute recall with flips');
  t.same(job.eval_mirror.attributes.most_frequent, job.eval.attributes.most_frequent, 'the same most-frequent baseline beside both');
  t.ok(job.eval.attributes.most_frequent.per_image.top3.all > 0);
  t.ok(out['deepfashion-fine-most-frequent'].attributes, 'the most-frequent baseline');
});

/**
 * Stand-ins for ../shared/data's two sets, `images` photos each, and the bench command's common
 * arguments (1 epoch at 32x32, the run folders in `runs`). clothing-small's stand-in is a
 * DeepFashion layout: any layout with categories will do for the plumbing.
 */
function standInSets(t: Parameters<typeof tempDir>[0], prefix: string, images: number, seed: number) {
  const tmp = tempDir(t, prefix);
  const shared = join(tmp, 'shared');
  mkdirSync(shared);
  synthesize(join(shared, 'deepfashion-fine'), { images, size: 48, seed });
  synthesize(join(shared, 'clothing-small'), { images, size: 48, seed: seed + 1 });
  const runs = join(tmp, 'runs');
  return { tmp, runs, common: ['bench', 'real-data', '--shared', shared, '--epochs', '1', '--size', '32', '--runs', runs] };
}

/** A transfer job run alone, with no run of its source job in the folder: skipped, and the log says what it needs. */
function skippedAlone(t: Test, common: string[], job: string, source: string) {
  const alone = clothtag([...common, '--only', job], { timeout: 120_000 });
  t.equal(alone.code, 0, alone.stderr);
  t.match(alone.stdout, `${job}: skipped, it starts from the ${source} job's weights and `);
  t.match(alone.stdout, `${join(source, 'weights', 'last.safetensors')} is absent`);
}

t.test("bench real-data: the transfer job starts clothing-small's trunk from the deepfashion-fine job's weights", async (t) => {
  const { tmp, runs, common } = standInSets(t, 'clothtag-bench-transfer-', 60, 5);
  common.push('--width', '0.125');

  // Alone, with no deepfashion-fine run in the folder: skipped, and the log says what it needs.
  skippedAlone(t, common, 'clothing-small-transfer', 'deepfashion-fine');
  const typo = clothtag([...common, '--only', 'clothing-small-transfr'], { timeout: 120_000 });
  t.equal(typo.code, 2);
  t.match(typo.stderr, /--only: no job named clothing-small-transfr; the jobs are clothing-small, deepfashion-fine, deepfashion-fine-transfer, deepfashion-fine-landmarks, clothing-small-transfer, clothing-small-landmark-transfer/);

  // A results file that is not one fails before any training, naming the file.
  const broken = join(tmp, 'broken.json');
  writeFileSync(broken, '{"clothing-small": ');
  const refused = clothtag([...common, '--only', 'deepfashion-fine', '--json', broken], { timeout: 120_000 });
  t.equal(refused.code, 1);
  t.match(refused.stderr, `${broken}: not a results file of bench real-data`);
  t.notMatch(refused.stdout, /epochs from scratch/, 'nothing trained');

  // The jobs run replace their own entries and keep the others' (a job rerun alone keeps the rest).
  const json = join(tmp, 'real.json');
  writeFileSync(json, JSON.stringify({ 'clothing-small': { measured: 'earlier', eval: {} }, 'clothing-small-transfer': { measured: 'earlier' } }));
  const r = clothtag([...common, '--only', 'deepfashion-fine,clothing-small-transfer', '--json', json], { timeout: 500_000 });
  t.equal(r.code, 0, r.stderr);
  const trunk = join(runs, 'deepfashion-fine', 'weights', 'last.safetensors');
  t.match(r.stdout, `epochs from the trunk of ${trunk}`);
  // Every one of the trunk's tensors came from the file: RepVGG-A0's 288 (its heads start fresh).
  const loaded = /pretrained trunk: (\d+) tensors from (\S+)/.exec(r.stdout);
  t.equal(loaded?.[1], '288', 'the whole trunk is loaded');
  t.equal(loaded?.[2], trunk);
  const out = JSON.parse(readFileSync(json, 'utf8'));
  t.equal(out['clothing-small-transfer'].trunkFrom, trunk);
  t.equal(out['deepfashion-fine'].trunkFrom, undefined, 'the source job itself trains from scratch');
  // The source trains as the trunk the transfer figures were measured from did: cyclical momentum.
  const source = JSON.parse(readFileSync(join(runs, 'deepfashion-fine', 'config.json'), 'utf8'));
  t.equal(source.cycleMomentum, true, "the source job's run trains with cyclical momentum");
  t.equal(source.stemStride, 1, "the source job's trunk keeps its first stage at full resolution, as the transfer's does");
  t.equal(source.loss.attributeLoss, 'softmax', "the source job's attributes train with a softmax within each type");
  t.equal(JSON.parse(readFileSync(join(runs, 'clothing-small-transfer', 'config.json'), 'utf8')).stemStride, 1, "the transfer job's too");
  t.ok(out['clothing-small-transfer'].eval.category.top1 >= 0, 'the transfer job is evaluated');
  t.equal(out['clothing-small-transfer'].recipe.batchSize, 8, "clothing-small's own recipe");
  t.equal(out['clothing-small'].measured, 'earlier', 'the entry of a job not run is kept');
  t.not(out['clothing-small-transfer'].measured, 'earlier', 'the entry of a job run is replaced');
  t.ok(!Number.isNaN(Date.parse(out['clothing-small-transfer'].measured)), `measured ${out['clothing-small-transfer'].measured}`);
});

t.test("bench real-data: the attribute transfer job starts deepfashion-fine's trunk from the clothing-small job's weights", async (t) => {
  const { tmp, runs, common } = standInSets(t, 'clothtag-bench-attribute-transfer-', 40, 9);
  common.push('--width', '0.125');
  skippedAlone(t, common, 'deepfashion-fine-transfer', 'clothing-small');
  const json = join(tmp, 'real.json');
  const r = clothtag([...common, '--only', 'clothing-small,deepfashion-fine-transfer', '--json', json], { timeout: 500_000 });
  t.equal(r.code, 0, r.stderr);
  const trunk = join(runs, 'clothing-small', 'weights', 'last.safetensors');
  t.match(r.stdout, `deepfashion-fine-transfer (26 attributes in 6 types, the trunk started from the clothing-small job's): cloth_repvgg, width 0.125, stem stride 1`);
  t.match(r.stdout, `epochs from the trunk of ${trunk}`);
  const loaded = /pretrained trunk: (\d+) tensors from (\S+)/.exec(r.stdout);
  t.equal(loaded?.[1], '288', "RepVGG-A0's whole trunk is loaded, the attribute head starts fresh");
  t.equal(loaded?.[2], trunk);
  // The attribute job's recipe in everything but the start: the comparison is with that job.
  const config = JSON.parse(readFileSync(join(runs, 'deepfashion-fine-transfer', 'config.json'), 'utf8'));
  t.equal(config.loss.attributeLoss, 'softmax', 'a softmax within each attribute type');
  t.equal(config.stemStride, 1, "the source's stem stride, so that its trunk loads");
  t.equal(config.cycleMomentum, true);
  t.equal(config.batchSize, 32, "the attribute job's batch, not the catalog's");
  t.equal(config.lr, 3e-3, "the attribute job's rate");
  t.equal(config.tasks.attributes, true, 'it trains attributes');
  const out = JSON.parse(readFileSync(json, 'utf8'));
  t.equal(out['deepfashion-fine-transfer'].trunkFrom, trunk);
  t.equal(out['clothing-small'].trunkFrom, undefined, 'the source job trains from scratch');
  t.ok(out['deepfashion-fine-transfer'].eval.attributes.per_image.top3.all >= 0, 'evaluated');
  t.ok(out['deepfashion-fine-transfer'].eval_mirror.attributes.per_image.top3.all >= 0, 'and with test-time flips');
  t.ok(out['deepfashion-fine-most-frequent'].attributes, 'the most-frequent baseline beside it');
});

t.test("bench real-data: the landmark transfer job starts FashionNet on clothing-small from the landmark job's trunk", async (t) => {
  const { tmp, runs, common } = standInSets(t, 'clothtag-bench-landmark-transfer-', 40, 7);
  common.push('--landmark-width', '0.125');
  skippedAlone(t, common, 'clothing-small-landmark-transfer', 'deepfashion-fine-landmarks');
  const json = join(tmp, 'real.json');
  const r = clothtag([...common, '--only', 'deepfashion-fine-landmarks,clothing-small-landmark-transfer', '--json', json], { timeout: 500_000 });
  t.equal(r.code, 0, r.stderr);
  const trunk = join(runs, 'deepfashion-fine-landmarks', 'weights', 'last.safetensors');
  t.match(r.stdout, `clothing-small-landmark-transfer (category, 10 classes, the trunk started from the deepfashion-fine-landmarks job's): fashionnet with BatchNorm in its VGG trunk, width 0.125`);
  t.match(r.stdout, `epochs from the trunk of ${trunk}`);
  // VGG-16-BN's 13 convolutions (weight, bias) and their BatchNorms (4 each), and the fully connected layer.
  const loaded = /pretrained trunk: (\d+) tensors from (\S+)/.exec(r.stdout);
  t.equal(loaded?.[1], String(13 * 2 + 13 * 4 + 2), 'the whole trunk is loaded');
  t.equal(loaded?.[2], trunk);
  const config = JSON.parse(readFileSync(join(runs, 'clothing-small-landmark-transfer', 'config.json'), 'utf8'));
  t.equal(config.net, 'fashionnet');
  t.equal(config.vggBatchNorm, true, "the landmark job's trunk, with its BatchNorms");
  t.equal(config.headWidth, 0.5, "the landmark job's branch width");
  t.equal(config.batchSize, 16);
  t.equal(config.lr, 2e-3, "FashionNet's rate");
  t.equal(config.tasks.category, true, 'it trains categories');
  const out = JSON.parse(readFileSync(json, 'utf8'));
  t.equal(out['clothing-small-landmark-transfer'].trunkFrom, trunk);
  t.ok(out['clothing-small-landmark-transfer'].eval.category.top1 >= 0, 'evaluated');
  t.ok(out['clothing-small-landmark-transfer'].eval_mirror.category.top1 >= 0, 'and with test-time flips');
});
