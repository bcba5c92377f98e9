// Layers with torchvision's parameter names and initializations.
import * as ops from '../autograd/ops.js';
import { castTensor } from '../engine/cast.js';
import { conv2d as convolve } from '../engine/conv.js';
import { type BatchNormState, foldBatchNorm } from '../engine/norm.js';
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/tensor.js';
import { type Init, Module } from './module.js';

export interface Context {
  engine: Engine;
  init: Init;
}

export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias?: Tensor;
  constructor(
    c: Context,
    path: string,
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernel: number,
    readonly stride = 1,
    readonly pad = Math.floor((kernel - 1) / 2),
    withBias = false,
  ) {
    super(c.engine, path);
    // The network's policy (Init.convs): torchvision's Kaiming normal over fan_out unless it says PyTorch's default.
    this.weight = this.param('weight', [outChannels, inChannels, kernel, kernel], c.init.convWeight(this.child('weight'), outChannels, inChannels, kernel));
    if (withBias) this.bias = this.param('bias', [outChannels], c.init.convBias(this.child('bias'), outChannels, inChannels, kernel));
  }

  /** `relu` fuses a following ReLU into the convolution's epilogue. */
  forward(x: Tensor, relu = false): Tensor {
    return ops.conv2d(x, this.weight, this.bias, { stride: this.stride, pad: this.pad }, relu);
  }
}

export class ConvTranspose2d extends Module {
  readonly weight: Tensor;
  readonly bias?: Tensor;
  constructor(c: Context, path: string, inChannels: number, outChannels: number, readonly kernel: number, readonly stride: number, readonly pad: number, withBias = true) {
    super(c.engine, path);
    // PyTorch's default: kaiming uniform (a = sqrt(5)), fan_in taken from weight.shape[1] * k * k.
    const bound = 1 / Math.sqrt(outChannels * kernel * kernel);
    this.weight = this.param('weight', [inChannels, outChannels, kernel, kernel], c.init.uniform(this.child('weight'), inChannels * outChannels * kernel * kernel, bound));
    if (withBias) this.bias = this.param('bias', [outChannels], c.init.uniform(this.child('bias'), outChannels, bound));
  }

  forward(x: Tensor): Tensor {
    return ops.convTranspose2d(x, this.weight, this.bias, { stride: this.stride, pad: this.pad });
  }
}

export class BatchNorm2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  eps = 1e-5;
  momentum = 0.1;
  constructor(c: Context, path: string, readonly channels: number) {
    super(c.engine, path);
    this.weight = this.param('weight', [channels], new Float32Array(channels).fill(1));
    this.bias = this.param('bias', [channels], new Float32Array(channels));
    this.runningMean = this.buffer('running_mean', [channels], new Float32Array(channels));
    this.runningVar = this.buffer('running_var', [channels], new Float32Array(channels).fill(1));
  }

  /** `relu` fuses a following ReLU into the BatchNorm kernels, `residual` a residual join before it. */
  forward(x: Tensor, relu = false, residual?: Tensor): Tensor {
    return ops.batchNorm2d(x, this.normState(), this.training, relu, residual);
  }

  normState(): BatchNormState {
    return { gamma: this.weight, beta: this.bias, runningMean: this.runningMean, runningVar: this.runningVar, eps: this.eps, momentum: this.momentum };
  }

  /** The per-channel affine map that eval mode applies: y = scale * x + shift. */
  async affine(): Promise<{ scale: Float32Array; shift: Float32Array }> {
    const [g, b, m, v] = await Promise.all([this.weight.read(), this.bias.read(), this.runningMean.read(), this.runningVar.read()]);
    const scale = g.map((gi, i) => gi / Math.sqrt(v[i]! + this.eps));
    return { scale, shift: b.map((bi, i) => bi - m[i]! * scale[i]!) };
  }
}

/** nn.Linear (weight [out, in]); a weight over the binding limit is held as row chunks. */
export class Linear extends Module {
  readonly weightParts: Tensor[];
  readonly bias?: Tensor;
  constructor(c: Context, path: string, readonly inFeatures: number, readonly outFeatures: number, withBias = true) {
    super(c.engine, path);
    const bound = 1 / Math.sqrt(inFeatures);
    this.weightParts = this.state('weight', [outFeatures, inFeatures], c.init.uniform(this.child('weight'), outFeatures * inFeatures, bound), true);
    if (withBias) this.bias = this.param('bias', [outFeatures], c.init.uniform(this.child('bias'), outFeatures, bound));
  }

