"""Training FDMER: Adam on Eq. 18, early stopping on validation, history, checkpoints.

``Trainer(config, data).fit()`` trains and restores the best-on-validation weights;
``evaluate(split)`` gives the field's metrics and every loss term; ``save``/``load`` write and read
a checkpoint (read back with ``torch.load(weights_only=True)``: no code can run from it).
``train_or_load`` lets later notebooks reuse a run instead of retraining, and ``run_experiment``
writes a whole run (``metrics.json``, ``history.json``, ``config.json``, ``model.pt``, and last the
completion record ``complete.json``) to a folder, published in one rename (``fdmer_lite.runstore``):
a failed or interrupted run is never found there and never reused.

Devices: ``auto`` picks CUDA, then Apple's MPS, then the CPU. Mixed precision (float16 autocast
with a gradient scaler) is used on CUDA only; pinned host memory makes the copies to the GPU
asynchronous.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from . import runstore
from .config import Config
from .errors import NonFiniteLoss  # noqa: F401  (raised here; the command line names it)
from .data.base import MultimodalData, make_loader
from .losses import TERMS, fdmer_objective
from .metrics import classification_metrics, regression_metrics
from .model import build_model

CHECKPOINT = "model.pt"
IMPROVEMENT_RTOL = 1e-6   # a validation loss must fall by more than this fraction to count


def improves(score: float, best: float) -> bool:
    """Whether ``score`` beats ``best`` by more than float rounding (relative 1e-6)."""
    return best == math.inf or score < best - IMPROVEMENT_RTOL * abs(best)


def select_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA if present, then MPS, then CPU. An explicit unavailable device is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but torch sees no CUDA device; use --device cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' requested but it is not available; use --device cpu or auto")
    if name not in ("cpu", "mps") and not name.startswith("cuda"):
        raise ValueError(f"device must be auto, cpu, cuda[:N] or mps, got {name!r}")
    return torch.device(name)


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch; ``deterministic`` also asks torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def _progress(iterable, enabled: bool, **kw):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm
    return tqdm(iterable, **kw)


def lr_scheduler(opt: torch.optim.Optimizer, schedule: str, warmup_epochs: float, epochs: int,
                 steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step learning-rate factor: a linear warm-up from 0 over ``warmup_epochs``, then either
    constant (``"constant"``) or a half cosine down to 0 at the end of ``epochs`` (``"cosine"``)."""
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {schedule!r}")
    if warmup_epochs < 0:
        raise ValueError(f"warmup_epochs must be >= 0, got {warmup_epochs!r}")
    total, warm = max(1, epochs * steps_per_epoch), warmup_epochs * steps_per_epoch

    def factor(step: int) -> float:                    # step = optimizer steps taken so far
        if step < warm:
            return (step + 1) / warm
        if schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warm) / max(1.0, total - warm))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def make_optimizer(params, t, device: torch.device) -> torch.optim.Adam:
    """The trainer's optimiser (``t`` a TrainConfig): Adam, with the fused kernel on CPU and CUDA,
    which updates every parameter in one call (about 8 % off a CPU step of the small synthetic
    preset, whose many small tensors make the per-parameter loop costly)."""
    return torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay, fused=device.type in ("cpu", "cuda"))


def clip_gradients(params, max_norm: float, device: torch.device) -> torch.Tensor:
    """Scale the gradients to a total norm of at most ``max_norm``, in one ``foreach`` call on CPU
    and CUDA instead of a Python loop over the tensors (the same numbers; about 0.5 ms of a 30 ms
    CPU step of the synthetic preset, whose gradients are 110 small tensors)."""
    foreach = True if device.type in ("cpu", "cuda") else None
    return torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=foreach)


def term_values(terms: dict[str, torch.Tensor]) -> dict[str, float]:
    """Every loss term as a Python float, read in one go (one stack and one copy, not a read
    per term: a step of the small CPU presets is a few hundred tiny operations, each costly)."""
    return dict(zip(terms, torch.stack([v.detach().float() for v in terms.values()]).tolist()))


