"""What each reading and extension buys: the CPU preset with one switch flipped at a time.

    python benchmarks/readings.py --n-train 4000      # every row, seeds 0 1 2
    python benchmarks/readings.py --rows default literal_recipe --seeds 0
    python benchmarks/readings.py --presets mosi mosi_literal synthetic --device cuda   # on a GPU
    python benchmarks/readings.py --table             # print the table of what has finished

Every row trains the ``synthetic`` preset on the known-factor benchmark with ONE change (the
``literal_recipe`` row: all of the paper-literal switches at once, at the CPU preset's sizes), so
a row differs from ``default`` by what its name says. ``--presets`` trains whole presets instead
(the paper presets against the literal ones, at a size and length given on the command line).
Runs land in ``benchmarks/out/readings/<row>/seed<S>/`` and are reused when run again; the table
(test MAE over the Bayes floor, the shared factor's R^2 in C, D(C), the linear probe, epochs) is
printed as markdown for ``benchmarks/results/readings-synthetic.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from fdmer_lite.config import get_preset
from fdmer_lite.data.synthetic import make_benchmark
from fdmer_lite.experiments.runs import obtain

OUT = Path(__file__).resolve().parent / "out" / "readings"

# row -> (sections of Config.replace, what the row changes in words)
ROWS = {
    "default": ({}, "the `synthetic` preset as shipped"),
    "centring": ({"model": {"common_centring": True}}, "extension on: each C_m minus its modality's mean"),
    "losses_off": ({"loss": {"beta": 0.0, "gamma": 0.0}}, "the paper's Figure-2 contrast: beta = gamma = 0"),
    "gamma0": ({"loss": {"gamma": 0.0}}, "gamma = 0: the reversed adversary without the constraints"),
    "cosine_lr": ({"train": {"lr_schedule": "cosine"}}, "a decaying rate: cosine decay from the initial rate to 0"),
    "raw_cosines": ({"loss": {"con_centre": False}}, "reading off: Eq. 4 on raw cosines"),
    "constant_grl": ({"train": {"grl_schedule": "constant"}}, "reading off: reversal at -1 from the first step"),
    "no_attn_scale": ({"model": {"attn_scale": False}}, "reading off: no 1/sqrt(d_k) in Eq. 12"),
    "post_norm": ({"model": {"norm": "post"}}, "reading off: post-norm transformer layers"),
    "no_clip": ({"train": {"grad_clip": None}}, "reading off: no gradient clipping"),
    "input_width": ({"model": {"model_dim": None}}, "reading off: transformers at the input width"),
    "no_patience": ({"train": {"patience": 10**6}}, "reading off: no early stopping (best epoch kept)"),
    "time_stride_1": ({"model": {"time_stride": 1}}, "speed device off: every time step"),
    "literal_recipe": ({"model": {"norm": "post", "attn_scale": False, "time_stride": 1},
                        "loss": {"con_centre": False},
                        "train": {"grl_schedule": "constant", "grad_clip": None, "patience": 10**6}},
                       "every literal switch at once, at the CPU preset's sizes"),
}

COLUMNS = (("mae/floor", None), ("common_factor_r2", "common R^2"), ("disc_prob_common", "D(C)"),
           ("common_modality_acc", "probe C"), ("best_epoch", "best epoch"))


def run_one(name: str, cfg, seed: int, data, device: str = "cpu") -> dict:
    folder = OUT / name / f"seed{seed}"
    done = folder / "metrics.json"
    if done.is_file():
        return json.loads(done.read_text())
    print(f"-- {name} seed {seed}", flush=True)
    start = time.perf_counter()
    metrics = obtain(cfg.replace(train={"seed": seed, "device": device}), data, folder, retrain=True).metrics
    print(f"   {time.perf_counter() - start:.0f} s: MAE {metrics['mae']:.3f} (floor {metrics['bayes_mae']:.3f})",
          flush=True)
    return metrics


def cell(values: list[float], integers: bool = False) -> str:
    if not values:
        return "-"
    if integers:
        return " / ".join(str(int(v)) for v in values)
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def table(names: list[str], descriptions: dict[str, str]) -> str:
    head = "| row | what changes | seeds | " + " | ".join(label or key for key, label in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (3 + len(COLUMNS))]
    for name in names:
        runs = [json.loads(p.read_text()) for p in sorted((OUT / name).glob("seed*/metrics.json"))]
        if not runs:
            continue
        vals = []
        for key, _ in COLUMNS:
            if key == "mae/floor":
                vals.append(cell([r["mae"] / r["bayes_mae"] for r in runs]))
            else:
                vals.append(cell([float(r[key]) for r in runs if r.get(key) is not None], key == "best_epoch"))
        lines.append(f"| `{name}` | {descriptions.get(name, '')} | {len(runs)} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    ap.add_argument("--presets", nargs="+", default=None, help="train these whole presets instead of rows")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--n-train", type=int, default=None, help="training samples (default: the benchmark's)")
    ap.add_argument("--epochs", type=int, default=None, help="epochs (default: the preset's)")
    ap.add_argument("--table", action="store_true", help="only print the table of finished runs")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda: the paper presets need a GPU")
    args = ap.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("FDMER_LITE_THREADS", "1")))
    sizes = {} if args.n_train is None else {"n_train": args.n_train}
    suffix = "" if not sizes and args.epochs is None else f"-n{args.n_train}-e{args.epochs}"
    if args.presets:
        names = {p: f"preset-{p}{suffix}" for p in args.presets}
        descriptions = {v: f"the `{k}` preset" + (f", {args.n_train} training samples, {args.epochs} epochs"
                                                    if suffix else "") for k, v in names.items()}
    else:
        names = {r: r + suffix for r in args.rows}
        descriptions = {v: ROWS[k][1] for k, v in names.items()}
    if not args.table:
        data = make_benchmark("emotion", **sizes)
        for seed in args.seeds:                   # every row's first seed before any second seed
            for key, name in names.items():
                cfg = get_preset(key) if args.presets else get_preset("synthetic").replace(**ROWS[key][0])
                if args.epochs is not None:
                    cfg = cfg.replace(train={"epochs": args.epochs})
                run_one(name, cfg, seed, data, args.device)
    print(table(list(names.values()), descriptions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