  /** `relu` fuses a following ReLU into the GEMM's epilogue (when the weight is in one piece). */
  forward(x: Tensor, relu = false): Tensor {
    if (x.rank !== 2 || x.shape[1] !== this.inFeatures) throw new Error(`${this.path}: expects [N, ${this.inFeatures}], got ${x.describe()}`);
    if (this.weightParts.length === 1) return ops.linear(x, this.weightParts[0]!, this.bias, relu);
    const parts = this.weightParts.map((w) => ops.linear(x, w));
    const joined = ops.concatChannels(parts);
    const y = this.bias ? ops.addBias(joined, this.bias) : joined;
    return relu ? ops.relu(y) : y;
  }
}

/**
 * bn(conv(x)), then ReLU if asked. In eval mode without gradients (labelling, evaluation) the
 * BatchNorm is folded into the convolution's epilogue (scale = gamma / sqrt(var + eps), shift =
 * beta - mean * scale, computed on the GPU each call): one pass over the activations instead of
 * two. Training, or eval with gradients, runs the two layers as they are.
 */
export function convBN(conv: Conv2d, bn: BatchNorm2d, x: Tensor, relu = false, residual?: Tensor): Tensor {
  if (bn.training || conv.bias || x.engine.modes.grad) return bn.forward(conv.forward(x), relu, residual);
  return conv.engine.scope(conv.path, () => {
    const affine = foldBatchNorm(bn.normState());
    // An f16 activation (mixed precision) meets an f16 copy of the weight.
    const w = x.dtype === conv.weight.dtype ? conv.weight : castTensor(conv.weight, x.dtype);
    const y = convolve(x, w, undefined, { stride: conv.stride, pad: conv.pad }, { relu: relu && !residual, affine });
    if (w !== conv.weight) w.dispose();
    affine.scale.dispose();
    affine.shift.dispose();
    if (!residual) return y;
    const joined = relu ? ops.addRelu(y, residual) : ops.add(y, residual);
    y.dispose();
    return joined;
  });
}

/** A convolution followed by BatchNorm, named `conv` and `bn` (RepVGG's branches). */
export class ConvBN extends Module {
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d;
  constructor(c: Context, path: string, inChannels: number, outChannels: number, kernel: number, stride: number, pad: number) {
    super(c.engine, path);
    this.conv = this.add('conv', new Conv2d(c, this.child('conv'), inChannels, outChannels, kernel, stride, pad));
    this.bn = this.add('bn', new BatchNorm2d(c, this.child('bn'), outChannels));
  }

  forward(x: Tensor, relu = false, residual?: Tensor): Tensor {
    return convBN(this.conv, this.bn, x, relu, residual);
  }
}

/**
 * The RepVGG block (Ding et al. 2021): relu(BN(conv3x3(x)) + BN(conv1x1(x)) + BN(x)), the identity
 * branch only where shapes allow. reparameterize() fuses the three into one 3x3 convolution with
 * bias (rbr_reparam), which gives the same eval-mode output.
 */
export class RepVGGBlock extends Module {
  private dense?: ConvBN;
  private oneByOne?: ConvBN;
  private identity?: BatchNorm2d;
  private fused?: Conv2d;
  constructor(
    private readonly c: Context,
    path: string,
    readonly inChannels: number,
    readonly outChannels: number,
    readonly stride = 1,
    readonly relu = true,
    /** Whether an identity branch may be added (where shapes allow); the trunk's first block never has one. */
    withIdentity = true,
  ) {
    super(c.engine, path);
    this.dense = this.add('rbr_dense', new ConvBN(c, this.child('rbr_dense'), inChannels, outChannels, 3, stride, 1));
    this.oneByOne = this.add('rbr_1x1', new ConvBN(c, this.child('rbr_1x1'), inChannels, outChannels, 1, stride, 0));
    if (withIdentity && inChannels === outChannels && stride === 1) this.identity = this.add('rbr_identity', new BatchNorm2d(c, this.child('rbr_identity'), outChannels));
  }

  get deployed(): boolean {
    return !!this.fused;
  }

