"""The paper's Table-4 grid (every ablation variant x seeds), timed, with the claims it supports.

    python benchmarks/ablation_grid.py                       # known-factor benchmark, emotion and
                                                             # humor kinds, synthetic preset, 3 seeds
    python benchmarks/ablation_grid.py --fast                # tiny data, fast preset (a check)
    python benchmarks/ablation_grid.py --dataset mosi-text-audio   # the real CMU-MOSI text + audio
    python benchmarks/ablation_grid.py --workers 2 --ray-address local

Results land in ``benchmarks/out/ablation/<dataset>/`` (one folder per run, ``table.csv``,
``table.md``, ``claims.md`` and ``summary.md`` with the wall time and the machine's load).
Finished runs are reused: run the command again after an interruption and only the missing runs
train. Wall time counts only what ran in this invocation.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

from fdmer_lite.ablations import benchmark_setup, claims_markdown, paper_claims, run_ablation
from fdmer_lite.experiments.specs import DataSpec

def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def one_grid(label: str, cfg, data: DataSpec, args, kind: str | None) -> str:
    out = Path(args.out) / label
    load_before = load_average()
    print(f"== {label}: preset {cfg.name}, seeds {args.seeds}, variants {args.variants}, -> {out} "
          f"(load average before: {load_before})", flush=True)
    res = run_ablation(cfg, data, variants=args.variants, seeds=args.seeds, out_dir=out,
                       workers=args.workers, threads=args.threads, ray_address=args.ray_address,
                       dataset_label=label)
    claims = claims_markdown(paper_claims(res.rows, kind))
    (out / "claims.md").write_text(claims + "\n")
    summary = "\n".join([
        f"# Ablation grid: {label}",
        "",
        f"- {res.report.summary()}",
        f"- wall time of this invocation: {res.wall_seconds:.0f} s ({res.wall_seconds / 60:.1f} min)",
        f"- machine: {os.cpu_count()} CPU core(s), {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}",
        f"- load average (1, 5, 15 min) before: {load_before}; after: {load_average()}",
        f"- preset {cfg.name}; epochs {cfg.train.epochs}, batch {cfg.train.batch_size}, "
        f"model_dim {cfg.model.model_dim}, d_k {cfg.model.d_k}",
        "",
        res.markdown,
        "",
        "## Which of the paper's orderings hold here",
        "",
        claims,
        "",
    ])
    (out / "summary.md").write_text(summary)
    print(summary, flush=True)
    for run_id, error in res.report.failed.items():
        print(f"FAILED {run_id}: {error.strip().splitlines()[-1]}", file=sys.stderr)
    return summary


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="synthetic", choices=["synthetic", "mosi-text-audio"])
    p.add_argument("--data", default=None, help="mosi-text-audio folder (default: $FDMER_LITE_MOSI_DIR)")
    p.add_argument("--kind", default="both", choices=["emotion", "humor", "both"], help="synthetic only")
    p.add_argument("--fast", action="store_true", help="fast preset on small data (a check, not a result)")
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--variants", default="all")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core)")
    p.add_argument("--threads", type=int, default=None, help="torch threads per run")
    p.add_argument("--ray-address", default=None)
    p.add_argument("--out", default="benchmarks/out/ablation")
    args = p.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    start = time.perf_counter()

    if args.dataset == "synthetic":
        kinds = ["emotion", "humor"] if args.kind == "both" else [args.kind]
        for kind in kinds:
            cfg, data, label = benchmark_setup(kind, fast=args.fast)
            if args.epochs:
                cfg = cfg.replace(train={"epochs": args.epochs})
            one_grid(label, cfg, data, args, kind)
    else:
        from fdmer_lite.data.mosi_text_audio import mosi_text_audio_config
        cfg = mosi_text_audio_config().replace(train={"device": "cpu"})
        if args.fast:
            cfg = cfg.replace(train={"epochs": 2})
        if args.epochs:
            cfg = cfg.replace(train={"epochs": args.epochs})
        one_grid("mosi-text-audio" + ("-fast" if args.fast else ""), cfg,
                 DataSpec("mosi-text-audio", args.data), args, None)
    print(f"total wall time {time.perf_counter() - start:.0f} s; load average now {load_average()}")
    return 0


if __name__ == "__main__":                    # the guard matters: worker processes are spawned
    sys.exit(main())
