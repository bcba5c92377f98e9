import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { tempDir } from './helpers/tmp.js';
import { clothtag } from './helpers/cli.js';

t.test('clothtag data synth and data check', async (t) => {
  const dir = tempDir(t, 'clothtag-cli-data-');
  const synth = clothtag(['data', 'synth', join(dir, 'ok'), '--images', '24', '--size', '48']);
  t.equal(synth.code, 0, synth.stderr);
  t.match(synth.stdout, /24 images in the DeepFashion layout \(all seven lists\)/);
  const ok = clothtag(['data', 'check', join(dir, 'ok')]);
  t.equal(ok.code, 0, ok.stderr);
  t.match(ok.stdout, /tasks: category, attributes, bbox, landmarks/);
  t.match(ok.stdout, /no problems found/);
  const json = JSON.parse(clothtag(['data', 'check', join(dir, 'ok'), '--json']).stdout);
  t.equal(json.images, 24);
  t.equal(json.categories.length, 6);

  // Lists that name images nobody has, with a malformed row: unusable, exit 1, file:line.
  const bad = join(dir, 'bad');
  mkdirSync(join(bad, 'Anno'), { recursive: true });
  writeFileSync(join(bad, 'Anno/list_category_cloth.txt'), '1\ncategory_name category_type\nTee 1\n');
  writeFileSync(join(bad, 'Anno/list_category_img.txt'), '2\nimage_name category_label\nimg/gone.jpg 1\nimg/worse.jpg one\n');
  const r = clothtag(['data', 'check', bad]);
  t.equal(r.code, 1);
  t.match(r.stdout, /img\/gone.jpg: listed but missing/);
  t.match(r.stdout, /list_category_img.txt:4: expected a category label/);
  t.match(r.stdout, /UNUSABLE/);
  const none = clothtag(['data', 'check', join(dir, 'nowhere')]);
  t.equal(none.code, 1);
  t.match(none.stderr, /nowhere: no such folder/);
});
