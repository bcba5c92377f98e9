// Tensor I/O between the CPU and the GPU: uploads, and reads that are recorded with the work
// before them (a step and its loss readback are one submission).
import { KernelError } from './dispatch.js';
import { decodeHalf, encodeHalf } from './half.js';
import { COPY_DST, MAP_MODE_READ, MAP_READ } from './memory.js';
import { DeviceLostError, type Recorder } from './recorder.js';
import { type Tensor, byteSize } from './tensor.js';

/** Overwrites a tensor's contents from the CPU. */
export function writeTensor(device: GPUDevice, recorder: Recorder, t: Tensor, data: Float32Array): void {
  if (data.length !== t.size) throw new Error(`${data.length} values written to tensor ${t.describe()}`);
  // queue.writeBuffer runs before any encoder not yet submitted: submit pending work first so that
  // earlier dispatches that used this (pooled) buffer see its old contents.
  if (recorder.pending > 0) recorder.flush();
  if (t.size === 0) return;
  const bytes = t.dtype === 'f16' ? encodeHalf(data) : data;
  device.queue.writeBuffer(t.buffer, 0, bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A tensor's values (f16 widened to float32), after everything recorded before. */
export async function readTensor(device: GPUDevice, recorder: Recorder, t: Tensor): Promise<Float32Array> {
  const bytes = byteSize(t.size, t.dtype);
  if (bytes === 0) return new Float32Array(0);
  const staging = device.createBuffer({ size: bytes, usage: MAP_READ | COPY_DST });
  recorder.commandEncoder().copyBufferToBuffer(t.buffer, 0, staging, 0, bytes);
  recorder.pending++;
  recorder.flush();
  try {
    await staging.mapAsync(MAP_MODE_READ);
  } catch (e) {
    recorder.throwIfBroken();
    throw new DeviceLostError(`reading tensor ${t.describe()} failed: ${(e as Error).message}`);
  }
  const raw = staging.getMappedRange().slice(0);
  const out = t.dtype === 'f16' ? decodeHalf(new Uint16Array(raw), t.size) : new Float32Array(raw);
  staging.unmap();
  staging.destroy();
  recorder.throwIfBroken();
  return out;
}

/**
 * Reads several tensors with one copy each into one staging buffer, submitted with the work
 * recorded so far (so a training step and its loss readback are one submission). The copies
 * are recorded now: the tensors may be disposed, and the next step recorded, before the promise
 * settles - which is how a training loop overlaps its CPU work with the GPU's.
 */
export function readTensors(device: GPUDevice, recorder: Recorder, tensors: readonly Tensor[]): Promise<Float32Array[]> {
  const half = tensors.find((t) => t.dtype !== 'f32');
  if (half) throw new KernelError(`readMany reads float32 tensors; read ${half.describe()} with read()`);
  const sizes = tensors.map((t) => t.size);
  const total = sizes.reduce((a, b) => a + b, 0);
  if (total === 0) return Promise.resolve(sizes.map(() => new Float32Array(0)));
  const staging = device.createBuffer({ size: total * 4, usage: MAP_READ | COPY_DST });
  const encoder = recorder.commandEncoder();
  let offset = 0;
  for (const t of tensors) {
    if (t.size > 0) encoder.copyBufferToBuffer(t.buffer, 0, staging, offset * 4, t.size * 4);
    offset += t.size;
  }
  recorder.pending++;
  recorder.flush();
  const names = tensors.map((t) => t.describe()).join(', ');
  return staging.mapAsync(MAP_MODE_READ).then(
    () => {
      const all = new Float32Array(staging.getMappedRange().slice(0));
      staging.unmap();
      staging.destroy();
      recorder.throwIfBroken();
      let at = 0;
      return sizes.map((n) => all.slice(at, (at += n)));
    },
    (e: Error) => {
      recorder.throwIfBroken();
      throw new DeviceLostError(`reading tensors ${names} failed: ${e.message}`);
    },
  );
}
