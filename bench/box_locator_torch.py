#!/usr/bin/python3
"""clothtag's garment-box head (src/nets/locator.ts) replicated in PyTorch on the CPU, trained alone
on deepfashion-fine's whole photos: what its second look gives, measured in minutes.

The head is the same: five 3x3 conv-BN-ReLU blocks of 16-128 channels, 2x2 max pools between,
a 4x4 average-pooled grid into a zero-started linear layer and a sigmoid, (cx, cy, w, h) of the
64x64 input. Training: AdamW 3e-3 with decay 0.05 on the weights and a one-cycle rate, batch 32,
flips, 12 epochs, L1 on the box. With --zoom SHARE that share of the photos is a window around
the true box, as `clothtag train --box-zoom` draws it (each side 1.1-1.6 times the box's, the
centre moved by up to a tenth of it, moved inside the photo). Each epoch prints the validation
split's mean IoU after each look: the first at the whole photo, each further one at the window
--margin times the box found so far (every reading averaged with its mirror image's, as clothtag
does). The last epoch also tries other margins. Runs where Debian's python3-torch and python3-pil
are installed; never in tests:

    /usr/bin/python3 bench/box_locator_torch.py --zoom 0.5 --looks 4 --frame 0.8   # the figures in docs/boxes.md
    /usr/bin/python3 bench/box_locator_torch.py --zoom 0            # one look, as before
    /usr/bin/python3 bench/box_locator_torch.py --zoom 0.5 --loss corners
    /usr/bin/python3 bench/box_locator_torch.py --zoom 0.5 --frame 0.8 --scale 2   # every channel count doubled
    /usr/bin/python3 bench/box_locator_torch.py --zoom 0.5 --frame 0.8 --bins 32   # each edge a distribution, its mean the edge
"""
import argparse, os, random, time

import numpy as np
import torch
import torch.nn as nn

try:
    from PIL import Image
except ImportError:  # the parameter-count check (test/torch.test.ts) needs only the network
    Image = None

MEAN = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
STD = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
SIZE = 64
GROWTH, SHIFT = (1.1, 1.6), 0.1


def rows(path):
    return [line.split() for line in open(path).read().split('\n')[2:] if line.strip()]


class Locator(nn.Module):
    def __init__(self, channels=(16, 32, 64, 128, 128), bins=0, pools=4):
        super().__init__()
        self.bins = bins
        layers, c = [], 3
        for i, o in enumerate(channels):
            layers += [nn.Conv2d(c, o, 3, 1, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]
            if i < pools:
                layers.append(nn.MaxPool2d(2))
            c = o
        # The last map (64 / 2^pools a side: 4x4 with clothtag's four pools) pooled to a grid that keeps it.
        grid = SIZE >> pools
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(grid), nn.Flatten())
        self.box = nn.Linear(c * grid * grid, 4 * bins if bins else 4)
        nn.init.zeros_(self.box.weight)
        nn.init.zeros_(self.box.bias)
        if bins:
            # Each edge (x1, y1, x2, y2) a distribution over `bins` positions; the edge is its mean.
            # Started as a bump at the centred half-size box's edges.
            self.register_buffer('centres', (torch.arange(bins) + 0.5) / bins)
            with torch.no_grad():
                start = torch.tensor([0.25, 0.25, 0.75, 0.75])[:, None]
                self.box.bias.copy_((-(self.centres[None] - start) ** 2 / (2 * 0.1 ** 2)).reshape(-1))

    def forward(self, x):
        if not self.bins:
            return torch.sigmoid(self.box(self.body(x)))
        edges = (self.box(self.body(x)).view(-1, 4, self.bins).softmax(-1) * self.centres).sum(-1)
        x1, y1, x2, y2 = edges.unbind(1)
        return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], 1)


def window_inside(cx, cy, w, h, W, H):
    """A w x h window centred on (cx, cy), moved (not cut) inside the photo (pixels.ts windowInside)."""
    w, h = min(W, max(1, w)), min(H, max(1, h))
    return (min(W - w, max(0, cx - w / 2)), min(H - h, max(0, cy - h / 2)), w, h)


