// One Dawn device per test file (tap runs files one at a time), destroyed when the file ends.
import tap from 'tap';
import type { Engine } from '../../src/engine/engine.js';
import { createNodeGpu } from '../../src/node/gpu.js';

let shared: Promise<Engine> | null = null;

/** The file's shared engine. Tests that break their device (errors.test.ts) make their own. */
export function gpuEngine(_t?: unknown): Promise<Engine> {
  shared ??= createNodeGpu().then((gpu) => {
    tap.teardown(() => gpu.close());
    return gpu.engine;
  });
  return shared;
}

export { createNodeGpu };
