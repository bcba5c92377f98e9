#!/usr/bin/python3
"""clothing-small in PyTorch on the CPU: the architecture question behind `bench real-data`.

Trains, from scratch at 64x64, either a replica of cloth_repvgg's trunk (RepVGG-A0 at a width
multiplier, training-time branches, with the first downsampling's stride as clothtag's
--stem-stride) or the plain 8-layer CNN of issue #11's reference (3x3 conv-BN-ReLU pairs at
32-64-128-256 channels times --width, max-pools between), with clothtag's recipe: whole photos
resized to 64x64 (bicubic), ImageNet normalization, flips, AdamW without decay on BatchNorm and
biases, a one-cycle rate. Prints the multiply-adds per image and, per epoch, the training loss and
the validation top-1. Runs where Debian's python3-torch is installed; never in tests:

    /usr/bin/python3 bench/real_data_torch.py --arch repvgg --width 0.25 --stem-stride 1 --batch 16
"""
import argparse, os, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from torch_cpu import ClothNet

MEAN = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
STD = torch.tensor([0.229, 0.224, 0.225])[:, None, None]


def load(root, size):
    """Every photo of train/ and val/ as normalized [N, 3, size, size], its class, and whether it is val."""
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
    # contiguous: a channels-last batch takes another convolution path, which crashed this PyTorch (1.13)
    x = torch.tensor(np.stack(images)).permute(0, 3, 1, 2).contiguous().float() / 255
    return (x - MEAN) / STD, torch.tensor(labels), torch.tensor(is_val), len(classes)


def repvgg(width, stem_stride, classes):
    """cloth_repvgg with a category head only, as bench/torch_cpu.py builds it."""
    net = ClothNet('cloth_repvgg', width, classes, 0, stem_stride)
    return lambda x: net(x)[0], net


def plain(width, classes):
    def cbr(i, o):
        return nn.Sequential(nn.Conv2d(i, o, 3, 1, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU())
    a, b, c, d = (max(1, int(width * v)) for v in (32, 64, 128, 256))
    return nn.Sequential(cbr(3, a), cbr(a, a), nn.MaxPool2d(2), cbr(a, b), cbr(b, b), nn.MaxPool2d(2),
                         cbr(b, c), cbr(c, c), nn.MaxPool2d(2), cbr(c, d), cbr(d, d),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(d, classes))


def multiply_adds(net, model, x):
    total = [0]

    def count(m, _inputs, out):
        total[0] += out[0].numel() * m.in_channels * m.kernel_size[0] * m.kernel_size[1] // m.groups
    hooks = [m.register_forward_hook(count) for m in net.modules() if isinstance(m, nn.Conv2d)]
    net.eval()
    with torch.no_grad():
        model(x[:1])
    for h in hooks:
        h.remove()
    return total[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--data', default=os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data', 'clothing-small'))
    ap.add_argument('--arch', choices=('repvgg', 'plain'), default='repvgg')
    ap.add_argument('--width', type=float, default=0.25)
    ap.add_argument('--stem-stride', type=int, choices=(1, 2), default=2)
    ap.add_argument('--size', type=int, default=64)
    ap.add_argument('--epochs', type=int, default=12)
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--lr', type=float, default=2e-3)
    ap.add_argument('--weight-decay', type=float, default=5e-4)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    x, y, is_val, classes = load(a.data, a.size)
    train, val = torch.where(~is_val)[0], torch.where(is_val)[0]
    model, net = repvgg(a.width, a.stem_stride, classes) if a.arch == 'repvgg' else (plain(a.width, classes),) * 2
    params = sum(p.numel() for p in net.parameters())
    print(f'{a.arch} width {a.width}' + (f', stem stride {a.stem_stride}' if a.arch == 'repvgg' else '') +
          f': {params} parameters, {multiply_adds(net, model, x) / 1e6:.1f} M multiply-adds per {a.size}x{a.size} image', flush=True)
    decay = [p for p in net.parameters() if p.dim() > 1]
    rest = [p for p in net.parameters() if p.dim() <= 1]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': a.weight_decay}, {'params': rest, 'weight_decay': 0}], a.lr)
    steps = len(train) // a.batch
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, a.lr, total_steps=a.epochs * steps)
    start = time.time()
    for epoch in range(a.epochs):
        net.train()
        order = train[torch.randperm(len(train))]
        total = 0.0
        for k in range(steps):
            batch = order[k * a.batch:(k + 1) * a.batch]
            flip = torch.rand(len(batch)) < 0.5
            images = torch.where(flip[:, None, None, None], x[batch].flip(3), x[batch])
            loss = F.cross_entropy(model(images), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
            total += loss.item()
        net.eval()
        with torch.no_grad():
            top1 = (model(x[val]).argmax(1) == y[val]).float().mean().item()
        print(f'epoch {epoch + 1}: train loss {total / steps:.3f}, val top-1 {100 * top1:.1f}%, {time.time() - start:.0f} s', flush=True)


if __name__ == '__main__':
    main()