def reversal_coefficient(schedule: str, progress: float) -> float:
    """Strength of the gradient reversal at ``progress`` in [0, 1] of training.

    ``"constant"``: 1 throughout (the paper says nothing of a schedule). ``"dann"``: the ramp of
    Ganin & Lempitsky (2015), who introduced gradient reversal, 2 / (1 + exp(-10 p)) - 1: 0 at the
    start, 0.46 at p = 0.1, 0.99 at p = 0.5, so the discriminator has something to learn from
    before the encoders start to fight it.
    """
    if schedule == "constant":
        return 1.0
    if schedule == "dann":
        return 2.0 / (1.0 + math.exp(-10.0 * min(max(progress, 0.0), 1.0))) - 1.0
    raise ValueError(f"grl_schedule must be 'constant' or 'dann', got {schedule!r}")


class Trainer:
    """Trains one FDMER model on one data set.

    ``on_epoch``, if given, is called with each epoch's history entry (epoch number, train and
    valid losses, valid metrics, learning rate, seconds) right after that epoch's validation:
    a hook for progress displays such as the beta/gamma explorer.
    """

    def __init__(self, config: Config, data: MultimodalData, model: torch.nn.Module | None = None, *,
                 on_epoch: Callable[[dict], None] | None = None):
        wanted = config.model.modalities
        if any(m not in data.modalities for m in wanted):
            raise ValueError(f"{data.source}: model modalities {wanted!r} are not all in the data "
                             f"(which has {data.modalities!r})")
        self.config, self.task = config, data.task
        self.data = data.select("".join(m for m in "tav" if m in wanted))
        self.device = select_device(config.train.device)
        seed_everything(config.train.seed, config.train.deterministic)
        self.model = model or build_model(config, self.data.widths, self.data.output_dim,
                                          max_len=max(self.data.seq_lengths.values()))
        self.model.to(self.device)
        self.use_amp = bool(config.train.amp and self.device.type == "cuda")
        self.history: list[dict] = []
        self.best_epoch, self.best_score, self.best_state = 0, math.inf, None
        self.on_epoch = on_epoch

    # -- data ---------------------------------------------------------------------------------
    def loader(self, split: str, shuffle: bool = False):
        t = self.config.train
        return make_loader(self.data, split, t.batch_size, shuffle=shuffle, seed=t.seed,
                           pin_memory=self.device.type == "cuda", num_workers=t.num_workers)

    def _forward(self, batch, grl_coeff: float = 1.0):
        batch = batch.to(self.device, non_blocking=True)
        with torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.use_amp):
            out = self.model(batch.features, batch.masks, grl_coeff=grl_coeff)
        return out, fdmer_objective(out, batch.label, self.config.loss, self.task), batch

    def _param_groups(self, t) -> list[dict]:
        """One Adam group, or two when ``disc_lr_mult != 1``: the modality discriminator learns
        at ``disc_lr_mult`` times the rate of everything else."""
        disc = getattr(self.model, "discriminator", None)
        if t.disc_lr_mult == 1.0 or disc is None:
            return [{"params": list(self.model.parameters())}]
        mine = {id(p) for p in disc.parameters()}
        rest = [p for p in self.model.parameters() if id(p) not in mine]
        return [{"params": rest}, {"params": list(disc.parameters()), "lr": t.lr * t.disc_lr_mult}]

    # -- training -----------------------------------------------------------------------------
    def fit(self, epochs: int | None = None) -> list[dict]:
        t = self.config.train
        epochs = t.epochs if epochs is None else epochs
        opt = make_optimizer(self._param_groups(t), t, self.device)
        scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        train_loader = self.loader("train", shuffle=True)
        steps = len(train_loader)                       # optimiser steps per epoch
        sched = lr_scheduler(opt, t.lr_schedule, t.warmup_epochs, epochs, steps)
        since_best = 0
        from .progress import bar as progress_bar      # counts batches: it moves at the first step
        bar = progress_bar(t.progress, total=epochs * steps, desc=f"epoch 1/{epochs}", unit="batch")
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            if bar is not None:
                bar.set_description(f"epoch {epoch}/{epochs}", refresh=False)
            self.model.train()
            sums, count = dict.fromkeys(TERMS, 0.0), 0
            for step, batch in enumerate(train_loader, start=1):
                progress = ((epoch - 1) * steps + step - 1) / (epochs * steps)
                _, terms, batch = self._forward(batch, reversal_coefficient(t.grl_schedule, progress))
                values = term_values(terms)
                self._check_finite(values, epoch, step)
                opt.zero_grad(set_to_none=True)
                scaler.scale(terms["all"]).backward()
                if t.grad_clip:
                    scaler.unscale_(opt)
                    clip_gradients(self.model.parameters(), t.grad_clip, self.device)
                scaler.step(opt)
                scaler.update()
                sched.step()
                n = len(batch)
                for k in TERMS:
                    sums[k] += values[k] * n
                count += n
                if bar is not None:
                    bar.update(1)
            valid = self.evaluate("valid")
            entry = {"epoch": epoch,
                     "train": {k: sums[k] / count for k in TERMS},
                     "valid": valid["losses"],
                     "valid_metrics": valid["metrics"],
                     "lr": opt.param_groups[0]["lr"],
                     "seconds": time.perf_counter() - start}
            self.history.append(entry)
            if self.on_epoch is not None:
                self.on_epoch(entry)
            score = valid["losses"]["task"]
            # Improvements within float rounding (the eval-time running mean of C_m is
            # re-averaged every epoch even when no weight moves) do not reset the patience.
            if improves(score, self.best_score):
                self.best_score, self.best_epoch, since_best = score, epoch, 0
                self.best_state = copy.deepcopy(self.model.state_dict())
            else:
                since_best += 1
            if bar is not None:
                bar.set_postfix(train=f"{entry['train']['all']:.3f}", valid_task=f"{score:.3f}",
                                best=self.best_epoch)
            if since_best >= t.patience:
                break
        if bar is not None:
            bar.close()
        self.restore_best()
        return self.history

    def _check_finite(self, values: dict[str, float], epoch, step):
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if bad:
            self.restore_best()
            kept = (f"the best weights so far (epoch {self.best_epoch}) were restored"
                    if self.best_state is not None else "no epoch had finished, so no checkpoint exists")
            raise NonFiniteLoss(f"non-finite loss at epoch {epoch}, step {step}: term {bad[0]!r} = "
                                f"{values[bad[0]]}; training stopped and {kept}. "
                                f"Try a lower learning rate, smaller beta/gamma or gradient clipping.")

    def restore_best(self) -> None:
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)

    # -- evaluation ---------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, split: str) -> tuple[np.ndarray, dict[str, float]]:
        """Predictions (N,) or (N, C) for a split, in split order, and the mean loss terms."""
        self.model.eval()
        preds, sums, count = [], dict.fromkeys(TERMS, 0.0), 0
        for batch in self.loader(split):
            out, terms, batch = self._forward(batch)
            preds.append(out.prediction.float().cpu())
            n = len(batch)
            for k in TERMS:
                sums[k] += float(terms[k]) * n
            count += n
        return torch.cat(preds).numpy(), {k: v / max(count, 1) for k, v in sums.items()}

    def evaluate(self, split: str = "test") -> dict:
        pred, losses = self.predict(split)
        label = self.data.splits[split].labels
        metrics = regression_metrics(pred, label) if self.task == "regression" else classification_metrics(pred, label)
        return {"metrics": metrics, "losses": losses}

    # -- checkpoints --------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the checkpoint through a temporary file and ``os.replace``: a symlink planted at
        ``path`` is replaced, never written through."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        torch.save({"model_state": self.model.state_dict(), "config": self.config.to_dict(),
                    "widths": self.data.widths, "output_dim": self.data.output_dim,
                    "max_len": max(self.data.seq_lengths.values()), "best_epoch": self.best_epoch},
                   tmp)
        os.replace(tmp, path)
        return path

    def load(self, path: str | Path) -> None:
        ckpt = load_checkpoint(path)
        if ckpt["widths"] != self.data.widths:
            raise ValueError(f"{path}: field 'widths': expected {self.data.widths} (the data's), "
                             f"found {ckpt['widths']}")
        self.model.load_state_dict(ckpt["model_state"])
        self.best_epoch = ckpt.get("best_epoch", 0)


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint safely (tensors and plain containers only)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint file")
    return torch.load(path, map_location="cpu", weights_only=True)


