"""A family of generated tasks the defaults were not tuned on, and a plain baseline for each.

Every task is a :class:`fdmer_lite.data.base.MultimodalData` (regression, labels in [-3, 3]),
so ``fdmer_lite.train.Trainer`` runs on it unchanged. A label lives in a short **window** at a
random position of a sequence of noise: the window's steps carry ``a * u_m`` (a fixed direction
per modality, ``a`` the amplitude). A **marker** placed on the step right after the window
flips the sign of the label; the same marker placed *before* the window is a distractor and
flips nothing. So the label depends on position and order: no time-averaged feature knows the
sign, and a model has to see which comes first.

Tasks (``TASKS``):
  * ``mosi_aligned``: MOSI-sized (1,284 / 229 / 686), widths 300/74/47, length 50; one window
    seen by all three modalities, strong in text, weaker and noisier in audio and visual (the
    task of issue 17).
  * ``mosi_spread``: MOSI-sized, the same widths; the label is the sum of three parts, each
    carried by its own window in its own modality (every modality is needed).
  * ``mosi_bert``: MOSI-sized, BERT-like widths 768/5/20; the signal in text only.
  * ``mosei_aligned``: MOSEI-like training set, reduced to 8,000 / 1,000 / 2,000 (MOSEI has
    16,326 training samples; halved for the CPU budget), widths 300/74/35, length 30.
Known-factor tasks (``KNOWN_FACTOR``, ``fdmer_lite.data.synthetic``; they carry the shared factor,
so the table adds its R^2 in C):
  * ``known_factor``: the demo's benchmark, the same data for every seed (a seed draws the weights);
  * ``mosi_known_humor``: MOSI-sized, humor-like (the shared factor carries most of the label),
    little label noise, from a world (``world_seed`` 7) the presets were not tuned on.
And ``real_mosi`` (``REAL``): the real CMU-MOSI text + audio set with MiniLM text, found through
``$FDMER_LITE_MOSI_DIR`` (the same data for every seed).

The plain baseline (:class:`PlainBaseline`) is a non-disentangled reference written from scratch
(no fdmer_lite.model): per modality a linear projection, sinusoidal positions, a small pre-norm
transformer and mean pooling; the three vectors concatenated and an MLP. ``train_baseline``
trains it with Adam at a constant rate and keeps the best-on-validation epoch.

The runner trains every model on every task and seed (seed S draws the data set and the weights):

    python benchmarks/task_family.py --tasks mosi_aligned,mosi_bert --seeds 0,1,2 \
        --models baseline,synthetic,synthetic:loss.beta=0,loss.gamma=0 \
        [--ratio-to synthetic:loss.beta=0,loss.gamma=0] [--out DIR]

A model is ``baseline`` or a preset name, optionally followed by ``:`` and comma-separated
``section.field=value`` overrides (a value is read as JSON, else as a string:
``train.early_stop=mae``, ``model.mlp=default``). FDMER runs go through
``fdmer_lite.experiments.runs.obtain`` into ``DIR/<task>/seed<S>/<model>/``, the baseline's
result into ``DIR/<task>/seed<S>/baseline.json`` (DIR: ``benchmarks/out/task-family/``); a rerun
reuses every finished run whose configuration and data still match. Torch threads follow the
package's policy (``$FDMER_LITE_THREADS``, else one).

Per task, a markdown table (stdout and ``DIR/table.md``): the test MAE of the best-on-validation
epoch per seed and its mean; the mean over the seeds of the MAE divided by the ``--ratio-to``
model's MAE on the same seed (default: the first model); for FDMER, the means of ``common_gap``,
``disc_prob_common``, ``common_factor_r2`` (``fdmer_lite.analysis``) and of the L_all ``jump``
(:func:`jump`); and as references ridge regression on the
time-averaged features and the training mean. Recorded studies: ``benchmarks/results/task-family.md``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import re
import shlex
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fdmer_lite.config import Config, get_preset
from fdmer_lite.data import load_dataset
from fdmer_lite.data.base import MultimodalData, Split
from fdmer_lite.data.synthetic import make_benchmark
from fdmer_lite.errors import NonFiniteLoss
from fdmer_lite.experiments import runs, runstore

MODS = ("t", "a", "v")


@dataclass(frozen=True)
class TaskSpec:
    name: str
    sizes: tuple[int, int, int]                  # train / valid / test
    widths: tuple[int, int, int]                 # t / a / v
    length: int = 50
    layout: str = "aligned"                      # "aligned" (one window, all modalities) | "spread" | "text"
    strength: tuple[float, float, float] = (1.0, 0.5, 0.3)   # signal amplitude per modality
    noise: tuple[float, float, float] = (1.0, 1.5, 2.0)      # background noise sd per modality
    window: int = 4
    p_flip: float = 0.3                          # probability of the flipping marker after the window
    p_distractor: float = 0.5                    # probability of a marker before the window


TASKS = {
    "mosi_aligned": TaskSpec("mosi_aligned", (1284, 229, 686), (300, 74, 47)),
    "mosi_spread": TaskSpec("mosi_spread", (1284, 229, 686), (300, 74, 47), layout="spread",
                            strength=(1.0, 1.0, 1.0), noise=(1.0, 1.0, 1.0)),
    "mosi_bert": TaskSpec("mosi_bert", (1284, 229, 686), (768, 5, 20), layout="text",
                          strength=(1.0, 0.0, 0.0), noise=(1.0, 1.0, 1.0)),
    "mosei_aligned": TaskSpec("mosei_aligned", (8000, 1000, 2000), (300, 74, 35), length=30),
}


def _unit(rng, d):
    u = rng.standard_normal(d)
    return u / np.linalg.norm(u)


#: known-factor tasks (``fdmer_lite.data.synthetic``): the demo's own data whatever the seed (the
#: seed draws only the weights), and a MOSI-sized humor-like set with little label noise, drawn
#: by the seed from a world the presets were not tuned on
KNOWN_FACTOR = {
    "known_factor": lambda seed: make_benchmark("emotion"),
    "mosi_known_humor": lambda seed: make_benchmark("humor", n_train=1284, n_valid=229, n_test=686, seed=seed,
                                                    world_seed=7, label_noise=0.1, nonlinearity=0.2),
}
#: real data: CMU-MOSI text (all-MiniLM-L6-v2 token states) + audio from ``$FDMER_LITE_MOSI_DIR``,
#: the same data for every seed; run it with ``--models mosi_text_audio_minilm,...``
REAL = {"real_mosi": lambda seed: load_dataset("mosi-text-audio", None, text_features="minilm")}


def make_task(name: str | TaskSpec, seed: int = 0) -> MultimodalData:
    """The task ``name`` (a key of ``TASKS`` or ``KNOWN_FACTOR``, or a TaskSpec), deterministic in
    ``seed``.

    The directions (signal and marker per modality) depend on ``seed`` only, so the three splits
    share them; the splits are drawn from separate streams of the same generator."""
    if isinstance(name, str) and name in {**KNOWN_FACTOR, **REAL}:
        return {**KNOWN_FACTOR, **REAL}[name](seed)
    spec = TASKS[name] if isinstance(name, str) else name
    if spec.layout not in ("aligned", "spread", "text"):
        raise ValueError(f"layout must be 'aligned', 'spread' or 'text', got {spec.layout!r}")
    base = np.random.default_rng([seed, 17])
    # Both directions are scaled to norm sqrt(d): per feature the signal is as large as the noise.
    sig = {m: _unit(base, d) * math.sqrt(d) for m, d in zip(MODS, spec.widths)}
    mark = {m: _unit(base, d) * math.sqrt(d) for m, d in zip(MODS, spec.widths)}
    splits = {}
    for k, (split, n) in enumerate(zip(("train", "valid", "test"), spec.sizes)):
        rng = np.random.default_rng([seed, 17, k + 1])
        L, w = spec.length, spec.window
        feats = {m: (rng.standard_normal((n, L, d)) * s).astype(np.float32)
                 for m, d, s in zip(MODS, spec.widths, spec.noise)}
        label = np.zeros(n)
        parts = 3 if spec.layout == "spread" else 1
        for part in range(parts):
            amp = rng.uniform(-3.0, 3.0, n) / (math.sqrt(parts) if parts > 1 else 1.0)
            start = rng.integers(2, L - w - 1, n)                       # room for both markers
            flip = rng.random(n) < spec.p_flip
            distract = rng.random(n) < spec.p_distractor
            label += np.where(flip, -amp, amp)
            if spec.layout == "aligned":
                carriers = [(i, m) for i, m in enumerate(MODS)]
            elif spec.layout == "spread":
                carriers = [(part, MODS[part])]
            else:
                carriers = [(0, "t")]
            for i, m in carriers:
                st = spec.strength[i]
                if st == 0:
                    continue
                x = feats[m]
                for j in range(n):
                    s = start[j]
                    x[j, s:s + w] += (st * amp[j]) * sig[m]
                    if flip[j]:
                        x[j, s + w] += st * 2.0 * mark[m]
                    if distract[j]:
                        x[j, s - 1] += st * 2.0 * mark[m]
        labels = np.clip(label, -3.0, 3.0).astype(np.float32)
        ids = [f"{spec.name}-{split}-{i}" for i in range(n)]
        splits[split] = Split(features=feats, labels=labels, ids=ids)
    info = {"task": spec.name, "seed": seed, "layout": spec.layout}
    return MultimodalData(name=f"family-{spec.name}", task="regression", splits=splits, info=info,
                          source=f"benchmarks/task_family.py:{spec.name}")


def ridge_mae(data: MultimodalData, alphas=(1.0, 10.0, 100.0, 1e3, 1e4, 1e5)) -> float:
    """Test MAE of ridge regression on the time-averaged features, its penalty chosen on the
    validation split (the level a model reaches without using position or order)."""
    def design(split):
        sp = data.splits[split]
        return np.concatenate([sp.features[m].mean(axis=1) for m in data.modalities], axis=1)
    X, y = design("train"), data.splits["train"].labels.astype(np.float64)
    mu, sd = X.mean(0), X.std(0) + 1e-8
    Z = (X - mu) / sd
    best = None
    for alpha in alphas:
        w = np.linalg.solve(Z.T @ Z + alpha * np.eye(Z.shape[1]), Z.T @ (y - y.mean()))
        valid = np.mean(np.abs(((design("valid") - mu) / sd) @ w + y.mean() - data.splits["valid"].labels))
        if best is None or valid < best[0]:
            best = (valid, w)
    pred = ((design("test") - mu) / sd) @ best[1] + y.mean()
    return float(np.mean(np.abs(pred - data.splits["test"].labels)))


# -- the plain baseline -------------------------------------------------------------------------

def _positions(length: int, dim: int) -> torch.Tensor:
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)
    return table


class PlainBaseline(nn.Module):
    """Per-modality transformer, mean pooling, concatenation, MLP (no disentangling).
    ``final_norm``: a LayerNorm after each transformer stack (a diagnosis of FDMER's encoder).
    ``layers``: one depth for every modality, or a depth per modality (``{"t": 5, "a": 4, ...}``);
    the feed-forward width is ``ff_mult * dim``."""

    def __init__(self, widths: dict[str, int], length: int, dim: int = 64, layers: int | dict = 2,
                 heads: int = 4, dropout: float = 0.1, final_norm: bool = False, ff_mult: int = 2):
        super().__init__()
        self.mods = tuple(widths)
        depth = layers if isinstance(layers, dict) else {m: layers for m in widths}
        self.proj = nn.ModuleDict({m: nn.Linear(d, dim) for m, d in widths.items()})
        self.register_buffer("pos", _positions(length, dim), persistent=False)
        self.enc = nn.ModuleDict({
            m: nn.TransformerEncoder(nn.TransformerEncoderLayer(dim, heads, ff_mult * dim, dropout,
                                                                batch_first=True, norm_first=True),
                                     depth[m], norm=nn.LayerNorm(dim) if final_norm else None,
                                     enable_nested_tensor=False)
            for m in widths})
        self.head = nn.Sequential(nn.Linear(dim * len(widths), dim), nn.GELU(), nn.Dropout(dropout),
                                  nn.Linear(dim, 1))

    def forward(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        pooled = [self.enc[m](self.proj[m](feats[m]) + self.pos[: feats[m].shape[1]]).mean(1)
                  for m in self.mods]
        return self.head(torch.cat(pooled, dim=1)).squeeze(-1)


def train_baseline(data: MultimodalData, seed: int = 0, epochs: int = 30, batch: int = 32,
                   lr: float = 1e-3, patience: int = 10, **model_kw) -> dict:
    """Train :class:`PlainBaseline`; returns test MAE of the best-on-validation epoch and the
    per-epoch curves (train MSE, valid MAE)."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    tensors = {s: ({m: torch.from_numpy(sp.features[m]) for m in data.modalities},
                   torch.from_numpy(sp.labels)) for s, sp in data.splits.items()}
    model = PlainBaseline(data.widths, max(data.seq_lengths.values()), **model_kw)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)

    def mae(split):
        model.eval()
        x, y = tensors[split]
        with torch.no_grad():
            p = torch.cat([model({m: v[i:i + 256] for m, v in x.items()})
                           for i in range(0, len(y), 256)])
        return float((p - y).abs().mean())

    best, best_state, since, curve = math.inf, None, 0, []
    x, y = tensors["train"]
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        perm = torch.randperm(len(y), generator=gen)
        total = 0.0
        for i in range(0, len(y), batch):
            idx = perm[i:i + batch]
            loss = nn.functional.mse_loss(model({m: v[idx] for m, v in x.items()}), y[idx])
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            total += float(loss.detach()) * len(idx)
        v = mae("valid")
        curve.append({"epoch": epoch, "train_mse": total / len(y), "valid_mae": v})
        if v < best:
            best, best_state, since = v, copy.deepcopy(model.state_dict()), 0
        else:
            since += 1
            if since >= patience:
                break
    model.load_state_dict(best_state)
    return {"test_mae": mae("test"), "valid_mae": best, "curve": curve,
            "best_epoch": min(curve, key=lambda e: e["valid_mae"])["epoch"],
            "seconds": time.perf_counter() - start}



