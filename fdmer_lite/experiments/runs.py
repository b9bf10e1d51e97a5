"""The run store and the one grid runner: a finished run of (config, data), or train it; many runs at once.

* :func:`obtain` is the one way a training run reaches the disk: ``config.json`` (with the data's
  fingerprint), ``history.json``, ``metrics.json``, ``model.pt``, optionally ``reps.npz``, then
  ``complete.json``, published in one rename (``runstore``), so a failed run is never reused.
* :func:`find` is the one rule for reusing a run: finished, intact, and trained with the same
  configuration on the same data, in the caller's folder or a read-only second root such as the
  runs bundled with the package (:data:`BUNDLED`, some of them slim copies without ``model.pt``).
* :func:`run_grid` runs a list of :class:`RunSpec` here, in worker processes or on Ray, skips the
  runs :func:`find` finds and trains the rest, each under its folder's lock. Every engine gives
  the same numbers: a run seeds itself from its configuration and sets its threads by
  :func:`set_threads`, the package's one thread policy.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import ctypes
import functools
import hashlib
import json
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..analysis import disentanglement_scores, extract_representations, save_representations
from ..config import Config, legacy_form, thread_count
from ..data import load_dataset
from ..data.base import MultimodalData
from ..data.synthetic import baselines, make_benchmark
from ..errors import NonFiniteLoss
from ..train import CHECKPOINT, Trainer, progress_bar
from . import runstore

REPS_FILE = "reps.npz"
RUN_FILE = "run.json"          # a grid run's spec, host and process (written by execute)
ERROR_FILE = "error.txt"       # why a grid run failed (never sealed, never loaded)

#: the runs that ship with the package: a read-only second root for :func:`find`
BUNDLED = Path(__file__).resolve().parents[1] / "shipped_runs"

TREATMENT_KEYS = ("nonfinite_replaced", "nonfinite_replaced_total", "zero_lengths_set_to_1",
                  "nonzero_padding", "truncated_segments", "truncated_utterances", "truncated_samples",
                  "dropped", "videos_dropped", "segments_without_words", "words_without_frames")


def set_threads() -> int:
    """Set torch's intra-op threads to ``config.thread_count()`` and return it; called when a run
    starts (:func:`obtain`, so in every worker too) and by the entry points."""
    n = thread_count()
    torch.set_num_threads(n)
    return n


# ------------------------------------------------------------------ what identifies a run
#: settings of ``train`` that do not change what a run learns, ignored when runs are matched
UNLEARNT = ("device", "progress")


def comparable(config: Config | dict) -> dict:
    """The configuration as strict JSON, without the :data:`UNLEARNT` settings: two runs whose
    ``comparable`` configurations are equal are the same run. A saved dictionary is read back
    through ``Config.from_dict`` (a newer setting takes its default); one the code cannot read
    is kept as it is, and matches nothing."""
    if isinstance(config, dict):
        with contextlib.suppress(TypeError, ValueError):
            config = Config.from_dict(config)
    d = json.loads(runstore.dumps(config.to_dict() if isinstance(config, Config) else config))
    d["train"] = {k: v for k, v in d.get("train", {}).items() if k not in UNLEARNT}
    return d


def same_run(record, config: Config, fingerprint: dict) -> bool:
    """Whether ``record``, a run's ``config.json``, says it was trained with ``config`` on data
    with ``fingerprint`` (:func:`data_fingerprint` as read back from JSON)."""
    return (isinstance(record, dict) and isinstance(record.get("config"), dict)
            and comparable(record["config"]) == comparable(config)
            and record.get("fingerprint") == fingerprint)


def data_fingerprint(data: MultimodalData) -> dict:
    """What identifies a data set for the store: ``content`` (a hash of every number) and, for a
    reader of ``config.json``, what the data were."""
    fp = {"name": data.name, "source": str(data.source), "modalities": data.modalities,
          "widths": data.widths, "lengths": data.seq_lengths,
          "sizes": {s: len(sp) for s, sp in data.splits.items()}, "content": data.fingerprint()}
    for key in ("bayes_mae", "bayes_acc"):
        if key in data.info:
            fp[key] = round(float(data.info[key]), 10)
    return fp


def data_treatments(data: MultimodalData) -> dict:
    """What the loader changed in the data (values zeroed, samples dropped ...), from
    ``data.info``: recorded in ``metrics.json``."""
    return {k: data.info[k] for k in TREATMENT_KEYS if data.info.get(k) not in (None, 0, {}, [])}


_BASELINES: dict[str, dict] = {}


def reference_scores(data: MultimodalData) -> dict:
    """The known-factor benchmark's reference MAEs, computed once per data set in a process;
    ``{}`` for data without known factors."""
    if "bayes_mae" not in data.info and "bayes_acc" not in data.info:
        return {}
    key = data.fingerprint()
    if key not in _BASELINES:
        _BASELINES[key] = baselines(data)
    return dict(_BASELINES[key])


# ------------------------------------------------------------------ one run: find or obtain
@dataclass
class Run:
    """A finished run: its folder, its ``metrics.json`` and history, and (when its weights were
    loaded or it was trained now) the trainer holding the model."""

    path: Path
    metrics: dict
    history: list
    loaded: bool              # True: read back from a folder; False: trained now
    seconds: float
    trainer: Trainer | None = None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def model(self):
        return self.trainer.model


def find(config: Config, data: MultimodalData, folder: str | Path, *, bundled: str | Path | None = None,
         weights: bool = True, trainer: Trainer | None = None) -> Run | None:
    """The finished run of ``config`` on ``data`` in ``folder``, else in the read-only ``bundled``;
    None when neither holds one. Never trains, never writes.

    ``weights``: load the model into ``trainer`` (a new ``Trainer`` when not given); a folder
    without ``model.pt`` or whose checkpoint no longer fits is passed over with a warning, as is
    a damaged folder. ``weights=False`` reads only the JSON files."""
    start = time.perf_counter()
    fingerprint = None
    for place in [Path(p) for p in (folder, bundled) if p is not None]:
        try:
            runstore.read_finished(place)
            saved = runstore.read_json(place / "config.json")
        except FileNotFoundError:                       # no run there
            continue
        except runstore.RunCorrupt as err:
            if (place / runstore.RECORD).is_file() or (place / CHECKPOINT).is_file():
                warnings.warn(f"not reusing the run in {place}: {err}", stacklevel=2)
            continue
        fingerprint = fingerprint or json.loads(runstore.dumps(data_fingerprint(data)))
        if not same_run(saved, config, fingerprint) or not (place / "metrics.json").is_file():
            continue
        history = runstore.read_json(place / "history.json") if (place / "history.json").is_file() else []
        if weights:
            trainer = trainer or Trainer(config, data)
            try:
                trainer.load(place / CHECKPOINT)
            except FileNotFoundError:                   # a slim copy, kept without its weights
                warnings.warn(f"not reusing the run in {place}: it holds no {CHECKPOINT}", stacklevel=2)
                continue
            except (RuntimeError, ValueError, KeyError) as err:     # written by older code
                warnings.warn(f"not reusing the run in {place}: its checkpoint no longer fits the model "
                              f"({type(err).__name__})", stacklevel=2)
                continue
            trainer.history = history
        metrics = runstore.read_json(place / "metrics.json")
        return Run(place, metrics, history, True, time.perf_counter() - start, trainer if weights else None)
    return None


def obtain(config: Config, data: MultimodalData, folder: str | Path, *, bundled: str | Path | None = None,
           retrain: bool = False, scores: bool = True, representations: bool = False,
           extra: dict | None = None, finish: Callable[[Path], None] | None = None,
           trainer: Trainer | None = None, lock: bool = True,
           on_wait: Callable[[str], None] | None = None) -> Run:
    """The finished run of ``config`` on ``data`` (:func:`find` in ``folder``, then ``bundled``,
    with its weights); trained and published in ``folder`` first when there is none (or
    ``retrain``). A second process on one folder waits for the first, then reuses its run.

    ``scores``: add the disentanglement scores to the metrics. ``representations``: also store
    ``reps.npz``. ``extra``: more JSON files, ``{name: content}``. ``finish(partial_folder)``: adds
    the caller's files before the seal. ``trainer``: train this one instead of a new ``Trainer``.
    ``lock=False``: the caller already holds ``runstore.locked(folder)``."""
    folder = runstore.check_target(folder, "out_dir")
    set_threads()
    start = time.perf_counter()
    trainer = trainer or Trainer(config, data)
    with runstore.locked(folder, on_wait=on_wait) if lock else contextlib.nullcontext():
        if not retrain:
            found = find(config, data, folder, bundled=bundled, trainer=trainer)
            if found is not None:
                return found
        metrics = _publish(config, data, folder, trainer, scores=scores, representations=representations,
                           extra=extra, finish=finish)
    return Run(folder, metrics, trainer.history, False, time.perf_counter() - start, trainer)


def _publish(config: Config, data: MultimodalData, folder: Path, trainer: Trainer, *, scores: bool,
             representations: bool, extra: dict | None, finish) -> dict:
    """Train into a partial folder and publish it as ``folder``; on a non-finite loss keep the best
    checkpoint (if an epoch finished) in ``<folder>.failed``, never under ``folder``."""
    runstore.clean_stale(folder)
    tmp = runstore.partial_dir(folder)
    try:
        try:
            metrics = _write_run(config, data, tmp, trainer, scores, representations, extra)
        except NonFiniteLoss as err:
            raise NonFiniteLoss(f"{folder} (training on {data.source}): {err} "
                                f"{_keep_failed(trainer, tmp, folder, err)}") from None
        if finish is not None:
            finish(tmp)
        runstore.seal(tmp, {"kind": "run"})
        runstore.publish(tmp, folder)
        return metrics
    finally:
        runstore.discard(tmp)                           # gone after a publish; else the partial


def _keep_failed(trainer: Trainer, tmp: Path, folder: Path, err: Exception) -> str:
    """Publish the best checkpoint as ``<folder>.failed``, if there is one; say where it is."""
    if trainer.best_state is None:
        return f"Nothing was written to {folder}."
    trainer.save(tmp / CHECKPOINT)                      # the best weights (restored by the trainer)
    runstore.write_json(tmp / "history.json", trainer.history)
    runstore.seal(tmp, {"kind": "run", "error": str(err), "best_epoch": trainer.best_epoch}, status="failed")
    failed = runstore.failed_dir(folder)
    runstore.publish(tmp, failed)
    return (f"The best checkpoint (epoch {trainer.best_epoch}) is in {failed / CHECKPOINT}, in a folder "
            f"marked failed ({runstore.FAILED_RECORD}): it is never loaded as a finished run.")


def _write_run(config: Config, data: MultimodalData, folder: Path, trainer: Trainer, scores: bool,
               representations: bool, extra: dict | None) -> dict:
    runstore.write_json(folder / "config.json", {
        "config": config.to_dict(), "data": data.name, "source": str(data.source),
        "modalities": trainer.data.modalities, "device": str(trainer.device),
        "fingerprint": data_fingerprint(data)})
    for name, content in (extra or {}).items():
        runstore.write_json(folder / name, content)
    start = time.perf_counter()
    trainer.fit()
    trainer.save(folder / CHECKPOINT)
    runstore.write_json(folder / "history.json", trainer.history)
    metrics = trainer.evaluate("test")["metrics"]
    metrics["train_seconds"] = time.perf_counter() - start
    metrics["best_epoch"] = trainer.best_epoch
    treated = data_treatments(data)
    if treated:
        metrics["data_treatments"] = treated
    metrics.update(reference_scores(data))
    test = None
    if representations or (scores and trainer.model.config.disentangle):
        test = extract_representations(trainer.model, trainer.data, "test", device=trainer.device)
    if scores and trainer.model.config.disentangle:
        metrics.update(disentanglement_scores(trainer.model, trainer.data, device=trainer.device, test=test))
    if representations:
        save_representations(test, folder / REPS_FILE)
    runstore.write_json(folder / "metrics.json", metrics)
    return metrics


class ProjectionCache:
    """A cache for ``viz.project(..., cache=...)`` with :func:`find`'s two roots: ``folder`` (read
    and written), then ``bundled`` (read only). Keys hash the array, the method and the seed."""

    def __init__(self, folder: str | Path, bundled: str | Path | None = None):
        self.folder, self.bundled = Path(folder), None if bundled is None else Path(bundled)

    def _file(self, key: str) -> Path | None:
        roots = [self.folder] + ([self.bundled] if self.bundled is not None else [])
        return next((f for f in (root / f"{key}.npy" for root in roots) if f.is_file()), None)

    def __contains__(self, key: str) -> bool:
        return self._file(key) is not None

    def __getitem__(self, key: str) -> np.ndarray:
        f = self._file(key)
        if f is None:
            raise KeyError(key)
        return np.load(f, allow_pickle=False)

    def __setitem__(self, key: str, value: np.ndarray) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{key}.{os.getpid()}.tmp.npy"
        np.save(tmp, np.asarray(value))
        os.replace(tmp, self.folder / f"{key}.npy")      # never a half-written projection


# ------------------------------------------------------------------ many runs: specs and the grid
@dataclass
class DataSpec:
    """How to load a data set in any process: ``synthetic`` (the known-factor benchmark, options
    passed to ``make_benchmark``) or any name of ``fdmer_lite.data.load_dataset`` with a path."""

    name: str
    path: str | None = None
    options: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, "path": self.path, "options": dict(self.options)}

    @classmethod
    def from_dict(cls, d: dict) -> "DataSpec":
        return cls(d["name"], d.get("path"), dict(d.get("options", {})))

    def load(self) -> MultimodalData:
        """The data (one data set cached per process)."""
        key = json.dumps(self.to_dict(), sort_keys=True, default=str)
        if key not in _DATA_CACHE:
            _DATA_CACHE.clear()
            if self.name == "synthetic":
                _DATA_CACHE[key] = make_benchmark(**self.options)
            else:
                _DATA_CACHE[key] = load_dataset(self.name, self.path, **self.options)
        return _DATA_CACHE[key]


_DATA_CACHE: dict = {}


def config_hash(config: dict, data: DataSpec, length: int = 10) -> str:
    """A short hash of everything that decides a run's result: the settings that differ from the
    defaults (progress bars aside) and the data, so a new setting leaves stored runs' names as
    they were."""
    cfg = json.loads(runstore.dumps(legacy_form(config)))
    default = json.loads(runstore.dumps(legacy_form(Config().to_dict())))
    cfg.get("train", {}).pop("progress", None)
    delta = {section: {k: v for k, v in values.items() if default.get(section, {}).get(k, object()) != v}
             if isinstance(values, dict) else values for section, values in cfg.items()}
    blob = json.dumps({"config": delta, "data": data.to_dict()}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:length]


@dataclass
class RunSpec:
    """One run of a grid, in a form any process can take: its folder is ``root/name``; ``bundle``,
    a read-only root that may hold the same run under the same name. ``finish(partial_folder)``,
    picklable, adds files before the run is sealed."""

    name: str                                      # the folder's name
    config: dict                                   # Config.to_dict()
    data: DataSpec
    root: str
    bundle: str | None = None
    meta: dict = field(default_factory=dict)       # e.g. {"variant": "wo_con", "seed": 2}
    representations: bool = False                  # also store reps.npz
    finish: Callable[[Path], None] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def create(cls, config: Config, data: DataSpec, root: str | Path, prefix: str, **kwargs) -> "RunSpec":
        """A spec named ``<prefix>-<config_hash>``: the same run always lands in the same folder."""
        cfg = config.to_dict()
        return cls(f"{prefix}-{config_hash(cfg, data)}", cfg, data, str(root), **kwargs)

    @property
    def path(self) -> Path:
        return Path(self.root) / self.name

    @property
    def bundled(self) -> Path | None:
        return None if self.bundle is None else Path(self.bundle) / self.name

    def find(self, weights: bool = False) -> Run | None:
        """This run, finished, in its folder or its bundle (:func:`find`; loads the data)."""
        return find(Config.from_dict(self.config), self.data.load(), self.path, bundled=self.bundled,
                    weights=weights)

    def to_dict(self) -> dict:
        """What ``run.json`` records (everything but ``finish``)."""
        return {"name": self.name, "config": self.config, "data": self.data.to_dict(), "root": self.root,
                "bundle": self.bundle, "meta": dict(self.meta), "representations": self.representations}


@dataclass
class GridReport:
    """What :func:`run_grid` did, by run name (``bundled``: the skipped runs found bundled)."""

    engine: str
    computed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    bundled: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)    # name -> error text
    seconds: float = 0.0

    def summary(self) -> str:
        """The report's closing line."""
        bundled = f", {len(self.bundled)} of them bundled with the package" if self.bundled else ""
        return (f"{len(self.computed)} computed, {len(self.skipped)} skipped (finished before{bundled}), "
                f"{len(self.failed)} failed; {self.seconds:.1f} s on {self.engine}")


