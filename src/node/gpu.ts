// Node only: starts Dawn (npm package `webgpu`) and hands its GPUDevice to the core engine.
// On a machine without a GPU, Dawn runs on a Vulkan software driver: Mesa's lavapipe, or
// Chromium's SwiftShader as a fallback.
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, globals } from 'webgpu';
import { requestEngineDevice } from '../engine/device.js';
import { Engine, adapterName } from '../engine/engine.js';
import { loadTuning } from './tuning.js';

export const LAVAPIPE_ICD = '/usr/share/vulkan/icd.d/lvp_icd.json';
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

export const INSTALL_HINT = [
  'No WebGPU adapter was found. Dawn needs a Vulkan driver; on a machine without a GPU (Debian bookworm):',
  '  echo "deb http://deb.debian.org/debian bookworm-backports main" > /etc/apt/sources.list.d/backports.list',
  '  apt-get update && apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1',
  `  export VK_ICD_FILENAMES=${LAVAPIPE_ICD} XDG_RUNTIME_DIR=/tmp/xdg`,
  '(or `make setup`, which does all of this). Fallback: apt-get install chromium, and',
  `  export VK_ICD_FILENAMES=${SWIFTSHADER_ICD}`,
].join('\n');

export interface NodeGpu {
  engine: Engine;
  adapter: GPUAdapter;
  info: { vendor: string; architecture: string; device: string; description: string; backend: string };
  /** Destroys the device and waits for Dawn to deliver its last callback (see below). */
  close(): Promise<void>;
}

// Dawn's instance must outlive its devices: creating and dropping instances one after another
// crashed Node here (SIGABRT in a mutex). Node does not exit while it is referenced, so the last
// close() drops it - but only once the destroyed device's lost callback has been delivered: an
// instance collected while a callback is still pending crashes in InstanceBase::ProcessEvents
// on a freed mutex (SIGSEGV or SIGABRT at exit, after the command's own output).
let instance: GPU | null = null;
let openDevices = 0;

function environment(): void {
  Object.assign(globalThis, globals);
  if (!process.env.XDG_RUNTIME_DIR) {
    const dir = join(tmpdir(), `xdg-${process.getuid?.() ?? 0}`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    process.env.XDG_RUNTIME_DIR = dir;
  }
  // Without an explicit driver, prefer lavapipe when it is installed (the software GPU we test on).
  if (!process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES && process.env.CLOTHTAG_ANY_DRIVER !== '1') {
    if (existsSync(LAVAPIPE_ICD) && !existsSync('/dev/nvidia0') && !existsSync('/dev/dri')) process.env.VK_ICD_FILENAMES = LAVAPIPE_ICD;
    else if (!existsSync(LAVAPIPE_ICD) && existsSync(SWIFTSHADER_ICD)) process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  }
}

/**
 * The Dawn instance behind the open engines, for another WebGPU library to request the same
 * adapter from (bench train-step's jax-js, which looks for navigator.gpu). Null when none is open.
 */
export function dawnInstance(): GPU | null {
  return instance;
}

/** Starts Dawn and returns an engine on the adapter's maximum limits. */
export async function createNodeGpu(options: { powerPreference?: GPUPowerPreference } = {}): Promise<NodeGpu> {
  environment();
  instance ??= create(['disable-dawn-features=timestamp_quantization', 'enable-dawn-features=vulkan_enable_f16_on_nvidia']);
  const adapter = await instance.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) throw new Error(INSTALL_HINT);
  const device = await requestEngineDevice(adapter);
  openDevices++;
  const i = adapter.info;
  // Tiles measured by `clothtag tune` on this adapter, if any (CLOTHTAG_TUNING=none: defaults only).
  const tuning = process.env.CLOTHTAG_TUNING === 'none' ? undefined : loadTuning();
  const engine = new Engine(device, { adapter: adapterName(i), tuning });
  const info = {
    vendor: i.vendor,
    architecture: i.architecture,
    device: i.device,
    description: i.description,
    backend: (i as unknown as { backendType?: string }).backendType ?? 'vulkan',
  };
  return {
    engine,
    adapter,
    info,
    async close() {
      engine.destroy();
      await Promise.race([device.lost, new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
      // One more turn of the event loop, for Dawn's own event processing to finish its pass.
      await new Promise((resolve) => setImmediate(resolve));
      if (--openDevices === 0) instance = null;
    },
  };
}