def train_or_load(config: Config, data: MultimodalData, out_dir: str | Path, *, retrain: bool = False) -> Trainer:
    """Load the finished run in ``out_dir`` when its config and data match, otherwise train and
    publish it there.

    Only a run that :func:`fdmer_lite.runstore.read_finished` accepts is loaded: a folder left by a
    failed or interrupted run, or one whose files do not match their record (a truncated
    ``model.pt``, an edited ``metrics.json``), is retrained, with a warning naming the file.
    Two processes on one folder: the second waits for the first and then loads its run.
    """
    out_dir = runstore.check_target(out_dir, "out_dir")
    trainer = Trainer(config, data)
    with runstore.locked(out_dir):
        if not retrain and out_dir.is_dir():
            loaded = _load_finished(trainer, config, data, out_dir)
            if loaded:
                return trainer
        _publish_run(config, data, out_dir, trainer)
    return trainer


def _load_finished(trainer: Trainer, config: Config, data: MultimodalData, out_dir: Path) -> bool:
    """Load the run in ``out_dir`` into ``trainer`` if it is finished, intact and matching."""
    import warnings
    try:
        runstore.read_finished(out_dir)
        saved = runstore.read_json(out_dir / "config.json")
    except FileNotFoundError:
        return False
    except runstore.RunCorrupt as err:
        if (out_dir / runstore.RECORD).is_file() or (out_dir / CHECKPOINT).is_file():
            warnings.warn(f"not reusing the run in {out_dir}: {err}; retraining", stacklevel=3)
        return False
    if (not isinstance(saved, dict) or saved.get("config") != json.loads(runstore.dumps(config.to_dict()))
            or saved.get("fingerprint") != plain_fingerprint(data)):
        return False
    try:
        trainer.load(out_dir / CHECKPOINT)
    except Exception as err:                        # matches its record, yet does not load
        raise runstore.RunCorrupt(str(out_dir / CHECKPOINT), "model_state",
                                  "a checkpoint of this model", f"{type(err).__name__}: {err}") from None
    trainer.history = runstore.read_json(out_dir / "history.json")
    return True