def execute(spec: RunSpec, *, return_files: bool = False,
            on_epoch: Callable[[dict], object] | None = None) -> dict:
    """Run one spec in any process: ``"status": "skipped"`` when :func:`find` finds it, else
    trained under the folder's lock (``"computed"``). Never raises: a failure comes back as
    ``{"name", "error": traceback}``. ``return_files``: train in a temporary folder and return the
    files' bytes (for a Ray node that may not share our disk). ``on_epoch``: given to the trainer."""
    tmp = None
    try:
        config, data = Config.from_dict(spec.config), spec.data.load()
        record = {**spec.to_dict(), "host": socket.gethostname(), "pid": os.getpid()}
        start = time.perf_counter()
        tmp = Path(tempfile.mkdtemp(prefix="fdmer-run-")) if return_files else None
        target = spec.path if tmp is None else tmp / spec.name
        with runstore.locked(target):
            found = None if return_files else find(config, data, target, bundled=spec.bundled, weights=False)
            if found is not None:
                return {"name": spec.name, "status": "skipped", "metrics": found.metrics, "seconds": 0.0,
                        "bundled": found.path != target}
            run = obtain(config, data, target, retrain=True, representations=spec.representations,
                         extra={RUN_FILE: record}, finish=spec.finish, lock=False,
                         trainer=Trainer(config, data, on_epoch=on_epoch, progress=False))
        result = {"name": spec.name, "status": "computed", "metrics": run.metrics,
                  "seconds": time.perf_counter() - start}
        if return_files:
            result["files"] = {p.relative_to(target).as_posix(): p.read_bytes()
                               for p in target.rglob("*") if p.is_file()}
        return result
    except Exception:                                     # reported, never raised across processes
        return {"name": spec.name, "error": traceback.format_exc()}
    finally:
        runstore.discard(tmp)


