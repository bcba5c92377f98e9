// The core runs anywhere a GPUDevice exists: it must import nothing from Node, and the package's
// public entry points must resolve by name.
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ROOT } from './helpers/cli.js';

const CORE = ['src/engine', 'src/autograd', 'src/nets', 'src/train', 'src/label'];
const NODE_BUILTINS = /from\s+['"](node:[\w/]+|fs|path|os|child_process|worker_threads|crypto|http|url|util|stream|buffer|module)(\/[\w/]*)?['"]/;
const NODE_GLOBALS = /\b(process\.|Buffer\.|require\(|__dirname|__filename)/;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

t.test('no core module imports a Node built-in or uses Node globals', async (t) => {
  const offenders: string[] = [];
  for (const dir of CORE) {
    for (const file of files(join(ROOT, dir))) {
      readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
        const code = line.replace(/\/\/.*$/, '');
        if (NODE_BUILTINS.test(code) || NODE_GLOBALS.test(code)) offenders.push(`${file.slice(ROOT.length)}:${i + 1}: ${line.trim()}`);
      });
    }
  }
  t.same(offenders, [], offenders.join('\n'));
});

t.test('the public entry points resolve by package name and are typed', async (t) => {
  const script = `
    import * as core from 'clothtag';
    import * as node from 'clothtag/node';
    const names = ['Engine', 'Tensor', 'ops', 'backward', 'createNet', 'loadCheckpoint', 'labelImages', 'requestEngineDevice', 'Trainer'];
    const missing = names.filter((n) => !(n in core));
    if (missing.length || typeof node.createNodeGpu !== 'function') { console.log('missing: ' + missing.join(', ')); process.exit(1); }
    console.log('ok ' + core.NET_NAMES.join(','));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr + r.stdout);
  t.match(r.stdout, /ok cloth_resnet_a,cloth_resnet_b,cloth_repvgg,fashionnet,new_fashionnet/);
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  for (const entry of Object.values(pkg.exports) as { types: string }[]) {
    t.ok(statSync(join(ROOT, entry.types)).isFile(), `declarations ${entry.types}`);
  }
});
