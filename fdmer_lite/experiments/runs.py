"""The run store: the finished run of (config, data) in a folder, or train it there.

:func:`obtain` is the one way a training run reaches the disk. ``fdmer-lite train``, the lessons'
runs, the ablation grid's runs, the sweep's cells and the distributed trainer all call it. A run
folder holds ``config.json`` (the configuration and the data's fingerprint), ``history.json``,
``metrics.json``, ``model.pt`` and, last, the completion record ``complete.json``; optionally the
test split's representations (``reps.npz``) and any files the caller adds. It is written into a
partial folder and published in one rename (``runstore``), so a failed or interrupted run is never
found under the final name and never reused.

A folder is reused when it holds a finished, intact run whose configuration and data fingerprint
equal the ones asked for (the device, the progress bar and the loader's worker count aside: they do
not change what is learnt); otherwise the run is trained (again). :func:`find` only loads.
"""

from __future__ import annotations

import contextlib
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..analysis import disentanglement_scores, extract_representations, save_representations
from ..config import Config, thread_count
from ..data.base import MultimodalData
from ..data.synthetic import baselines
from ..errors import NonFiniteLoss
from ..train import CHECKPOINT, Trainer
from . import runstore

REPS_FILE = "reps.npz"

TREATMENT_KEYS = ("nonfinite_replaced", "nonfinite_replaced_total", "zero_lengths_set_to_1", "nonzero_padding",
                  "truncated_segments", "truncated_utterances", "truncated_samples", "dropped", "videos_dropped",
                  "segments_without_words", "words_without_frames")


@dataclass
class Run:
    """A finished run: its folder, the trainer holding the trained model, its ``metrics.json``."""

    path: Path
    trainer: Trainer
    metrics: dict
    loaded: bool              # True: read back from the folder; False: trained now
    seconds: float

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def model(self):
        return self.trainer.model

    @property
    def history(self) -> list[dict]:
        return self.trainer.history


#: settings of ``train`` that do not change what a run learns, ignored when runs are matched
UNLEARNT = ("device", "progress", "num_workers")


def comparable(config: Config | dict) -> dict:
    """The configuration as strict JSON, without the :data:`UNLEARNT` settings: two runs whose
    ``comparable`` configurations are equal are the same run.

    A saved configuration is read back through ``Config.from_dict``, so a setting added to the
    code after the run was saved takes its default, which keeps the behaviour the run was
    trained with (new settings are opt-in); a setting the code no longer has keeps the saved
    dictionary as it is, which matches no configuration of today's code."""
    if isinstance(config, dict):
        try:
            config = Config.from_dict(config)
        except (TypeError, ValueError):
            pass
    d = json.loads(runstore.dumps(config.to_dict() if isinstance(config, Config) else config))
    d["train"] = {k: v for k, v in d.get("train", {}).items() if k not in UNLEARNT}
    return d


def finished_run_of(folder: Path, config: Config, fingerprint: dict) -> bool:
    """Whether ``folder`` holds a finished, intact run (``runstore.read_finished``) trained with
    ``config`` on data with ``fingerprint`` (:func:`same_run`); no weights are loaded."""
    try:
        runstore.read_finished(folder)
        record = runstore.read_json(Path(folder) / "config.json")
    except (FileNotFoundError, runstore.RunCorrupt):
        return False
    return same_run(record, config, fingerprint)


def same_run(record, config: Config, fingerprint: dict) -> bool:
    """Whether ``record``, a run's ``config.json`` as read back, says the run was trained with
    ``config`` (:func:`comparable`) on data with ``fingerprint``."""
    return (isinstance(record, dict) and isinstance(record.get("config"), dict)
            and comparable(record["config"]) == comparable(config) and record.get("fingerprint") == fingerprint)


def data_fingerprint(data: MultimodalData) -> dict:
    """What identifies a data set for the store: a run trained on other data is not reused.

    ``content`` is :meth:`MultimodalData.fingerprint` (a hash of every number); the rest says in
    words what the data were, for a reader of ``config.json``."""
    fp = {"name": data.name, "source": str(data.source), "modalities": data.modalities,
          "widths": data.widths, "lengths": data.seq_lengths,
          "sizes": {s: len(sp) for s, sp in data.splits.items()}, "content": data.fingerprint()}
    for key in ("bayes_mae", "bayes_acc"):
        if key in data.info:
            fp[key] = round(float(data.info[key]), 10)
    return fp


def plain_fingerprint(data: MultimodalData) -> dict:
    """:func:`data_fingerprint` as it reads back from strict JSON."""
    return json.loads(runstore.dumps(data_fingerprint(data)))


def data_treatments(data: MultimodalData) -> dict:
    """What the loader changed in the data (non-finite values zeroed, lengths set, samples dropped
    ...), from ``data.info``: recorded in ``metrics.json`` and printed by ``fdmer-lite train``."""
    return {k: data.info[k] for k in TREATMENT_KEYS if data.info.get(k) not in (None, 0, {}, [])}


def set_threads() -> int:
    """The package's one thread policy: torch's intra-op threads from ``config.thread_count()``
    (``$FDMER_LITE_THREADS``, else ``config.default_thread_count()``). Called when a run starts
    (:func:`obtain`, so in every worker process too) and by the entry points (the command line,
    ``lessons.setup``); returns the count."""
    n = thread_count()
    torch.set_num_threads(n)
    return n


