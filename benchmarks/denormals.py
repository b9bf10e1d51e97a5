"""Denormal floats on the CPU: how much they slow a long paper-sized run, and where they are.

A float32 below about 1.2e-38 in magnitude is *denormal*; a CPU computes with such numbers many
times more slowly than with ordinary ones. ``Trainer.fit`` therefore flushes them to zero on
the CPU (``fdmer_lite.train.flush_denormals``). This benchmark shows why, in one process:

1. it trains a variant of ``benchmarks/family_runs.py`` (default ``mosi_reg``: the paper-sized
   preset with dropout 0.3 and weight decay) on a task of the family **with denormals kept**
   (``Trainer(flush_denormals=False)``) for ``--epochs`` epochs, and prints each epoch's seconds;
2. from the state at the end of the last epoch (weights and Adam's moments), it counts the
   denormal values in the parameters, their gradients, Adam's two moments, every module's
   output and the gradient that reaches every module's output and input, on one training batch;
3. it times ``--steps`` training steps from copies of that one state, with denormals kept and
   flushed, in alternating blocks: the forward pass alone, forward and backward, and the whole
   step with Adam's update, in milliseconds a step, and the ratios.

``--state FILE`` keeps that state (weights, Adam's moments, the epoch times): a later call with
the same file skips the training and measures again from it.

Writes ``benchmarks/results/denormals.md``. About half an hour on one core with the defaults
(the slowdown appeared around epoch 29 of this run):

    python benchmarks/denormals.py --task mosi_aligned --seed 2 --model mosi_reg --epochs 31 \
        --state /tmp/denormal-state.pt
"""

from __future__ import annotations

import argparse
import copy
import datetime
import platform
import statistics
import sys
import time
import warnings
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
    Adam's moments, each module's outputs on that batch and the gradients that flow back into
    each module's output and out of its input, largest counts first."""
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

    def backward_hook(module, grad_input, grad_output):
        kind = type(module).__name__
        for side, grads in (("output", grad_output), ("input", grad_input)):
            tensors = [g for g in grads if isinstance(g, torch.Tensor)]
            n = outputs.setdefault(f"gradients at the {side} of {kind} modules", [0, 0])
            n[0] += sum(denormal_count(g) for g in tensors)
            n[1] += sum(g.numel() for g in tensors)

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    handles += [m.register_full_backward_hook(backward_hook) for m in leaves]
    model.train()
    model.zero_grad(set_to_none=True)
    _, terms, _ = trainer._forward(batch)
    with warnings.catch_warnings():     # the first layers' inputs need no gradient: only outputs fire
        warnings.simplefilter("ignore", UserWarning)
        terms["all"].backward()
    for h in handles:
        h.remove()
    grads = [p.grad for p in params if p.grad is not None]
    rows.append(("gradients", sum(denormal_count(g) for g in grads), sum(g.numel() for g in grads)))
    rows += [(kind if kind.startswith("gradients") else f"outputs of {kind} modules", n[0], n[1])
             for kind, n in outputs.items()]
    return sorted(rows, key=lambda r: -r[1])


PHASES = ("forward", "forward + backward", "whole step")