def zoom_window(box, W, H, rng):
    x1, y1, x2, y2 = box
    bw, bh = x2 - x1, y2 - y1
    w, h = bw * rng.uniform(*GROWTH), bh * rng.uniform(*GROWTH)
    cx, cy = (x1 + x2) / 2 + rng.uniform(-SHIFT, SHIFT) * bw, (y1 + y2) / 2 + rng.uniform(-SHIFT, SHIFT) * bh
    return window_inside(cx, cy, w, h, W, H)


def frame_window(W, H, frame, rng):
    """A random window of the photo, one scale both ways (augment.ts drawFrame)."""
    side = rng.uniform(frame, 1.0)
    w, h = W * side, H * side
    return (rng.uniform(0, W - w), rng.uniform(0, H - h), w, h)


def crop(im, win, flip):
    x, y, w, h = win
    a = np.asarray(im.crop((x, y, x + w, y + h)).resize((SIZE, SIZE), Image.BICUBIC), dtype=np.uint8)
    return a[:, ::-1] if flip else a


def box_in(box, win, flip):
    """The box as (cx, cy, w, h) fractions of the window, clipped to it (batch.ts boxInFrame)."""
    x, y, w, h = win
    clip = lambda v: min(1.0, max(0.0, v))
    X1, X2, Y1, Y2 = clip((box[0] - x) / w), clip((box[2] - x) / w), clip((box[1] - y) / h), clip((box[3] - y) / h)
    if flip:
        X1, X2 = 1 - X2, 1 - X1
    return [(X1 + X2) / 2, (Y1 + Y2) / 2, X2 - X1, Y2 - Y1]


def normalized(images):
    x = torch.tensor(np.stack(images)).permute(0, 3, 1, 2).contiguous().float() / 255
    return (x - MEAN) / STD


def corners(b):
    return torch.stack([b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2, b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2], 1)


def look(net, images, windows):
    """Boxes [x1, y1, x2, y2] in photo pixels from the windows, each averaged with its mirror's."""
    x = normalized([crop(im, w, False) for im, w in zip(images, windows)])
    with torch.no_grad():
        p = net(torch.cat([x, x.flip(3)]))
    n = len(images)
    mirrored = p[n:].clone()
    mirrored[:, 0] = 1 - mirrored[:, 0]
    b = corners((p[:n] + mirrored) / 2)
    return [(x + b1 * w, y + c1 * h, x + b2 * w, y + c2 * h) for (x, y, w, h), (b1, c1, b2, c2) in zip(windows, b.tolist())]


def mean_iou(found, truth):
    out = []
    for (a1, b1, a2, b2), (c1, d1, c2, d2) in zip(found, truth):
        inter = max(0, min(a2, c2) - max(a1, c1)) * max(0, min(b2, d2) - max(b1, d1))
        out.append(inter / ((a2 - a1) * (b2 - b1) + (c2 - c1) * (d2 - d1) - inter))
    return float(np.mean(out))


