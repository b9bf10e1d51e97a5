"""Training FDMER: Adam on Eq. 18, early stopping on validation, history, checkpoints.

``Trainer(config, data).fit()`` trains and restores the best-on-validation weights; ``evaluate``
gives the field's metrics and every loss term; ``save``/``load`` write and read a checkpoint
(read with ``torch.load(weights_only=True)``). Writing whole runs to folders is
``fdmer_lite.experiments.runs.obtain``. Mixed precision and pinned memory are used on CUDA only.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import random
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .config import Config
from .errors import NonFiniteLoss  # noqa: F401  (raised here; the command line names it)
from .data.base import MultimodalData, make_loader
from .losses import fdmer_objective, reported_terms
from .model.cpu_speed import flush_denormals
from .metrics import classification_metrics, regression_metrics
from .model import build_model

CHECKPOINT = "model.pt"
IMPROVEMENT_RTOL = 1e-6   # a validation loss must fall by more than this fraction to count
EARLY_STOP = ("task_loss", "mae", "auto")


def progress_bar(enabled: bool = True, **kw):
    """``tqdm.auto.tqdm(**kw)`` (a widget in a notebook, text in a terminal), or ``None`` when
    ``enabled`` is false."""
    return tqdm(**kw) if enabled else None


def default_progress(config: Config) -> bool:
    """Whether a run of ``config`` shows its progress unless told: yes, but for the seconds-long
    ``fast`` preset."""
    return config.name != "fast"


def mark_stopped(bar, why: str) -> None:
    """Turn ``bar`` (or ``None``) red and show ``why``: the work ended before its total."""
    if bar is None:
        return
    bar.colour = "red"
    bar.set_description(why, refresh=False)
    container = getattr(bar, "container", None)          # tqdm.notebook: an HBox of label, bar, text
    if container is not None:
        container.children[1].bar_style = "danger"
    bar.refresh()


@contextlib.contextmanager
def heartbeat(desc: str, enabled: bool = True, interval: float = 1.0, file=None):
    """For work that cannot report steps: show ``desc`` and the seconds spent so far, ticking
    every ``interval`` s from a background thread while the block runs. Yields the bar (or ``None``)."""
    if not enabled:
        yield None
        return
    ticker = progress_bar(True, desc=desc, unit="s", total=None, file=file or sys.stderr,
                          bar_format="{desc}: {elapsed}", mininterval=0)
    stop = threading.Event()

    def tick():
        while not stop.wait(interval):
            ticker.update(1)
    thread = threading.Thread(target=tick, name=f"heartbeat: {desc}", daemon=True)
    thread.start()
    try:
        yield ticker
    finally:
        stop.set()
        thread.join()
        ticker.close()


def improves(score: float, best: float) -> bool:
    """Whether ``score`` beats ``best`` by more than float rounding (relative 1e-6)."""
    return best == math.inf or score < best - IMPROVEMENT_RTOL * abs(best)


def select_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA if present, then MPS, then CPU. An explicit unavailable device is an error."""
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if mps else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but torch sees no CUDA device; use --device cpu or auto")
    if name == "mps" and not mps:
        raise ValueError("device 'mps' requested but it is not available; use --device cpu or auto")
    if name not in ("cpu", "mps") and not name.startswith("cuda"):
        raise ValueError(f"device must be auto, cpu, cuda[:N] or mps, got {name!r}")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def lr_scheduler(opt: torch.optim.Optimizer, schedule: str, epochs: int,
                 steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step learning-rate factor: 1 (``"constant"``) or a half cosine down to 0 at the end of
    ``epochs`` (``"cosine"``)."""
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {schedule!r}")
    total = max(1, epochs * steps_per_epoch)

    def factor(step: int) -> float:                    # step = optimizer steps taken so far
        return 1.0 if schedule == "constant" else 0.5 * (1.0 + math.cos(math.pi * min(1.0, step / total)))
    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def make_optimizer(params, t, device: torch.device) -> torch.optim.Adam:
    """Adam with ``t``'s (a TrainConfig) settings; the fused kernel on CPU and CUDA, which updates
    every parameter in one call (``benchmarks/results/code-notes.md``)."""
    fused = device.type in ("cpu", "cuda")
    return torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay, fused=fused)


def clip_gradients(params, max_norm: float, device: torch.device) -> torch.Tensor:
    """Scale the gradients to a total norm of at most ``max_norm`` (one ``foreach`` call on CPU, CUDA)."""
    foreach = True if device.type in ("cpu", "cuda") else None
    return torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=foreach)


def budget(epochs: int, patience: int, steps_per_epoch: int, min_steps: int = 0) -> tuple[int, int]:
    """The (epochs, patience) a run trains with when an epoch is ``steps_per_epoch`` optimiser steps.

    With ``min_steps`` > 0, a run whose epochs would make fewer steps gets
    ``ceil(min_steps / steps_per_epoch)`` epochs and a patience stretched by the same factor
    (rounded up), so a small training split gets as many updates as a large one. (The paper, too,
    trains its smallest set for the most epochs: 120 on MOSI, Section 4.2.)
    """
    if min_steps < 0 or steps_per_epoch < 1:
        raise ValueError(f"min_steps must be >= 0 and steps_per_epoch >= 1, "
                         f"got {min_steps}, {steps_per_epoch}")
    if min_steps == 0 or epochs * steps_per_epoch >= min_steps:
        return epochs, patience
    factor = min_steps / (epochs * steps_per_epoch)
    return math.ceil(min_steps / steps_per_epoch), math.ceil(patience * factor)


def stopping_criterion(criterion: str, task: str) -> str:
    """The criterion a run on ``task`` stops on: ``criterion``, or for ``"auto"`` the validation MAE
    on a regression task and the task loss otherwise."""
    if criterion not in EARLY_STOP:
        raise ValueError(f"early_stop must be 'task_loss', 'mae' or 'auto', got {criterion!r}")
    if criterion == "mae" and task != "regression":
        raise ValueError(f"early_stop 'mae' needs a regression task, got a {task!r} task")
    if criterion == "auto":
        return "mae" if task == "regression" else "task_loss"
    return criterion


def stopping_score(criterion: str, valid: dict) -> float:
    """The validation number early stopping minimises: the task loss or the MAE."""
    return float(valid["losses"]["task"] if criterion == "task_loss" else valid["metrics"]["mae"])


def term_values(terms: dict[str, torch.Tensor]) -> dict[str, float]:
    """Every loss term as a Python float, read with one stack and one copy, not one read per term."""
    return dict(zip(terms, torch.stack([v.detach().float() for v in terms.values()]).tolist()))


def reversal_coefficient(schedule: str, progress: float) -> float:
    """Strength of the gradient reversal at ``progress`` in [0, 1] of training: 1 throughout
    (``"constant"``; the paper names no schedule), or Ganin & Lempitsky's (2015) ramp
    2 / (1 + exp(-10 p)) - 1 (``"dann"``: 0 at the start, 0.46 at p = 0.1, 0.99 at p = 0.5)."""
    if schedule == "constant":
        return 1.0
    if schedule == "dann":
        return 2.0 / (1.0 + math.exp(-10.0 * min(max(progress, 0.0), 1.0))) - 1.0
    raise ValueError(f"grl_schedule must be 'constant' or 'dann', got {schedule!r}")


#: the parts of the network the game record follows: attribute of FDMER -> name in the record
GAME_PARTS = {"encoders": "transformers", "common_encoder": "common", "private_encoders": "private",
              "discriminator": "discriminator"}
GAME_TERMS = ("task", "ami", "confusion", "ams", "con", "dis")


def game_record(model: torch.nn.Module, batch, loss_cfg, task: str, coeff: float) -> dict:
    """One look at the objective's game on a fixed batch, as the trainer records it each epoch.

    ``grad[term][part]``: the norm of the gradient that ``term``'s share of Eq. 18 (L_ami through
    the reversal at strength ``coeff``) sends into each part of :data:`GAME_PARTS`.
    ``disc_acc_common`` / ``_private``: how often the discriminator's largest cosine is the true
    modality on C_m / P_m; ``size_common`` / ``_private``: the mean length of C_m / P_m. The model
    runs in evaluation mode, so recording draws no random numbers.
    """
    was_training = model.training
    model.eval()
    try:
        out = model(batch.features, batch.masks, grl_coeff=coeff)
        terms = fdmer_objective(out, batch.label, loss_cfg, task)
        weight = {"task": 1.0, "ami": loss_cfg.beta, "confusion": loss_cfg.beta, "ams": loss_cfg.beta,
                  "con": loss_cfg.gamma, "dis": loss_cfg.gamma}
        parts = {name: [p for p in getattr(model, attr).parameters() if p.requires_grad]
                 for attr, name in GAME_PARTS.items() if getattr(model, attr, None) is not None}
        flat = [p for params in parts.values() for p in params]
        grad = {}
        for term in (t for t in GAME_TERMS if t in terms):
            value = weight[term] * terms[term]
            grads = torch.autograd.grad(value, flat, retain_graph=True, allow_unused=True) \
                if value.requires_grad else [None] * len(flat)
            norms, i = {}, 0
            for name, params in parts.items():
                sq = [g.detach().float().pow(2).sum() for g in grads[i:i + len(params)] if g is not None]
                norms[name] = float(torch.stack(sq).sum().sqrt()) if sq else 0.0
                i += len(params)
            grad[term] = norms
        record = {"coeff": coeff, "grad": grad}
        for side, cos, reps in (("common", out.disc_logits_common, out.common),
                                ("private", out.disc_logits_private, out.private)):
            if cos is not None:                                               # (B, M, M)
                truth = torch.arange(cos.shape[1], device=cos.device)
                record[f"disc_acc_{side}"] = float((cos.argmax(dim=-1) == truth).float().mean())
            if reps:
                record[f"size_{side}"] = float(torch.stack([r.detach().float().norm(dim=-1).mean()
                                                            for r in reps.values()]).mean())
        return record
    finally:
        model.train(was_training)


class Trainer:
    """Trains one FDMER model on one data set.

    ``on_epoch(entry)`` is called with each epoch's history entry after its validation; if it
    returns True, training stops after that epoch as early stopping would (the best epoch's weights
    are restored). ``flush_denormals``: on the CPU, ``fit`` first calls :func:`flush_denormals`.
    ``record_game``: each entry gets a ``"game"`` record (:func:`game_record` on the first training
    batch, and the gradient's norm before clipping over the epoch's steps). ``progress``: show a
    progress bar (None: :func:`default_progress`).
    """

    def __init__(self, config: Config, data: MultimodalData, model: torch.nn.Module | None = None, *,
                 on_epoch: Callable[[dict], bool | None] | None = None, flush_denormals: bool = True,
                 record_game: bool = True, progress: bool | None = None):
        wanted = config.model.modalities
        if any(m not in data.modalities for m in wanted):
            raise ValueError(f"{data.source}: model modalities {wanted!r} are not all in the data "
                             f"(which has {data.modalities!r})")
        self.config, self.task = config, data.task
        self.progress = default_progress(config) if progress is None else progress
        self.terms = reported_terms(config.loss)          # the loss terms history and evaluation report
        self.stop_on = stopping_criterion(config.train.early_stop, data.task)
        self.data = data.select("".join(m for m in "tav" if m in wanted))
        self.device = select_device(config.train.device)
        seed_everything(config.train.seed)
        self.model = model or self.new_model()
        self.model.to(self.device)
        self.use_amp = bool(config.train.amp and self.device.type == "cuda")
        self.history: list[dict] = []
        self.best_epoch, self.best_score, self.best_state = 0, math.inf, None
        self.on_epoch = on_epoch
        self.flush_denormals = flush_denormals
        self.record_game = record_game and config.model.disentangle

    def new_model(self) -> torch.nn.Module:
        """FDMER for this trainer's config and data (the distributed trainer adds its collectives)."""
        return build_model(self.config, self.data.widths, self.data.output_dim,
                           max_len=max(self.data.seq_lengths.values()))

    def loader(self, split: str, shuffle: bool = False):
        t = self.config.train
        return make_loader(self.data, split, t.batch_size, shuffle=shuffle, seed=t.seed,
                           pin_memory=self.device.type == "cuda")

    def _forward(self, batch, grl_coeff: float = 1.0):
        batch = batch.to(self.device, non_blocking=True)
        with torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.use_amp):
            out = self.model(batch.features, batch.masks, grl_coeff=grl_coeff)
        return out, fdmer_objective(out, batch.label, self.config.loss, self.task), batch

    def fit(self, epochs: int | None = None) -> list[dict]:
        """Train for the configured budget (or exactly ``epochs``), stopping early on validation;
        restore the best epoch's weights and return the history, one entry per epoch."""
        t = self.config.train
        if self.flush_denormals and self.device.type == "cpu":
            flush_denormals()
        opt = make_optimizer(self.model.parameters(), t, self.device)
        scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        train_loader = self.loader("train", shuffle=True)
        steps = len(train_loader)                       # optimiser steps per epoch
        if epochs is None:                              # the configured budget, stretched if min_steps asks
            epochs, patience = budget(t.epochs, t.patience, steps, t.min_steps)
        else:                                           # exactly the epochs asked for
            patience = t.patience
        sched = lr_scheduler(opt, t.lr_schedule, epochs, steps)
        look = next(iter(self.loader("train"))).to(self.device) if self.record_game else None
        since_best = 0
        bar = progress_bar(self.progress, total=epochs * steps, desc=f"epoch 1/{epochs}", unit="batch")
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            if bar is not None:
                bar.set_description(f"epoch {epoch}/{epochs}", refresh=False)
            self.model.train()
            sums, count, norms = dict.fromkeys(self.terms, 0.0), 0, []
            for step, batch in enumerate(train_loader, start=1):
                progress = ((epoch - 1) * steps + step - 1) / (epochs * steps)
                coeff = reversal_coefficient(t.grl_schedule, progress)
                _, terms, batch = self._forward(batch, coeff)
                values = term_values(terms)
                self._check_finite(values, epoch, step)
                opt.zero_grad(set_to_none=True)
                scaler.scale(terms["all"]).backward()
                if t.grad_clip:
                    scaler.unscale_(opt)
                    norms.append(clip_gradients(self.model.parameters(), t.grad_clip, self.device))
                scaler.step(opt)
                scaler.update()
                sched.step()
                n = len(batch)
                for k in self.terms:
                    sums[k] += values.get(k, 0.0) * n
                count += n
                if bar is not None:
                    bar.update(1)
            valid = self.evaluate("valid")
            entry = {"epoch": epoch, "train": {k: sums[k] / count for k in self.terms},
                     "valid": valid["losses"], "valid_metrics": valid["metrics"],
                     "lr": opt.param_groups[0]["lr"], "seconds": time.perf_counter() - start}
            if look is not None:
                entry["game"] = game_record(self.model, look, self.config.loss, self.task, coeff)
                if norms:                               # the whole gradient before clipping
                    total = torch.stack(norms).float()
                    entry["game"]["grad_norm"] = {"mean": float(total.mean()), "max": float(total.max()),
                                                  "clipped": float((total > t.grad_clip).float().mean())}
            self.history.append(entry)
            stop = self.on_epoch is not None and self.on_epoch(entry) is True
            score = stopping_score(self.stop_on, valid)
            if improves(score, self.best_score):
                self.best_score, self.best_epoch, since_best = score, epoch, 0
                self.best_state = copy.deepcopy(self.model.state_dict())
            else:
                since_best += 1
            if bar is not None:
                bar.set_postfix(train=f"{entry['train']['all']:.3f}", **{self.stop_on: f"{score:.3f}"},
                                best=self.best_epoch)
            if since_best >= patience or stop:
                if epoch < epochs:                      # a red bar: not every epoch ran
                    mark_stopped(bar, f"stopped early at epoch {epoch}/{epochs}, "
                                      f"kept epoch {self.best_epoch}")
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

    @torch.no_grad()
    def predict(self, split: str) -> tuple[np.ndarray, dict[str, float]]:
        """Predictions (N,) or (N, C) for a split, in split order, and the mean loss terms."""
        self.model.eval()
        preds, sums, count = [], dict.fromkeys(self.terms, 0.0), 0
        for batch in self.loader(split):
            out, terms, batch = self._forward(batch)
            preds.append(out.prediction.float().cpu())
            n = len(batch)
            for k in self.terms:
                sums[k] += float(terms[k]) * n if k in terms else 0.0
            count += n
        return torch.cat(preds).numpy(), {k: v / max(count, 1) for k, v in sums.items()}

    def evaluate(self, split: str = "test") -> dict:
        pred, losses = self.predict(split)
        label = self.data.splits[split].labels
        score = regression_metrics if self.task == "regression" else classification_metrics
        return {"metrics": score(pred, label), "losses": losses}

    def save(self, path: str | Path) -> Path:
        """Write the checkpoint through a temporary file and ``os.replace`` (a symlink at ``path``
        is replaced, never written through)."""
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
