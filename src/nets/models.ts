// The five networks of the thesis (SPEC section 3). Heads are sized from the dataset's vocabulary;
// a head whose task the data lacks (0 classes) is not built.
import * as ops from '../autograd/ops.js';
import type { Engine } from '../engine/engine.js';
import type { Tensor } from '../engine/tensor.js';
import { AttentionBranch, LANDMARKS, LandmarkBranch, LocationPrior, fittedTo, fuse } from './branches.js';
import { type Context, ConvBN, Linear, RepVGGBlock } from './layers.js';
import { BoxLocator } from './locator.js';
import { CONV_INITS, type ConvInit, Init, Module } from './module.js';
import { RepVGGA0, ResNet50, VGG16Features, scaled } from './trunks.js';

export const NET_NAMES = ['cloth_resnet_a', 'cloth_resnet_b', 'cloth_repvgg', 'fashionnet', 'new_fashionnet'] as const;
export type NetName = (typeof NET_NAMES)[number];

/** Parameter counts the thesis reports (its tables 3.x-6.x), for comparison. */
export const THESIS_PARAMS: Record<NetName, number> = {
  cloth_resnet_a: 29_753_408,
  cloth_resnet_b: 40_506_432,
  cloth_repvgg: 11_189_712,
  fashionnet: 76_298_024,
  new_fashionnet: 108_154_640,
};

export interface NetConfig {
  net: NetName;
  /** Category classes (0: no category head). */
  categories: number;
  /** Attributes (0: no attribute head). */
  attributes: number;
  /** Channel multiplier: 1 is the thesis's network; tests and CPU runs use narrow ones. */
  width: number;
  /**
   * Stride of the trunk's first downsampling: 2 is the thesis's (and ImageNet's) trunk, which
   * shrinks a photo 32x; 1 keeps the first stage at full resolution (total 16x), as CIFAR-size
   * ResNets do, so a 64x64 photo ends in a 4x4 map instead of 2x2 and the landmark branch reads
   * 1/4-size features. Weights are the same shapes either way (absent: 2).
   */
  stemStride?: 1 | 2;
  /**
   * FashionNet and New FashionNet: the landmark and attention branches' own channel multiplier
   * (absent: `width`). A narrow trunk narrows its branches with it, and at width 1/8 the last
   * full-resolution layers of the landmark branch have 2 channels: the heatmaps' bottleneck, which
   * a wider branch (0.5: 8) lifts at a fraction of a wider trunk's cost (docs/real-data.md).
   */
  headWidth?: number;
  /**
   * FashionNet: a BatchNorm after each of its VGG trunk's 13 convolutions (torchvision's
   * `vgg16_bn` layout and names; our addition, absent: the thesis's VGG-16 without BatchNorm).
   */
  vggBatchNorm?: boolean;
  /** Seed of the initial weights. */
  seed?: number;
  /**
   * How the labelling network's convolutions start (Init.convs; absent: the network's own,
   * defaultConvInit, which createNet writes into the built network's config). The box head
   * always starts as torchvision's: its figures were measured so.
   */
  convInit?: ConvInit;
  /** Landmark networks: add a learned location prior to the heatmaps (LocationPrior; the soft-argmax recipe). */
  landmarkPrior?: boolean;
  /**
   * FashionNet and New FashionNet: the landmark branch also reads the trunk's two finer maps (New
   * FashionNet: layer1 and the stem; FashionNet: conv3_3 and conv2_2), each joined through a 1x1
   * convolution after the upsampling that reaches its size (LandmarkBranch; our addition, absent:
   * the thesis's branch, which reads the fusion point's features alone).
   */
  landmarkSkips?: boolean;
  /** A garment-box head (BoxLocator, `box_locator.*`): the garment's box in the whole photo. */
  box?: boolean;
  /**
   * The box head was also trained on windows around the garment (`train --box-zoom`), so labelling
   * takes a second look: it re-reads a window ZOOM_MARGIN times the first box and keeps that answer.
   */
  boxRefine?: boolean;
  /**
   * The attribute head's outputs are softmax logits within groups: each attribute's group number
   * (its type; `train --attribute-loss softmax`). Absent: each is a sigmoid logit of its own, as
   * the thesis's BCE trains them. Labelling reads the probabilities accordingly (readBatch).
   */
  attributeGroups?: readonly number[];
}