# -- the runner ---------------------------------------------------------------------------------

OUT = Path(__file__).resolve().parent / "out" / "task-family"
BASELINE = "baseline"
SCORES = ("common_gap", "disc_prob_common", "common_factor_r2", "jump")
REFERENCES = ("ridge (time-averaged features)", "training mean")


def mean_mae(data: MultimodalData) -> float:
    """Test MAE of always predicting the training split's mean label."""
    return float(np.mean(np.abs(data.splits["test"].labels - data.splits["train"].labels.mean())))


def split_models(text: str) -> list[str]:
    """``--models`` as a list of models: a piece ``section.field=value`` continues the model before it."""
    models: list[str] = []
    for piece in filter(None, (p.strip() for p in text.split(","))):
        if "=" in piece and ":" not in piece.split("=", 1)[0]:
            if not models or ":" not in models[-1]:
                raise ValueError(f"{piece!r}: an override follows a preset and ':' (e.g. synthetic:{piece})")
            models[-1] += "," + piece
        else:
            models.append(piece)
    return models


def model_config(spec: str) -> Config | None:
    """The configuration of a model (None for the baseline); ValueError says what is wrong."""
    if spec == BASELINE:
        return None
    preset, _, overrides = spec.partition(":")
    changes: dict[str, dict] = {}
    for item in filter(None, overrides.split(",")):
        key, eq, text = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not (eq and dot and name and section in ("model", "loss", "train")):
            raise ValueError(f"{spec!r}: {item!r}: expected section.field=value, section model, loss or train")
        if key.strip() == "train.seed":
            raise ValueError(f"{spec!r}: train.seed is set by --seeds")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text.strip()
        changes.setdefault(section, {})[name] = value
    try:
        return get_preset(preset).replace(train={"device": "cpu"}).replace(**changes)
    except (KeyError, ValueError) as err:
        raise ValueError(f"{spec!r}: {err.args[0]}") from None


