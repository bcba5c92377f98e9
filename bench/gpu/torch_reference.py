#!/usr/bin/env python3
"""PyTorch on the same GPU as the native reference for the GPU runbook (bench/gpu/run.sh).

Times every conv layer and pass that `clothtag bench conv` measured (read from its JSON) in
PyTorch/cuDNN, fp32 with TF32 disabled, by CUDA events (median of REPS after warm-up), prints
clothtag's GFLOP/s against PyTorch's per layer, and, when torchvision is there, ResNet-50 training
images/s at the same batch and size. Only runs where PyTorch with CUDA is installed; never in tests.
"""
import argparse, json, re, statistics, sys

import torch
import torch.nn.functional as F

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.backends.cudnn.benchmark = True


def median_ms(fn, reps):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def conv_layers(records):
    """(layer, pass, N, C, H, K, k, stride, clothtag GFLOP/s) from clothtag's conv records."""
    for r in records:
        m = re.match(r"\[(\d+), (\d+), (\d+), (\d+)\] -> (\d+) k(\d+)/(\d+)", r["shape"])
        if not m:
            continue
        N, C, H, _W, K, k, s = map(int, m.groups())
        yield r["layer"], r["pass"], N, C, H, K, k, s, r["gflops"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conv", required=True, help="clothtag bench conv --json output")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--json")
    a = ap.parse_args()
    dev = torch.device("cuda")
    print(f"PyTorch {torch.__version__} on {torch.cuda.get_device_name(0)}, fp32 (TF32 off), cuDNN {torch.backends.cudnn.version()}")
    records = json.load(open(a.conv))["records"]
    rows, ratios = [], {}
    for layer, pas, N, C, H, K, k, s, ours in conv_layers(records):
        p = (k - 1) // 2
        x = torch.randn(N, C, H, H, device=dev)
        w = torch.randn(K, C, k, k, device=dev) * 0.01
        y = F.conv2d(x, w, stride=s, padding=p)
        dy = torch.randn_like(y)
        OH = y.shape[2]
        flops = 2 * N * K * OH * OH * C * k * k
        if pas == "forward":
            fn = lambda: F.conv2d(x, w, stride=s, padding=p)
        elif pas == "backward_data":
            fn = lambda: torch.nn.grad.conv2d_input(x.shape, w, dy, stride=s, padding=p)
        else:
            fn = lambda: torch.nn.grad.conv2d_weight(x, w.shape, dy, stride=s, padding=p)
        theirs = flops / median_ms(fn, a.reps) / 1e6
        rows.append({"layer": layer, "pass": pas, "clothtag_gflops": ours, "torch_gflops": theirs, "ratio": ours / theirs})
        ratios.setdefault(pas, []).append(ours / theirs)
        print(f"  {layer:36s} {pas:16s} clothtag {ours:9.1f}  torch {theirs:9.1f} GFLOP/s  {ours / theirs:5.2f}x")
    for pas, rs in ratios.items():
        print(f"geometric mean clothtag/PyTorch, {pas}: {statistics.geometric_mean(rs):.3f}x over {len(rs)} layers")
    out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "layers": rows}
    try:
        import torchvision
        model = torchvision.models.resnet50(num_classes=50).to(dev)
        opt = torch.optim.Adam(model.parameters(), 1e-4)
        x, t = torch.randn(32, 3, 224, 224, device=dev), torch.randint(0, 50, (32,), device=dev)
        def step():
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), t).backward()
            opt.step()
        ms = median_ms(step, a.reps)
        out["resnet50_train_images_per_s"] = 32 * 1000 / ms
        print(f"torchvision ResNet-50 training, batch 32, 224x224, fp32: {32 * 1000 / ms:.1f} images/s")
    except ImportError:
        print("torchvision is not installed: no ResNet-50 training reference")
    if a.json:
        json.dump(out, open(a.json, "w"), indent=2)


if __name__ == "__main__":
    sys.exit(main())