/** Why `groups` cannot be the attribute groups of a head with `attributes` outputs, or null. */
export function attributeGroupsProblem(groups: unknown, attributes: number): string | null {
  if (groups === undefined) return null;
  if (!Array.isArray(groups) || groups.length !== attributes) return `attributeGroups must list a group for each of the ${attributes} attributes, got ${JSON.stringify(groups)?.slice(0, 80)}`;
  if (!groups.every((g) => Number.isInteger(g))) return `attributeGroups must be whole numbers, got ${JSON.stringify(groups).slice(0, 80)}`;
  return null;
}

export interface NetOutput {
  /** Category logits [N, categories]. */
  category?: Tensor;
  /** Attribute logits [N, attributes]. */
  attributes?: Tensor;
  /** Landmark heatmaps [N, 8, H, W], the size of the input. */
  heatmaps?: Tensor;
  /**
   * The pooled features the heads read [N, F] (the trunk's average-pooled map; FashionNet's FC
   * 4096): a photo's embedding, for likeness search. Only with forward(x, { features: true }).
   */
  features?: Tensor;
}

/** The networks with a landmark branch (and the attention built from it). */
export const hasLandmarkBranch = (net: string) => net === 'fashionnet' || net === 'new_fashionnet';

export function isNetName(name: string): name is NetName {
  return (NET_NAMES as readonly string[]).includes(name);
}

/** The category and attribute heads: Linear layers named `category` and `attributes`. */
class Heads extends Module {
  readonly category?: Linear;
  readonly attributes?: Linear;
  constructor(c: Context, features: number, config: NetConfig, categoryFeatures = features) {
    super(c.engine, '');
    if (config.categories > 0) this.category = this.add('category', new Linear(c, 'category', categoryFeatures, config.categories));
    if (config.attributes > 0) this.attributes = this.add('attributes', new Linear(c, 'attributes', features, config.attributes));
  }
}

export abstract class ClothNet extends Module {
  abstract readonly hasLandmarks: boolean;
  constructor(
    engine: Engine,
    readonly config: NetConfig,
  ) {
    super(engine, '');
  }

  /** The garment-box head, where config.box asks for one. */
  protected locator?: BoxLocator;

  /** Whether the network has a garment-box head (config.box). */
  get hasBox(): boolean {
    return !!this.locator;
  }

  /** The box head's trainable tensors (none without one): `train --box-epochs` gives them an optimizer of their own. */
  boxParameters(): Tensor[] {
    return this.locator?.parameters() ?? [];
  }

  /** The garment's box [N, 4] (cx, cy, w, h fractions) in whole photos [N, 3, BOX_INPUT, BOX_INPUT]. */
  locate(photos: Tensor): Tensor {
    if (!this.locator) throw new Error(`this ${this.config.net} has no garment-box head (it was built without boxes)`);
    return this.locator.forward(photos);
  }

  /** The training step, which seeds dropout (so that a resumed run draws the same masks). */
  protected step = 0;
  setStep(step: number): void {
    this.step = step;
  }

  /**
   * Eval- or train-mode forward pass (per setTraining) on images [N, 3, H, W]. The pooled
   * features come back only when asked for; otherwise they stay an intermediate like any other.
   */
  forward(images: Tensor, o: { features?: boolean } = {}): NetOutput {
    this.checkInput(images);
    const out = this.run(images);
    if (!o.features) delete out.features;
    // Mixed precision's activations are f16; what the network hands out is f32.
    for (const k of Object.keys(out) as (keyof NetOutput)[]) if (out[k]) out[k] = ops.toFloat32(out[k]!);
    return out;
  }

  protected abstract run(images: Tensor): NetOutput;

  protected checkInput(x: Tensor): void {
    const [N, C, H, W] = x.shape as [number, number, number, number];
    const sizes = `${this.config.net} takes images [N, 3, H, W] with H and W from 32 to 448`;
    if (x.rank !== 4 || C !== 3 || N < 1) throw new Error(`${sizes}; got ${x.describe()}`);
    if (H < 32 || W < 32 || H > 448 || W > 448) throw new Error(`${sizes}; got ${H}x${W}`);
  }

