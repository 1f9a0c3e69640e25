#!/usr/bin/python3
"""PyTorch CPU peer of diffusion/nets.UNet (CS180 project 5B, part 1, unconditional UNet).

The same architecture, loss and optimizer as BenchmarkUNetTrainStep / BenchmarkUNetForward in
diffusion/nets, so the Go figures can be read as a ratio measured side by side:

    taskset -c 1 /usr/bin/python3 bench/torch_unet.py --threads 1 --hidden 32 --batch 64

Train step: x = clean + 0.5 * noise (28x28x1), MSE(unet(x), clean), Adam lr 1e-4 (zero_grad,
backward, step). Forward: one sampling call (eval mode: BatchNorm running stats, no grad).
Prints the first step separately and the median over --steps timed steps after --warmup.

With --export DIR it instead writes, in float64, a randomly initialized UNet (--hidden, --cond,
--gelu), an input batch and PyTorch's outputs, running statistics and gradients to DIR as .pt
files, for the Go parity test (diffusion/nets/unet_torch_test.go).
"""
import argparse
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--batch", type=int, default=64)
p.add_argument("--hidden", type=int, default=32)
p.add_argument("--warmup", type=int, default=3)
p.add_argument("--steps", type=int, default=20)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--gelu", default="none", choices=["none", "tanh", "fast"],
               help="GELU after batch norms: exact (none), tanh approximation, or Go's GELUFast formula")
p.add_argument("--cond", default="none", choices=["none", "time", "class"], help="conditioning (CS180 5B part 2)")
p.add_argument("--sinusoidal", type=int, default=0,
               help="embed t sinusoidally with this many features before the FCBlocks (nets.SinusoidalEmbedding; "
                    "the DDPM UNet: 32)")
p.add_argument("--mode", default="both", choices=["both", "train", "forward"], help="what to time")
p.add_argument("--forward-batch", type=int, default=0,
               help="batch of the timed forward call (default --batch; CFG sampling of N images: 2N)")
p.add_argument("--export", default="", help="write a parity case to this directory instead of timing")
args = p.parse_args()

torch.set_num_threads(args.threads)
torch.manual_seed(0)

# Go's conv.GELUFast: z/2 (1 + r/sqrt(1+r^2)), r = z (c0 + c1 z^2 + c2 z^4 + c3 z^6).
_LAM = 0.3727843772838777
_FAST = (0.793192596795165, 0.9573508879218667 * _LAM**2, 0.3329126807606148 * _LAM**4, _LAM**6)


def gelu(x):
    if args.gelu == "fast":
        s = x * x
        r = x * (_FAST[0] + s * (_FAST[1] + s * (_FAST[2] + s * _FAST[3])))
        return 0.5 * x * (1 + r / torch.sqrt(1 + r * r))
    return F.gelu(x, approximate=args.gelu)


class Conv(nn.Module):
    def __init__(self, ci, co):
        super().__init__()
        self.c, self.bn = nn.Conv2d(ci, co, 3, 1, 1), nn.BatchNorm2d(co)

    def forward(self, x):
        return gelu(self.bn(self.c(x)))


class DownConv(Conv):
    def __init__(self, ci, co):
        super().__init__(ci, co)
        self.c = nn.Conv2d(ci, co, 3, 2, 1)


class UpConv(Conv):
    def __init__(self, ci, co):
        super().__init__(ci, co)
        self.c = nn.ConvTranspose2d(ci, co, 4, 2, 1)


class Flatten(nn.Module):
    def forward(self, x):
        return gelu(F.avg_pool2d(x, 7))


class Unflatten(Conv):
    def __init__(self, ci):
        super().__init__(ci, ci)
        self.c = nn.ConvTranspose2d(ci, ci, 7, 7, 0)


class ConvBlock(nn.Sequential):
    def __init__(self, ci, co):
        super().__init__(Conv(ci, co), Conv(co, co))


class DownBlock(nn.Sequential):
    def __init__(self, ci, co):
        super().__init__(DownConv(ci, co), ConvBlock(co, co))


class UpBlock(nn.Sequential):
    def __init__(self, ci, co):
        super().__init__(UpConv(ci, co), ConvBlock(co, co))


class FCBlock(nn.Sequential):
    def __init__(self, ci, co):
        super().__init__(nn.Linear(ci, co), nn.GELU(), nn.Linear(co, co))


def sinusoidal(t, dim):
    """nets.SinusoidalEmbedding: sin(t f_i) then cos(t f_i), f_i = 10000^(-i/(dim/2))."""
    half = dim // 2
    f = torch.exp(-math.log(10000) * torch.arange(half, dtype=t.dtype) / half)
    arg = t * f[None, :]
    return torch.cat([torch.sin(arg), torch.cos(arg)], 1)


