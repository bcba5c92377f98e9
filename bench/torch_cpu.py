#!/usr/bin/python3
"""The CPU path a user could take instead: one of clothtag's five networks trained in PyTorch on this CPU.

`clothtag bench net` runs this where Debian's python3-torch is installed, with the same network,
width, size and batch, and prints clothtag's images/s against PyTorch's. The networks are built
here as clothtag builds them (src/nets: the same layers, channel counts and parameter names; the
parameter count is printed so that the two can be compared), and a step is what clothtag's bench
step is: forward, the thesis's loss (cross-entropy, BCE with w_pos 1 and w_neg 0.1 weighted by
Ws = 20, and for the landmark networks the heatmaps' MSE: PyTorch has no SSIM, so New FashionNet's
SSIM term is an MSE here, a negligible share of the step), backward, Adam. Prints one line of JSON.

    /usr/bin/python3 bench/torch_cpu.py --net cloth_resnet_a --width 0.25 --size 64 --batch 16
"""
import argparse, json, os, time

import torch
import torch.nn as nn
import torch.nn.functional as F


def scaled(c, w):
    return max(1, round(c * w))


def conv_bn(i, o, k, s, p):
    return nn.Sequential(nn.Conv2d(i, o, k, s, p, bias=False), nn.BatchNorm2d(o))


class Bottleneck(nn.Module):
    def __init__(self, inplanes, planes, stride):
        super().__init__()
        out = planes * 4
        self.conv1, self.bn1 = nn.Conv2d(inplanes, planes, 1, bias=False), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False), nn.BatchNorm2d(planes)
        self.conv3, self.bn3 = nn.Conv2d(planes, out, 1, bias=False), nn.BatchNorm2d(out)
        self.downsample = conv_bn(inplanes, out, 1, stride, 0) if stride != 1 or inplanes != out else None

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (self.downsample(x) if self.downsample is not None else x))


class ResNet50(nn.Module):
    def __init__(self, w, stem_stride=2):
        super().__init__()
        base = scaled(64, w)
        self.conv1, self.bn1 = nn.Conv2d(3, base, 7, stem_stride, 3, bias=False), nn.BatchNorm2d(base)
        inplanes, stages = base, []
        for planes, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            p = scaled(planes, w)
            stage = []
            for b in range(blocks):
                stage.append(Bottleneck(inplanes, p, stride if b == 0 else 1))
                inplanes = p * 4
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.mid, self.out = scaled(128, w) * 4, inplanes
        # The channels of the maps to_layer2 hands to `finer`: layer1's, then the stem's.
        self.finer_channels = (scaled(64, w) * 4, base)

    def to_layer2(self, x, finer=None):
        stem = F.relu(self.bn1(self.conv1(x)))
        l1 = self.layer1(F.max_pool2d(stem, 3, 2, 1))
        if finer is not None:
            finer += [l1, stem]
        return self.layer2(l1)

    def from_layer3(self, x):
        return self.layer4(self.layer3(x))


class VGG16(nn.Module):
    PLAN = ((0, 64), (2, 64), (5, 128), (7, 128), (10, 256), (12, 256), (14, 256), (17, 512), (19, 512), (21, 512), (24, 512), (26, 512), (28, 512))

    def __init__(self, w, stem_stride=2, batch_norm=False):
        super().__init__()
        layers, c = [], 3
        # Stem stride 1 drops the first max-pool (an identity keeps torchvision's indices).
        pools = (4, 9, 16, 23) if stem_stride == 2 else (9, 16, 23)
        for index, out in self.PLAN:
            while len(layers) < index:
                n = len(layers)
                layers.append(nn.MaxPool2d(2) if n in pools else nn.Identity() if n == 4 else nn.ReLU())
            conv = nn.Conv2d(c, scaled(out, w), 3, 1, 1)
            # batch_norm: each convolution followed by a BatchNorm in the same slot (VGG-16-BN's layers,
            # torchvision's indices kept so that the slices below still cut at conv2_2, conv3_3, conv4_3).
            layers.append(nn.Sequential(conv, nn.BatchNorm2d(scaled(out, w))) if batch_norm else conv)
            c = scaled(out, w)
        layers += [nn.ReLU(), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*layers)
        self.mid = self.out = c
        # The channels of the maps to_conv4_3 hands to `finer`: conv3_3's, then conv2_2's.
        self.finer_channels = (scaled(256, w), scaled(128, w))

    def to_conv4_3(self, x, finer=None):
        """features 0..22; with `finer`, also conv3_3's output and conv2_2's (after their ReLUs)."""
        conv2_2 = self.features[:9](x)
        conv3_3 = self.features[9:16](conv2_2)
        if finer is not None:
            finer += [conv3_3, conv2_2]
        return self.features[16:23](conv3_3)