def execute_returning_files(spec: RunSpec) -> dict:
    """:func:`execute` for a machine that may not share our disk: the files come back as bytes."""
    return execute(spec, return_files=True)


def publish_returned(spec: RunSpec, files: dict[str, bytes]) -> None:
    """Publish a run whose files came back from another machine, once they match their record."""
    with runstore.locked(spec.path):
        tmp = runstore.partial_dir(spec.path)
        try:
            for name, blob in files.items():
                if ".." in Path(name).parts or Path(name).is_absolute():
                    raise runstore.RunCorrupt(spec.name, name, "a file name inside the run", name)
                path = tmp / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(blob)
            runstore.read_finished(tmp)                     # every file as recorded
            runstore.publish(tmp, spec.path)
        finally:
            runstore.discard(tmp)


def run_grid(specs: list[RunSpec], *, workers: int | None = 0, ray_address: str | None = None,
             log: Callable[[str], None] | None = print, progress: bool = False, desc: str = "runs",
             on_epoch: Callable[[dict], object] | None = None) -> GridReport:
    """Run every spec :func:`find` does not find; report what was computed, skipped and failed.

    ``workers``: 0 or 1, this process; N, N local worker processes (``None``: one per core).
    ``ray_address``: Ray tasks instead ("local", "auto", "ray://host:port"), each reserving
    ``config.thread_count()`` CPUs. ``log``: a line before, one per run, one after (``None``:
    quiet); ``progress``: also a bar. ``on_epoch``: each epoch of a run trained in this process.
    A failed run is reported (its traceback in its folder's ``error.txt``), never published."""
    say = log or (lambda msg: None)
    unique = list({str(s.path): s for s in specs}.values())   # two grid rows may be the very same run
    todo, report = [], GridReport(engine_name(workers, ray_address))
    for spec in unique:
        found = spec.find()
        if found is None:
            todo.append(spec)
        else:
            report.skipped.append(spec.name)
            if found.path != spec.path:
                report.bundled.append(spec.name)
    bundled = f" ({len(report.bundled)} bundled with the package)" if report.bundled else ""
    say(f"{len(report.skipped)} of {len(unique)} run(s) finished before{bundled}, "
        f"{len(todo)} to train on {report.engine}")
    bar = progress_bar(progress, total=len(unique), initial=len(report.skipped), desc=desc, unit="run")
    if bar is not None and log is print:
        say = bar.write
    start = time.perf_counter()
    fn = execute_returning_files if ray_address else execute
    if on_epoch is not None and not ray_address and workers is not None and workers <= 1:
        fn = functools.partial(execute, on_epoch=on_epoch)
    try:
        results = map_unordered(fn, todo, workers=workers, ray_address=ray_address, num_cpus=thread_count())
        for k, (i, result, lost) in enumerate(results, start=1):
            spec = todo[i]
            error = lost or result.get("error")
            if error is not None:
                report.failed[spec.name] = error
                if not runstore.is_finished(spec.path):     # never mark a finished run failed
                    spec.path.mkdir(parents=True, exist_ok=True)
                    (spec.path / ERROR_FILE).write_text(error)
                say(f"[{k}/{len(todo)}] {spec.name}: FAILED: {error.strip().splitlines()[-1]}")
            else:
                if "files" in result:
                    publish_returned(spec, result["files"])
                (report.skipped if result["status"] == "skipped" else report.computed).append(spec.name)
                if result.get("bundled"):
                    report.bundled.append(spec.name)
                mae = result["metrics"].get("mae")
                say(f"[{k}/{len(todo)}] {spec.name}: {result['status']} in {result['seconds']:.1f} s"
                    + (f", test MAE {mae:.3f}" if isinstance(mae, float) else ""))
            if bar is not None:
                bar.update(1)
                bar.set_postfix(failed=len(report.failed))
    finally:
        if bar is not None:
            bar.close()
    report.seconds = time.perf_counter() - start
    say(report.summary())
    return report