_BASELINES: dict[str, dict] = {}


def reference_scores(data: MultimodalData) -> dict:
    """The known-factor benchmark's reference MAEs (``data.synthetic.baselines``), computed once
    per data set in a process; ``{}`` for data without known factors."""
    if "bayes_mae" not in data.info and "bayes_acc" not in data.info:
        return {}
    key = data.fingerprint()
    if key not in _BASELINES:
        _BASELINES[key] = baselines(data)
    return dict(_BASELINES[key])


def obtain(config: Config, data: MultimodalData, folder: str | Path, *, retrain: bool = False,
           scores: bool = True, representations: bool = False, extra: dict | None = None,
           finish: Callable[[Path, Trainer, dict], None] | None = None, trainer: Trainer | None = None,
           lock: bool = True, on_wait: Callable[[str], None] | None = None,
           record: dict | None = None, exclude: tuple[str, ...] = ()) -> Run:
    """The finished run of ``config`` on ``data`` in ``folder``; trained and published there first
    when there is none (or ``retrain``).

    ``scores``: add the disentanglement scores of ``analysis`` to the metrics (the reference MAEs
    of the known-factor benchmark are always added there). ``representations``: also store the
    test split's representations as ``reps.npz``. ``extra``: more JSON files, ``{name: content}``.
    ``finish(partial_folder, trainer, metrics)``: called after the run's files are written and
    before it is sealed, to add files of the caller's; ``record`` and ``exclude`` go to
    ``runstore.seal`` (files or folders under ``exclude`` may change after publishing).
    ``trainer``: train this one (e.g. a distributed trainer) instead of a new ``Trainer``.
    ``lock=False``: the caller already holds ``runstore.locked(folder)``.

    Reused runs: only one that ``runstore.read_finished`` accepts, whose config and data
    fingerprint match; a folder left by a failed or interrupted run, or whose files do not
    match their record, is retrained (with a warning naming the file). A checkpoint that matches
    its record but no longer fits the model (the library changed) is retrained too. Two
    processes on one folder: the second waits for the first, then reuses its run.
    """
    folder = runstore.check_target(folder, "out_dir")
    set_threads()
    start = time.perf_counter()
    trainer = trainer or Trainer(config, data)
    with runstore.locked(folder, on_wait=on_wait) if lock else contextlib.nullcontext():
        if not retrain:
            found = find(config, data, folder, trainer=trainer)
            if found is not None:
                return found
        metrics = _publish(config, data, folder, trainer, scores=scores, representations=representations,
                           extra=extra, finish=finish, record=record, exclude=exclude)
    return Run(folder, trainer, metrics, False, time.perf_counter() - start)


def find(config: Config, data: MultimodalData, folder: str | Path, *, trainer: Trainer | None = None) -> Run | None:
    """The finished run of ``config`` on ``data`` in ``folder``, loaded, or None when there is none
    (or it does not match, or it is damaged: then with a warning). Never trains, never writes."""
    start = time.perf_counter()
    folder = Path(folder)
    if not folder.is_dir():
        return None
    trainer = trainer or Trainer(config, data)
    if not _load_finished(trainer, config, data, folder):
        return None
    metrics = runstore.read_json(folder / "metrics.json")
    return Run(folder, trainer, metrics, True, time.perf_counter() - start)


def _load_finished(trainer: Trainer, config: Config, data: MultimodalData, folder: Path) -> bool:
    """Load the run in ``folder`` into ``trainer`` if it is finished, intact and matching."""
    try:
        runstore.read_finished(folder)
        saved = runstore.read_json(folder / "config.json")
    except FileNotFoundError:
        return False
    except runstore.RunCorrupt as err:
        if (folder / runstore.RECORD).is_file() or (folder / CHECKPOINT).is_file():
            warnings.warn(f"not reusing the run in {folder}: {err}; retraining", stacklevel=3)
        return False
    if not same_run(saved, config, plain_fingerprint(data)):
        return False
    try:
        trainer.load(folder / CHECKPOINT)
    except FileNotFoundError:                           # a copy kept without its weights
        warnings.warn(f"not reusing the run in {folder}: it holds no {CHECKPOINT}; retraining", stacklevel=3)
        return False
    except (RuntimeError, ValueError, KeyError) as err:     # written by older code: retrain
        warnings.warn(f"not reusing the run in {folder}: its checkpoint no longer fits the model "
                      f"({type(err).__name__}); retraining", stacklevel=3)
        return False
    trainer.history = runstore.read_json(folder / "history.json")
    return True


def _publish(config: Config, data: MultimodalData, folder: Path, trainer: Trainer, *, scores: bool,
             representations: bool, extra: dict | None, finish, record: dict | None,
             exclude: tuple[str, ...]) -> dict:
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
            finish(tmp, trainer, metrics)
        runstore.seal(tmp, record or {"kind": "run"}, exclude=exclude)
        runstore.publish(tmp, folder)
        return metrics
    finally:
        runstore.discard(tmp)                           # gone after a publish; else the partial


def _keep_failed(trainer: Trainer, tmp: Path, folder: Path, err: Exception) -> str:
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
