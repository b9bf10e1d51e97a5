"""torch.compile and bf16 autocast for the CPU training step, against eager fp32, in one run.

    python benchmarks/compile_bf16.py [--steps 64] [--block 8] [--n-train 2048]

The demo configuration (``synthetic`` preset on the known-factor benchmark). Four training
variants start from the same initial weights and take the same batches, in turns of ``--block``
steps each (interleaved, so a change in the machine's other work reaches all of them):

* ``eager fp32``: the step as ``Trainer.fit`` takes it on a CPU;
* ``eager fp32, dropout seed 2``: the same with another dropout seed, the noise reference;
* ``compiled fp32``: forward and objective under ``torch.compile`` (default mode, inductor; the
  backward is compiled with it). The reversal coefficient goes in as a 0-d tensor, so its
  schedule does not recompile;
* ``eager bf16``: forward under ``torch.autocast("cpu", dtype=torch.bfloat16)``, the objective in
  fp32 as the trainer computes it. Fast only where the CPU has bf16 arithmetic (AVX512-BF16 or
  AMX); elsewhere it is emulated, and this measures how much that costs.

Per variant: the first step's time (compilation included), the steady step time (median of the
steps after the first ``--settle``), a full-run extrapolation (``epochs`` x steps an epoch of the
demo's 10,000 training samples, the last short batch compiled once more, timed here too), and the
results: the mean training loss over the last block and the validation MAE after the short fit
(evaluated eagerly in fp32 for every variant), with their distance from eager fp32 beside the
distance between the two eager seeds. Writes ``benchmarks/results/compile-bf16.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from fdmer_lite.config import get_preset, thread_count
from fdmer_lite.data.synthetic import DEFAULT_SIZES, make_benchmark
from fdmer_lite.losses import fdmer_objective
from fdmer_lite.train import Trainer, clip_gradients, make_optimizer, reversal_coefficient

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = ["eager fp32", "eager fp32, dropout seed 2", "compiled fp32", "eager bf16"]


def cpu_flags() -> set[str]:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


class Run:
    """One variant: its own model (same initial weights), optimiser, dropout RNG and timings."""

    def __init__(self, name: str, cfg, data, batches, total_steps: int):
        self.name, self.cfg, self.batches, self.total = name, cfg, batches, total_steps
        self.trainer = Trainer(cfg, data)                     # seeds from cfg: same weights for all
        self.opt = make_optimizer(self.trainer.model.parameters(), cfg.train, self.trainer.device)
        self.bf16 = "bf16" in name
        gen = torch.Generator().manual_seed(2 if "seed 2" in name else 1)
        self.rng = gen.get_state()
        self.times: list[float] = []
        self.losses: list[float] = []
        model, loss_cfg, task = self.trainer.model, cfg.loss, data.task

        def loss_of(features, masks, label, coeff):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
                out = model(features, masks, grl_coeff=coeff)
            return fdmer_objective(out, label, loss_cfg, task)["all"]

        self.compiled = name.startswith("compiled")
        self.loss_of = torch.compile(loss_of) if self.compiled else loss_of

    def step(self, batch) -> float:
        t = self.cfg.train
        coeff = reversal_coefficient(t.grl_schedule, len(self.times) / self.total)
        coeff = torch.tensor(coeff) if self.compiled else coeff
        start = time.perf_counter()
        loss = self.loss_of(batch.features, batch.masks, batch.label, coeff)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if t.grad_clip:
            clip_gradients(self.trainer.model.parameters(), t.grad_clip, self.trainer.device)
        self.opt.step()
        return time.perf_counter() - start, float(loss.detach())

    def block(self, n: int) -> None:
        outer = torch.random.get_rng_state()
        torch.random.set_rng_state(self.rng)                  # this variant's own dropout stream
        self.trainer.model.train()
        for _ in range(n):
            seconds, loss = self.step(self.batches[len(self.times) % len(self.batches)])
            self.times.append(seconds)
            self.losses.append(loss)
        self.rng = torch.random.get_rng_state()
        torch.random.set_rng_state(outer)

    def short_batch_seconds(self, batch) -> float:
        """One more step on a batch of another size (a full run's last batch an epoch); for the
        compiled variant this includes its recompilation. Taken after the fit, not in it."""
        self.trainer.model.train()
        return self.step(batch)[0]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=64, help="training steps per variant")
    ap.add_argument("--block", type=int, default=8, help="steps per turn")
    ap.add_argument("--settle", type=int, default=3, help="steps left out of the steady time")
    ap.add_argument("--n-train", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: the package's)")
    args = ap.parse_args(argv)
    if args.steps <= args.settle or args.block < 1 or args.n_train < 64:
        print("compile_bf16.py: error: --steps must exceed --settle; --block >= 1; --n-train >= 64",
              file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads or thread_count())

    cfg = get_preset("synthetic").replace(train={"device": "cpu", "progress": False})
    t = cfg.train
    data = make_benchmark("emotion", n_train=args.n_train, n_valid=DEFAULT_SIZES["n_valid"], n_test=64)
    loader = Trainer(cfg, data).loader("train", shuffle=True)
    batches = [b for b in loader if len(b) == t.batch_size]
    short_n = DEFAULT_SIZES["n_train"] % t.batch_size or t.batch_size
    runs = [Run(name, cfg, data, batches, args.steps) for name in VARIANTS]

    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    done = 0
    while done < args.steps:
        n = min(args.block, args.steps - done)
        turn = (done // args.block) % len(runs)
        for run in runs[turn:] + runs[:turn]:
            run.block(n)
            print(f"{run.name}: {len(run.times)} steps, last {1000 * run.times[-1]:.0f} ms", flush=True)
        done += n
    load_after = os.getloadavg()[0]

    from fdmer_lite.data.base import make_loader
    short_batch = next(iter(make_loader(data, "train", short_n, shuffle=False)))
    steps_full = t.epochs * math.ceil(DEFAULT_SIZES["n_train"] / t.batch_size)
    full_batches = t.epochs * (DEFAULT_SIZES["n_train"] // t.batch_size)
    rows = []
    for run in runs:
        steady = statistics.median(run.times[args.settle:])
        short_s = run.short_batch_seconds(short_batch)
        first_extra = sum(run.times[:args.settle]) - args.settle * steady
        # a full run: compile (first steps' excess) + full batches at the steady rate + the short
        # batches (first one timed here, compiled if so; the rest at the steady rate, an upper bound)
        full = first_extra + full_batches * steady + short_s + (steps_full - full_batches - 1) * steady
        run.trainer.model.eval()
        mae = run.trainer.evaluate("valid")["metrics"]["mae"]
        rows.append({"name": run.name, "first": run.times[0], "steady": steady, "short": short_s, "full": full,
                     "loss": statistics.mean(run.losses[-args.block:]), "mae": mae})
        print(rows[-1], flush=True)
    base, noise = rows[0], rows[1]
    loss_noise, mae_noise = abs(noise["loss"] - base["loss"]), abs(noise["mae"] - base["mae"])

    flags = cpu_flags()
    bf16_hw = sorted(f for f in flags if f in {"avx512_bf16", "amx_bf16"})
    lines = ["# torch.compile and bf16 autocast on the CPU training step", "",
             "Written by `python benchmarks/compile_bf16.py` (see its docstring for the method).", "",
             f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}; {cpu_model()}, {os.cpu_count()} CPU(s), "
             f"{torch.get_num_threads()} torch thread(s); torch {torch.__version__}; CPU capability "
             f"{torch.backends.cpu.get_cpu_capability()}; bf16 arithmetic in the CPU flags: "
             f"{', '.join(bf16_hw) or 'none (no avx512_bf16, no amx_bf16)'}. {args.steps} steps per variant in "
             f"turns of {args.block}, batch {t.batch_size}, {args.n_train} training samples; one-minute load "
             f"average {load_before:.2f} before, {load_after:.2f} after (other users of the machine); "
             f"{time.perf_counter() - started:.0f} s in all.", "",
             f"Full run: {t.epochs} epochs x {math.ceil(DEFAULT_SIZES['n_train'] / t.batch_size)} steps "
             f"({DEFAULT_SIZES['n_train']} samples; early stopping would shorten it, which favours eager), "
             "compilation included: the first steps' excess over the steady time, and the short last "
             f"batch ({short_n} samples) timed once after the fit.", "",
             "| variant | first step (s) | steady ms/step | steps/s | short batch (s) | full run (s, extrapolated) "
             "| speed-up on a full run | train loss, last block | valid MAE |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['first']:.2f} | {1000 * r['steady']:.1f} | {1 / r['steady']:.2f} | "
                     f"{r['short']:.2f} | {r['full']:.0f} | {base['full'] / r['full']:.2f}x | {r['loss']:.4f} | "
                     f"{r['mae']:.4f} |")
    lines += ["", f"Noise reference (eager fp32, two dropout seeds): train loss differs by {loss_noise:.4f}, "
              f"validation MAE by {mae_noise:.4f}.", ""]
    for r in rows[2:]:
        speed = base["full"] / r["full"]
        same = (abs(r["loss"] - base["loss"]) <= max(2 * loss_noise, 1e-3)
                and abs(r["mae"] - base["mae"]) <= max(2 * mae_noise, 1e-3))
        verdict = "adopt" if speed >= 1.2 and same else "do not adopt"
        lines.append(f"- {r['name']}: {speed:.2f}x on a full run (the bar is 1.2x); loss off eager fp32 by "
                     f"{abs(r['loss'] - base['loss']):.4f}, MAE by {abs(r['mae'] - base['mae']):.4f} "
                     f"({'within' if same else 'outside'} twice the seed-to-seed difference): **{verdict}**.")
    lines.append("")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "compile-bf16.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