def run_baseline(data: MultimodalData, seed: int, path: Path) -> dict:
    """The plain baseline on ``data``, from ``path`` when it holds this data's result."""
    fingerprint = data.fingerprint()
    try:
        saved = runstore.read_json(path)
        if isinstance(saved, dict) and saved.get("fingerprint") == fingerprint:
            return saved | {"loaded": True}
    except (FileNotFoundError, runstore.RunCorrupt):
        pass
    r = train_baseline(data, seed)
    saved = {"mae": r["test_mae"], "valid_mae": r["valid_mae"], "best_epoch": r["best_epoch"],
             "seconds": r["seconds"], "seed": seed, "fingerprint": fingerprint}
    path.parent.mkdir(parents=True, exist_ok=True)
    runstore.write_json(path, saved)
    return saved | {"loaded": False}


def jump(history: list[dict], after: int = 5) -> float:
    """The largest ratio, over the epochs after ``after``, of an epoch's training L_all to the
    lowest before it (above 2: the curve jumped; Figure 3 says it "decrease[s] almost
    monotonously")."""
    values = [h["train"]["all"] for h in history]
    return max([values[e] / min(values[:e]) for e in range(after, len(values))], default=float("nan"))


def run_fdmer(cfg: Config, data: MultimodalData, folder: Path) -> dict:
    """The run of ``cfg`` on ``data`` in ``folder`` (``experiments.runs.obtain``): its metrics and
    its L_all :func:`jump`."""
    run = runs.obtain(cfg, data, folder)
    return dict(run.metrics, loaded=run.loaded, seconds=run.metrics.get("train_seconds", run.seconds),
                jump=jump(run.history))


