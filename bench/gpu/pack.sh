#!/usr/bin/env bash
# Packs everything the GPU runbook needs into build/gpu/ (about 35 MB), for a Linux x86-64 machine
# with an NVIDIA GPU and no network: a compressed Node binary, the built project with dawn.node
# and the few npm packages it loads, the Vulkan loader package, and run.sh.
#   make build && bash bench/gpu/pack.sh          # then copy build/gpu/ over and run build/gpu/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
out=${1:-build/gpu}
[ -f dist/src/cli/main.js ] || { echo "pack.sh: build first (make build)" >&2; exit 1; }
rm -rf "$out" && mkdir -p "$out/app" "$out/vulkan"

echo "node $(node --version): compressing the binary with xz"
xz -T0 -6 -c "$(command -v node)" > "$out/node.xz"

echo "app: dist/, package.json and the runtime packages (dawn.node for linux-x64 only)"
cp -r dist package.json "$out/app/"
# The packages the CLI and the TensorFlow.js baseline load, with their dependencies (types excluded).
node - "$out/app" <<'NODE'
const { cpSync, existsSync, readFileSync, rmSync, readdirSync } = require('node:fs');
const { join } = require('node:path');
const dest = process.argv[2];
const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const want = [...Object.keys(pkg.dependencies), '@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-webgpu'];
const seen = new Set();
while (want.length) {
  const name = want.pop();
  if (seen.has(name) || name.startsWith('@types/')) continue;
  const dir = join('node_modules', name);
  if (!existsSync(dir)) continue;
  seen.add(name);
  cpSync(dir, join(dest, 'node_modules', name), { recursive: true, dereference: true });
  want.push(...Object.keys(JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).dependencies ?? {}));
}
// Only what Node loads: dawn.node for linux-x64, the Node bundles of tfjs.
const nm = join(dest, 'node_modules');
for (const d of readdirSync(join(nm, 'webgpu/dist'))) if (d !== 'linux-x64') rmSync(join(nm, 'webgpu/dist', d), { recursive: true });
for (const [p, keep] of [['@tensorflow/tfjs-core', 'tf-core.node.js'], ['@tensorflow/tfjs-backend-webgpu', 'tf-backend-webgpu.node.js'], ['@tensorflow/tfjs-backend-cpu', 'tf-backend-cpu.node.js']]) {
  const dist = join(nm, p, 'dist');
  if (!existsSync(dist)) continue;
  for (const f of readdirSync(dist)) if (f !== keep) rmSync(join(dist, f), { recursive: true });
}
console.log(`  ${seen.size} packages: ${[...seen].sort().join(', ')}`);
NODE
# tfjs-core's Node bundle lacks its gradient functions (bench/tfjs.ts): bundle them here, once.
node -e "require('esbuild').buildSync({ entryPoints: ['node_modules/@tensorflow/tfjs-core/dist/register_all_gradients.js'], bundle: true, format: 'cjs', platform: 'node', outfile: '$out/app/tfjs-gradients.cjs', logLevel: 'error' })"

echo "vulkan: the loader package (libvulkan1) from Debian, and its library unpacked"
(cd "$out/vulkan" && apt-get download libvulkan1 >/dev/null 2>&1) || cp /var/cache/apt/archives/libvulkan1_*.deb "$out/vulkan/" 2>/dev/null || { echo "pack.sh: could not get libvulkan1 (apt-get download)" >&2; exit 1; }
deb=$(ls "$out"/vulkan/libvulkan1_*.deb | head -1)
dpkg-deb -x "$deb" "$out/vulkan/root"
mkdir -p "$out/vulkan/lib" && cp -a "$out"/vulkan/root/usr/lib/x86_64-linux-gnu/libvulkan.so.1* "$out/vulkan/lib/" && rm -rf "$out/vulkan/root"

(cd "$out/app" && tar -cJf ../app.tar.xz . ) && rm -rf "$out/app"
cp bench/gpu/run.sh bench/gpu/torch_reference.py "$out/"
ls -lh "$out" | sed "s/^/  /"; du -sh "$out" | sed "s/^/  /"
echo "done: copy $out to the GPU machine and run: bash $out/run.sh [RESULTS_DIR]"
