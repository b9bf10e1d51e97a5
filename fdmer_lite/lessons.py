"""What the tutorial notebooks (``tutorials/*.py``) share, so each opens with two lines, not twenty.

The notebooks are thin drivers of the library:

* :func:`setup` reads the one switch, ``FDMER_LITE_FAST`` (``fdmer_lite.config.fast_mode``),
  seeds everything and sets torch's thread count by the package's one policy
  (``experiments.runs.set_threads``: ``$FDMER_LITE_THREADS``, else the default), as the command
  line does.
* :func:`lesson_data` and :func:`lesson_config`: the known-factor benchmark and the preset at
  FAST sizes (``fast`` preset, 256/64/128 samples) or full sizes (``synthetic`` preset, the
  generator's defaults).
* :func:`lesson_run`: the run store (``experiments.runs.obtain``) in
  ``runs/lessons/<fast|full>/<name>``, so later notebooks reuse the runs of earlier ones instead
  of retraining; at full size, a run that ships with the package (``fdmer_lite.shipped``) is
  loaded when no run of the student's own is there.
* :func:`runs_dir`: the folder of cached runs and projections, found the same way whatever the
  notebook's working directory (nbval runs notebooks from ``notebooks/``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .config import Config, default_preset, fast_mode, get_preset
from .data.synthetic import DEFAULT_SIZES, FAST_SIZES, make_benchmark
from .experiments.runs import Run, find, obtain, set_threads
from .offline import use_offline_renderer
from .paths import runs_root
from .shipped import ProjectionCache, find_lesson_run
from .train import budget, seed_everything

RUNS_ENV = "FDMER_LITE_RUNS_DIR"

_DATA_CACHE: dict = {}


def setup(seed: int = 0, verbose: bool = True) -> bool:
    """Seed python/numpy/torch, set torch's thread count (``experiments.runs.set_threads``) and the
    figures' renderer. Returns ``fast_mode()``."""
    fast = fast_mode()
    set_threads()
    seed_everything(seed)
    # Every figure carries plotly's own mimetype (JupyterLab) and an HTML copy with plotly.js
    # inlined once per notebook, so an export by nbconvert, or a viewer, shows it offline.
    use_offline_renderer()
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
    """The lesson preset (``fast`` or ``synthetic``), with changes.

    ``lesson_config(loss={"beta": 0.0, "gamma": 0.0})`` works like ``Config.replace``.
    """
    cfg = get_preset(default_preset())
    return cfg.replace(**sections) if sections else cfg


def runs_dir(create: bool = True) -> Path:
    """Where lesson runs and cached projections live.

    ``$FDMER_LITE_RUNS_DIR`` if set; otherwise ``runs/lessons`` at the root of the checkout
    (found from the working directory, then from this file; git ignores ``runs/``); otherwise
    ``~/.cache/fdmer_lite/lessons``. FAST and full runs are kept apart in ``fast/`` and ``full/``.
    """
    if os.environ.get(RUNS_ENV):
        base = Path(os.environ[RUNS_ENV]).expanduser()
    else:
        base = runs_root() / "lessons"
    path = base / ("fast" if fast_mode() else "full")
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def projection_cache() -> ProjectionCache:
    """The cache for ``viz.project(..., cache=...)``: each representation set is projected once,
    into ``runs_dir() / "projections"``; the projections of the shipped runs are read from the
    package (``shipped.ProjectionCache``)."""
    return ProjectionCache(runs_dir() / "projections")


LessonRun = Run             # what lesson_run returns: path, trainer, model, history, metrics, loaded


def lesson_run(name: str, config: Config, data, *, retrain: bool = False, shipped: bool = True,
               verbose: bool = True) -> Run:
    """The run ``name`` of ``config`` on ``data``, in this order: the finished run in
    ``runs_dir() / name`` (a run of the student's own); the run of that name shipped with the
    package (``shipped=True``, when its config and data match); else trained into ``runs_dir() /
    name``, with a progress bar. ``retrain``: train even when a run exists. Prints which, and how
    long it took.
    """
    folder = runs_dir() / name
    run = None if retrain else find(config, data, folder) or (
        find_lesson_run(name, config, data) if shipped else None)
    if run is None:
        if verbose:
            batches = -(-len(data.splits["train"]) // config.train.batch_size)
            epochs, _ = budget(config.train.epochs, config.train.patience, batches, config.train.min_steps)
            print(f"run {name!r}: training now, at most {epochs} epochs of {batches} batches "
                  f"(the bar shows the time left)", flush=True)
        run = obtain(config, data, folder, retrain=retrain)
    if verbose:
        how = (f"trained ({len(run.history)} epochs)" if not run.loaded
               else "loaded" if run.path == folder else "loaded (shipped with the package)")
        print(f"run {name!r}: {how} in {run.seconds:.1f} s on {run.trainer.device}; files in {run.path}")
    return run
