"""Denormal floats on the CPU: how much they slow a long paper-sized run, and where they are.

A float32 below about 1.2e-38 in magnitude is *denormal*; a CPU computes with such numbers many
times more slowly than with ordinary ones. ``Trainer.fit`` therefore flushes them to zero on
the CPU (``fdmer_lite.train.flush_denormals``). This benchmark shows why, in one process:

1. it trains a variant of ``benchmarks/family_runs.py`` (default ``mosi_reg``: the paper-sized
   preset with dropout 0.3 and weight decay) on a task of the family **with denormals kept**
   (``Trainer(flush_denormals=False)``) for ``--epochs`` epochs, and prints each epoch's seconds;
2. from the state at the end of the last epoch (weights and Adam's moments), it counts the
   denormal values in the parameters, their gradients, Adam's two moments and every module's
   output on one training batch;
3. it times ``--steps`` training steps from copies of that one state, with denormals kept and
   flushed, in alternating blocks, and reports milliseconds a step and their ratio.

Writes ``benchmarks/results/denormals.md``. About half an hour on one core with the defaults
(the slowdown appeared around epoch 29 of this run):

    python benchmarks/denormals.py --task mosi_aligned --seed 2 --model mosi_reg --epochs 31
"""

from __future__ import annotations

import argparse
import copy
import datetime
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import family_runs  # noqa: E402
from task_family import TASKS, make_task  # noqa: E402

from fdmer_lite.train import Trainer, clip_gradients, make_optimizer  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "denormals.md"
SMALLEST_NORMAL = torch.finfo(torch.float32).tiny          # about 1.18e-38


def denormal_count(x: torch.Tensor) -> int:
    """How many entries of a float32 tensor are denormal (non-zero and below the smallest normal)."""
    if x.dtype != torch.float32:
        return 0
    a = x.detach().abs()
    return int(((a > 0) & (a < SMALLEST_NORMAL)).sum())


def census(trainer: Trainer, batch) -> list[tuple[str, int, int]]:
    """(where, denormal entries, all entries) for parameters, gradients of one training batch,
    Adam's moments and each module's outputs on that batch, largest counts first."""
    model, opt = trainer.model, trainer.optimizer
    rows = []
    params = [p for p in model.parameters()]
    rows.append(("parameters", sum(denormal_count(p) for p in params), sum(p.numel() for p in params)))
    for name in ("exp_avg", "exp_avg_sq"):
        states = [opt.state[p][name] for p in params if p in opt.state]
        rows.append((f"Adam {name}", sum(denormal_count(s) for s in states), sum(s.numel() for s in states)))
    outputs: dict[str, list[int]] = {}

    def hook(module, _inputs, output):
        kind = type(module).__name__
        tensors = output if isinstance(output, (tuple, list)) else [output]
        tensors = [t for t in tensors if isinstance(t, torch.Tensor)]
        n = outputs.setdefault(kind, [0, 0])
        n[0] += sum(denormal_count(t) for t in tensors)
        n[1] += sum(t.numel() for t in tensors)

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    model.train()
    model.zero_grad(set_to_none=True)
    _, terms, _ = trainer._forward(batch)
    for h in handles:
        h.remove()
    terms["all"].backward()
    grads = [p.grad for p in params if p.grad is not None]
    rows.append(("gradients", sum(denormal_count(g) for g in grads), sum(g.numel() for g in grads)))
    rows += [(f"outputs of {kind} modules", n[0], n[1]) for kind, n in outputs.items()]
    return sorted(rows, key=lambda r: -r[1])


def time_steps(trainer: Trainer, state: dict, batches: list, flush: bool) -> float:
    """Milliseconds a training step over ``batches``, from a copy of ``state``, with denormals
    flushed or kept."""
    torch.set_flush_denormal(flush)
    model = trainer.model
    model.load_state_dict(state["model"])
    opt = make_optimizer(model.parameters(), trainer.config.train, trainer.device)
    opt.load_state_dict(state["optimizer"])
    model.train()
    start = time.perf_counter()
    for batch in batches:
        _, terms, _ = trainer._forward(batch)
        opt.zero_grad(set_to_none=True)
        terms["all"].backward()
        clip_gradients(model.parameters(), trainer.config.train.grad_clip, trainer.device)
        opt.step()
    return 1000 * (time.perf_counter() - start) / len(batches)


