// FashionNet's two extra branches (SPEC section 3): the landmark branch, which turns a 1/8-size
// feature map into eight full-size heatmaps, and the attention branch, which turns the heatmaps
// and the features into an attention map A for the fusion F' = (0.5 + A) * F.
import * as ops from '../autograd/ops.js';
import type { Tensor } from '../engine/tensor.js';
import { BatchNorm2d, type Context, Conv2d, ConvTranspose2d, RepVGGBlock } from './layers.js';
import { Module } from './module.js';
import { scaled } from './trunks.js';

export const LANDMARKS = 8;

type Step = { kind: 'conv'; m: Conv2d; relu: boolean } | { kind: 'rep'; m: RepVGGBlock } | { kind: 'up'; m: ConvTranspose2d };

/**
 * 1x1 conv 32 -> 3x3 64, 64, 128 -> up x2 (64) -> 3x3 64, 64 -> up x2 (32) -> 3x3 32, 32 ->
 * up x2 (16) -> 3x3 16 -> 3x3 8 heatmaps. ReLU after every layer but the last. In New FashionNet
 * (`rep`) every 3x3 convolution is a RepVGG block.
 *
 * `skipChannels` (our addition, NetConfig.landmarkSkips): the channels of the trunk's finer maps,
 * coarsest first (twice, then four times the branch input's size). Each is added, through a 1x1
 * convolution, to the branch's output at the upsampling that reaches its size, before the ReLU,
 * as a U-Net joins its encoder: the thesis's branch rebuilds full-size maps from 1/8-size features
 * alone, so where a point is within its 8x8 cell has to be guessed; the finer maps still hold it.
 */
export class LandmarkBranch extends Module {
  private readonly steps: Step[] = [];
  private readonly skips: Conv2d[] = [];
  constructor(c: Context, path: string, inChannels: number, width: number, rep: boolean, skipChannels: readonly number[] = []) {
    super(c.engine, path);
    const ch = (n: number) => scaled(n, width);
    let inC = inChannels;
    let index = 0;
    const conv3 = (out: number, last = false) => {
      const name = `${index++}`;
      if (rep) this.steps.push({ kind: 'rep', m: this.add(name, new RepVGGBlock(c, this.child(name), inC, out, 1, !last)) });
      else this.steps.push({ kind: 'conv', m: this.add(name, new Conv2d(c, this.child(name), inC, out, 3, 1, 1, true)), relu: !last });
      inC = out;
    };
    const up = (out: number) => {
      const name = `${index++}`;
      this.steps.push({ kind: 'up', m: this.add(name, new ConvTranspose2d(c, this.child(name), inC, out, 4, 2, 1)) });
      const skip = this.skips.length;
      if (skip < skipChannels.length) this.skips.push(this.add(`skip${skip}`, new Conv2d(c, this.child(`skip${skip}`), skipChannels[skip]!, out, 1, 1, 0)));
      inC = out;
    };
    const name = `${index++}`;
    this.steps.push({ kind: 'conv', m: this.add(name, new Conv2d(c, this.child(name), inC, ch(32), 1, 1, 0, true)), relu: true });
    inC = ch(32);
    conv3(ch(64)); conv3(ch(64)); conv3(ch(128));
    up(ch(64));
    conv3(ch(64)); conv3(ch(64));
    up(ch(32));
    conv3(ch(32)); conv3(ch(32));
    up(ch(16));
    conv3(ch(16));
    conv3(LANDMARKS, true);
  }

  /** `finer`: the trunk's finer maps, one for each of `skipChannels`, coarsest first. */
  forward(features: Tensor, finer: readonly Tensor[] = []): Tensor {
    if (finer.length !== this.skips.length) throw new Error(`the landmark branch joins ${this.skips.length} finer maps, got ${finer.length}`);
    let y = features;
    let joined = 0;
    for (const s of this.steps) {
      if (s.kind === 'conv') y = s.m.forward(y, s.relu);
      else if (s.kind === 'rep') y = s.m.forward(y);
      else {
        y = s.m.forward(y);
        const skip = this.skips[joined];
        if (skip) y = ops.add(y, skip.forward(fittedTo(finer[joined++]!, y.shape[2]!, y.shape[3]!)));
        y = ops.relu(y);
      }
    }
    return y;
  }

  repBlocks(): RepVGGBlock[] {
    return this.steps.flatMap((s) => (s.kind === 'rep' ? [s.m] : []));
  }
}

/**
 * `map` resized to H x W where it differs (itself where it does not): where an input's size is not
 * a multiple of a network's strides, a strided layer rounds up and a doubling does not, so maps
 * meant to line up can differ by a pixel.
 */
export function fittedTo(map: Tensor, H: number, W: number): Tensor {
  return map.shape[2] === H && map.shape[3] === W ? map : ops.resizeBilinear(map, H, W);
}

/**
 * A learned location prior for each landmark, added to the heatmap logits (our addition for the
 * soft-argmax objective): a fully convolutional branch knows where a pattern is but hardly where
 * in the frame it is (only padding tells it), so "the collar is near the top" would have to be
 * learned through the trunk. A [1, 8, 16, 16] map, resized to the heatmaps and multiplied by
 * GAIN so that Adam moves it ten times faster than a weight, holds that directly, and
 * `initialize` starts it at the training split's mean positions (a data-dependent start, as
 * detectors start their class biases at the prior): the network begins at the mean-position
 * baseline and its branch learns the correction from the image.
 */