class RepVGGBlock(nn.Module):
    def __init__(self, i, o, stride, relu=True, identity=True):
        super().__init__()
        self.rbr_dense, self.rbr_1x1 = conv_bn(i, o, 3, stride, 1), conv_bn(i, o, 1, stride, 0)
        self.rbr_identity = nn.BatchNorm2d(o) if identity and i == o and stride == 1 else None
        self.relu = relu

    def forward(self, x):
        y = self.rbr_dense(x) + self.rbr_1x1(x) + (self.rbr_identity(x) if self.rbr_identity is not None else 0)
        return F.relu(y) if self.relu else y


class LandmarkBranch(nn.Module):
    """src/nets/branches.ts LandmarkBranch: 1x1 32, 3x3 64 64 128, up, 64 64, up, 32 32, up, 16, 8 maps."""

    def __init__(self, cin, w, rep, context=False, maps=8, skips=(), join_bias=True):
        super().__init__()
        # skips (bench/real_data_torch.py --landmark-skips): the channel counts of the trunk's finer
        # maps (layer1 at twice the branch input's size, the stem at four times), each added through a
        # 1x1 convolution to the branch after the upsampling that reaches its size, as a U-Net does.
        # join_bias: the replica's joins carry a bias (as its runs were made); clothtag's do not (the
        # upsampling has one), and bench net's timing (join_bias False) builds clothtag's.
        self.skip_convs = nn.ModuleList()
        steps, c = [nn.Conv2d(cin, scaled(32, w), 1), nn.ReLU()], scaled(32, w)
        # context (bench/real_data_torch.py --landmark-context): the input's global average, through a
        # zero-started linear layer, added to the first layer's output at every pixel, so that each
        # map can depend on what the whole garment is (a dress's waistline is not a skirt's).
        self.context = nn.Linear(cin, c) if context else None
        if context:
            nn.init.zeros_(self.context.weight)
            nn.init.zeros_(self.context.bias)
        plan = [64, 64, 128, 'up64', 64, 64, 'up32', 32, 32, 'up16', 16, 'last8']
        for p in plan:
            if isinstance(p, str) and p.startswith('up'):
                o = scaled(int(p[2:]), w)
                steps += [nn.ConvTranspose2d(c, o, 4, 2, 1), nn.ReLU()]
                if len(self.skip_convs) < len(skips):
                    self.skip_convs.append(nn.Conv2d(skips[len(self.skip_convs)], o, 1, bias=join_bias))
            else:
                last = p == 'last8'
                o = maps if last else scaled(p, w)
                steps.append(RepVGGBlock(c, o, 1, not last) if rep else nn.Conv2d(c, o, 3, 1, 1))
                if not rep and not last:
                    steps.append(nn.ReLU())
            c = o
        self.steps = nn.Sequential(*steps)

    def forward(self, x, finer=()):
        if len(self.skip_convs):
            y, joined = x, 0
            for step in self.steps:
                y = step(y)
                # After an upsampling, before its ReLU (the next step): the finer map of that size.
                if isinstance(step, nn.ConvTranspose2d) and joined < len(self.skip_convs):
                    y = y + self.skip_convs[joined](finer[joined])
                    joined += 1
            return y
        if self.context is None:
            return self.steps(x)
        y = F.relu(self.steps[0](x) + self.context(x.mean((2, 3)))[:, :, None, None])
        return self.steps[2:](y)


class AttentionBranch(nn.Module):
    def __init__(self, C, w):
        super().__init__()
        s = lambda n: scaled(n, w)
        self.conv_in = nn.Conv2d(C + 1, s(32), 1)
        self.down1, self.bn_down1 = nn.Conv2d(s(32), s(64), 4, 2, 1), nn.BatchNorm2d(s(64))
        self.down2, self.bn_down2 = nn.Conv2d(s(64), s(128), 4, 2, 1), nn.BatchNorm2d(s(128))
        self.up1, self.bn_up1 = nn.ConvTranspose2d(s(128), s(64), 4, 2, 1), nn.BatchNorm2d(s(64))
        self.mix1, self.mix2 = nn.ConvTranspose2d(s(64), s(128), 1), nn.ConvTranspose2d(s(128), s(128), 1)
        self.up2, self.bn_up2 = nn.ConvTranspose2d(s(128), C, 4, 2, 1), nn.BatchNorm2d(C)

    def forward(self, f, heatmaps):
        H, W = f.shape[2:]
        strongest = F.interpolate(heatmaps.amax(1, keepdim=True), (H, W), mode='bilinear', align_corners=False)
        y = F.relu(self.conv_in(torch.cat([f, strongest], 1)))
        y = F.relu(self.bn_down1(self.down1(y)))
        y = F.relu(self.bn_down2(self.down2(y)))
        y = F.relu(self.bn_up1(self.up1(y)))
        y = F.relu(self.mix2(F.relu(self.mix1(y))))
        y = self.bn_up2(self.up2(y))
        if y.shape[2:] != (H, W):
            y = F.interpolate(y, (H, W), mode='bilinear', align_corners=False)
        return torch.sigmoid(y)