def plain_fingerprint(data: MultimodalData) -> dict:
    """:func:`data_fingerprint` as it reads back from strict JSON."""
    return json.loads(runstore.dumps(data_fingerprint(data)))


def data_fingerprint(data: MultimodalData) -> dict:
    """What identifies a data set for ``train_or_load``: a run trained on other data is not reused.

    ``content`` is :meth:`MultimodalData.fingerprint` (a hash of every number); the rest says in
    words what the data were, for a reader of ``config.json``."""
    fp = {"name": data.name, "source": str(data.source), "modalities": data.modalities,
          "widths": data.widths, "lengths": data.seq_lengths,
          "sizes": {s: len(sp) for s, sp in data.splits.items()}, "content": data.fingerprint()}
    for key in ("bayes_mae", "bayes_acc"):
        if key in data.info:
            fp[key] = round(float(data.info[key]), 10)
    return fp


TREATMENT_KEYS = ("nonfinite_replaced", "nonfinite_replaced_total", "zero_lengths_set_to_1", "nonzero_padding",
                  "truncated_segments", "truncated_utterances", "truncated_samples", "dropped", "videos_dropped",
                  "segments_without_words", "words_without_frames")


def data_treatments(data: MultimodalData) -> dict:
    """What the loader changed in the data (non-finite values zeroed, lengths set, samples dropped
    ...), from ``data.info``: recorded in ``metrics.json`` and printed by ``fdmer-lite train``."""
    return {k: data.info[k] for k in TREATMENT_KEYS if data.info.get(k) not in (None, 0, {}, [])}


def _write_json(path: Path, obj) -> None:
    runstore.write_json(path, obj)                       # strict JSON, never half-written