  /** Builds the garment-box head (createNet, for config.box); its weights come after the others'. */
  addLocator(c: Context): void {
    this.locator ??= this.add('box_locator', new BoxLocator(c, 'box_locator'));
  }

  /** The learned location prior of landmark networks built with config.landmarkPrior. */
  prior?: LocationPrior;

  /**
   * Heatmaps come back at 8x the 1/8-size features; other sizes are resized to the input's. The
   * location prior, where the network has one, is added at the input's size.
   */
  protected fitHeatmaps(heatmaps: Tensor, images: Tensor): Tensor {
    const [, , H, W] = images.shape as [number, number, number, number];
    heatmaps = ops.toFloat32(heatmaps); // the maps are outputs (and the attention's input) in f32
    const fitted = fittedTo(heatmaps, H, W);
    return this.prior ? this.prior.forward(fitted) : fitted;
  }

  /** Every RepVGG block (the trunk of cloth_repvgg, the landmark branch of new_fashionnet). */
  repBlocks(): RepVGGBlock[] {
    return this.modules().filter((m): m is RepVGGBlock => m instanceof RepVGGBlock);
  }

  /** Fuses every RepVGG block into a single 3x3 convolution (deployment form); eval outputs are unchanged. */
  async reparameterize(): Promise<void> {
    for (const b of this.repBlocks()) await b.reparameterize();
  }

  /** Parameters once every RepVGG block is fused (computed from the shapes, no GPU work). */
  deployParameterCount(): number {
    let count = this.parameterCount();
    for (const b of this.repBlocks()) {
      if (b.deployed) continue;
      const own = b.stateEntries().filter((e) => e.trainable).reduce((s, e) => s + e.shape.reduce((p, d) => p * d, 1), 0);
      count += b.outChannels * b.inChannels * 9 + b.outChannels - own;
    }
    return count;
  }

  protected heads(h: Heads, pooled: Tensor, categoryInput = pooled): NetOutput {
    return {
      category: h.category?.forward(categoryInput),
      attributes: h.attributes?.forward(pooled),
      features: pooled,
    };
  }
}

class ClothResNetA extends ClothNet {
  readonly hasLandmarks = false;
  private readonly trunk: ResNet50;
  private readonly head: Heads;
  constructor(c: Context, config: NetConfig) {
    super(c.engine, config);
    this.trunk = this.add('trunk', new ResNet50(c, config.width, config.stemStride));
    this.head = this.add('heads', new Heads(c, this.trunk.outChannels, config));
  }

  protected run(x: Tensor): NetOutput {
    return this.heads(this.head, ops.globalAvgPool(this.trunk.forward(x)));
  }
}

/** Category: GAP -> FC 1024 -> FC. Attributes: three 3x3 conv+BN+ReLU (512, 512, 2048) -> GAP -> FC. */
class ClothResNetB extends ClothNet {
  readonly hasLandmarks = false;
  private readonly trunk: ResNet50;
  private readonly categoryFc?: Linear;
  private readonly attributeConvs: ConvBN[] = [];
  private readonly head: Heads;
  constructor(c: Context, config: NetConfig) {
    super(c.engine, config);
    const w = config.width;
    this.trunk = this.add('trunk', new ResNet50(c, w, config.stemStride));
    const trunkOut = this.trunk.outChannels;
    if (config.categories > 0) this.categoryFc = this.add('category_fc', new Linear(c, 'category_fc', trunkOut, scaled(1024, w)));
    let inC = trunkOut;
    if (config.attributes > 0) {
      [512, 512, 2048].forEach((out, i) => {
        const o = scaled(out, w);
        this.attributeConvs.push(this.add(`attribute_convs.${i}`, new ConvBN(c, `attribute_convs.${i}`, inC, o, 3, 1, 1)));
        inC = o;
      });
    }
    this.head = this.add('heads', new Heads(c, inC, config, scaled(1024, w)));
  }