class ClothNet(nn.Module):
    """stem_stride, head_width: clothtag's --stem-stride and --head-width (bench/real_data_torch.py)."""

    def __init__(self, net, w, categories, attributes, stem_stride=2, head_width=None, landmark_context=False, garment_types=0, landmark_skips=False, join_bias=True, vgg_bn=False, attribute_grid=1, attribute_pool='avg'):
        super().__init__()
        hw = head_width or w
        self.net = net
        if net in ('cloth_resnet_a', 'cloth_resnet_b', 'new_fashionnet'):
            self.trunk = ResNet50(w, stem_stride)
        elif net == 'fashionnet':
            self.trunk = VGG16(w, stem_stride, vgg_bn)
        else:
            widths, depths = [scaled(c, w) for c in (48, 48, 96, 192, 1280)], (1, 2, 4, 14, 1)
            blocks, c = [], 3
            for stage, (o, depth) in enumerate(zip(widths, depths)):
                for b in range(depth):
                    blocks.append(RepVGGBlock(c, o, 1 if b else stem_stride if stage == 0 else 2, True, stage > 0))
                    c = o
            self.trunk = nn.Sequential(*blocks)
            self.trunk.out = c
            # Where the stage before the last ends, and its width (--attribute-pool avg+stage3).
            self.trunk.stage3_end, self.trunk.stage3_out = sum(depths[:-1]), widths[-2]
        feat = self.trunk.out
        cat_in = feat
        if net == 'cloth_resnet_b':
            self.category_fc = nn.Linear(feat, scaled(1024, w))
            cat_in = scaled(1024, w)
            convs, c = [], feat
            for o in (512, 512, 2048):
                convs += [conv_bn(c, scaled(o, w), 3, 1, 1), nn.ReLU()]
                c = scaled(o, w)
            self.attribute_convs = nn.Sequential(*convs)
            feat = c
        if net in ('fashionnet', 'new_fashionnet'):
            # garment_types > 0 (bench/real_data_torch.py --typed-landmarks): a set of 8 maps per garment
            # type, and a head that tells the type, so that a dress's waistline has maps of its own.
            # landmark_skips: the trunk's finer maps (New FashionNet's layer1 and stem, FashionNet's conv3_3 and conv2_2).
            skips = self.trunk.finer_channels if landmark_skips else ()
            self.landmarks = LandmarkBranch(self.trunk.mid, hw, net == 'new_fashionnet', landmark_context, 8 * max(1, garment_types), skips, join_bias)
            self.attention = AttentionBranch(self.trunk.mid, hw)
        if net == 'fashionnet':
            self.fc = nn.Linear(self.trunk.out * 49, scaled(4096, w))
            feat = cat_in = scaled(4096, w)
        self.category = nn.Linear(cat_in, categories) if categories else None
        self.attribute_grid = attribute_grid
        # cloth_repvgg's attribute head reads the last map's average ('avg'), its average and maximum
        # ('avgmax'), or its average and the average of the stage before it ('avg+stage3', 8x8 at stride 1).
        self.attribute_pool = attribute_pool
        pooled_in = {'avg': feat, 'avgmax': 2 * feat, 'avg+stage3': feat + getattr(self.trunk, 'stage3_out', 0)}[attribute_pool]
        self.attributes = nn.Linear(pooled_in * attribute_grid ** 2, attributes) if attributes else None
        self.garment_type = nn.Linear(feat, garment_types) if garment_types else None
        self.type_logits = None
        # bench/real_data_torch.py --detach-attention: the attention branch reads the heatmaps without
        # passing its gradient back into them, so the labels' losses cannot reshape the landmark maps.
        self.detach_attention = False

    def forward(self, x):
        """(category logits, attribute logits, heatmaps); None for what the network lacks."""
        gap = lambda t: t.mean((2, 3))
        head = lambda layer, v: layer(v) if layer is not None else None
        if self.net in ('cloth_resnet_a', 'cloth_repvgg'):
            if self.net == 'cloth_repvgg' and self.attribute_pool == 'avg+stage3':
                m = self.trunk[:self.trunk.stage3_end](x)
                f = self.trunk[self.trunk.stage3_end:](m)
            else:
                f = self.trunk.from_layer3(self.trunk.to_layer2(x)) if self.net == 'cloth_resnet_a' else self.trunk(x)
            p = gap(f)
            # attribute_grid > 1 (bench/real_data_torch.py --attribute-grid): the attribute head reads the
            # last map averaged over a grid of cells, flattened, so that where a feature lies can count.
            q = F.adaptive_avg_pool2d(f, self.attribute_grid).flatten(1) if self.attribute_grid > 1 else p
            if self.attribute_pool == 'avgmax':
                q = torch.cat([q, f.amax((2, 3))], 1)
            elif self.attribute_pool == 'avg+stage3':
                q = torch.cat([q, gap(m)], 1)
            return head(self.category, p), head(self.attributes, q), None
        if self.net == 'cloth_resnet_b':
            f = self.trunk.from_layer3(self.trunk.to_layer2(x))
            c = self.category(F.relu(self.category_fc(gap(f))))
            return c, self.attributes(gap(self.attribute_convs(f))), None
        finer = []
        f = self.trunk.to_conv4_3(x, finer) if self.net == 'fashionnet' else self.trunk.to_layer2(x, finer)
        heatmaps = self.landmarks(f, finer)
        if heatmaps.shape[2:] != x.shape[2:]:
            heatmaps = F.interpolate(heatmaps, x.shape[2:], mode='bilinear', align_corners=False)
        fused = f * (0.5 + self.attention(f, heatmaps.detach() if self.detach_attention else heatmaps))
        if self.net == 'fashionnet':
            pooled = F.adaptive_avg_pool2d(self.trunk.features[23:](fused), 7).flatten(1)
            hidden = F.dropout(F.relu(self.fc(pooled)), 0.5, self.training)
            return head(self.category, hidden), head(self.attributes, hidden), heatmaps
        p = gap(self.trunk.from_layer3(fused))
        self.type_logits = head(self.garment_type, p)
        return head(self.category, p), head(self.attributes, p), heatmaps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--net', required=True, choices=('cloth_resnet_a', 'cloth_resnet_b', 'cloth_repvgg', 'fashionnet', 'new_fashionnet'))
    ap.add_argument('--width', type=float, default=0.25)
    ap.add_argument('--head-width', type=float, help='the landmark and attention branches\' width (default: --width)')
    ap.add_argument('--size', type=int, default=64)
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--steps', type=int, default=5)
    ap.add_argument('--categories', type=int, default=50)
    ap.add_argument('--attributes', type=int, default=1000)
    ap.add_argument('--landmark-skips', action='store_true', help='the landmark branch joined to the trunk\'s finer maps (clothtag bench net --landmark-skips on)')
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    net = ClothNet(a.net, a.width, a.categories, a.attributes, head_width=a.head_width, landmark_skips=a.landmark_skips, join_bias=False)
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    n, S = a.batch, a.size
    x = torch.randn(n, 3, S, S)
    category = torch.randint(0, a.categories, (n,))
    attributes = (torch.rand(n, a.attributes) < 0.05).float()
    targets = torch.rand(n, 8, S, S)

    def step():
        c, at, heatmaps = net(x)
        bce = F.binary_cross_entropy_with_logits(at, attributes, reduction='none')
        loss = F.cross_entropy(c, category) + 20 * (bce * (0.1 + 0.9 * attributes)).mean()
        if heatmaps is not None:
            loss = loss + 2000 * F.mse_loss(heatmaps, targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    net.train()
    first = [step() for _ in range(2)][0]  # warm-up
    t0 = time.perf_counter()
    for _ in range(a.steps):
        last = step()
    ms = (time.perf_counter() - t0) * 1000 / a.steps
    print(json.dumps({'net': a.net, 'width': a.width, 'size': S, 'batch': n, 'threads': a.threads, 'torch': torch.__version__,
                      'parameters': sum(p.numel() for p in net.parameters()), 'stepMs': ms, 'imagesPerSecond': 1000 * n / ms,
                      'firstLoss': first, 'lastLoss': last}))


if __name__ == '__main__':
    main()
