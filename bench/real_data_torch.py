#!/usr/bin/python3
"""`bench real-data`'s jobs replicated in PyTorch on the CPU: what limits them, measured in minutes.

A 12-epoch run of clothtag on lavapipe takes 30-250 minutes here; the same training in PyTorch
on the same two cores takes 5-20, so the questions "is it the recipe or the network?" and "what
would a change give?" are asked here first and the answer is then run in clothtag. The networks
are bench/torch_cpu.py's (built as src/nets builds them, parameter counts checked by a test), with
clothtag's --stem-stride; the data is read as clothtag reads it (box crops or whole photos resized
to 64x64 bicubic, ImageNet normalization, landmarks in 8 slots in the box's frame, flips that swap
left and right); the recipe is AdamW without decay on BatchNorm and biases and a one-cycle rate.
Jobs (one seed each; printed per epoch):
  clothing-small  category top-1; --arch repvgg (cloth_repvgg) or plain: the 8-layer CNN of issue
                  #11's reference (3x3 conv-BN-ReLU pairs at 32-64-128-256 channels times --width,
                  max-pools between), or fashionnet: FashionNet (--vgg-bn, --head-width and
                  --landmark-skips as for landmarks; its branches unsupervised), whose VGG trunk
                  --pretrained starts from a clothtag checkpoint's (the landmark job's)
  attributes      deepfashion-fine, cloth_repvgg (or --arch plain), per-image attribute recall@3
                  and @5 (BCE with w_pos 1, w_neg 0.1; or --attribute-loss softmax: cross-entropy
                  within each attribute type)
  landmarks       deepfashion-fine, new_fashionnet (--landmark-net fashionnet: FashionNet) with
                  attributes (--head-width: its branches'
                  own width), soft-argmax landmarks (L1 in units of the frame, visible points) with
                  the learned location prior started at the training split's mean positions: NME
                  beside the mean-position baseline, and with test-time flips; --wl W sets that
                  L1's weight (20); --local-decode R... also prints the NME of a soft-argmax read
                  within R map pixels of each map's peak; --map-js W adds
                  DSNT's Jensen-Shannon map regularizer at weight W; --landmark-context gives the
                  branch its input's global average; --typed-landmarks a set of 8 maps per garment
                  type and a head that tells the type (also printed: the type's accuracy, the NME
                  with the annotated type's maps, and with the box's aspect ratio as more evidence);
                  --jitter, --rotate and --color: clothtag's `--augment light` (box jitter 0.1,
                  rotations up to 10 degrees, colour 0.2), the windows read from crops of the box
                  grown 1.4 times so that a moved window sees the photo around the box;
                  --map-gain G scales the branch's maps in the soft-argmax's logits;
                  --deep-supervision W adds the landmark L1 (weight W x --wl) on maps read from
                  the branch's 16x16 and 32x32 stages; --landmark-distance euclid trains on the
                  Euclidean distance instead of the L1; --beta2 sets Adam's second-moment decay
  attributes flags: --box-aspect adds a small network of the box's aspect ratio (which the stretched
                  crop hides) to the attribute logits; --temperature-bound prints, at the last epoch,
                  what a temperature per attribute type could add to recall@3 and @5 (softmax);
                  --attribute-smoothing S label-smooths the softmax within each type;
                  --trunk-lr-scale K trains a --trunk-from trunk at K times the heads' peak rate;
                  the last epoch also prints recall and top-1 per type on 1,000 training photos
Runs where Debian's python3-torch is installed; never in tests:

    /usr/bin/python3 bench/real_data_torch.py --job clothing-small --width 0.25 --stem-stride 1 --batch 16
    /usr/bin/python3 bench/real_data_torch.py --job landmarks --width 0.125 --stem-stride 1 --batch 32
    /usr/bin/python3 bench/real_data_torch.py --job landmarks --width 0.125 --head-width 0.5 --batch 32
    /usr/bin/python3 bench/real_data_torch.py --job landmarks --width 0.125 --head-width 0.5 --batch 32 --typed-landmarks
    /usr/bin/python3 bench/real_data_torch.py --job attributes --arch plain --width 0.5 --batch 32
    /usr/bin/python3 bench/real_data_torch.py --job clothing-small --arch fashionnet --vgg-bn --width 0.25 --head-width 0.5 --landmark-skips --init clothtag --batch 16 --lr 2e-3 --weight-decay 0.05 --pretrained runs/bench-L2/deepfashion-fine-landmarks/weights/last.safetensors
"""
import argparse, json, os, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from torch_cpu import ClothNet

MEAN = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
STD = torch.tensor([0.229, 0.224, 0.225])[:, None, None]


def normalized(images):
    # contiguous: a channels-last batch takes another convolution path, which crashed this PyTorch (1.13)
    x = torch.tensor(np.stack(images)).permute(0, 3, 1, 2).contiguous().float() / 255
    return (x - MEAN) / STD


def load_folders(root, size):
    """clothing-small: every photo of train/ and val/ resized whole, its class, and whether it is val."""
    classes = sorted(os.listdir(os.path.join(root, 'train')))
    images, labels, is_val = [], [], []
    for split in ('train', 'val'):
        for index, name in enumerate(classes):
            folder = os.path.join(root, split, name)
            for f in sorted(os.listdir(folder)):
                im = Image.open(os.path.join(folder, f)).convert('RGB').resize((size, size), Image.BICUBIC)
                images.append(np.asarray(im, dtype=np.uint8))
                labels.append(index)
                is_val.append(split == 'val')
    return {'x': normalized(images), 'category': torch.tensor(labels), 'is_val': torch.tensor(is_val), 'classes': len(classes)}


# The slots of clothtag's 8 landmarks (left/right collar, sleeve, waistline, hem) by point count.
SLOTS = {6: (0, 1, 2, 3, 6, 7), 4: (4, 5, 6, 7), 8: tuple(range(8))}
MIRROR = [1, 0, 3, 2, 5, 4, 7, 6]


def mirrored_where(marks, flip):
    """Landmark rows [N, 8, 3] of the photos that were flipped (flip [N] bool) mirrored with them:
    x -> 1 - x for the listed points, left and right swapped."""
    mirrored = marks[:, MIRROR].clone()
    mirrored[:, :, 1] = torch.where(mirrored[:, :, 0] >= 0, 1 - mirrored[:, :, 1], mirrored[:, :, 1])
    return torch.where(flip[:, None, None], mirrored, marks)


def rows(path):
    return [line.split() for line in open(path).read().split('\n')[2:] if line.strip()]


WIDE = 1.4  # --jitter/--rotate: the box grown this much about its centre, so a moved window has the photo around it


def square_about(x1, y1, x2, y2):
    """The square about a box's centre whose side is the box's longer side (--crop square)."""
    cx, cy, half = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1) / 2
    return round(cx - half), round(cy - half), round(cx + half), round(cy + half)


def edge_crop(photo, x1, y1, x2, y2):
    """photo.crop, with what lies outside the photo filled by its edge pixels, as clothtag's cropResize does."""
    w, h = photo.size
    if x1 >= 0 and y1 >= 0 and x2 <= w and y2 <= h:
        return photo.crop((x1, y1, x2, y2))
    a = np.asarray(photo)
    left, top, right, bottom = max(0, -x1), max(0, -y1), max(0, x2 - w), max(0, y2 - h)
    a = np.pad(a, ((top, bottom), (left, right), (0, 0)), mode='edge')
    return Image.fromarray(a[y1 + top:y2 + top, x1 + left:x2 + left])