def _mean(values) -> float | None:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.mean(values) if values else None


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def ratio_to(maes: dict[int, float | None], ref: dict[int, float | None]) -> float | None:
    """The mean over the seeds where both ran of ``maes[s] / ref[s]``."""
    return _mean([maes[s] / ref[s] for s in maes if maes[s] is not None and ref.get(s)])


def table(task: str, seeds: list[int], rows: dict[str, dict[int, dict | None]], ref: str) -> str:
    """One task's markdown table. ``rows``: model -> seed -> its metrics (``mae``, and for FDMER
    the scores), None for a run that failed; the reference rows hold only ``mae``."""
    maes = {m: {s: (rows[m].get(s) or {}).get("mae") for s in seeds} for m in rows}
    lines = [f"## `{task}`", "",
             "| model | " + " | ".join(f"seed {s}" for s in seeds) + f" | mean | ratio to `{ref}` | "
             + " | ".join(SCORES) + " |", "|---" * (len(seeds) + 3 + len(SCORES)) + "|"]
    for model in rows:
        label = model if model in REFERENCES else f"`{model}`"
        cells = [_fmt(maes[model][s], 3) if (rows[model].get(s) is not None or model in REFERENCES)
                 else "failed" for s in seeds]
        scores = [_fmt(_mean([(rows[model].get(s) or {}).get(k) for s in seeds]), 3) for k in SCORES]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {_fmt(_mean(maes[model].values()), 3)} | "
                     + f"{_fmt(ratio_to(maes[model], maes[ref]), 2)} | " + " | ".join(scores) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", default="mosi_aligned", help=f"comma-separated, of {', '.join([*TASKS, *KNOWN_FACTOR, *REAL])}")
    p.add_argument("--seeds", default="0", help="comma-separated: each draws a data set and the weights")
    p.add_argument("--models", default="baseline,synthetic", help="baseline, or PRESET[:section.field=value,...]")
    p.add_argument("--ratio-to", default=None, help="the model the ratios divide by (default: the first)")
    p.add_argument("--out", type=Path, default=OUT, help=f"run folders and table.md (default {OUT})")
    a = p.parse_args(argv)
    runs.set_threads()                                   # the package's thread policy, for the baseline too
    tasks = [t.strip() for t in a.tasks.split(",") if t.strip()]
    if not tasks or set(tasks) - set(TASKS) - set(KNOWN_FACTOR) - set(REAL):
        p.error(f"--tasks: expected names from {', '.join([*TASKS, *KNOWN_FACTOR, *REAL])}, got {a.tasks!r}")
    try:
        seeds = [int(s) for s in a.seeds.split(",")]
    except ValueError:
        p.error(f"--seeds: expected comma-separated whole numbers, got {a.seeds!r}")
    try:
        models = split_models(a.models)
        configs = {m: model_config(m) for m in models}
    except ValueError as err:
        p.error(f"--models: {err}")
    try:
        ref = models[0] if a.ratio_to is None and models else ",".join(split_models(a.ratio_to))
    except ValueError as err:
        p.error(f"--ratio-to: {err}")
    names = {m: re.sub(r"[^\w.=+-]", "_", m) for m in models}          # folder names
    if not models or len(set(names.values())) < len(models):
        p.error(f"--models: expected distinct models, got {a.models!r}")
    if ref not in models:
        p.error(f"--ratio-to: expected one of --models ({', '.join(models)}), got {ref!r}")
    sections = []
    for task in tasks:
        rows: dict[str, dict[int, dict | None]] = {m: {} for m in [*models, *REFERENCES]}
        for seed in seeds:
            data = make_task(task, seed)
            rows[REFERENCES[0]][seed], rows[REFERENCES[1]][seed] = {"mae": ridge_mae(data)}, {"mae": mean_mae(data)}
            folder = a.out / task / f"seed{seed}"
            for model in models:
                try:
                    r = (run_baseline(data, seed, folder / f"{BASELINE}.json") if configs[model] is None
                         else run_fdmer(configs[model].replace(train={"seed": seed}), data, folder / names[model]))
                except NonFiniteLoss as err:
                    print(f"{task} seed {seed} {model}: failed: {err}", file=sys.stderr, flush=True)
                    r = None
                rows[model][seed] = r
                if r is not None:
                    print(f"{task} seed {seed} {model}: test MAE {r['mae']:.3f}"
                          + (" (finished run reused)" if r["loaded"] else f" ({r['seconds']:.0f} s)"), flush=True)
        sections.append(table(task, seeds, rows, ref))
    text = (f"Written by `{shlex.join(['python', 'benchmarks/task_family.py', *argv])}`: test MAE of the "
            "best-on-validation epoch; the ratio is the mean over the seeds of a row's MAE over the "
            f"reference's on the same seed.\n\n" + "\n\n".join(sections) + "\n")
    print("\n" + text, end="")
    a.out.mkdir(parents=True, exist_ok=True)
    runstore.write_text(a.out / "table.md", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
