// The three backbones, with torchvision's (and RepVGG's official) parameter names so that
// converted ImageNet weights load: ResNet-50, VGG-16 (features) and RepVGG-A0.
import * as ops from '../autograd/ops.js';
import type { Tensor } from '../engine/tensor.js';
import { Bottleneck, BatchNorm2d, type Context, Conv2d, RepVGGBlock, convBN } from './layers.js';
import { Module } from './module.js';

/** Channel count under a width multiplier (at least 1). */
export const scaled = (channels: number, width: number) => Math.max(1, Math.round(channels * width));

/** torchvision ResNet-50 without its classifier: stem, layer1..layer4 (3-4-6-3 bottlenecks). */
export class ResNet50 extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly layers: Bottleneck[][] = [];
  /** Channels after layer2 (the fusion point of New FashionNet) and after layer4. */
  readonly midChannels: number;
  readonly outChannels: number;
  /** stemStride: conv1's stride (2, torchvision's; 1 for small photos, NetConfig.stemStride). */
  constructor(c: Context, width: number, stemStride: 1 | 2 = 2) {
    super(c.engine, '');
    const base = scaled(64, width);
    this.conv1 = this.add('conv1', new Conv2d(c, 'conv1', 3, base, 7, stemStride, 3));
    this.bn1 = this.add('bn1', new BatchNorm2d(c, 'bn1', base));
    let inplanes = base;
    ([[64, 3, 1], [128, 4, 2], [256, 6, 2], [512, 3, 2]] as const).forEach(([planes, blocks, stride], i) => {
      const p = scaled(planes, width);
      const stage: Bottleneck[] = [];
      for (let b = 0; b < blocks; b++) {
        const name = `layer${i + 1}.${b}`;
        stage.push(this.add(name, new Bottleneck(c, name, inplanes, p, b === 0 ? stride : 1)));
        inplanes = p * Bottleneck.expansion;
      }
      this.layers.push(stage);
    });
    this.midChannels = scaled(128, width) * Bottleneck.expansion;
    this.outChannels = inplanes;
    this.finerChannels = [scaled(64, width) * Bottleneck.expansion, base];
  }

  /** Channels of the maps toLayer2 hands to `finer`: layer1's, then the stem's. */
  readonly finerChannels: readonly number[];

  /**
   * Stem, layer1 and layer2: [N, 3, S, S] -> [N, 512w, S/8, S/8] (S/4 with stem stride 1). With
   * `finer`, also pushes layer1's output (twice layer2's size) and the stem's (four times) there.
   */
  toLayer2(x: Tensor, finer?: Tensor[]): Tensor {
    const stem = convBN(this.conv1, this.bn1, x, true);
    let y = ops.maxPool2d(stem, { kernel: 3, stride: 2, pad: 1 });
    for (const block of this.layers[0]!) y = block.forward(y);
    finer?.push(y, stem);
    for (const block of this.layers[1]!) y = block.forward(y);
    return y;
  }

  /** layer3 and layer4: -> [N, 2048w, S/32, S/32] (S/16 with stem stride 1). */
  fromLayer3(x: Tensor): Tensor {
    let y = x;
    for (const block of [...this.layers[2]!, ...this.layers[3]!]) y = block.forward(y);
    return y;
  }

  forward(x: Tensor): Tensor {
    return this.fromLayer3(this.toLayer2(x));
  }
}