def load_deepfashion(root, size, wide=False, crop='box', margin=0.0):
    """deepfashion-fine: box crops, attributes (1/0), landmarks [8, (visibility, x, y)] in the box's frame;
    with `wide`, also crops of the box grown WIDE times about its centre (x_wide), for --jitter and --rotate.
    crop 'square': the square about the box (square_about) instead of the box stretched to a square, so
    that the garment keeps its shape; the landmarks are then in that square's frame. margin: each side of
    the box moved out by that share of the box's width or height first (--box-margin), so that the crop
    also shows what lies around the garment."""
    boxes = {r[0]: list(map(int, r[1:])) for r in rows(os.path.join(root, 'Anno', 'list_bbox.txt'))}
    split = {r[0]: r[1] for r in rows(os.path.join(root, 'Eval', 'list_eval_partition.txt'))}
    marks = {r[0]: r[3:] for r in rows(os.path.join(root, 'Anno', 'list_landmarks.txt'))}
    images, attributes, landmarks, is_val, aspects, wides = [], [], [], [], [], []
    for name, *values in rows(os.path.join(root, 'Anno', 'list_attr_img.txt')):
        bx1, by1, bx2, by2 = boxes[name]
        if margin > 0:
            mx, my = margin * (bx2 - bx1), margin * (by2 - by1)
            bx1, by1, bx2, by2 = round(bx1 - mx), round(by1 - my), round(bx2 + mx), round(by2 + my)
        x1, y1, x2, y2 = square_about(bx1, by1, bx2, by2) if crop == 'square' else (bx1, by1, bx2, by2)
        photo = Image.open(os.path.join(root, name)).convert('RGB')
        im = edge_crop(photo, x1, y1, x2, y2).resize((size, size), Image.BICUBIC)
        if wide:
            cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, WIDE * (x2 - x1) / 2, WIDE * (y2 - y1) / 2
            side = round(size * WIDE)
            wides.append(np.asarray(photo.crop((round(cx - hw), round(cy - hh), round(cx + hw), round(cy + hh))).resize((side, side), Image.BICUBIC), dtype=np.uint8))
        points = np.full((8, 3), -1.0)
        v = marks.get(name, [])
        for j, slot in enumerate(SLOTS.get(len(v) // 3, ())):
            visibility, px, py = map(float, v[3 * j:3 * j + 3])
            points[slot] = (visibility, (px - x1) / (x2 - x1), (py - y1) / (y2 - y1))
        images.append(np.asarray(im, dtype=np.uint8))
        attributes.append([1.0 if a == '1' else 0.0 for a in values])
        landmarks.append(points)
        is_val.append(split[name] == 'val')
        aspects.append(np.log((by2 - by1) / (bx2 - bx1)))
    types = [int(r[-1]) for r in rows(os.path.join(root, 'Anno', 'list_attr_cloth.txt'))]
    return {'x': normalized(images), 'x_wide': normalized(wides) if wide else None, 'attributes': torch.tensor(attributes), 'landmarks': torch.tensor(np.stack(landmarks), dtype=torch.float32), 'is_val': torch.tensor(is_val), 'types': torch.tensor(types),
            'aspect': torch.tensor(aspects, dtype=torch.float32)}


def moved_windows(wide, marks, size, jitter, degrees):
    """clothtag's --augment light, geometrically: a window of each box's frame with its sides scaled by
    [1 - jitter, 1 + jitter], its centre moved by up to jitter, turned by up to `degrees`, read from the
    crops of the box grown WIDE times (bilinear) at size x size; the landmarks [N, 8, 3] moved into it,
    and a point that leaves it marked truncated (2), so no longer supervised."""
    n = len(wide)
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(n)
    sx, sy = u(1 - jitter, 1 + jitter), u(1 - jitter, 1 + jitter)
    dx, dy = u(-jitter, jitter), u(-jitter, jitter)
    t = u(-degrees, degrees) * np.pi / 180
    cos, sin = t.cos(), t.sin()
    # Window coordinates o in [-1, 1] -> the box's frame u = (0.5 + d) + R diag(s) o / 2 -> the wide crop's [-1, 1]: (2u - 1) / WIDE.
    theta = torch.stack([torch.stack([cos * sx, -sin * sy, 2 * dx], 1), torch.stack([sin * sx, cos * sy, 2 * dy], 1)], 1) / WIDE
    grid = F.affine_grid(theta, [n, 3, size, size], align_corners=False)
    images = F.grid_sample(wide, grid, mode='bilinear', padding_mode='border', align_corners=False)
    if marks is None:
        return images, None
    marks = marks.clone()
    rx, ry = 2 * (marks[:, :, 1] - 0.5 - dx[:, None]), 2 * (marks[:, :, 2] - 0.5 - dy[:, None])
    ox = (cos[:, None] * rx + sin[:, None] * ry) / sx[:, None]
    oy = (-sin[:, None] * rx + cos[:, None] * ry) / sy[:, None]
    listed = marks[:, :, 0] >= 0
    marks[:, :, 1] = torch.where(listed, (ox + 1) / 2, marks[:, :, 1])
    marks[:, :, 2] = torch.where(listed, (oy + 1) / 2, marks[:, :, 2])
    outside = listed & ((marks[:, :, 1] < 0) | (marks[:, :, 1] > 1) | (marks[:, :, 2] < 0) | (marks[:, :, 2] > 1))
    marks[:, :, 0] = torch.where(outside, torch.full_like(marks[:, :, 0], 2), marks[:, :, 0])
    return images, marks


def colour_jitter(x, c):
    """Brightness, contrast and saturation each scaled by a factor in [1 - c, 1 + c], on the 0-1 pixels."""
    n = len(x)
    f = lambda: (1 - c + 2 * c * torch.rand(n))[:, None, None, None]
    grey = lambda v: (0.299 * v[:, 0] + 0.587 * v[:, 1] + 0.114 * v[:, 2])[:, None]
    p = (x * STD + MEAN) * f()
    mean_grey = grey(p).mean((2, 3), keepdim=True)
    p = (p - mean_grey) * f() + mean_grey
    g = grey(p)
    p = (g + (p - g) * f()).clamp(0, 1)
    return (p - MEAN) / STD


def per_type(logits, types, fn):
    """fn(logits of one attribute type, its columns) for each type, e.g. a softmax within each type."""
    out = torch.empty_like(logits)
    for t in types.unique():
        columns = torch.where(types == t)[0]
        out[:, columns] = fn(logits[:, columns])
    return out


def trunk_state(net):
    """What --save-trunk saves and --trunk-from loads: the trunk, and for FashionNet also its fully
    connected layer (what `clothtag train --pretrained` carries over)."""
    return nn.ModuleDict({'trunk': net.trunk, 'fc': net.fc}) if net.net == 'fashionnet' else net.trunk


def load_clothtag_trunk(net, path):
    """Starts a FashionNet's VGG trunk (its 13 convolutions, their BatchNorms with --vgg-bn, and the
    fully connected layer) from a clothtag checkpoint of the same shape, as `clothtag train
    --pretrained` does: clothtag names them as torchvision's VGG-16(-BN) does, this replica keeps
    VGG-16's indices with each convolution and its BatchNorm in one slot."""
    with open(path, 'rb') as f:
        size = int.from_bytes(f.read(8), 'little')
        header = json.loads(f.read(size))
        body = f.read()
    def tensor(name):
        info = header[name]
        assert info['dtype'] == 'F32', f'{path}: {name} is {info["dtype"]}, not F32'
        start, end = info['data_offsets']
        return torch.from_numpy(np.frombuffer(body[start:end], dtype=np.float32).copy()).view(info['shape'])
    # clothtag's convolutions, in order: the features.N whose weight is 4-dimensional (a BatchNorm's
    # sits at N + 1 after its convolution's in VGG-16-BN's numbering).
    theirs = sorted(int(k.split('.')[1]) for k, v in header.items() if k.startswith('features.') and k.endswith('.weight') and len(v['shape']) == 4)
    slots = [m for m in net.trunk.features if isinstance(m, (nn.Conv2d, nn.Sequential))]
    with torch.no_grad():
        for index, slot in zip(theirs, slots):
            conv = slot[0] if isinstance(slot, nn.Sequential) else slot
            conv.weight.copy_(tensor(f'features.{index}.weight'))
            conv.bias.copy_(tensor(f'features.{index}.bias'))
            if isinstance(slot, nn.Sequential):
                norm = slot[1]
                for field in ('weight', 'bias', 'running_mean', 'running_var'):
                    getattr(norm, field).copy_(tensor(f'features.{index + 1}.{field}'))
        net.fc.weight.copy_(tensor('classifier.0.weight'))
        net.fc.bias.copy_(tensor('classifier.0.bias'))


def plain(width, classes):
    def cbr(i, o):
        return nn.Sequential(nn.Conv2d(i, o, 3, 1, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU())
    a, b, c, d = (max(1, int(width * v)) for v in (32, 64, 128, 256))
    body = nn.Sequential(cbr(3, a), cbr(a, a), nn.MaxPool2d(2), cbr(a, b), cbr(b, b), nn.MaxPool2d(2),
                         cbr(b, c), cbr(c, c), nn.MaxPool2d(2), cbr(c, d), cbr(d, d),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(d, classes))
    return body, lambda x: (body(x), None, None)


def expected_centre(p):
    """[N, 8, S, S] probability maps -> each map's expected pixel centre [N, 8, 2] (x, y) as fractions of the frame."""
    centres = (torch.arange(p.shape[-1]) + 0.5) / p.shape[-1]
    return torch.stack([(p.sum(2) * centres).sum(2), (p.sum(3) * centres).sum(2)], 2)


class LocationPrior(nn.Module):
    """src/nets/branches.ts LocationPrior: a learned [1, 8, 16, 16] map x 10 added to the heatmap logits."""

    def __init__(self, means, spread=0.1, gain=1.0):
        super().__init__()
        self.gain = gain  # --map-gain: the heatmaps' scale in the logits
        g = (torch.arange(16) + 0.5) / 16
        maps = [-((g[None, :] - mx) ** 2 + (g[:, None] - my) ** 2) / (2 * spread ** 2) / 10 for mx, my in means.tolist()]
        self.map = nn.Parameter(torch.stack(maps)[None])

    def logits(self, heatmaps):
        """The heatmaps with the prior added, the logits every softmax below reads."""
        return self.gain * heatmaps + 10 * F.interpolate(self.map, heatmaps.shape[2:], mode='bilinear', align_corners=False)

    def points(self, heatmaps):
        """Soft-argmax of heatmaps + prior: the expected pixel centre [N, 8, 2] as fractions of the frame."""
        logits = self.logits(heatmaps)
        return expected_centre(F.softmax(logits.flatten(2), 2).view(logits.shape))

    def local_points(self, heatmaps, radius):
        """The soft-argmax within `radius` map pixels (a square window) of each map's peak: a broad or
        two-peaked map's far mass no longer pulls the point towards the frame's middle."""
        S = heatmaps.shape[-1]
        logits = self.logits(heatmaps)
        peak = logits.flatten(2).argmax(2)
        py, px = peak // S, peak % S
        grid = torch.arange(S)
        inside = ((grid[None, None, :, None] - py[:, :, None, None]).abs() <= radius) & ((grid[None, None, None, :] - px[:, :, None, None]).abs() <= radius)
        return expected_centre(F.softmax(logits.masked_fill(~inside, float('-inf')).flatten(2), 2).view(logits.shape))


def map_divergence(prior, heatmaps, points, sigma):
    """[N, 8] Jensen-Shannon divergence between each softmax map (heatmaps + prior) and a Gaussian
    of `sigma` map pixels at the point (DSNT's regularizer, Nibali et al. 2018)."""
    logits = prior.logits(heatmaps)
    H, W = logits.shape[2:]
    log_p = F.log_softmax(logits.flatten(2), 2)
    gx, gy = (torch.arange(W) + 0.5) / W, (torch.arange(H) + 0.5) / H
    tx, ty = points[:, :, 0].clamp(0, 1), points[:, :, 1].clamp(0, 1)
    two_s2 = 2 * (sigma / W) ** 2
    gauss = -((gx[None, None, None, :] - tx[:, :, None, None]) ** 2 + (gy[None, None, :, None] - ty[:, :, None, None]) ** 2) / two_s2
    q = F.softmax(gauss.flatten(2), 2)
    p = log_p.exp()
    log_m = ((p + q) / 2).clamp(min=1e-12).log()
    return 0.5 * (p * (log_p - log_m)).sum(2) + 0.5 * (q * (q.clamp(min=1e-12).log() - log_m)).sum(2)


def mean_positions(landmarks):
    """Each slot's mean visible position [8, 2] (0.5 where a slot is never seen)."""
    visible = landmarks[:, :, 0] == 0
    return torch.stack([landmarks[visible[:, s], s, 1:].mean(0) if visible[:, s].any() else torch.full((2,), 0.5) for s in range(8)])


def nme(points, landmarks):
    visible = landmarks[:, :, 0] == 0
    return (points - landmarks[:, :, 1:]).norm(dim=2)[visible].mean().item()


def per_part(points, landmarks):
    """NME of each pair of slots (collars, sleeves, waistlines, hems), visible points."""
    visible = landmarks[:, :, 0] == 0
    error = (points - landmarks[:, :, 1:]).norm(dim=2)
    return [error[:, s:s + 2][visible[:, s:s + 2]].mean().item() for s in (0, 2, 4, 6)]


def type_means(landmarks):
    """Each garment type's mean positions (the type: the slots its row lists), {mask: [8, 2]}."""
    masks = ((landmarks[:, :, 0] >= 0).long() << torch.arange(8)).sum(1)
    return masks, {int(m): mean_positions(landmarks[masks == m]) for m in masks.unique()}


def temperature_bound(logits, attributes, types):
    """How much recall@3 and @5 hang on calibration across types: the per-type probabilities ranked as
    trained, with one temperature per type chosen on the validation photos themselves (a bound no
    method reaches), and chosen on each half of them and scored on the other (what one could reach)."""
    grid = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.15, 1.3, 1.5, 1.75, 2.0, 2.5)
    kinds = types.unique()

    def probs(rows, temps):
        # Each column divided by its type's temperature, then the softmax within each type.
        per_column = torch.tensor(temps)[torch.searchsorted(kinds, types)]
        return per_type(logits[rows] / per_column, types, lambda v: F.softmax(v, 1))

    def fit(rows, k):
        temps = [1.0] * len(kinds)
        for _ in range(3):  # coordinate ascent, a grid per type
            for i in range(len(kinds)):
                temps[i] = max(grid, key=lambda g: recall(probs(rows, temps[:i] + [g] + temps[i + 1:]), attributes[rows], k))
        return temps

    everyone = torch.arange(len(logits))
    halves = torch.randperm(len(logits), generator=torch.Generator().manual_seed(0)).chunk(2)
    out = []
    for k in (3, 5):
        trained = recall(probs(everyone, [1.0] * len(kinds)), attributes, k)
        bound = recall(probs(everyone, fit(everyone, k)), attributes, k)
        crossed = sum(recall(probs(b, fit(a, k)), attributes[b], k) for a, b in (halves, halves[::-1])) / 2
        out.append((trained, bound, crossed))
    return out


def recall(logits, attributes, k):
    hits = attributes.gather(1, logits.topk(k, 1).indices).sum(1)
    return (hits / attributes.sum(1).clamp(min=1)).mean().item()


def type_top1(logits, attributes, types):
    """Each attribute type's top-1 accuracy: the share of photos whose highest-scored answer of the type is
    theirs (clothtag eval's per-type table), among photos with an answer of that type."""
    out = []
    for t in types.unique():
        cols = (types == t).nonzero().squeeze(1)
        truth, has = attributes[:, cols], attributes[:, cols].sum(1) > 0
        hit = truth.gather(1, logits[:, cols].argmax(1, keepdim=True)).squeeze(1)
        out.append(hit[has].mean().item())
    return out


def recall_text(scores, attributes):
    return f'recall@3 {100 * recall(scores, attributes, 3):.1f}% @5 {100 * recall(scores, attributes, 5):.1f}%'


def type_top1_text(scores, attributes, types):
    return 'top-1 per type ' + ' / '.join(f'{100 * v:.1f}' for v in type_top1(scores, attributes, types))


def multiply_adds(net, model, x):
    total = [0]

    def count(m, inputs, out):
        # A convolution: each output value sums C_in x k x k products; a transposed one: each input value spreads to C_out x k x k.
        each, n = (m.in_channels, out[0].numel()) if isinstance(m, nn.Conv2d) else (m.out_channels, inputs[0][0].numel())
        total[0] += n * each * m.kernel_size[0] * m.kernel_size[1] // m.groups
    hooks = [m.register_forward_hook(count) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    net.eval()
    with torch.no_grad():
        model(x[:1])
    for h in hooks:
        h.remove()
    return total[0]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument('--job', choices=('clothing-small', 'attributes', 'landmarks'), default='clothing-small')
    ap.add_argument('--shared', default=os.path.join(here, '..', '..', 'shared', 'data'))
    ap.add_argument('--arch', choices=('repvgg', 'plain', 'fashionnet'), default='repvgg',
                    help='clothing-small and attributes; fashionnet (clothing-small only): FashionNet, its branches unsupervised (no landmarks there), --vgg-bn as for landmarks')
    ap.add_argument('--width', type=float, default=0.25)
    ap.add_argument('--landmark-net', choices=('new_fashionnet', 'fashionnet'), default='new_fashionnet', help='the landmarks job\'s network')
    ap.add_argument('--stem-stride', type=int, choices=(1, 2), default=2)
    ap.add_argument('--head-width', type=float, help='the landmark and attention branches\' width (default: --width)')
    ap.add_argument('--size', type=int, default=64)
    ap.add_argument('--box-margin', type=float, default=0.0, help='deepfashion-fine: grow the garment box by this share of its side on each side before cropping (0.1: a crop 1.2 times the box)')
    ap.add_argument('--crop', choices=('box', 'square'), default='box',
                    help="deepfashion-fine: the garment's box stretched to a square (clothtag's), or the square about it, which keeps the garment's shape")
    ap.add_argument('--epochs', type=int, default=12)
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--lr', type=float, help='default 2e-3 (the reference CNN\'s), 5e-3 for landmarks (clothtag\'s landmark job)')
    ap.add_argument('--weight-decay', type=float, help='default 5e-4, 0.05 for landmarks')
    ap.add_argument('--attribute-loss', choices=('bce', 'softmax'), default='bce',
                    help='bce: the thesis\'s weighted BCE; softmax: cross-entropy within each attribute type (its positives share the target), ranked by the per-type probabilities')
    ap.add_argument('--wl', type=float, default=20, help='landmarks: the soft-argmax L1\'s weight (clothtag train --wl)')
    ap.add_argument('--local-decode', type=int, nargs='*', default=[],
                    help='landmarks: also print the NME of a soft-argmax within R map pixels of each map\'s peak, for each R given')
    ap.add_argument('--map-js', type=float, default=0,
                    help='landmarks: weight of a DSNT-style Jensen-Shannon term pulling each softmax map toward a Gaussian at the true point (0: off)')
    ap.add_argument('--map-sigma', type=float, default=1.0, help='that Gaussian\'s sigma, in map pixels')
    ap.add_argument('--landmark-context', action='store_true', help='the landmark branch also reads its input\'s global average (bench/torch_cpu.py LandmarkBranch)')
    ap.add_argument('--landmark-skips', action='store_true', help='the landmark branch also reads the trunk\'s two finer maps (layer1 and the stem; FashionNet\'s conv3_3 and conv2_2), added after its upsamplings (bench/torch_cpu.py LandmarkBranch)')
    ap.add_argument('--typed-landmarks', action='store_true',
                    help='a set of 8 maps (and location prior) per garment type, trained on the row\'s type; a head tells the type, and its answer picks the maps at evaluation')
    ap.add_argument('--type-weight', type=float, default=1.0, help='--typed-landmarks: the garment-type cross-entropy\'s weight')
    ap.add_argument('--detach-attention', action='store_true',
                    help='landmarks: the attention branch reads the heatmaps without sending the labels\' gradient back into them')
    ap.add_argument('--jitter', type=float, default=0,
                    help="deepfashion-fine: the box jittered as clothtag's --augment light does: each side scaled by up to this share, the centre moved by up to it (light: 0.1); the landmarks move with it, a point pushed out is no longer supervised")
    ap.add_argument('--rotate', type=float, default=0, help='deepfashion-fine: random rotations up to this many degrees either way (light: 10)')
    ap.add_argument('--color', type=float, default=0, help='brightness, contrast and saturation factors in [1 - c, 1 + c] (light: 0.2)')
    ap.add_argument('--map-gain', type=float, default=1.0,
                    help='landmarks: the branch\'s heatmaps multiplied by this before the prior is added and the soft-argmax read (1: as clothtag)')
    ap.add_argument('--deep-supervision', type=float, default=0,
                    help='landmarks: weight (a share of --wl) of the same L1 on maps read from the branch\'s 16x16 and 32x32 stages, each through a zero-started 1x1 convolution (0: off)')
    ap.add_argument('--landmark-distance', choices=('l1', 'euclid'), default='l1',
                    help='landmarks: the loss per point, |dx| + |dy| (clothtag\'s) or the Euclidean distance the NME measures')
    ap.add_argument('--vgg-bn', action='store_true', help='--landmark-net fashionnet: a BatchNorm after each of the VGG trunk\'s 13 convolutions (VGG-16-BN)')
    ap.add_argument('--box-aspect', action='store_true',
                    help="attributes: the box's log aspect ratio (standardized over the training split), which the box stretched to a square hides, read by a 1-16-K network whose output (zero at the start) is added to the attribute logits")
    ap.add_argument('--temperature-bound', action='store_true',
                    help='attributes, --attribute-loss softmax: at the last epoch, recall@3 and @5 with a temperature per attribute type, chosen on the validation photos (a bound) and across their halves')
    ap.add_argument('--type-head', type=float, default=0, help='attributes: weight of a cross-entropy telling the garment type (upper, lower, full body, from the landmark row) from the attribute head\'s features (0: off)')
    ap.add_argument('--attribute-grid', type=int, default=1, help='attributes, cloth_repvgg: the attribute head reads the last map averaged over GRID x GRID cells, flattened (1: the global average)')
    ap.add_argument('--save-trunk', help='save the trunk\'s weights here after the last epoch (torch.save of its state_dict; FashionNet\'s also holds its fully connected layer)')
    ap.add_argument('--trunk-from', help='start the trunk from weights saved by --save-trunk (another job\'s, the same network), the heads and branches fresh')
    ap.add_argument('--attribute-pool', choices=('avg', 'avgmax', 'avg+stage3'), default='avg', help='attributes, cloth_repvgg: what the attribute head reads: the last map\'s average, its average and maximum, or its average and the average of the stage before it')
    ap.add_argument('--landmark-aux', type=float, default=0, help='attributes, cloth_repvgg: a linear head on the pooled features also regresses the 8 landmarks (box frame, mirrored with the photo), an L1 over the visible points at this weight')
    ap.add_argument('--joint-catalog', type=float, default=0, help='attributes, cloth_repvgg: also train on clothing-small\'s train split at the same time, with this weight on its cross-entropy (a 10-way head on the pooled features; one pass over the catalog per epoch, its batches beside the attribute batches in one forward)')
    ap.add_argument('--attribute-smoothing', type=float, default=0, help='attributes, --attribute-loss softmax: label smoothing within each type (this share of the target spread over the type\'s answers)')
    ap.add_argument('--trunk-lr-scale', type=float, default=1, help='the trunk\'s peak rate as a share of --lr (the heads keep --lr), for a trunk started with --trunk-from')
    ap.add_argument('--train-limit', type=int, default=0, help='train on this many of the training split\'s photos (a fixed subset, the same for every seed; 0: all)')
    ap.add_argument('--sam', type=float, default=0, help='sharpness-aware minimization with this rho (0.05 is the usual): each step\'s gradient taken again at the weights moved rho along the first one (twice the work per step, the same epochs)')
    ap.add_argument('--mixup', type=float, default=0, help='attributes, --attribute-loss softmax: mixup with this Beta(alpha, alpha) (0.2 is the usual): each batch blended with a shuffle of itself, the per-type targets blended alike (0: off)')
    ap.add_argument('--head-dropout', type=float, default=0, help='attributes: dropout at this rate on the features the attribute head reads, in training (0: off)')
    ap.add_argument('--tta-margins', type=float, nargs='*', help='attributes: after the last epoch also print recall with test-time flips, then with flips over the crops of the box grown by each of these margins too (as --box-margin; none given: flips only)')
    ap.add_argument('--save-scores', help='attributes: save the last epoch\'s validation scores (per-type probabilities with the softmax) here (torch.save)')
    ap.add_argument('--ensemble-with', nargs='+', default=[], help='attributes: also print the recall of the last epoch\'s validation scores averaged with these --save-scores files\' (an ensemble)')
    ap.add_argument('--beta2', type=float, default=0.999, help="Adam's second-moment decay")
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--init', choices=('torch', 'clothtag'), default='torch',
                    help="torch: PyTorch's default conv init (kaiming uniform, a = sqrt(5)); clothtag: kaiming normal over fan_out, as src/nets/layers.ts starts every conv")
    ap.add_argument('--cycle-momentum', type=int, default=1, help='1: the one-cycle schedule also cycles Adam\'s beta1 0.95 -> 0.85 -> 0.95 (PyTorch\'s default, clothtag train --cycle-momentum on); 0: beta1 stays 0.9')
    ap.add_argument('--pretrained', help='clothing-small --arch fashionnet: the VGG trunk and fully connected layer from this clothtag checkpoint (clothtag train --pretrained)')
    a = ap.parse_args()
    if a.pretrained and not (a.job == 'clothing-small' and a.arch == 'fashionnet'):
        ap.error('--pretrained: clothing-small --arch fashionnet only')
    if (a.box_aspect or a.temperature_bound or a.type_head > 0) and a.job != 'attributes':
        ap.error('--box-aspect, --temperature-bound and --type-head: the attributes job only')
    if (a.save_trunk or a.trunk_from) and a.arch == 'plain':
        ap.error('--save-trunk and --trunk-from: cloth_repvgg or FashionNet')
    if a.box_margin > 0 and a.job == 'clothing-small':
        ap.error('--box-margin grows a garment box: deepfashion-fine jobs only')
    repvgg_attribute_flags = {'--attribute-grid': a.attribute_grid > 1, '--attribute-pool': a.attribute_pool != 'avg',
                              '--landmark-aux': a.landmark_aux > 0, '--joint-catalog': a.joint_catalog > 0}
    for flag, used in repvgg_attribute_flags.items():
        if used and (a.job != 'attributes' or a.arch != 'repvgg'):
            ap.error(f'{flag}: the attributes job on cloth_repvgg only')
    if a.type_head > 0 and a.arch == 'plain':
        ap.error('--type-head reads cloth_repvgg\'s pooled features')
    if a.trunk_lr_scale != 1 and not a.trunk_from:
        ap.error('--trunk-lr-scale: for a trunk started with --trunk-from')
    if a.attribute_smoothing and a.attribute_loss != 'softmax':
        ap.error('--attribute-smoothing: --attribute-loss softmax only')
    if a.train_limit < 0:
        ap.error(f'--train-limit {a.train_limit}: a number of photos, 0 (all) or more')
    if a.sam < 0:
        ap.error(f'--sam {a.sam}: rho is a distance, 0 (off) or more')
    # Heads beside the attribute head that read its pooled features (a forward hook on it, below).
    side_heads = a.joint_catalog > 0 or a.landmark_aux > 0 or a.type_head > 0
    if a.mixup < 0:
        ap.error(f'--mixup {a.mixup}: Beta\'s alpha, 0 (off) or more')
    if a.mixup > 0 and (a.job != 'attributes' or a.attribute_loss != 'softmax' or side_heads or a.box_aspect):
        ap.error('--mixup: the attributes job with --attribute-loss softmax, without --joint-catalog, --landmark-aux, --type-head or --box-aspect')
    if not 0 <= a.head_dropout < 1:
        ap.error(f'--head-dropout {a.head_dropout}: a rate in [0, 1)')
    if a.head_dropout > 0 and (a.job != 'attributes' or a.arch == 'plain' or side_heads):
        ap.error('--head-dropout: the attributes job on cloth_repvgg, without --joint-catalog, --landmark-aux or --type-head')
    for flag, path in (('--save-scores', a.save_scores), ('--save-trunk', a.save_trunk)):
        if path and not os.path.isdir(os.path.dirname(path) or '.'):
            ap.error(f'{flag} {path}: its folder does not exist (checked before training, so no run is lost)')
    if (a.save_scores or a.ensemble_with or a.tta_margins is not None) and a.job != 'attributes':
        ap.error('--save-scores, --ensemble-with and --tta-margins: the attributes job only')
    if a.tta_margins is not None and a.box_aspect:
        ap.error('--tta-margins: without --box-aspect (the views were measured on the network alone)')
    if a.tta_margins and (min(a.tta_margins) < 0 or a.crop != 'box'):
        ap.error('--tta-margins: margins of 0 or more, with --crop box')
    if a.temperature_bound and a.attribute_loss != 'softmax':
        ap.error('--temperature-bound: --attribute-loss softmax only (its probabilities are per type)')
    moving_windows = a.jitter > 0 or a.rotate > 0
    if a.job == 'clothing-small' and moving_windows:
        ap.error('--jitter and --rotate move a window within a garment box: deepfashion-fine jobs only')
    if a.typed_landmarks and a.deep_supervision > 0:
        ap.error('--deep-supervision reads 8 maps a stage; --typed-landmarks has 24')
    landmark_job = a.job == 'landmarks'
    lr = a.lr or (5e-3 if landmark_job else 2e-3)
    decay_rate = a.weight_decay if a.weight_decay is not None else 0.05 if landmark_job else 5e-4
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    if a.job == 'clothing-small':
        data = load_folders(os.path.join(a.shared, 'clothing-small'), a.size)
        if a.arch == 'plain':
            net, model = plain(a.width, data['classes'])
        elif a.arch == 'fashionnet':
            net = ClothNet('fashionnet', a.width, data['classes'], 0, a.stem_stride, a.head_width, landmark_skips=a.landmark_skips, vgg_bn=a.vgg_bn)
            model = net
        else:
            net = ClothNet('cloth_repvgg', a.width, data['classes'], 0, a.stem_stride)
            model = net
    else:
        data = load_deepfashion(os.path.join(a.shared, 'deepfashion-fine'), a.size, moving_windows, a.crop, a.box_margin)
        if a.arch == 'plain' and not landmark_job:
            net, plain_model = plain(a.width, data['attributes'].shape[1])
            model = lambda v: (None, plain_model(v)[0], None)
        else:
            net = ClothNet(a.landmark_net if landmark_job else 'cloth_repvgg', a.width, 0, data['attributes'].shape[1], a.stem_stride, a.head_width, a.landmark_context,
                           3 if a.typed_landmarks else 0, a.landmark_skips, vgg_bn=a.vgg_bn, attribute_grid=a.attribute_grid, attribute_pool=a.attribute_pool)
            model = net
            net.detach_attention = a.detach_attention
    x, is_val = data['x'], data['is_val']
    train, val = torch.where(~is_val)[0], torch.where(is_val)[0]
    if a.train_limit:
        # A fixed subset of the training split, the same for every --seed (its own generator, so the
        # runs' own random draws are as without it): how recall grows with the photos.
        if a.train_limit > len(train):
            ap.error(f'--train-limit {a.train_limit}: the training split has {len(train)} photos')
        train = train[torch.randperm(len(train), generator=torch.Generator().manual_seed(12345))[:a.train_limit].sort().values]
    # --ensemble-with's runs, read and checked before training so a wrong file costs no run.
    ensemble = []
    for f in a.ensemble_with:
        try:
            scores = torch.load(f)
        except Exception as e:
            ap.error(f'--ensemble-with {f}: not readable as a --save-scores file ({e})')
        if not torch.is_tensor(scores) or tuple(scores.shape) != (len(val), data['attributes'].shape[1]):
            ap.error(f'--ensemble-with {f}: expected the scores of {len(val)} validation photos x {data["attributes"].shape[1]} attributes')
        ensemble.append(scores)
    # --tta-margins: the validation photos cropped about their boxes grown by each margin, loaded before training.
    tta_views = [load_deepfashion(os.path.join(a.shared, 'deepfashion-fine'), a.size, margin=m)['x'][val] for m in a.tta_margins or []]
    typed_maps = landmark_job and a.typed_landmarks
    if a.job != 'clothing-small':
        # The garment type a row lists points for: 0 upper body (6 points), 1 lower body (4), 2 full body (8).
        listed = (data['landmarks'][:, :, 0] >= 0).sum(1)
        garment = torch.where(listed == 4, 1, torch.where(listed == 8, 2, 0))
    if landmark_job:
        pooled_means = mean_positions(data['landmarks'][train])
        if typed_maps:
            means = []
            for t in range(3):
                rows_t = data['landmarks'][train][garment[train] == t]
                m = mean_positions(rows_t)
                seen = (rows_t[:, :, 0] >= 0).any(0)
                means.append(torch.where(seen[:, None], m, pooled_means))
            prior = LocationPrior(torch.cat(means), gain=a.map_gain)
        else:
            prior = LocationPrior(pooled_means, gain=a.map_gain)
    else:
        prior = None
    # With typed maps: the 8 points of each item's type, [N, 24, 2] -> [N, 8, 2].
    pick = lambda points, t: points.view(len(t), 3, 8, 2)[torch.arange(len(t)), t] if typed_maps else points
    what = 'the plain CNN' if a.arch == 'plain' and not landmark_job else f'{net.net}, stem stride {a.stem_stride}'
    if a.init == 'clothtag':
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
    if a.pretrained:
        load_clothtag_trunk(net, a.pretrained)
    if a.trunk_from:
        trunk_state(net).load_state_dict(torch.load(a.trunk_from))
    params = sum(p.numel() for p in net.parameters())
    print(f'{a.job}: {what}, width {a.width}, batch {a.batch}, lr {lr}, weight decay {decay_rate}, attribute loss {a.attribute_loss}: {params} parameters, '
          f'{multiply_adds(net, model, x) / 1e6:.1f} M multiply-adds per {a.size}x{a.size} image', flush=True)
    if landmark_job:
        pooled = mean_positions(data['landmarks'][train])[None].expand(len(val), 8, 2)
        _, means = type_means(data['landmarks'][train])
        val_masks, _ = type_means(data['landmarks'][val])
        typed = torch.stack([means.get(int(m), pooled[0]) for m in val_masks])
        parts = lambda p: ' / '.join(f'{v:.4f}' for v in per_part(p, data['landmarks'][val]))
        print(f'mean-position baseline NME {nme(pooled, data["landmarks"][val]):.4f} (collars / sleeves / waistlines / hems {parts(pooled)}); '
              f'per garment type {nme(typed, data["landmarks"][val]):.4f} ({parts(typed)})', flush=True)
    # --deep-supervision: the outputs of the ReLUs after the branch's first two upsamplings (16x16 and
    # 32x32 at 64x64), each read by a zero-started 1x1 convolution into 8 maps (the prior alone at first).
    stages, aux_heads = [], nn.ModuleList()
    if landmark_job and a.deep_supervision > 0:
        branch_steps = list(net.landmarks.steps)
        for k, step in enumerate(branch_steps[:-1]):
            if isinstance(step, nn.ConvTranspose2d) and len(aux_heads) < 2:
                head = nn.Conv2d(step.out_channels, 8, 1)
                nn.init.zeros_(head.weight)
                nn.init.zeros_(head.bias)
                aux_heads.append(head)
                branch_steps[k + 1].register_forward_hook(lambda m, i, o: stages.append(o))
    aspect_head, aspect = None, None
    if a.box_aspect:
        log_aspect = data['aspect']
        aspect = ((log_aspect - log_aspect[train].mean()) / log_aspect[train].std())[:, None]
        aspect_head = nn.Sequential(nn.Linear(1, 16), nn.ReLU(), nn.Linear(16, data['attributes'].shape[1]))
        nn.init.zeros_(aspect_head[2].weight)
        nn.init.zeros_(aspect_head[2].bias)
    type_head, pooled = None, []
    if a.type_head > 0:
        # The garment type (`garment`, above), told from the features the attribute head reads:
        # a second task on the same photos.
        type_head = nn.Linear(net.attributes.in_features, 3)
    catalog_head, catalog = None, None
    if a.joint_catalog > 0:
        catalog = load_folders(os.path.join(a.shared, 'clothing-small'), a.size)
        catalog_train = torch.where(~catalog['is_val'])[0]
        catalog_val = torch.where(catalog['is_val'])[0]
        catalog_head = nn.Linear(net.attributes.in_features, catalog['classes'])
    point_head = nn.Linear(net.attributes.in_features, 16) if a.landmark_aux > 0 else None
    if type_head is not None or catalog_head is not None or point_head is not None:
        net.attributes.register_forward_hook(lambda m, i, o: pooled.append(i[0]))
    if a.head_dropout > 0:
        # The dropped features are also what a forward hook on the head reads, hence the flag stands alone.
        net.attributes.register_forward_pre_hook(lambda m, i: (F.dropout(i[0], a.head_dropout, m.training),))
    side = [p for h in (aspect_head, type_head, catalog_head, point_head) if h is not None for p in h.parameters()]
    extra = (list(prior.parameters()) if prior else []) + [aux.bias for aux in aux_heads] + [p for p in side if p.dim() <= 1]
    decay = [p for p in net.parameters() if p.dim() > 1] + [aux.weight for aux in aux_heads] + [p for p in side if p.dim() > 1]
    rest = [p for p in net.parameters() if p.dim() <= 1] + extra
    groups = [{'params': decay, 'weight_decay': decay_rate}, {'params': rest, 'weight_decay': 0}]
    peaks = [lr, lr]
    if a.trunk_lr_scale != 1:
        # A started trunk at its own (lower) peak rate, the fresh heads at the job's.
        in_trunk = {id(p) for p in trunk_state(net).parameters()}
        groups = [{'params': [p for p in g['params'] if (id(p) in in_trunk) == t], 'weight_decay': g['weight_decay']} for t in (True, False) for g in groups]
        peaks = [lr * a.trunk_lr_scale] * 2 + [lr] * 2
    opt = torch.optim.AdamW(groups, lr, betas=(0.9, a.beta2))
    steps = len(train) // a.batch
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, peaks, total_steps=a.epochs * steps, cycle_momentum=bool(a.cycle_momentum))

    def as_scores(logits):
        """What recall ranks: per-type probabilities with the softmax loss, the logits themselves with the BCE."""
        return per_type(logits, data['types'], lambda v: F.softmax(v, 1)) if a.attribute_loss == 'softmax' else logits

    def attribute_scores(images, rows):
        """as_scores of the attribute head on these photos (of these rows), 200 at a time, --box-aspect's term added."""
        with torch.no_grad():
            out = torch.cat([model(images[i:i + 200])[1] for i in range(0, len(images), 200)])
            if aspect_head is not None:
                out = out + aspect_head(aspect[rows])
        return as_scores(out)

    # --sam's second pass leaves these running statistics as the first pass set them.
    batch_norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    start = time.time()
    for epoch in range(a.epochs):
        net.train()
        order = train[torch.randperm(len(train))]
        if catalog is not None:
            catalog_order = catalog_train[torch.randperm(len(catalog_train))]
            catalog_batch = -(-len(catalog_train) // steps)
        total = 0.0
        for k in range(steps):
            batch = order[k * a.batch:(k + 1) * a.batch]
            flip = torch.rand(len(batch)) < 0.5
            source, marks = x[batch], data['landmarks'][batch] if landmark_job else None
            if moving_windows:
                source, marks = moved_windows(data['x_wide'][batch], marks, a.size, a.jitter, a.rotate)
            if a.color > 0:
                source = colour_jitter(source, a.color)
            images = torch.where(flip[:, None, None, None], source.flip(3), source)
            if catalog is not None:
                # The catalog's photos ride in the same forward (BatchNorm sees both sets); their logits are split off below.
                extra_rows = catalog_order[torch.arange(k * catalog_batch, (k + 1) * catalog_batch) % len(catalog_order)]
                extra_flip = torch.rand(len(extra_rows)) < 0.5
                extra_images = catalog['x'][extra_rows]
                images = torch.cat([images, torch.where(extra_flip[:, None, None, None], extra_images.flip(3), extra_images)])
            if a.mixup > 0:
                # Mixup: the batch blended with a shuffle of itself at one Beta-drawn share (fixed for --sam's second pass).
                mix = float(torch.distributions.Beta(a.mixup, a.mixup).sample())
                partner = torch.randperm(len(batch))
                images = mix * images + (1 - mix) * images[partner]

            def batch_loss():
                # This batch's loss, a function so that --sam can take it twice (its rows and flips fixed).
                stages.clear()
                pooled.clear()
                category, attribute_logits, heatmaps = model(images)
                if catalog is not None:
                    catalog_loss = F.cross_entropy(catalog_head(pooled[-1][len(batch):]), catalog['category'][extra_rows])
                    attribute_logits = attribute_logits[:len(batch)]
                if aspect_head is not None:
                    attribute_logits = attribute_logits + aspect_head(aspect[batch])
                if a.job == 'clothing-small':
                    loss = F.cross_entropy(category, data['category'][batch])
                else:
                    truth = data['attributes'][batch]
                    if a.attribute_loss == 'softmax':
                        # Each type's positives share the target (here exactly one per type); a type without one is left out.
                        # --attribute-smoothing spreads that share of a type's target evenly over its answers.
                        log_p = per_type(attribute_logits, data['types'], lambda v: F.log_softmax(v, 1))
                        share, smooth = lambda v: v / v.sum(1, keepdim=True).clamp(min=1), a.attribute_smoothing
                        target = per_type(truth, data['types'], lambda v: (1 - smooth) * share(v) + smooth * share(v).sum(1, keepdim=True) / v.shape[1])
                        if a.mixup > 0:
                            target = mix * target + (1 - mix) * target[partner]
                        loss = -target.mul(log_p).sum(1).mean()
                    else:
                        bce = F.binary_cross_entropy_with_logits(attribute_logits, truth, reduction='none')
                        loss = 20 * (bce * (0.1 + 0.9 * truth)).mean()
                    if type_head is not None:
                        loss = loss + a.type_head * F.cross_entropy(type_head(pooled[-1][:len(batch)]), garment[batch])
                    if catalog is not None:
                        loss = loss + a.joint_catalog * catalog_loss
                    if point_head is not None:
                        # The landmarks as an extra target: where the sleeve ends and the hem lies are the
                        # sleeve and length answers in geometry.
                        shown = mirrored_where(data['landmarks'][batch], flip)
                        visible = (shown[:, :, 0] == 0).float()
                        distance = (point_head(pooled[-1][:len(batch)]).view(-1, 8, 2) - shown[:, :, 1:]).abs().sum(2)
                        loss = loss + a.landmark_aux * (distance * visible).sum() / visible.sum().clamp(min=1)
                if landmark_job:
                    shown = mirrored_where(marks, flip)
                    visible = (shown[:, :, 0] == 0).float()
                    # A term's mean over the visible points is weight * visible_sum(v) / seen, in that order, as every run here was made.
                    visible_sum, seen = lambda v: (v * visible).sum(), visible.sum().clamp(min=1)
                    offset = pick(prior.points(heatmaps), garment[batch]) - shown[:, :, 1:]
                    distance = offset.norm(dim=2) if a.landmark_distance == 'euclid' else offset.abs().sum(2)
                    loss = loss + a.wl * visible_sum(distance) / seen
                    for aux, stage in zip(aux_heads, stages):
                        d = (prior.points(aux(stage)) - shown[:, :, 1:]).abs().sum(2)
                        loss = loss + a.deep_supervision * a.wl * visible_sum(d) / seen
                    if typed_maps:
                        loss = loss + a.type_weight * F.cross_entropy(net.type_logits, garment[batch])
                    if a.map_js > 0 and not typed_maps:
                        js = map_divergence(prior, heatmaps, shown[:, :, 1:], a.map_sigma)
                        loss = loss + a.map_js * visible_sum(js) / seen
                return loss

            loss = batch_loss()
            opt.zero_grad()
            loss.backward()
            if a.sam > 0:
                # Sharpness-aware minimization: the gradient is taken again at the weights moved by rho
                # along the first gradient (its unit direction), and that second gradient is the one applied.
                # BatchNorm's running statistics are left as the first pass set them (momentum 0).
                moved = [p for g in opt.param_groups for p in g['params'] if p.grad is not None]
                with torch.no_grad():
                    norm = torch.stack([p.grad.norm() for p in moved]).norm().clamp(min=1e-12)
                    shifts = [p.grad * (a.sam / norm) for p in moved]
                    for p, s in zip(moved, shifts):
                        p.add_(s)
                kept = [m.momentum for m in batch_norms]
                for m in batch_norms:
                    m.momentum = 0.0
                opt.zero_grad()
                batch_loss().backward()
                for m, k in zip(batch_norms, kept):
                    m.momentum = k
                with torch.no_grad():
                    for p, s in zip(moved, shifts):
                        p.sub_(s)
            opt.step()
            schedule.step()
            total += loss.item()
        net.eval()
        with torch.no_grad():
            outs, type_logits = [], []
            for i in range(0, len(val), 200):
                outs.append(model(x[val[i:i + 200]]))
                type_logits.append(net.type_logits if typed_maps else None)
        line = f'epoch {epoch + 1}: train loss {total / steps:.3f}'
        if a.job == 'clothing-small':
            top1 = (torch.cat([o[0] for o in outs]).argmax(1) == data['category'][val]).float().mean().item()
            line += f', val top-1 {100 * top1:.1f}%'
        else:
            logits = torch.cat([o[1] for o in outs])
            if aspect_head is not None:
                with torch.no_grad():
                    logits = logits + aspect_head(aspect[val])
            raw_logits = logits
            logits = as_scores(raw_logits)
            line += ', val attribute ' + recall_text(logits, data['attributes'][val])
            if epoch + 1 == a.epochs and a.tta_margins is not None:
                # Test-time views: each crop and its mirror image, their scores averaged.
                summed = logits + attribute_scores(x[val].flip(3), val)
                line += ', with test-time flips ' + recall_text(summed / 2, data['attributes'][val])
                for m, images in zip(a.tta_margins, tta_views):
                    summed = summed + attribute_scores(images, val) + attribute_scores(images.flip(3), val)
                    line += f', and margin {m} ' + recall_text(summed, data['attributes'][val])
            if epoch + 1 == a.epochs and a.save_scores:
                torch.save(logits, a.save_scores)
            if epoch + 1 == a.epochs and a.ensemble_with:
                together = (logits + sum(ensemble)) / (1 + len(ensemble))
                line += f', averaged with {len(ensemble)} saved run(s) ' + recall_text(together, data['attributes'][val])
            if catalog is not None:
                with torch.no_grad():
                    pooled.clear()
                    net(catalog['x'][catalog_val])
                    right = (catalog_head(pooled[-1]).argmax(1) == catalog['category'][catalog_val]).float().mean().item()
                line += f', clothing-small val top-1 {100 * right:.1f}%'
            if epoch + 1 == a.epochs:
                line += ', ' + type_top1_text(logits, data['attributes'][val], data['types'])
                # The same on 1,000 training photos (unflipped): how far the network fits what it trained on.
                seen_rows = train[:1000]
                fit = attribute_scores(x[seen_rows], seen_rows)
                truth_seen = data['attributes'][seen_rows]
                line += f'; on 1,000 training photos {recall_text(fit, truth_seen)}, {type_top1_text(fit, truth_seen, data["types"])}'
                if a.temperature_bound:
                    for k, (trained, bound, crossed) in zip((3, 5), temperature_bound(raw_logits, data['attributes'][val], data['types'])):
                        line += (f'; recall@{k} with a temperature per type: as trained {100 * trained:.2f}%, chosen on these photos {100 * bound:.2f}%, '
                                 f'chosen on each half and scored on the other {100 * crossed:.2f}%')
        if landmark_job:
            with torch.no_grad():
                all_points = torch.cat([prior.points(o[2]) for o in outs])
                told = torch.cat(type_logits).argmax(1) if typed_maps else None
                points = pick(all_points, told)
                # Test-time flips: the mirrored photo's points, mirrored back (x -> 1 - x, left <-> right), averaged in.
                flipped = pick(torch.cat([prior.points(model(x[val[i:i + 200]].flip(3))[2]) for i in range(0, len(val), 200)]), told)
                flipped = flipped[:, MIRROR]
                flipped[:, :, 0] = 1 - flipped[:, :, 0]
            if typed_maps:
                # Hedged: each type's points weighted by the type head's probabilities.
                p = F.softmax(torch.cat(type_logits), 1)
                hedged = (all_points.view(-1, 3, 8, 2) * p[:, :, None, None]).sum(1)
                # The box's shape (lost when the crop is resized to a square) as more evidence of the type:
                # p(type | photo, aspect) ~ p(type | photo) p(aspect | type), a Gaussian in log aspect per type (training split).
                la = data['aspect']
                mu = torch.stack([la[train][garment[train] == t].mean() for t in range(3)])
                sd = torch.stack([la[train][garment[train] == t].std() for t in range(3)])
                fused = F.log_softmax(torch.cat(type_logits), 1) - (la[val][:, None] - mu) ** 2 / (2 * sd ** 2) - sd.log()
                told_fused = fused.argmax(1)
                pf = F.softmax(fused, 1)
                hedged_fused = (all_points.view(-1, 3, 8, 2) * pf[:, :, None, None]).sum(1)
                line += (f', with the box\'s aspect: type right {100 * (told_fused == garment[val]).float().mean().item():.1f}%, NME {nme(pick(all_points, told_fused), data["landmarks"][val]):.4f}, '
                         f'hedged {nme(hedged_fused, data["landmarks"][val]):.4f}')
                line += (f', garment type told right {100 * (told == garment[val]).float().mean().item():.1f}% (NME with the true type\'s maps {nme(pick(all_points, garment[val]), data["landmarks"][val]):.4f}, '
                         f'with the types\' points weighted by their probabilities {nme(hedged, data["landmarks"][val]):.4f})')
            if a.local_decode and not typed_maps:
                for r in a.local_decode:
                    local = torch.cat([prior.local_points(o[2], r) for o in outs])
                    line += f', local decode r{r} NME {nme(local, data["landmarks"][val]):.4f}'
            line += f', landmark NME {nme(points, data["landmarks"][val]):.4f} (with flips {nme((points + flipped) / 2, data["landmarks"][val]):.4f}; collars / sleeves / waistlines / hems ' + ' / '.join(f'{v:.4f}' for v in per_part(points, data['landmarks'][val])) + ')'
        print(f'{line}, {time.time() - start:.0f} s', flush=True)
    if a.save_trunk:
        torch.save(trunk_state(net).state_dict(), a.save_trunk)


if __name__ == '__main__':
    main()
