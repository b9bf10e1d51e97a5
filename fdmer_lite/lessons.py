"""What the tutorial notebooks (``tutorials/*.py``) and the demo share: set-up, data, runs.

:func:`setup` reads the one switch, ``FDMER_LITE_FAST``, seeds everything and sets torch's threads
as the command line does; :func:`lesson_data` and :func:`lesson_config` give the known-factor
benchmark and the preset at FAST or full sizes. :func:`lesson_run` reuses the run in ``runs_dir() /
name``, else a matching full-size run of :data:`LESSON_RUNS` bundled with the package (``python
tools/ship_runs.py`` regenerates them), else trains it. :func:`demo_contrast` reads from two of the
bundled runs what the paper's losses change (Figure 2).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .config import Config, default_preset, fast_mode, get_preset
from .data.base import MultimodalData
from .data.synthetic import DEFAULT_SIZES, FAST_SIZES, make_benchmark
from .experiments.runs import BUNDLED, ProjectionCache, Run, find, obtain, set_threads
from .viz import use_offline_renderer
from .paths import runs_root
from .metrics import SCORES
from .train import budget, seed_everything

RUNS_ENV = "FDMER_LITE_RUNS_DIR"
BUNDLED_LESSONS = BUNDLED / "lessons"
BUNDLED_PROJECTIONS = BUNDLED / "projections"

#: bundled lesson run name -> (benchmark kind, change to the ``synthetic`` preset): the full-size
#: runs the notebooks compare, found by :func:`lesson_run` under the same names
LESSON_RUNS: dict[str, tuple[str, dict]] = {
    "emotion-paper": ("emotion", {}),
    "emotion-beta0-gamma0": ("emotion", {"loss": {"beta": 0.0, "gamma": 0.0}}),
    "emotion-beta0.5": ("emotion", {"loss": {"beta": 0.5}}),
    "emotion-gamma0": ("emotion", {"loss": {"gamma": 0.0}}),
    "emotion-grl-dann": ("emotion", {"train": {"grl_schedule": "dann"}}),
    "emotion-confusion": ("emotion", {"loss": {"adversary": "confusion"}}),
    "emotion-centring": ("emotion", {"model": {"common_centring": True}}),
    "emotion-confusion-align-mean": ("emotion", {"loss": {"adversary": "confusion", "align_weight": 10.0,
                                                          "aux_losses": "ami+ams+con+dis+align_mean"}}),
    # the same recipe from four more seeds: how far two runs of one recipe differ (notebook 6)
    **{f"emotion-seed{s}": ("emotion", {"train": {"seed": s}}) for s in range(1, 5)},
    "humor-paper": ("humor", {}),
    "humor-beta0-gamma0": ("humor", {"loss": {"beta": 0.0, "gamma": 0.0}}),
}

#: lesson runs bundled without weights (notebook 6 reads only their history and metrics)
SPREAD_RUNS = tuple(f"emotion-seed{s}" for s in range(1, 5))

_DATA_CACHE: dict = {}


def setup(seed: int = 0, verbose: bool = True) -> bool:
    """Seed python/numpy/torch, set torch's thread count (``experiments.runs.set_threads``) and the
    figures' renderer. Returns ``fast_mode()``."""
    fast = fast_mode()
    set_threads()
    seed_everything(seed)
    use_offline_renderer()                 # figures show offline, in JupyterLab and in HTML exports
    if verbose:
        mode = ("FAST mode (FDMER_LITE_FAST=1): tiny data, the 'fast' preset, few epochs"
                if fast else "full mode: the 'synthetic' preset at the benchmark's default sizes")
        print(f"{mode}; torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    return fast


def benchmark_sizes() -> dict:
    """Split sizes for the lessons: small under FAST mode, the generator's defaults otherwise."""
    return dict(FAST_SIZES if fast_mode() else DEFAULT_SIZES)


def lesson_data(kind: str = "emotion", task: str = "regression", **kwargs):
    """The known-factor benchmark at lesson sizes (cached within the process)."""
    options = {**benchmark_sizes(), **kwargs}
    key = (kind, task, tuple(sorted(options.items())))
    if key not in _DATA_CACHE:
        _DATA_CACHE[key] = make_benchmark(kind, task=task, **options)
    return _DATA_CACHE[key]


def lesson_config(**sections) -> Config:
    """The lesson preset (``fast`` or ``synthetic``), with changes as in ``Config.replace``."""
    cfg = get_preset(default_preset())
    return cfg.replace(**sections) if sections else cfg


def runs_dir(create: bool = True) -> Path:
    """Where lesson runs and cached projections live, the same from any working directory:
    ``$FDMER_LITE_RUNS_DIR``, else ``lessons`` in ``paths.runs_root()``; then ``fast/`` or ``full/``."""
    env = os.environ.get(RUNS_ENV)
    base = Path(env).expanduser() if env else runs_root() / "lessons"
    path = base / ("fast" if fast_mode() else "full")
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def projection_cache() -> ProjectionCache:
    """The cache for ``viz.project(..., cache=...)``: written to ``runs_dir() / "projections"``, read
    there and from the bundled runs' projections (keyed by a hash of the array)."""
    return ProjectionCache(runs_dir() / "projections", BUNDLED_PROJECTIONS)


def lesson_run(name: str, config: Config, data, *, retrain: bool = False, shipped: bool = True,
               verbose: bool = True) -> Run:
    """The run ``name`` of ``config`` on ``data``: the student's finished run in ``runs_dir() / name``,
    else the matching bundled run (``shipped=True``), else trained there (``retrain``: always).
    Prints which, and how long it took."""
    folder = runs_dir() / name
    run = None if retrain else find(config, data, folder, bundled=BUNDLED_LESSONS / name if shipped else None)
    if run is None:
        if verbose:
            batches = -(-len(data.splits["train"]) // config.train.batch_size)
            epochs, _ = budget(config.train.epochs, config.train.patience, batches, config.train.min_steps)
            print(f"run {name!r}: training now, at most {epochs} epochs of {batches} batches "
                  f"(the bar shows the time left)", flush=True)
        run = obtain(config, data, folder, retrain=retrain)
    if verbose:
        how = (f"trained ({len(run.history)} epochs)" if not run.loaded
               else "loaded" if run.path == folder else "loaded (bundled with the package)")
        print(f"run {name!r}: {how} in {run.seconds:.1f} s on {run.trainer.device}; files in {run.path}")
    return run


def lesson_run_config(name: str) -> Config:
    """The configuration of bundled lesson run ``name``, as the notebooks build it in full mode."""
    _, change = LESSON_RUNS[name]
    base = get_preset("synthetic")
    return base.replace(**change) if change else base


# ------------------------------------------------------------------ the demo's contrast

#: name -> (the bundled lesson run that holds it, what it is in words)
CONTRASTS: dict[str, tuple[str, str]] = {
    "losses_off": ("emotion-beta0-gamma0", "beta = gamma = 0 (no paper losses)"),
    "gamma0": ("emotion-gamma0", "gamma = 0 (adversary, no constraints)"),
}

#: the scores the contrast compares (names: metrics.SCORES; what each should show: contrast_verdict)
CONTRAST_KEYS = ("common_factor_r2", "disc_prob_common", "common_modality_acc")


def contrast_config(base: Config, name: str) -> Config:
    """The configuration of contrast ``name`` for a demo trained with ``base``."""
    _, change = LESSON_RUNS[CONTRASTS[name][0]]
    return base.replace(**change)


def contrast_metrics(base: Config, data: MultimodalData,
                     folder: Path | None = None) -> dict[str, dict | None]:
    """Each contrast's bundled metrics, or None where no bundled run was trained with its
    configuration on ``data`` (``experiments.runs.find``, without weights)."""
    folder = folder or BUNDLED_LESSONS
    found = {name: find(contrast_config(base, name), data, folder / run, weights=False)
             for name, (run, _) in CONTRASTS.items()}
    return {name: None if run is None else run.metrics for name, run in found.items()}


def contrast_rows(this_run: dict, contrasts: dict[str, dict | None]) -> list[tuple[str, dict | None]]:
    """Rows of the contrast table: this run, then each contrast (None where no bundled run matches)."""
    return [("this run (beta, gamma of the preset)", this_run)] + \
        [(CONTRASTS[name][1], metrics) for name, metrics in contrasts.items()]


def contrast_markdown(rows: list[tuple[str, dict | None]]) -> str:
    head = "| run | " + " | ".join(SCORES[k].name for k in CONTRAST_KEYS) + " |"
    lines = [head, "|" + "---|" * (1 + len(CONTRAST_KEYS))]
    for name, m in rows:
        if m is None:
            cells = ["no bundled run matches this code"] + [""] * (len(CONTRAST_KEYS) - 1)
        else:
            cells = [f"{m[k]:.3f}" if m.get(k) is not None else "-" for k in CONTRAST_KEYS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def contrast_verdict(this_run: dict, contrasts: dict[str, dict | None]) -> list[str]:
    """One line per finding, each with its evidence, computed from the numbers."""
    lines = []
    off, g0 = contrasts.get("losses_off"), contrasts.get("gamma0")
    r2 = this_run.get("common_factor_r2")
    if off is not None and r2 is not None and off.get("common_factor_r2") is not None:
        more = r2 > off["common_factor_r2"]
        lines.append(f"With the paper's losses C holds {'more' if more else 'no more'} of the shared factor "
                     f"(R^2 {r2:.3f} against {off['common_factor_r2']:.3f} at beta = gamma = 0).")
    d = this_run.get("disc_prob_common")
    if g0 is not None and d is not None and g0.get("disc_prob_common") is not None:
        lines.append(f"Without gamma the discriminator's p(true modality | C_m) is "
                     f"{g0['disc_prob_common']:.3f} against {d:.3f} with both losses (1/3 is a confused "
                     f"discriminator, near 0 a confidently wrong one).")
    probe = this_run.get("common_modality_acc")
    if g0 is not None and probe is not None and g0.get("common_modality_acc") is not None:
        higher = g0["common_modality_acc"] > probe
        lines.append(f"Without gamma the linear probe reads the modality from C_m "
                     f"{'more' if higher else 'no more'} easily ({g0['common_modality_acc']:.3f} "
                     f"against {probe:.3f} with both losses; chance is 1/3).")
    if not lines:
        lines.append("No bundled comparison run matches this configuration and data, so there is "
                     "no contrast to show (regenerate them with python tools/ship_runs.py).")
    return lines


def demo_contrast(config: Config, data: MultimodalData, this_run: dict) -> str:
    """The contrast as text for the terminal and the report: the table and the verdicts."""
    contrasts = contrast_metrics(config, data)
    return contrast_markdown(contrast_rows(this_run, contrasts)) + "\n\n" + "\n".join(
        contrast_verdict(this_run, contrasts))
