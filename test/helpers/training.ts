// The synthesized dataset and the two training configurations the training tests share.
import { join } from 'node:path';
import { synthesize } from '../../src/data/synth.js';
import { DEFAULT_TRAIN, type TrainConfig } from '../../src/run/train.js';
import { THESIS_LOSS } from '../../src/train/losses.js';
import { tempDir } from './tmp.js';

export const quiet = { log: () => {} };

/**
 * A fresh folder with 300 synthesized garments (seed 1), removed when `t` ends, and the
 * configurations that train on them.
 */
export function trainingFixture(t: { teardown(fn: () => void): void }, prefix: string): { tmp: string; data: string; base: TrainConfig; recipe: Partial<TrainConfig> } {
  const tmp = tempDir(t, prefix);
  const data = join(tmp, 'synth');
  synthesize(data, { images: 300, size: 64, seed: 1 });
  // The thesis's recipe (per-epoch decay, flips only, torchvision's init), spelled out: the defaults may move with measurement.
  const base: TrainConfig = {
    ...DEFAULT_TRAIN, data, net: 'cloth_repvgg', width: 0.25, imgSize: 48, batchSize: 16, epochs: 6, lr: 3e-3, lrDecay: 0.9, loss: THESIS_LOSS, workers: 0,
    schedule: 'exp', warmupEpochs: 0, weightDecay: 0, clipNorm: 0, augment: 'flip', trainOn: 'train', convInit: 'fan-out',
  };
  /** Every part of the recipe at once: one-cycle rate and momentum, AdamW, clipping, strong augmentation, smoothing, soft-argmax. */
  const recipe: Partial<TrainConfig> = {
    schedule: 'onecycle', cycleMomentum: true, weightDecay: 0.05, clipNorm: 1, augment: 'strong', ema: 0.9, loss: { ...THESIS_LOSS, labelSmoothing: 0.1, landmarkLoss: 'softargmax', wl: 20 },
  };
  return { tmp, data, base, recipe };
}

/** Twelve synthetic photos in a temporary folder, and `train`'s flags for a small, fast network on them. */
export function tinySet(t: Parameters<typeof tempDir>[0], prefix: string, net: string, width: string): { dir: string; data: string; common: string[] } {
  const dir = tempDir(t, prefix);
  const data = join(dir, 'synth');
  synthesize(data, { images: 12, size: 48, seed: 4 });
  return { dir, data, common: ['--data', data, '--net', net, '--width', width, '--img-size', '32', '--batch-size', '4', '--workers', '0'] };
}