  forward(x: Tensor): Tensor {
    if (this.fused) return this.fused.forward(x, this.relu); // bias and ReLU in the conv's epilogue
    // The branches summed in the BatchNorms' own passes (the join fused: see ops.batchNorm2d). The
    // partial sums are read by the next join only, and no backward reads them: their buffers go
    // back to the pool as soon as the block's output exists, not at the end of the step.
    const identity = this.identity?.forward(x);
    const partial = this.oneByOne!.forward(x, false, identity);
    const y = this.dense!.forward(x, this.relu, partial);
    identity?.dropValues();
    partial.dropValues();
    return y;
  }

  /** Fuses the branches into one 3x3 convolution with bias (W = sum of gamma/sigma * W_i, b = sum of beta - mu*gamma/sigma). */
  async reparameterize(): Promise<void> {
    if (this.fused) return;
    const K = this.outChannels, C = this.inChannels;
    const weight = new Float32Array(K * C * 9);
    const bias = new Float32Array(K);
    const addBranch = (w3: (k: number, c: number, tap: number) => number, a: { scale: Float32Array; shift: Float32Array }) => {
      for (let k = 0; k < K; k++) {
        for (let c = 0; c < C; c++) for (let tap = 0; tap < 9; tap++) weight[(k * C + c) * 9 + tap]! += a.scale[k]! * w3(k, c, tap);
        bias[k]! += a.shift[k]!;
      }
    };
    const dense = await this.dense!.conv.weight.read();
    addBranch((k, c, tap) => dense[(k * C + c) * 9 + tap]!, await this.dense!.bn.affine());
    const one = await this.oneByOne!.conv.weight.read();
    addBranch((k, c, tap) => (tap === 4 ? one[k * C + c]! : 0), await this.oneByOne!.bn.affine());
    if (this.identity) addBranch((k, c, tap) => (tap === 4 && k === c ? 1 : 0), await this.identity.affine());
    this.dropChild('rbr_dense');
    this.dropChild('rbr_1x1');
    if (this.identity) this.dropChild('rbr_identity');
    this.dense = this.oneByOne = this.identity = undefined;
    const fused = new Conv2d(this.c, this.child('rbr_reparam'), C, K, 3, this.stride, 1, true);
    this.engine.write(fused.weight, weight);
    this.engine.write(fused.bias!, bias);
    this.fused = this.add('rbr_reparam', fused);
  }
}

/** torchvision's Bottleneck (ResNet v1.5: the stride on the 3x3). */
export class Bottleneck extends Module {
  static readonly expansion = 4;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm2d;
  readonly downsample?: [Conv2d, BatchNorm2d];
  constructor(c: Context, path: string, inplanes: number, planes: number, stride: number) {
    super(c.engine, path);
    const out = planes * Bottleneck.expansion;
    this.conv1 = this.add('conv1', new Conv2d(c, this.child('conv1'), inplanes, planes, 1));
    this.bn1 = this.add('bn1', new BatchNorm2d(c, this.child('bn1'), planes));
    this.conv2 = this.add('conv2', new Conv2d(c, this.child('conv2'), planes, planes, 3, stride, 1));
    this.bn2 = this.add('bn2', new BatchNorm2d(c, this.child('bn2'), planes));
    this.conv3 = this.add('conv3', new Conv2d(c, this.child('conv3'), planes, out, 1));
    this.bn3 = this.add('bn3', new BatchNorm2d(c, this.child('bn3'), out));
    if (stride !== 1 || inplanes !== out) {
      this.downsample = [
        this.add('downsample.0', new Conv2d(c, this.child('downsample.0'), inplanes, out, 1, stride, 0)),
        this.add('downsample.1', new BatchNorm2d(c, this.child('downsample.1'), out)),
      ];
    }
  }

  forward(x: Tensor): Tensor {
    let y = convBN(this.conv1, this.bn1, x, true);
    y = convBN(this.conv2, this.bn2, y, true);
    const identity = this.downsample ? convBN(this.downsample[0], this.downsample[1], x) : x;
    const out = convBN(this.conv3, this.bn3, y, true, identity);
    // The downsampled identity is read by the join only (no backward reads it): freed now.
    if (identity !== x) identity.dropValues();
    return out;
  }
}