export class LocationPrior extends Module {
  static readonly SIZE = 16;
  static readonly GAIN = 10;
  readonly map: Tensor;
  constructor(c: Context, path: string) {
    super(c.engine, path);
    const n = LocationPrior.SIZE;
    this.map = this.param('map', [1, LANDMARKS, n, n], new Float32Array(LANDMARKS * n * n));
  }

  forward(heatmaps: Tensor): Tensor {
    const [, , H, W] = heatmaps.shape as [number, number, number, number];
    return ops.add(heatmaps, ops.scale(ops.resizeBilinear(this.map, H, W), LocationPrior.GAIN));
  }

  /**
   * Sets each landmark's map to the log-density of a Gaussian of width `spread` (a fraction of the
   * image) at `mean` ([8 x (x, y)] as fractions of the image): soft-argmax then starts near it.
   */
  initialize(mean: ArrayLike<number>, spread = 0.1): void {
    const n = LocationPrior.SIZE, data = new Float32Array(LANDMARKS * n * n);
    for (let s = 0; s < LANDMARKS; s++) {
      for (let i = 0; i < n * n; i++) {
        const dx = ((i % n) + 0.5) / n - mean[2 * s]!, dy = (Math.floor(i / n) + 0.5) / n - mean[2 * s + 1]!;
        data[s * n * n + i] = -(dx * dx + dy * dy) / (2 * spread * spread) / LocationPrior.GAIN;
      }
    }
    this.engine.write(this.map, data);
  }
}

/**
 * max over the 8 heatmaps -> resize to the feature size -> concat with the features (C + 1) ->
 * encoder 1x1 32, 4x4/2 64 + BN, 4x4/2 128 + BN (to 1/4 of the feature size) -> decoder
 * up 4x4/2 64 + BN, 1x1 128, 1x1 128, up 4x4/2 C + BN -> sigmoid = A, the size of the features.
 */
export class AttentionBranch extends Module {
  private readonly inConv: Conv2d;
  private readonly down1: Conv2d;
  private readonly bnDown1: BatchNorm2d;
  private readonly down2: Conv2d;
  private readonly bnDown2: BatchNorm2d;
  private readonly up1: ConvTranspose2d;
  private readonly bnUp1: BatchNorm2d;
  private readonly mix1: ConvTranspose2d;
  private readonly mix2: ConvTranspose2d;
  private readonly up2: ConvTranspose2d;
  private readonly bnUp2: BatchNorm2d;
  constructor(c: Context, path: string, featureChannels: number, width: number) {
    super(c.engine, path);
    const ch = (n: number) => scaled(n, width);
    const C = featureChannels;
    this.inConv = this.add('conv_in', new Conv2d(c, this.child('conv_in'), C + 1, ch(32), 1, 1, 0, true));
    this.down1 = this.add('down1', new Conv2d(c, this.child('down1'), ch(32), ch(64), 4, 2, 1, true));
    this.bnDown1 = this.add('bn_down1', new BatchNorm2d(c, this.child('bn_down1'), ch(64)));
    this.down2 = this.add('down2', new Conv2d(c, this.child('down2'), ch(64), ch(128), 4, 2, 1, true));
    this.bnDown2 = this.add('bn_down2', new BatchNorm2d(c, this.child('bn_down2'), ch(128)));
    this.up1 = this.add('up1', new ConvTranspose2d(c, this.child('up1'), ch(128), ch(64), 4, 2, 1));
    this.bnUp1 = this.add('bn_up1', new BatchNorm2d(c, this.child('bn_up1'), ch(64)));
    this.mix1 = this.add('mix1', new ConvTranspose2d(c, this.child('mix1'), ch(64), ch(128), 1, 1, 0));
    this.mix2 = this.add('mix2', new ConvTranspose2d(c, this.child('mix2'), ch(128), ch(128), 1, 1, 0));
    this.up2 = this.add('up2', new ConvTranspose2d(c, this.child('up2'), ch(128), C, 4, 2, 1));
    this.bnUp2 = this.add('bn_up2', new BatchNorm2d(c, this.child('bn_up2'), C));
  }

  forward(features: Tensor, heatmaps: Tensor): Tensor {
    const [, , H, W] = features.shape as [number, number, number, number];
    const strongest = ops.resizeBilinear(ops.maxOverChannels(heatmaps), H, W);
    let y = this.inConv.forward(ops.concatChannels([features, strongest]), true);
    y = this.bnDown1.forward(this.down1.forward(y), true);
    y = this.bnDown2.forward(this.down2.forward(y), true);
    y = this.bnUp1.forward(this.up1.forward(y), true);
    y = ops.relu(this.mix1.forward(y));
    y = ops.relu(this.mix2.forward(y));
    y = this.bnUp2.forward(this.up2.forward(y));
    // Feature sizes that are not multiples of 4 do not survive two halvings and two doublings
    // exactly: bring the map back to the features' size before the sigmoid.
    return ops.sigmoid(fittedTo(y, H, W));
  }
}

/** F' = (0.5 + A) * F: attention can weaken a feature to half or strengthen it to 1.5 times. */
export function fuse(features: Tensor, attention: Tensor): Tensor {
  const half = features.engine.full([1], 0.5);
  return ops.mul(features, ops.add(attention, half));
}
