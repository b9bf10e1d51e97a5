"""Small helpers shared by the tutorial notebooks (``tutorials/*.py``). Not library material.

The notebooks are thin drivers of the library; what they have in common lives here so that each
notebook opens with two lines instead of twenty:

* :func:`setup` reads the one switch, ``FDMER_LITE_FAST`` (``fdmer_lite.config.fast_mode``),
  seeds everything and, in FAST mode, runs torch on one thread (tiny tensors gain nothing from
  threads), otherwise on ``config.default_threads`` (as the command line does);
  ``FDMER_LITE_THREADS=N`` sets the thread count in either mode.
* :func:`lesson_data` and :func:`lesson_config`: the known-factor benchmark and the preset at
  FAST sizes (``fast`` preset, 256/64/128 samples) or full sizes (``synthetic`` preset, the
  generator's defaults).
* :func:`lesson_run`: ``train_or_load`` into ``runs/lessons/<fast|full>/<name>`` so later
  notebooks reuse the runs of earlier ones instead of retraining.
* :func:`runs_dir`: the folder of cached runs and projections, found the same way whatever the
  notebook's working directory (nbval runs notebooks from ``notebooks/``).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from .config import Config, choose_threads, default_preset, fast_mode, get_preset, threads_from_env

FAST_SIZES = {"n_train": 256, "n_valid": 64, "n_test": 128}
RUNS_ENV = "FDMER_LITE_RUNS_DIR"
THREADS_ENV = "FDMER_LITE_THREADS"

_DATA_CACHE: dict = {}


def setup(seed: int = 0, verbose: bool = True) -> bool:
    """Seed python/numpy/torch, set torch's thread count and the figures' renderer. Returns
    ``fast_mode()``.

    Threads: ``$FDMER_LITE_THREADS`` if set, else one in FAST mode, else
    ``config.default_threads`` (few enough that a busy machine slows a step gently).
    """
    import torch

    from .train import seed_everything

    fast = fast_mode()
    threads = threads_from_env()
    torch.set_num_threads(threads if threads is not None else 1 if fast else choose_threads())
    seed_everything(seed)
    # Every figure carries plotly's own mimetype (JupyterLab) and an HTML copy with plotly.js
    # inlined once per notebook, so an export by nbconvert, or a viewer, shows it offline.
    import plotly.io as pio
    pio.renderers.default = "plotly_mimetype+notebook"
    if verbose:
        mode = ("FAST mode (FDMER_LITE_FAST=1): tiny data, the 'fast' preset, few epochs"
                if fast else "full mode: the 'synthetic' preset at the benchmark's default sizes")
        print(f"{mode}; torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    return fast


def benchmark_sizes() -> dict:
    """Split sizes for the lessons: small under FAST mode, the generator's defaults otherwise."""
    from .data.synthetic import DEFAULT_SIZES

    return dict(FAST_SIZES if fast_mode() else DEFAULT_SIZES)


def lesson_data(kind: str = "emotion", task: str = "regression", **kwargs):
    """The known-factor benchmark at lesson sizes (cached within the process)."""
    from .data.synthetic import make_benchmark

    options = {**benchmark_sizes(), **kwargs}
    key = (kind, task, tuple(sorted(options.items())))
    if key not in _DATA_CACHE:
        _DATA_CACHE[key] = make_benchmark(kind, task=task, **options)
    return _DATA_CACHE[key]


def lesson_config(**sections) -> Config:
    """The lesson preset (``fast`` or ``synthetic``), without progress bars, with changes.

    ``lesson_config(loss={"beta": 0.0, "gamma": 0.0})`` works like ``Config.replace``.
    """
    cfg = get_preset(default_preset()).replace(train={"progress": False})
    return cfg.replace(**sections) if sections else cfg


def _project_root(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and 'name = "fdmer_lite"' in pyproject.read_text(encoding="utf-8"):
            return folder
    return None


def runs_dir(create: bool = True) -> Path:
    """Where lesson runs and cached projections live.

    ``$FDMER_LITE_RUNS_DIR`` if set; otherwise ``runs/lessons`` at the root of the checkout
    (found from the working directory, then from this file; git ignores ``runs/``); otherwise
    ``~/.cache/fdmer_lite/lessons``. FAST and full runs are kept apart in ``fast/`` and ``full/``.
    """
    if os.environ.get(RUNS_ENV):
        base = Path(os.environ[RUNS_ENV]).expanduser()
    else:
        root = _project_root(Path.cwd().resolve()) or _project_root(Path(__file__).resolve().parent)
        base = root / "runs" / "lessons" if root else Path.home() / ".cache" / "fdmer_lite" / "lessons"
    path = base / ("fast" if fast_mode() else "full")
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def projection_cache() -> Path:
    """Folder for ``viz.project(..., cache=...)``: each representation set is projected once."""
    return runs_dir() / "projections"


@dataclass
class LessonRun:
    name: str
    path: Path
    trainer: object           # fdmer_lite.train.Trainer
    metrics: dict             # the run's metrics.json (test metrics, baselines, scores)
    loaded: bool              # True: read from disk; False: trained now
    seconds: float

    @property
    def model(self):
        return self.trainer.model

    @property
    def history(self) -> list[dict]:
        return self.trainer.history


def lesson_run(name: str, config: Config, data, *, retrain: bool = False,
               verbose: bool = True) -> LessonRun:
    """``train_or_load`` into ``runs_dir() / name``; prints whether it trained or loaded.

    A checkpoint that no longer fits the model (the library changed since it was written) is
    retrained rather than failing.
    """
    from . import runstore
    from .train import NonFiniteLoss, train_or_load

    path = runs_dir() / name
    start = time.perf_counter()
    had_run = False
    if not retrain and runstore.is_finished(path):         # finished and intact, never a failed run
        try:
            had_run = runstore.read_json(path / "config.json").get("config") == \
                json.loads(runstore.dumps(config.to_dict()))
        except (OSError, ValueError, AttributeError):
            had_run = False
    record_before = (path / runstore.RECORD).read_bytes() if had_run else None
    try:
        trainer = train_or_load(config, data, path, retrain=retrain)
    except NonFiniteLoss:                                   # retraining would fail the same way
        raise
    except (RuntimeError, ValueError, KeyError) as err:     # stale checkpoint from older code
        if verbose:
            print(f"{path}: cannot reuse the saved run ({type(err).__name__}); retraining")
        trainer = train_or_load(config, data, path, retrain=True)
        had_run = False
    seconds = time.perf_counter() - start
    metrics = runstore.read_json(path / "metrics.json")    # the run just published or loaded
    loaded = had_run and (path / runstore.RECORD).read_bytes() == record_before   # not republished
    if verbose:
        how = "loaded" if loaded else f"trained ({len(trainer.history)} epochs)"
        print(f"run {name!r}: {how} in {seconds:.1f} s on {trainer.device}; files in {path}")
    return LessonRun(name, path, trainer, metrics, loaded, seconds)