def run_experiment(config: Config, data: MultimodalData, out_dir: str | Path, *,
                   trainer: Trainer | None = None, scores: bool = True, publish: bool = True,
                   extra: dict | None = None, lock: bool = True) -> dict:
    """Train, test the best-on-validation checkpoint, and write the run's files into ``out_dir``.

    On the known-factor benchmark the metrics also hold the reference MAEs (``bayes_mae``,
    ``mean_mae``, ``ridge_mae``) and the disentanglement scores of ``analysis``.

    ``publish=True`` (default): the files are written into a partial folder beside ``out_dir``,
    sealed with ``complete.json`` and renamed to ``out_dir`` in one step (``fdmer_lite.runstore``);
    a failure leaves the previous run there untouched. ``publish=False`` writes straight into
    ``out_dir``, a private folder the caller seals and publishes itself (the sweep's cells).
    ``extra``: more JSON files to write into the run, ``{name: content}``. ``lock=False``: the
    caller already holds ``runstore.locked(out_dir)``.
    """
    out_dir = Path(out_dir)
    trainer = trainer or Trainer(config, data)
    if not publish:
        out_dir.mkdir(parents=True, exist_ok=True)
        return _write_run(config, data, out_dir, trainer, scores, extra)
    runstore.check_target(out_dir, "out_dir")
    with runstore.locked(out_dir) if lock else contextlib.nullcontext():
        return _publish_run(config, data, out_dir, trainer, scores=scores, extra=extra)


def _publish_run(config: Config, data: MultimodalData, out_dir: Path, trainer: Trainer, *,
                 scores: bool = True, extra: dict | None = None) -> dict:
    """Train into a partial folder and publish it as ``out_dir``; on a non-finite loss keep the
    best checkpoint (if an epoch finished) in ``<out_dir>.failed``, never under ``out_dir``."""
    runstore.clean_stale(out_dir)
    tmp = runstore.partial_dir(out_dir)
    try:
        try:
            metrics = _write_run(config, data, tmp, trainer, scores, extra)
        except NonFiniteLoss as err:
            raise NonFiniteLoss(f"{out_dir} (training on {data.source}): {err} "
                                f"{_keep_failed(trainer, tmp, out_dir, err)}") from None
        runstore.seal(tmp, {"kind": "run"})
        runstore.publish(tmp, out_dir)
        return metrics
    finally:
        runstore.discard(tmp)                           # gone after a publish; else the partial


def _keep_failed(trainer: Trainer, tmp: Path, out_dir: Path, err: Exception) -> str:
    if trainer.best_state is None:
        return f"Nothing was written to {out_dir}."
    trainer.save(tmp / CHECKPOINT)                      # the best weights (restored by the trainer)
    _write_json(tmp / "history.json", trainer.history)
    runstore.seal(tmp, {"kind": "run", "error": str(err), "best_epoch": trainer.best_epoch}, status="failed")
    failed = runstore.failed_dir(out_dir)
    runstore.publish(tmp, failed)
    return (f"The best checkpoint (epoch {trainer.best_epoch}) is in {failed / CHECKPOINT}, in a folder "
            f"marked failed ({runstore.FAILED_RECORD}): it is never loaded as a finished run.")


def _write_run(config: Config, data: MultimodalData, out_dir: Path, trainer: Trainer, scores: bool,
               extra: dict | None) -> dict:
    _write_json(out_dir / "config.json", {"config": config.to_dict(), "data": data.name,
                                          "source": str(data.source), "modalities": trainer.data.modalities,
                                          "device": str(trainer.device), "fingerprint": data_fingerprint(data)})
    for name, content in (extra or {}).items():
        _write_json(out_dir / name, content)
    start = time.perf_counter()
    trainer.fit()
    trainer.save(out_dir / CHECKPOINT)
    _write_json(out_dir / "history.json", trainer.history)
    metrics = trainer.evaluate("test")["metrics"]
    metrics["train_seconds"] = time.perf_counter() - start
    metrics["best_epoch"] = trainer.best_epoch
    treated = data_treatments(data)
    if treated:
        metrics["data_treatments"] = treated
    if "bayes_mae" in data.info or "bayes_acc" in data.info:
        from .data.synthetic import baselines
        if getattr(data, "_baselines", None) is None:       # once per data object, not per run
            data._baselines = baselines(data)
        metrics.update(data._baselines)
    if scores and trainer.model.config.disentangle:
        from .analysis import disentanglement_scores
        metrics.update(disentanglement_scores(trainer.model, trainer.data, device=trainer.device))
    _write_json(out_dir / "metrics.json", metrics)
    return metrics
