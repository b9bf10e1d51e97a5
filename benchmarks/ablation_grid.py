"""The paper's Table-4 grid (every ablation variant x seeds), timed, with the claims it supports.

    python benchmarks/ablation_grid.py                       # known-factor benchmark, emotion and
                                                             # humor kinds, synthetic preset, 3 seeds
    python benchmarks/ablation_grid.py --fast                # tiny data, fast preset (a check)
    python benchmarks/ablation_grid.py --dataset mosi-text-audio   # the real CMU-MOSI text + audio
    python benchmarks/ablation_grid.py --workers 2 --ray-address local
    FDMER_LITE_THREADS=1 python benchmarks/ablation_grid.py --dataset mosi-text-audio --text-features minilm \
        --variants wo_text,wo_audio,wo_visual,wo_ami_ams,wo_con,wo_dis,ce_loss --seeds 0,1,2 \
        --workers 1 --results benchmarks/results/ablation-mosi-text-audio-minilm.md

Results land in ``benchmarks/out/ablation/<dataset>/`` (one folder per run, ``table.csv``,
``table.md``, ``claims.md`` and ``summary.md`` with the wall time and the machine's load).
Finished runs are reused: run the command again after an interruption and only the missing runs
train. Wall time counts only what ran in this invocation. ``--results FILE`` also writes the
summary, with the command line, the date, the per-seed test MAE and the paper's MOSI rows beside
ours, to FILE (e.g. a table under ``benchmarks/results/``).
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import shlex
import sys
import time
from pathlib import Path

from fdmer_lite import metrics as paper
from fdmer_lite.ablations import (benchmark_setup, claims_markdown, load_ablation, paper_claims,
                                  run_ablation, select_variants)
from fdmer_lite.experiments import runstore
from fdmer_lite.experiments.runs import DataSpec

def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _pm(row: dict, key: str, percent: bool = False) -> str:
    mean, std = row.get(f"{key}_mean"), row.get(f"{key}_std")
    if mean is None or math.isnan(mean):
        return "–"
    k, digits = (100.0, 1) if percent else (1.0, 3)
    return f"{mean * k:.{digits}f}" + ("" if std is None or math.isnan(std) else f" ± {std * k:.{digits}f}")


def paper_side_by_side(rows: list[dict], runs) -> str:
    """Our rows (the issue's metrics, mean ± std over seeds) beside the paper's Table-4 MOSI rows:
    MAE and Corr, and each row's difference to the full model, ours and the paper's."""
    mosi = paper.TABLE4["mosi"]
    full = next(r for r in rows if r["variant"] == "full")
    per_seed = {}
    for r in runs:
        found = r.spec.find() if r.spec is not None else None
        if found is not None:
            per_seed.setdefault(r.variant, []).append(f"{found.metrics['mae']:.3f}")
    head = ["variant", "n", "MAE", "Corr", "Acc-7", "Acc-2 has0", "Acc-2 non0", "F1 has0", "F1 non0",
            "Δ MAE vs full", "Δ Corr vs full", "test MAE per seed",
            "paper MOSI MAE", "paper MOSI Corr", "paper Δ MAE vs full"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        p, pf = mosi.get(r["variant"]), mosi["full"]
        delta = lambda k: ("" if r is full or f"{k}_mean" not in r
                           else f"{r[f'{k}_mean'] - full[f'{k}_mean']:+.3f}")
        cells = [r["name"], str(r["n"]), _pm(r, "mae"), _pm(r, "corr"), _pm(r, "acc7", True),
                 _pm(r, "acc2_has0", True), _pm(r, "acc2_non0", True), _pm(r, "f1_has0", True),
                 _pm(r, "f1_non0", True), delta("mae"), delta("corr"),
                 " / ".join(per_seed.get(r["variant"], [])),
                 "n/a" if p is None else f"{p['mae']:.3f}", "n/a" if p is None else f"{p['corr']:.3f}",
                 "" if p is None or r is full else f"{p['mae'] - pf['mae']:+.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def train_times(runs) -> str:
    """The finished runs' own training times (``train_seconds`` in their metrics.json)."""
    secs = {}
    for r in runs:
        found = r.spec.find() if r.spec is not None and not r.note.startswith("same configuration") else None
        if found is not None:
            secs.setdefault(r.variant, []).append(found.metrics.get("train_seconds", math.nan))
    if not secs:
        return "no finished runs"
    total = sum(sum(v) for v in secs.values())
    return (f"training time of the {sum(map(len, secs.values()))} finished run(s) (their metrics.json): "
            f"{total:.0f} s in all; per run, by variant: "
            + "; ".join(f"{k} {min(v):.0f}-{max(v):.0f} s" for k, v in secs.items()))


def one_grid(label: str, cfg, data: DataSpec, args, kind: str | None) -> str:
    out = Path(args.out) / label
    load_before = load_average()
    print(f"== {label}: preset {cfg.name}, seeds {args.seeds}, variants {args.variants}, -> {out} "
          f"(load average before: {load_before})", flush=True)
    if args.no_train:                          # the tables again, from the runs that finished
        manifest = runstore.read_json(out / "ablation.json")
        wanted = [v.key for v in select_variants(args.variants)]
        if manifest["variants"] != wanted or manifest["seeds"] != args.seeds:
            print(f"{out / 'ablation.json'}: field 'variants'/'seeds': expected {wanted} / "
                  f"{args.seeds} (this command's), found {manifest['variants']} / {manifest['seeds']}",
                  file=sys.stderr)
            sys.exit(2)
        res = load_ablation(out)
        planned = [r for r in res.runs if r.spec is not None and not r.note.startswith("same configuration")]
        done = sum(r.spec.find() is not None for r in planned)
        res.report = type("NoTraining", (), {"failed": {}, "summary": staticmethod(
            lambda: f"no training (--no-train): {done} of {len(planned)} planned run(s) finished, "
                    f"{len(planned) - done} not run; rows average the finished runs only")})()
    else:
        res = run_ablation(cfg, data, variants=args.variants, seeds=args.seeds, out_dir=out,
                           workers=args.workers, ray_address=args.ray_address,
                           dataset_label=label)
    claims = claims_markdown(paper_claims(res.rows, kind))
    (out / "claims.md").write_text(claims + "\n")
    features = data.options.get("text_features") if data.options else None
    summary = "\n".join([
        f"# Ablation grid: {label}",
        "",
        f"Written by `{args.command_line}` on {args.date}"
        + (f", text features {features}" if features else "") + ".",
        "",
        f"- {res.report.summary()}",
        f"- wall time of this invocation: {res.wall_seconds:.0f} s ({res.wall_seconds / 60:.1f} min)",
        f"- {train_times(res.runs)}",
        f"- machine: {os.cpu_count()} CPU core(s), {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}",
        f"- load average (1, 5, 15 min) before: {load_before}; after: {load_average()}",
        f"- preset {cfg.name}; epochs {cfg.train.epochs}, batch {cfg.train.batch_size}, "
        f"model_dim {cfg.model.model_dim}, d_k {cfg.model.d_k}",
        "",
        res.markdown,
        "",
        "## Beside the paper's Table 4 (MOSI)",
        "",
        paper_side_by_side(res.rows, res.runs),
        "",
        "Mean ± sample std (n - 1) over seeds, test split; accuracies and F1 in %. The paper's "
        "columns are its Table-4 MOSI rows (fdmer_lite.metrics.TABLE4; text, audio and visual, its "
        "GloVe features), typed from the paper, not our runs.",
        "",
        "## Which of the paper's orderings hold here",
        "",
        claims,
        "",
    ])
    (out / "summary.md").write_text(summary)
    if args.results:
        Path(args.results).write_text(summary)
        print(f"wrote {args.results}", flush=True)
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
    p.add_argument("--ray-address", default=None)
    p.add_argument("--text-features", default="glove", choices=["glove", "minilm"],
                   help="mosi-text-audio only: GloVe 50-d words (the preset mosi_text_audio) or "
                        "all-MiniLM-L6-v2 token states (the preset mosi_text_audio_minilm)")
    p.add_argument("--out", default="benchmarks/out/ablation")
    p.add_argument("--results", default=None, help="also write the summary to this file")
    p.add_argument("--no-train", action="store_true",
                   help="train nothing: rebuild the tables from the runs of an earlier invocation "
                        "with the same variants and seeds that finished (e.g. one stopped part way)")
    args = p.parse_args(argv)
    env = " ".join(f"{k}={shlex.quote(os.environ[k])}" for k in ("FDMER_LITE_MOSI_DIR",)
                   if k in os.environ and args.dataset == "mosi-text-audio" and not args.data)
    args.command_line = (env + " " if env else "") + "python benchmarks/ablation_grid.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    args.date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if args.dataset != "mosi-text-audio" and args.text_features != "glove":
        p.error("--text-features: only for --dataset mosi-text-audio")
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
        cfg = mosi_text_audio_config(args.text_features).replace(train={"device": "cpu"})
        if args.fast:
            cfg = cfg.replace(train={"epochs": 2})
        if args.epochs:
            cfg = cfg.replace(train={"epochs": args.epochs})
        minilm = args.text_features == "minilm"
        label = "mosi-text-audio" + ("-minilm" if minilm else "") + ("-fast" if args.fast else "")
        data = (DataSpec("mosi-text-audio", args.data, options={"text_features": "minilm"}) if minilm
                else DataSpec("mosi-text-audio", args.data))   # GloVe: the same runs as before
        one_grid(label, cfg, data, args, None)
    print(f"total wall time {time.perf_counter() - start:.0f} s; load average now {load_average()}")
    return 0


if __name__ == "__main__":                    # the guard matters: worker processes are spawned
    sys.exit(main())