class Enough(Exception):
    """Raised from the epoch hook to end training at --epochs (the run keeps its configured
    length, so the reversal ramp and everything else follow the same course as a full run)."""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", default="mosi_aligned", choices=sorted(TASKS))
    p.add_argument("--seed", type=int, default=2)
    p.add_argument("--model", default="mosi_reg", choices=sorted(family_runs.VARIANTS))
    p.add_argument("--epochs", type=int, default=31, help="epochs trained with denormals kept")
    p.add_argument("--steps", type=int, default=5, help="training steps a timed block")
    p.add_argument("--repeats", type=int, default=3, help="timed blocks for each setting")
    a = p.parse_args(argv)
    for name, value in (("--epochs", a.epochs), ("--steps", a.steps), ("--repeats", a.repeats)):
        if value < 1:
            p.error(f"{name}: expected a whole number >= 1, got {value}")
    torch.set_num_threads(1)
    if not torch.set_flush_denormal(False):
        sys.exit("this CPU cannot flush denormals (torch.set_flush_denormal): nothing to compare")
    data = make_task(a.task, a.seed)
    cfg = family_runs.variant_config(a.model, a.seed)
    cfg = cfg.replace(train={"patience": max(cfg.train.patience, a.epochs)})   # no early stop before --epochs
    trainer = Trainer(cfg, data, flush_denormals=False)
    snapshot, seconds = {}, []

    def on_epoch(entry):
        seconds.append(entry["seconds"])
        print(f"epoch {entry['epoch']}: {entry['seconds']:.0f} s, valid MAE "
              f"{entry['valid_metrics']['mae']:.3f} (denormals kept)", flush=True)
        if entry["epoch"] == a.epochs:                          # the state of the last epoch's end
            snapshot["model"] = copy.deepcopy(trainer.model.state_dict())
            snapshot["optimizer"] = copy.deepcopy(trainer.optimizer.state_dict())
            raise Enough

    trainer.on_epoch = on_epoch
    start = time.perf_counter()
    try:
        trainer.fit()
    except Enough:
        pass
    train_seconds = time.perf_counter() - start
    if not snapshot:
        sys.exit(f"training stopped at epoch {len(seconds)}, before --epochs {a.epochs}")
    trainer.model.load_state_dict(snapshot["model"])
    trainer.optimizer.load_state_dict(snapshot["optimizer"])
    loader = iter(trainer.loader("train", shuffle=True))
    batches = [next(loader) for _ in range(a.steps)]
    rows = census(trainer, batches[0])
    kept, flushed = [], []
    for _ in range(a.repeats):                                  # alternate: both see the same load
        kept.append(time_steps(trainer, snapshot, batches, flush=False))
        flushed.append(time_steps(trainer, snapshot, batches, flush=True))
    torch.set_flush_denormal(False)

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    first = statistics.median(seconds[:5])
    lines = ["# Denormal floats in a long CPU run", "",
             f"Written by `python benchmarks/denormals.py --task {a.task} --seed {a.seed} --model {a.model} "
             f"--epochs {a.epochs} --steps {a.steps} --repeats {a.repeats}` (see its docstring for the method).", "",
             f"{stamp}; {platform.processor() or platform.machine()}, torch {torch.__version__}, one thread; "
             f"{train_seconds:.0f} s in all for the training.", "",
             "## Seconds an epoch, denormals kept", "",
             "| epoch | " + " | ".join(str(i) for i in range(1, len(seconds) + 1)) + " |",
             "|---|" + "---|" * len(seconds),
             "| seconds | " + " | ".join(f"{s:.0f}" for s in seconds) + " |", "",
             f"Median of the first five epochs {first:.0f} s; the last epoch {seconds[-1]:.0f} s "
             f"({seconds[-1] / first:.1f}x).", "",
             f"## Denormal values at the end of epoch {a.epochs}", "",
             "| where | denormal entries | all entries | fraction |", "|---|---|---|---|"]
    lines += [f"| {where} | {n:,} | {total:,} | {n / max(total, 1):.2e} |" for where, n, total in rows]
    ratio = statistics.median(kept) / statistics.median(flushed)
    lines += ["", f"## {a.steps} training steps from that state, {a.repeats} blocks each", "",
              "| denormals | ms a step (each block) | median |", "|---|---|---|",
              f"| kept | {' / '.join(f'{v:.0f}' for v in kept)} | {statistics.median(kept):.0f} |",
              f"| flushed to zero | {' / '.join(f'{v:.0f}' for v in flushed)} | {statistics.median(flushed):.0f} |",
              "", f"Kept / flushed: **{ratio:.1f}x** a step, the same weights, batches and Adam state.", ""]
    OUT.write_text("\n".join(lines))
    print(OUT.read_text())


if __name__ == "__main__":
    main()