  protected run(x: Tensor): NetOutput {
    const f = this.trunk.forward(x);
    const out: NetOutput = {};
    if (this.categoryFc) {
      out.features = ops.globalAvgPool(f);
      out.category = this.head.category!.forward(this.categoryFc.forward(out.features, true));
    }
    if (this.attributeConvs.length) {
      let a = f;
      for (const cb of this.attributeConvs) a = cb.forward(a, true);
      const pooled = ops.globalAvgPool(a);
      out.features ??= pooled;
      out.attributes = this.head.attributes!.forward(pooled);
    }
    return out;
  }
}

class ClothRepVGG extends ClothNet {
  readonly hasLandmarks = false;
  private readonly trunk: RepVGGA0;
  private readonly head: Heads;
  constructor(c: Context, config: NetConfig) {
    super(c.engine, config);
    this.trunk = this.add('trunk', new RepVGGA0(c, config.width, config.stemStride));
    this.head = this.add('heads', new Heads(c, this.trunk.outChannels, config));
  }

  protected run(x: Tensor): NetOutput {
    return this.heads(this.head, ops.globalAvgPool(this.trunk.forward(x)));
  }
}

/**
 * FashionNet (Liu et al. 2016) as the thesis builds it: VGG-16 to conv4_3, landmark and attention
 * branches, fusion, pool4 + conv5 + pool5, adaptive pooling to 7x7 (torchvision's VGG), FC 4096
 * (`classifier.0`, torchvision's name) + ReLU + dropout, the two heads.
 */
class FashionNet extends ClothNet {
  readonly hasLandmarks = true;
  private readonly trunk: VGG16Features;
  private readonly landmarks: LandmarkBranch;
  private readonly attention: AttentionBranch;
  private readonly fc: Linear;
  private readonly head: Heads;
  constructor(c: Context, config: NetConfig) {
    super(c.engine, config);
    const w = config.width;
    const branchWidth = config.headWidth ?? w;
    this.trunk = this.add('trunk', new VGG16Features(c, w, config.stemStride, config.vggBatchNorm));
    this.landmarks = this.add('landmarks', new LandmarkBranch(c, 'landmarks', this.trunk.midChannels, branchWidth, false, config.landmarkSkips ? this.trunk.finerChannels : []));
    if (config.landmarkPrior) this.prior = this.add('landmark_prior', new LocationPrior(c, 'landmark_prior'));
    this.attention = this.add('attention', new AttentionBranch(c, 'attention', this.trunk.midChannels, branchWidth));
    this.fc = this.add('classifier.0', new Linear(c, 'classifier.0', this.trunk.outChannels * 49, scaled(4096, w)));
    this.head = this.add('heads', new Heads(c, scaled(4096, w), config));
  }

  protected run(x: Tensor): NetOutput {
    const finer: Tensor[] | undefined = this.config.landmarkSkips ? [] : undefined;
    const f = this.trunk.toConv4_3(x, finer);
    const heatmaps = this.fitHeatmaps(this.landmarks.forward(f, finer), x);
    const fused = fuse(f, this.attention.forward(f, heatmaps));
    const pooled = ops.adaptiveAvgPool2d(this.trunk.fromPool4(fused), 7, 7);
    const flat = ops.reshape(pooled, [pooled.shape[0]!, -1]);
    const hidden = ops.dropout(this.fc.forward(flat, true), 0.5, (this.config.seed ?? 0) * 7919 + this.step, this.training);
    return { ...this.heads(this.head, hidden), heatmaps };
  }
}

/** New FashionNet (the thesis, chapter 6): ResNet-50 trunk, fusion after layer2, RepVGG-block landmark branch. */
class NewFashionNet extends ClothNet {
  readonly hasLandmarks = true;
  private readonly trunk: ResNet50;
  private readonly landmarks: LandmarkBranch;
  private readonly attention: AttentionBranch;
  private readonly head: Heads;
  constructor(c: Context, config: NetConfig) {
    super(c.engine, config);
    const w = config.width;
    const branchWidth = config.headWidth ?? w;
    this.trunk = this.add('trunk', new ResNet50(c, w, config.stemStride));
    this.landmarks = this.add('landmarks', new LandmarkBranch(c, 'landmarks', this.trunk.midChannels, branchWidth, true, config.landmarkSkips ? this.trunk.finerChannels : []));
    if (config.landmarkPrior) this.prior = this.add('landmark_prior', new LocationPrior(c, 'landmark_prior'));
    this.attention = this.add('attention', new AttentionBranch(c, 'attention', this.trunk.midChannels, branchWidth));
    this.head = this.add('heads', new Heads(c, this.trunk.outChannels, config));
  }