# ------------------------------------------------------------------ engines: where runs run
def default_workers() -> int:
    """One worker per core."""
    return max(1, os.cpu_count() or 1)


def engine_name(workers: int | None, ray_address: str | None) -> str:
    """Where :func:`map_unordered` runs, in words."""
    if ray_address:
        return f"ray ({ray_address})"
    if workers is not None and workers <= 1:
        return "this process"
    return f"{workers or default_workers()} local worker processes"


def map_unordered(fn, items: list, *, workers: int | None = 0, ray_address: str | None = None,
                  num_cpus: int = 1):
    """Call ``fn(item)`` for every item; yield ``(index, result, error)`` as each finishes, where
    ``error`` is a traceback when the engine lost the call (a worker or Ray node died). ``fn``
    must be a module-level function. Engines as in :func:`run_grid`; Ray tasks reserve
    ``num_cpus`` CPUs each."""
    if not items:
        return
    if ray_address:
        yield from _map_ray(fn, items, ray_address, num_cpus)
    elif workers is not None and workers <= 1:
        for i, item in enumerate(items):
            yield i, fn(item), None
    else:
        yield from _map_processes(fn, items, min(workers or default_workers(), len(items)))


def die_with_parent(parent_pid: int, poll_seconds: float = 1.0) -> None:
    """Make this worker end when ``parent_pid`` does, even after a ``kill -9``: ``prctl`` on
    Linux, and a daemon thread that polls ``os.getppid()`` everywhere. It leaves only a partial
    folder, which the next command deletes."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)    # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:                          # the parent died before prctl
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)            # Ctrl-C is the parent's to handle

    def watch():
        while True:
            time.sleep(poll_seconds)
            if os.getppid() != parent_pid:
                os._exit(1)
    threading.Thread(target=watch, name="fdmer-parent-watchdog", daemon=True).start()


def _stop_pool(pool: cf.ProcessPoolExecutor) -> None:
    """Cancel what has not started and kill the workers; their partial folders are deleted later."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        with contextlib.suppress(OSError, AttributeError):
            p.kill()


