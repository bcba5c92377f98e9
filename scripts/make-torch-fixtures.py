#!/usr/bin/python3
"""Writes the PyTorch fixtures of test/torch.test.ts into test/fixtures/torch/.

Made with Debian's python3-torch 1.13.1 and python3-torchvision 0.14.1 (bookworm):
    apt-get install python3-torch python3-torchvision
    /usr/bin/python3 scripts/make-torch-fixtures.py
Every value is a formula of its index that the test recomputes, so no expected-value file is kept.
"""
import collections
import json
import os
import sys

import torch

OUT = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'torch')


def ramp(n, scale, dtype=torch.float32):
    # (i % 17 - 8) * scale: exact in float16 and bfloat16 for the scales used here.
    return ((torch.arange(n) % 17) - 8).to(torch.float64).mul(scale).to(dtype)


def dtypes_dict():
    base = ramp(12, 0.25).reshape(3, 4)
    shared = ramp(10, 0.5)
    d = collections.OrderedDict()
    d['f32'] = ramp(6, 0.25).reshape(2, 3)
    d['f16'] = ramp(5, 0.125, torch.float16)
    d['bf16'] = ramp(5, 0.5, torch.bfloat16)
    d['f64'] = ramp(4, 0.1, torch.float64)
    d['i64'] = torch.arange(3, dtype=torch.int64) * 1000
    d['u8'] = torch.arange(4, dtype=torch.uint8) * 60
    d['transposed'] = base.t()                 # strides (1, 4): not contiguous
    d['sliced'] = shared[3:7]                  # storage offset 3
    d['shared'] = shared.view(2, 5)            # the same storage as 'sliced'
    d['scalar'] = torch.tensor(2.5)            # shape []
    d['param'] = torch.nn.Parameter(ramp(3, 1.0))
    return d


def main():
    os.makedirs(OUT, exist_ok=True)
    d = dtypes_dict()
    torch.save(d, os.path.join(OUT, 'dtypes.pth'))
    torch.save(d, os.path.join(OUT, 'dtypes-legacy.pth'), _use_new_zipfile_serialization=False)
    # A training checkpoint around a DataParallel state dict: the loader finds 'state_dict' and drops 'module.'.
    wrapped = collections.OrderedDict(('module.' + k, v) for k, v in d.items())
    torch.save({'epoch': 3, 'state_dict': wrapped, 'best': 0.5}, os.path.join(OUT, 'checkpoint.pth'))

    # cloth_resnet_a's trunk at width 1/16 under torchvision's names (as torchvision's own state
    # dicts have them, num_batches_tracked included), in float16 to keep the file small.
    with open(os.path.join(OUT, 'resnet-trunk-w16.json')) as f:
        names = json.load(f)
    trunk = collections.OrderedDict()
    for k, (name, shape) in enumerate(names):
        n = 1
        for s in shape:
            n *= s
        values = ramp(n, 1 / 64).reshape(shape)
        if name.endswith('running_var'):
            values = values.abs() + 1
        trunk[name] = values.to(torch.float16)
        if name.endswith('running_var'):
            trunk[name[:-len('running_var')] + 'num_batches_tracked'] = torch.tensor(7)
    trunk['fc.weight'] = torch.zeros(10, 2)  # an ImageNet classifier, ignored by --pretrained
    torch.save(trunk, os.path.join(OUT, 'resnet-trunk-w16.pth'))

    # Names and shapes of torchvision's ResNet-50, VGG-16 and VGG-16-BN (no weights: too large to keep).
    import torchvision
    for name, model in (('resnet50', torchvision.models.resnet50()), ('vgg16', torchvision.models.vgg16()), ('vgg16_bn', torchvision.models.vgg16_bn())):
        shapes = [[k, list(v.shape)] for k, v in model.state_dict().items()]
        with open(os.path.join(OUT, f'torchvision-{name}-names.json'), 'w') as f:
            json.dump(shapes, f)

    # A pickle that would run a shell command when loaded by Python's pickle: it must be refused.
    class Exploit:
        def __reduce__(self):
            return (os.system, ('touch /tmp/clothtag-pickle-ran',))
    torch.save({'weight': torch.zeros(2), 'payload': Exploit()}, os.path.join(OUT, 'malicious.pth'))
    print('wrote', sorted(os.listdir(OUT)), file=sys.stderr)


if __name__ == '__main__':
    main()