/** VGG-16's configuration "D": channels of each convolution, 'M' for a 2x2 max-pool. */
const VGG16_PLAN: readonly (number | 'M')[] = [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'];

/**
 * torchvision's VGG-16 `features` (13 convolutions with bias, ReLUs, 5 max-pools), indices as
 * torchvision's. With `batchNorm`, torchvision's `vgg16_bn`: a BatchNorm after every convolution
 * (each layer conv, bn, relu, so the indices move: conv4_3 is 40 instead of 28), which FashionNet's
 * trunk lacks in the thesis; without it the trunk follows a lower rate (docs/real-data.md).
 */
export class VGG16Features extends Module {
  private readonly convs = new Map<number, Conv2d>();
  /** With batchNorm: the BatchNorm at each convolution's index + 1. */
  private readonly norms = new Map<number, BatchNorm2d>();
  /** The max-pools that run: torchvision's five, less the first with stem stride 1. */
  private readonly pools: number[];
  /** The last index of conv2_2's, conv3_3's and conv4_3's layers (their ReLU), and of pool5. */
  private readonly ends: { conv2_2: number; conv3_3: number; conv4_3: number; pool5: number };
  /** Channels at conv4_3 (the fusion point of FashionNet) and at the end. */
  readonly midChannels: number;
  readonly outChannels: number;
  constructor(c: Context, width: number, stemStride: 1 | 2 = 2, batchNorm = false) {
    super(c.engine, '');
    let inC = 3, index = 0;
    const reluAfter: number[] = [], poolAt: number[] = [];
    for (const step of VGG16_PLAN) {
      if (step === 'M') {
        poolAt.push(index++);
        continue;
      }
      const o = scaled(step, width);
      this.convs.set(index, this.add(`features.${index}`, new Conv2d(c, `features.${index}`, inC, o, 3, 1, 1, true)));
      if (batchNorm) this.norms.set(index + 1, this.add(`features.${index + 1}`, new BatchNorm2d(c, `features.${index + 1}`, o)));
      index += batchNorm ? 3 : 2;
      reluAfter.push(index - 1);
      inC = o;
    }
    this.pools = stemStride === 1 ? poolAt.slice(1) : poolAt;
    // Convolutions 4, 7 and 10 (1-based) are conv2_2, conv3_3 and conv4_3.
    this.ends = { conv2_2: reluAfter[3]!, conv3_3: reluAfter[6]!, conv4_3: reluAfter[9]!, pool5: poolAt[4]! };
    this.midChannels = this.outChannels = inC;
    this.finerChannels = [scaled(256, width), scaled(128, width)];
  }

  /** Channels of the maps toConv4_3 hands to `finer`: conv3_3's, then conv2_2's. */
  readonly finerChannels: readonly number[];

  private run(x: Tensor, from: number, to: number): Tensor {
    let y = x;
    for (let i = from; i <= to; i++) {
      const conv = this.convs.get(i);
      const norm = this.norms.get(i + 1);
      if (conv) y = norm ? convBN(conv, norm, y, true) : conv.forward(y, true);
      else if (this.pools.includes(i)) y = ops.maxPool2d(y, { kernel: 2, stride: 2, pad: 0 });
    }
    return y;
  }

  /**
   * conv1_1 .. conv4_3 (features 0..22; 0..32 with BatchNorm): [N, 3, S, S] -> [N, 512w, S/8, S/8]
   * (S/4 with stem stride 1). With `finer`, also pushes conv3_3's output (twice conv4_3's size) and
   * conv2_2's (four times).
   */
  toConv4_3(x: Tensor, finer?: Tensor[]): Tensor {
    const { conv2_2: a, conv3_3: b, conv4_3: m } = this.ends;
    if (!finer) return this.run(x, 0, m);
    const conv2_2 = this.run(x, 0, a);
    const conv3_3 = this.run(conv2_2, a + 1, b);
    finer.push(conv3_3, conv2_2);
    return this.run(conv3_3, b + 1, m);
  }

  /** pool4, conv5_1 .. conv5_3, pool5 (features 23..30; 33..43 with BatchNorm): -> [N, 512w, S/32, S/32]. */
  fromPool4(x: Tensor): Tensor {
    return this.run(x, this.ends.conv4_3 + 1, this.ends.pool5);
  }
}

/** RepVGG-A0 (widths 48-48-96-192-1280, blocks 1-2-4-14-1, each stage starting with stride 2), official names. */
export class RepVGGA0 extends Module {
  readonly blocks: RepVGGBlock[] = [];
  readonly outChannels: number;
  /** stemStride: stage0's stride (2, the official; 1 for small photos, NetConfig.stemStride). */
  constructor(c: Context, width: number, stemStride: 1 | 2 = 2) {
    super(c.engine, '');
    const widths = [48, 48, 96, 192, 1280].map((w) => scaled(w, width));
    const depths = [1, 2, 4, 14, 1];
    let inC = 3;
    widths.forEach((w, stage) => {
      for (let b = 0; b < depths[stage]!; b++) {
        const name = stage === 0 ? 'stage0' : `stage${stage}.${b}`;
        this.blocks.push(this.add(name, new RepVGGBlock(c, name, inC, w, b > 0 ? 1 : stage === 0 ? stemStride : 2, true, stage > 0)));
        inC = w;
      }
    });
    this.outChannels = inC;
  }

  forward(x: Tensor): Tensor {
    let y = x;
    for (const b of this.blocks) y = b.forward(y);
    return y;
  }
}