def looks(net, images, truth, count, margin):
    """Mean IoU after each of `count` looks."""
    windows = [(0, 0, *im.size) for im in images]
    scores = []
    for _ in range(count):
        found = []
        for i in range(0, len(images), 100):
            found += look(net, images[i:i + 100], windows[i:i + 100])
        scores.append(mean_iou(found, truth))
        windows = [window_inside((x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * margin, (y2 - y1) * margin, *im.size) for im, (x1, y1, x2, y2) in zip(images, found)]
    return scores


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument('--data', default=os.path.join(here, '..', '..', 'shared', 'data', 'deepfashion-fine'))
    ap.add_argument('--epochs', type=int, default=12)
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--lr', type=float, default=3e-3)
    ap.add_argument('--zoom', type=float, default=0.5, help='share of training photos shown as a window around the box (clothtag train --box-zoom)')
    ap.add_argument('--looks', type=int, default=2, help='looks scored at each epoch (1: the whole photo only)')
    ap.add_argument('--margin', type=float, default=1.3, help='the next look\'s window, times the box found so far')
    ap.add_argument('--frame', type=float, default=1.0, help='the other photos: a random window of this share of the photo\'s side or more (1: whole, as clothtag\'s flip augmentation; 0.8: light/strong)')
    ap.add_argument('--loss', choices=('centre', 'corners'), default='centre', help='L1 on (cx, cy, w, h), as clothtag, or on the corners')
    ap.add_argument('--scale', type=float, default=1.0, help='channels times this')
    ap.add_argument('--bins', type=int, default=0, help='each edge a distribution over this many positions, its mean the edge (0: sigmoid of (cx, cy, w, h))')
    ap.add_argument('--pools', type=int, choices=(3, 4), default=4, help='2x2 max pools between the blocks: 4 (clothtag\'s, a 4x4 last map) or 3 (an 8x8 last map, read as an 8x8 grid: finer edges, 4x the last block\'s cost)')
    ap.add_argument('--views', type=int, default=1, help='each photo drawn this many times a step, each view augmented on its own (a box batch of views x --batch)')
    ap.add_argument('--init', choices=('torch', 'clothtag'), default='torch',
                    help="torch: PyTorch's default conv init; clothtag: kaiming normal over fan_out, as clothtag starts its box head")
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--cycle-momentum', type=int, default=1, help='1: the one-cycle schedule also cycles Adam\'s beta1 0.95 -> 0.85 -> 0.95 (PyTorch\'s default); 0: beta1 stays 0.9, as clothtag before --cycle-momentum')
    a = ap.parse_args()
    if Image is None:
        raise SystemExit('bench/box_locator_torch.py reads photos with PIL: apt-get install python3-pil')
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    rng = random.Random(a.seed)
    boxes = {r[0]: list(map(int, r[1:])) for r in rows(os.path.join(a.data, 'Anno', 'list_bbox.txt'))}
    split = {r[0]: r[1] for r in rows(os.path.join(a.data, 'Eval', 'list_eval_partition.txt'))}
    names = sorted(boxes)
    photos = {n: Image.open(os.path.join(a.data, n)).convert('RGB') for n in names}
    train = [n for n in names if split[n] == 'train']
    val = [n for n in names if split[n] == 'val']
    val_images, val_truth = [photos[n] for n in val], [boxes[n] for n in val]
    print(f'box head: {len(train)} training photos, {len(val)} validation; zoom {a.zoom}, views {a.views}, loss {a.loss}, margin {a.margin}, channels x{a.scale}, bins {a.bins}, pools {a.pools}, cycle momentum {a.cycle_momentum}, init {a.init}', flush=True)
    net = Locator(tuple(round(c * a.scale) for c in (16, 32, 64, 128, 128)), a.bins, a.pools)
    if a.init == 'clothtag':
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
    decay = [p for p in net.parameters() if p.dim() > 1]
    rest = [p for p in net.parameters() if p.dim() <= 1]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.05}, {'params': rest, 'weight_decay': 0}], a.lr)
    steps = (len(train) + a.batch - 1) // a.batch
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, a.lr, total_steps=a.epochs * steps, cycle_momentum=bool(a.cycle_momentum))
    start = time.time()
    for epoch in range(a.epochs):
        net.train()
        order = train[:]
        rng.shuffle(order)
        total = 0.0
        for s in range(steps):
            xs, ys = [], []
            for n in order[s * a.batch:(s + 1) * a.batch] * a.views:
                im = photos[n]
                flip = rng.random() < 0.5
                win = zoom_window(boxes[n], *im.size, rng) if rng.random() < a.zoom else frame_window(*im.size, a.frame, rng)
                xs.append(crop(im, win, flip))
                ys.append(box_in(boxes[n], win, flip))
            p, t = net(normalized(xs)), torch.tensor(ys)
            loss = (corners(p) - corners(t)).abs().mean() if a.loss == 'corners' else (p - t).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
            total += loss.item()
        net.eval()
        scores = looks(net, val_images, val_truth, a.looks, a.margin)
        print(f'epoch {epoch + 1}: train loss {total / steps:.4f}, val IoU by look ' + ' '.join(f'{v:.4f}' for v in scores) + f', {time.time() - start:.0f} s', flush=True)
    if a.looks > 1:
        for margin in (1.1, 1.2, 1.3, 1.4, 1.6):
            print(f'margin {margin}: val IoU by look ' + ' '.join(f'{v:.4f}' for v in looks(net, val_images, val_truth, a.looks, margin)), flush=True)


if __name__ == '__main__':
    main()
