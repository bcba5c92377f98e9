// The garment-box head (SPEC 8.2.4, garment cropping for uncropped photos): a small convolutional
// network of its own that reads the whole photo at BOX_INPUT x BOX_INPUT and says where the
// garment is, so that labelling can crop to it.
//
// Why a branch of its own rather than a head on the trunk: the trunk is trained on garment crops,
// and a second pass of whole photos through it mixes two image distributions in every BatchNorm's
// running statistics. Tried first (a 2x2-pooled head on the trunk's last map): the eval-mode
// boxes lagged the training ones, mean IoU 0.55 on deepfashion-fine against 0.53 for always
// answering the training split's mean box. A locator with its own BatchNorms has no such mixing
// and stays out of RepVGG fusion. Its cost is fixed, 37 MFLOP a photo (forward): about 1% of a
// width-1 trunk at 224x224, but about twice a width-1/4 trunk at 64x64, where `--wb 0` saves it.
import * as ops from '../autograd/ops.js';
import type { Tensor } from '../engine/tensor.js';
import { type Context, ConvBN, Linear } from './layers.js';
import { Module } from './module.js';

/** The side of the whole-photo input, pixels (measured: 96 gave no better boxes than 64). */
export const BOX_INPUT = 64;

/**
 * The second look: the window the box head re-reads is its first box grown this much each way
 * about its centre (training draws its windows 1.1-1.6x the true box: src/data/augment.ts,
 * drawZoomWindow).
 */
export const ZOOM_MARGIN = 1.3;

/** Output channels of the five 3x3 conv-BN-ReLU blocks; the first four are followed by 2x2 max pooling. */
const CHANNELS = [16, 32, 64, 128, 128];
/** The last map is average-pooled to GRID x GRID: where the garment is needs where the features are. */
const GRID = 4;

export class BoxLocator extends Module {
  private readonly blocks: ConvBN[] = [];
  readonly box: Linear;
  constructor(c: Context, path: string) {
    super(c.engine, path);
    let inC = 3;
    CHANNELS.forEach((out, i) => {
      this.blocks.push(this.add(`${i}`, new ConvBN(c, this.child(`${i}`), inC, out, 3, 1, 1)));
      inC = out;
    });
    this.box = this.add('box', new Linear(c, this.child('box'), inC * GRID * GRID, 4));
    // Zero weights: every box starts as the centred half-size one (sigmoid 0), with the sigmoid
    // in its steep middle (random weights saturated it at 0 or 1 on the untrained features).
    for (const p of [...this.box.weightParts, this.box.bias!]) c.engine.write(p, new Float32Array(p.size));
  }

  /**
   * Whole photos [N, 3, BOX_INPUT, BOX_INPUT] (ImageNet-normalized) to the garment's box [N, 4] as
   * (centre x, centre y, width, height), fractions of the photo.
   */
  forward(photos: Tensor): Tensor {
    const [N, C, H, W] = photos.shape as [number, number, number, number];
    if (photos.rank !== 4 || C !== 3 || H !== BOX_INPUT || W !== BOX_INPUT) throw new Error(`${this.path}: takes whole photos [N, 3, ${BOX_INPUT}, ${BOX_INPUT}], got ${photos.describe()}`);
    let y = photos;
    this.blocks.forEach((b, i) => {
      y = b.forward(y, true);
      if (i < this.blocks.length - 1) y = ops.maxPool2d(y, { kernel: 2, stride: 2, pad: 0 });
    });
    const grid = ops.adaptiveAvgPool2d(y, GRID, GRID);
    return ops.sigmoid(this.box.forward(ops.reshape(grid, [N, -1])));
  }
}
