#!/usr/bin/python3
"""PyTorch CPU timings of the UNet's blocks at their real sizes (batch 64), the peers of
diffusion/conv's BenchmarkFormulations* (Go). Run pinned to one core:

    taskset -c 1 /usr/bin/python3 bench/torch_layers.py --threads 1

"fwd" runs the block, "fwd+bwd" the block and backward() of sum(out * r) (gradients with respect
to the input and the parameters). Prints median and min ms over --steps runs after warm-up.
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=1)
p.add_argument("--steps", type=int, default=20)
args = p.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(0)


def bench(name, block, x):
    x = x.clone().requires_grad_(True)
    r = torch.randn_like(block(x))

    def fwd():
        with torch.no_grad():
            block(x)

    def fwdbwd():
        (block(x) * r).sum().backward()

    for label, fn in (("fwd", fwd), ("fwd+bwd", fwdbwd)):
        for _ in range(3):
            fn()
        ds = []
        for _ in range(args.steps):
            s = time.perf_counter()
            fn()
            ds.append(time.perf_counter() - s)
        print(f"RESULT {name}/{label} median={statistics.median(ds)*1000:.2f}ms min={min(ds)*1000:.2f}ms", flush=True)


B = 64
bench("conv3x3_32to32_28x28", nn.Conv2d(32, 32, 3, 1, 1), torch.randn(B, 32, 28, 28))
bench("downconv_32to32_28to14", nn.Conv2d(32, 32, 3, 2, 1), torch.randn(B, 32, 28, 28))
bench("upconv_64to32_14to28", nn.ConvTranspose2d(64, 32, 4, 2, 1), torch.randn(B, 64, 14, 14))
bench("unflatten_64_1to7", nn.ConvTranspose2d(64, 64, 7, 7), torch.randn(B, 64, 1, 1))
bench("avgpool7_64", nn.AvgPool2d(7), torch.randn(B, 64, 7, 7))
for approx in ("tanh", "none"):
    bench(f"bn_gelu_{approx}_32_28x28", nn.Sequential(nn.BatchNorm2d(32), nn.GELU(approximate=approx)), torch.randn(B, 32, 28, 28))
bench("conv_bn_gelu_tanh_32_28x28", nn.Sequential(nn.Conv2d(32, 32, 3, 1, 1), nn.BatchNorm2d(32), nn.GELU(approximate="tanh")),
      torch.randn(B, 32, 28, 28))