def time_steps(trainer: Trainer, state: dict, batches: list, flush: bool) -> dict[str, float]:
    """Milliseconds a batch of ``batches`` for each of PHASES, from a copy of ``state``, with
    denormals flushed or kept. The forward and backward passes are timed from the same weights
    without updating them; the whole step goes on to Adam's update, batch after batch."""
    torch.set_flush_denormal(flush)
    model = trainer.model
    model.train()
    model.load_state_dict(state["model"])
    ms = {}
    start = time.perf_counter()
    for batch in batches:
        trainer._forward(batch)
    ms["forward"] = time.perf_counter() - start
    start = time.perf_counter()
    for batch in batches:
        model.zero_grad(set_to_none=True)
        trainer._forward(batch)[1]["all"].backward()
    ms["forward + backward"] = time.perf_counter() - start
    opt = make_optimizer(model.parameters(), trainer.config.train, trainer.device)
    opt.load_state_dict(state["optimizer"])
    start = time.perf_counter()
    for batch in batches:
        _, terms, _ = trainer._forward(batch)
        opt.zero_grad(set_to_none=True)
        terms["all"].backward()
        clip_gradients(model.parameters(), trainer.config.train.grad_clip, trainer.device)
        opt.step()
    ms["whole step"] = time.perf_counter() - start
    return {k: 1000 * v / len(batches) for k, v in ms.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", default="mosi_aligned", choices=sorted(TASKS))
    p.add_argument("--seed", type=int, default=2)
    p.add_argument("--model", default="mosi_reg", choices=sorted(family_runs.VARIANTS))
    p.add_argument("--epochs", type=int, default=31, help="epochs trained with denormals kept")
    p.add_argument("--steps", type=int, default=5, help="training steps a timed block")
    p.add_argument("--repeats", type=int, default=3, help="timed blocks for each setting")
    p.add_argument("--state", type=Path, default=None, metavar="FILE",
                   help="keep the trained state here; when FILE exists, measure from it without training")
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
        # True ends training at --epochs; the run keeps its configured length, so the reversal
        # ramp and everything else follow the same course as a full run
        return entry["epoch"] == a.epochs

    trainer.on_epoch = on_epoch
    start = time.perf_counter()
    if a.state is not None and a.state.exists():
        saved = torch.load(a.state, weights_only=True)
        if saved["setting"] != [a.task, a.seed, a.model, a.epochs]:
            sys.exit(f"{a.state}: holds the state of {saved['setting']}, expected "
                     f"{[a.task, a.seed, a.model, a.epochs]} (--task, --seed, --model, --epochs)")
        snapshot, seconds = saved["snapshot"], saved["seconds"]
        trainer.optimizer = make_optimizer(trainer.model.parameters(), cfg.train, trainer.device)
        print(f"{a.state}: the state after epoch {a.epochs}, trained before", flush=True)
    else:
        trainer.fit()
        if not snapshot:
            sys.exit(f"training stopped at epoch {len(seconds)}, before --epochs {a.epochs}")
        if a.state is not None:
            torch.save({"setting": [a.task, a.seed, a.model, a.epochs], "snapshot": snapshot,
                        "seconds": seconds}, a.state)
    trainer.model.load_state_dict(snapshot["model"])
    trainer.optimizer.load_state_dict(snapshot["optimizer"])
    loader = iter(trainer.loader("train", shuffle=True))
    batches = [next(loader) for _ in range(a.steps)]
    rows = census(trainer, batches[0])
    time_steps(trainer, snapshot, batches, flush=True)          # once untimed: first-call costs
    kept, flushed = [], []
    for _ in range(a.repeats):                                  # alternate: both see the same load
        kept.append(time_steps(trainer, snapshot, batches, flush=False))
        flushed.append(time_steps(trainer, snapshot, batches, flush=True))
    torch.set_flush_denormal(False)
    median = {(name, phase): statistics.median(block[phase] for block in blocks)
              for name, blocks in (("kept", kept), ("flushed", flushed)) for phase in PHASES}

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    first = statistics.median(seconds[:5])
    lines = ["# Denormal floats in a long CPU run", "",
             f"Written by `python benchmarks/denormals.py --task {a.task} --seed {a.seed} --model {a.model} "
             f"--epochs {a.epochs} --steps {a.steps} --repeats {a.repeats}` (see its docstring for the method).", "",
             f"{stamp}; {platform.processor() or platform.machine()}, torch {torch.__version__}, one thread; "
             f"{sum(seconds):.0f} s of training epochs.", "",
             "## Seconds an epoch, denormals kept", "",
             "| epoch | " + " | ".join(str(i) for i in range(1, len(seconds) + 1)) + " |",
             "|---|" + "---|" * len(seconds),
             "| seconds | " + " | ".join(f"{s:.0f}" for s in seconds) + " |", "",
             f"Median of the first five epochs {first:.0f} s; the last epoch {seconds[-1]:.0f} s "
             f"({seconds[-1] / first:.1f}x).", "",
             f"## Denormal values at the end of epoch {a.epochs}", "",
             "| where | denormal entries | all entries | fraction |", "|---|---|---|---|"]
    lines += [f"| {where} | {n:,} | {total:,} | {n / max(total, 1):.2e} |" for where, n, total in rows]
    lines += ["", f"## {a.steps} training batches from that state, {a.repeats} blocks each", "",
              "ms a batch, the median of the blocks (each block in brackets).", "",
              "| phase | denormals kept | flushed to zero | kept / flushed |", "|---|---|---|---|"]
    for phase in PHASES:
        each = {name: " / ".join(f"{block[phase]:.0f}" for block in blocks)
                for name, blocks in (("kept", kept), ("flushed", flushed))}
        lines.append(f"| {phase} | {median['kept', phase]:.0f} ({each['kept']}) | "
                     f"{median['flushed', phase]:.0f} ({each['flushed']}) | "
                     f"**{median['kept', phase] / median['flushed', phase]:.1f}x** |")
    lines += ["", "The same weights, batches and Adam state for both.", ""]
    OUT.write_text("\n".join(lines))
    print(OUT.read_text())


if __name__ == "__main__":
    main()