class UNet(nn.Module):
    def __init__(self, D, cond, sin_dim=0):
        super().__init__()
        self.cond, self.sin_dim = cond, sin_dim
        self.e1 = ConvBlock(1, D)
        self.d1 = DownBlock(D, D)
        self.d2 = DownBlock(D, 2 * D)
        self.flat = Flatten()
        self.unflat = Unflatten(2 * D)
        self.u1 = UpBlock(4 * D, D)
        self.u2 = UpBlock(2 * D, D)
        self.out = nn.Sequential(ConvBlock(2 * D, D), nn.Conv2d(D, 1, 3, 1, 1))
        if cond != "none":
            tin = sin_dim if sin_dim else 1
            self.t1, self.t2 = FCBlock(tin, 2 * D), FCBlock(tin, D)
        if cond == "class":
            self.c1, self.c2 = FCBlock(10, 2 * D), FCBlock(10, D)

    def forward(self, x, t=None, c=None):
        if self.sin_dim and t is not None:
            t = sinusoidal(t, self.sin_dim)
        e1 = self.e1(x)
        e2 = self.d1(e1)
        e3 = self.d2(e2)
        u = self.unflat(self.flat(e3))
        if self.cond == "class":
            u = self.c1(c)[:, :, None, None] * u + self.t1(t)[:, :, None, None]
        elif self.cond == "time":
            u = u + self.t1(t)[:, :, None, None]
        u1 = self.u1(torch.cat([u, e3], 1))
        if self.cond == "class":
            u1 = self.c2(c)[:, :, None, None] * u1 + self.t2(t)[:, :, None, None]
        elif self.cond == "time":
            u1 = u1 + self.t2(t)[:, :, None, None]
        u2 = self.u2(torch.cat([u1, e2], 1))
        return self.out(torch.cat([u2, e1], 1))


def export(out_dir):
    """Writes a float64 parity case: params.pt (initial state, random batch-norm parameters and
    running statistics), inputs.pt, and results.pt (train-mode output, updated running
    statistics, gradients of sum(out * r), eval-mode output)."""
    import os
    os.makedirs(out_dir, exist_ok=True)
    B, D = args.batch, args.hidden
    net = UNet(D, args.cond).double()
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g, dtype=torch.float64))
                m.bias.copy_(torch.rand(m.bias.shape, generator=g, dtype=torch.float64) - 0.5)
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g, dtype=torch.float64) - 0.5)
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g, dtype=torch.float64))
    params = {k: v.clone() for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    x = torch.randn(B, 1, 28, 28, generator=g, dtype=torch.float64)
    t = torch.rand(B, 1, generator=g, dtype=torch.float64)
    c = F.one_hot(torch.randint(0, 10, (B,), generator=g), 10).double()
    c[0] = 0  # one "unconditional" row
    r = torch.randn(B, 1, 28, 28, generator=g, dtype=torch.float64)
    net.train()
    out = net(x, t, c)
    (out * r).sum().backward()
    results = {"out": out.detach()}
    for k, v in net.state_dict().items():
        if k.endswith("running_mean") or k.endswith("running_var"):
            results["new." + k] = v.clone()
    for k, prm in net.named_parameters():
        results["grad." + k] = prm.grad.clone()
    net.eval()
    with torch.no_grad():
        results["eval_out"] = net(x, t, c)
    torch.save(params, os.path.join(out_dir, "params.pt"))
    torch.save({"x": x, "t": t, "c": c, "r": r}, os.path.join(out_dir, "inputs.pt"))
    torch.save(results, os.path.join(out_dir, "results.pt"))
    print(f"exported D={D} batch={B} cond={args.cond} gelu={args.gelu} to {out_dir}")


def main():
    if args.export:
        export(args.export)
        return
    B, D = args.batch, args.hidden
    FB = args.forward_batch or B
    net = UNet(D, args.cond, args.sinusoidal)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(42)
    clean = torch.rand(B, 1, 28, 28, generator=g)
    nparams = sum(p.numel() for p in net.parameters())

    def conditions(n):
        return torch.rand(n, 1, generator=g), F.one_hot(torch.randint(0, 10, (n,), generator=g), 10).float()

    def timed(fn):
        s = time.perf_counter()
        first = fn()
        first_ms = (time.perf_counter() - s) * 1000
        for _ in range(args.warmup):
            fn()
        ds = []
        for _ in range(args.steps):
            s = time.perf_counter()
            out = fn()
            ds.append(time.perf_counter() - s)
        return first_ms, statistics.median(ds) * 1000, min(ds) * 1000, out

    print(f"torch {torch.__version__} threads={torch.get_num_threads()} D={D} batch={B} cond={args.cond} "
          f"sinusoidal={args.sinusoidal} gelu={args.gelu} params={nparams}", flush=True)
    if args.mode in ("both", "train"):
        t, c = conditions(B)

        def train_step():
            x = clean + 0.5 * torch.randn_like(clean)
            loss = F.mse_loss(net(x, t, c), clean)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return loss.item()

        net.train()
        first, med, mn, loss = timed(train_step)
        print(f"RESULT torch_unet_train D={D} batch={B} first={first:.1f}ms median_step={med:.1f}ms min={mn:.1f}ms "
              f"loss={loss:.4f}", flush=True)

    if args.mode in ("both", "forward"):
        net.eval()
        x = torch.randn(FB, 1, 28, 28, generator=g)
        t, c = conditions(FB)

        def forward():
            with torch.no_grad():
                return net(x, t, c).mean().item()

        first, med, mn, _ = timed(forward)
        print(f"RESULT torch_unet_forward D={D} batch={FB} first={first:.1f}ms median_step={med:.1f}ms min={mn:.1f}ms",
              flush=True)


main()