  protected run(x: Tensor): NetOutput {
    const finer: Tensor[] | undefined = this.config.landmarkSkips ? [] : undefined;
    const f = this.trunk.toLayer2(x, finer);
    const heatmaps = this.fitHeatmaps(this.landmarks.forward(f, finer), x);
    const fused = fuse(f, this.attention.forward(f, heatmaps));
    return { ...this.heads(this.head, ops.globalAvgPool(this.trunk.fromLayer3(fused))), heatmaps };
  }
}

const BUILDERS: Record<NetName, new (c: Context, config: NetConfig) => ClothNet> = {
  cloth_resnet_a: ClothResNetA,
  cloth_resnet_b: ClothResNetB,
  cloth_repvgg: ClothRepVGG,
  fashionnet: FashionNet,
  new_fashionnet: NewFashionNet,
};

/**
 * How each network's convolutions start unless told: as the code each was published with does.
 * torchvision's ResNet and VGG (the trunks of four of them) draw Kaiming normal over fan_out;
 * the official RepVGG keeps PyTorch's default, and so does cloth_repvgg: behind BatchNorm its
 * weights then start 2-3x smaller, so each Adam step turns them further, and on clothing-small
 * that was worth 6-9 points of top-1 in 12 epochs (docs/real-data.md). New FashionNet's
 * ResNet trunk measured level either way on deepfashion-fine's landmarks and attributes, so the
 * ResNet-based networks keep torchvision's.
 */
export function defaultConvInit(net: NetName): ConvInit {
  return net === 'cloth_repvgg' ? 'pytorch' : 'fan-out';
}

/** Builds a network with fresh (seeded) weights on `engine`. */
export function createNet(engine: Engine, config: NetConfig): ClothNet {
  if (!isNetName(config.net)) throw new Error(`unknown network "${config.net}": one of ${NET_NAMES.join(', ')}`);
  if (!(config.width > 0 && config.width <= 4)) throw new Error(`width must be in (0, 4], got ${config.width}`);
  if (config.stemStride !== undefined && config.stemStride !== 1 && config.stemStride !== 2) throw new Error(`stem stride must be 1 or 2, got ${config.stemStride}`);
  if (config.headWidth !== undefined && !(config.headWidth > 0 && config.headWidth <= 4)) throw new Error(`head width must be in (0, 4], got ${config.headWidth}`);
  if (config.vggBatchNorm && config.net !== 'fashionnet') throw new Error(`vggBatchNorm is FashionNet's (a VGG trunk), not ${config.net}'s`);
  if (config.landmarkSkips && !hasLandmarkBranch(config.net)) throw new Error(`landmark skips need a landmark network (fashionnet, new_fashionnet), not ${config.net}`);
  if (config.categories <= 0 && config.attributes <= 0) throw new Error(`${config.net} needs at least one head: categories or attributes`);
  if (config.convInit !== undefined && !CONV_INITS.includes(config.convInit)) throw new Error(`conv init must be one of ${CONV_INITS.join(', ')}, got ${config.convInit}`);
  const groupsProblem = attributeGroupsProblem(config.attributeGroups, config.attributes);
  if (groupsProblem) throw new Error(groupsProblem);
  const seed = config.seed ?? 0;
  // The init is resolved here and kept in net.config, so every checkpoint says how its network
  // started, whatever a later version picks by default.
  const resolved: NetConfig = { ...config, convInit: config.convInit ?? defaultConvInit(config.net) };
  const net = new BUILDERS[config.net]({ engine, init: new Init(seed, resolved.convInit) }, resolved);
  if (config.box) net.addLocator({ engine, init: new Init(seed) });
  return net;
}

export { LANDMARKS };
