"""Training throughput at the paper's MOSI preset, as a fraction of this machine's matmul peak.

    python benchmarks/throughput.py [--preset mosi] [--steps 10] [--device auto] [--threads N]

Measures, in one run:
  * the plain fp32 matrix-multiply rate (2048 x 2048), the peak a training step can approach;
  * the FLOPs of one FDMER training step (forward + backward, counted by
    torch.utils.flop_counter on the real step, not estimated);
  * samples per second and achieved GFLOP/s over ``--steps`` timed steps (after warm-up).
Prints the figures and the ratio achieved / peak (target on two CPU cores: >= 40 %). On a busy
shared machine two threads oversubscribe the cores and many small kernels suffer far more than
one large matmul; ``--threads 1`` then gives a fairer ratio.

The figures measured so far are in ``benchmarks/results/throughput.md``.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from fdmer_lite.config import get_preset
from fdmer_lite.losses import fdmer_objective
from fdmer_lite.model import build_model
from fdmer_lite.train import clip_gradients, make_optimizer, select_device

WIDTHS = {"t": 300, "a": 74, "v": 47}        # CMU-MOSI, GloVe / COVAREP / FACET 4.1
LENGTH = 50


def matmul_peak(device, n=2048, repeats=10) -> float:
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(2):
        a @ b
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * n ** 3 * repeats / (time.perf_counter() - start) / 1e9


def training_step(model, cfg, device, x, y):
    """One step as ``Trainer.fit`` takes it on a CPU (no mixed precision there): the objective,
    backward, gradient clipping when the preset clips, and the trainer's Adam (fused)."""
    opt = make_optimizer(model.parameters(), cfg.train, device)

    def step():
        loss = fdmer_objective(model(x), y, cfg.loss)["all"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.train.grad_clip:
            clip_gradients(model.parameters(), cfg.train.grad_clip, device)
        opt.step()
    return step


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="mosi")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    p.add_argument("--attention-dropout", action="store_true",
                   help="instead: time a step with dropout on the attention weights against one without, "
                        "interleaved in one run (the second uses the fused attention kernel)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.attention_dropout:
        return compare_attention_dropout(args)

    device = select_device(args.device)
    cfg = get_preset(args.preset)
    B = cfg.train.batch_size
    torch.manual_seed(0)
    model = build_model(cfg, WIDTHS, 1, max_len=LENGTH).to(device)
    x = {m: torch.randn(B, LENGTH, d, device=device) for m, d in WIDTHS.items()}
    y = torch.randn(B, device=device).clamp(-3, 3)
    step = training_step(model, cfg, device, x, y)

    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    for _ in range(2):
        step()
    peak_before = matmul_peak(device)
    _sync(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    _sync(device)
    seconds = (time.perf_counter() - start) / args.steps
    peak_after = matmul_peak(device)
    peak = max(peak_before, peak_after)
    achieved = flops / seconds / 1e9
    params = sum(p.numel() for p in model.parameters())
    print(f"device {device}, torch threads {torch.get_num_threads()}, preset {args.preset}: batch {B}, "
          f"length {LENGTH}, widths {WIDTHS}, model_dim {cfg.model.model_dim}, d_k {cfg.model.d_k}, "
          f"{params / 1e6:.2f} M parameters")
    print(f"matmul peak (2048^2 fp32):   {peak:8.1f} GFLOP/s (before {peak_before:.1f}, after {peak_after:.1f})")
    print(f"FLOPs per training step:     {flops / 1e9:8.2f} GFLOP (forward + backward, counted)")
    print(f"time per step:               {seconds * 1e3:8.1f} ms over {args.steps} steps")
    print(f"training throughput:         {B / seconds:8.1f} samples/s")
    print(f"achieved:                    {achieved:8.1f} GFLOP/s = {achieved / peak:.0%} of the matmul peak")


def compare_attention_dropout(args, rounds: int = 5) -> None:
    """ms per training step with attention dropout (the written-out attention, as on the CPU
    any dropout on the weights needs) and without it (``F.scaled_dot_product_attention``), both
    on the same inputs, timed in alternating blocks so that a change in the machine's load hits
    both alike."""
    device = select_device(args.device)
    cfg = get_preset(args.preset)
    B = cfg.train.batch_size
    x = {m: torch.randn(B, LENGTH, d, device=device) for m, d in WIDTHS.items()}
    y = torch.randn(B, device=device).clamp(-3, 3)
    drop = cfg.model.dropout
    steps = {}
    for name, p_attn in (("with", drop), ("without", 0.0)):
        torch.manual_seed(0)
        model = build_model(cfg.replace(model={"attn_dropout": p_attn}), WIDTHS, 1, max_len=LENGTH).to(device)
        step = training_step(model, cfg, device, x, y)
        for _ in range(3):
            step()
        steps[name] = step
    times = {name: 0.0 for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            _sync(device)
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            _sync(device)
            times[name] += time.perf_counter() - start
    ms = {name: t / (rounds * args.steps) * 1e3 for name, t in times.items()}
    print(f"device {device}, torch threads {torch.get_num_threads()}, preset {args.preset}: batch {B}, "
          f"length {LENGTH}, {rounds} x {args.steps} steps each, alternating")
    print(f"attention dropout {drop}:  {ms['with']:8.1f} ms a step (written-out attention)")
    print(f"attention dropout 0:    {ms['without']:8.1f} ms a step (fused kernel)")
    print(f"ratio with / without:   {ms['with'] / ms['without']:8.2f}")


if __name__ == "__main__":
    main()