def _outcome(i: int, get: Callable[[], object]) -> tuple:
    """``(i, get(), None)``, or ``(i, None, traceback)`` when ``get`` raises."""
    try:
        return i, get(), None
    except Exception:
        return i, None, traceback.format_exc()


def _map_processes(fn, items: list, workers: int):
    ctx = multiprocessing.get_context("spawn")         # fresh interpreters: safe with torch threads
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=die_with_parent,
                                initargs=(os.getpid(),)) as pool:
        # Ctrl-C is ignored while the workers start (a spawned worker inherits that across exec),
        # so it is the parent's alone: one line, then _stop_pool, never a worker's traceback.
        main = threading.current_thread() is threading.main_thread()
        before = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
        try:
            futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
        finally:
            if main:
                signal.signal(signal.SIGINT, before)
        try:
            for fut in cf.as_completed(futures):
                yield _outcome(futures[fut], fut.result)    # an error: the worker process died
        except BaseException:                           # Ctrl-C or the caller stopped early
            _stop_pool(pool)
            raise


def _map_ray(fn, items: list, address: str, num_cpus: int):
    try:
        import ray                                      # lazy: an optional extra, slow to import
    except ImportError:
        raise RuntimeError("a Ray address needs Ray: pip install 'fdmer_lite[ray]' "
                           "(or pip install 'ray>=2.9')") from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        task = ray.remote(max_retries=0, num_cpus=num_cpus)(fn)
        index = {task.remote(item): i for i, item in enumerate(items)}
        pending = list(index)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    yield _outcome(index[ref], functools.partial(ray.get, ref))   # or its node died
        finally:                                        # Ctrl-C or an error here: stop the rest
            for ref in pending:
                with contextlib.suppress(Exception):    # already finished or gone
                    ray.cancel(ref, force=True)
    finally:
        if started_here:
            ray.shutdown()
