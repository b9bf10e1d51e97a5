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

``plain_baseline`` is a non-disentangled reference written from scratch (no fdmer_lite.model):
per modality a linear projection, sinusoidal positions, a small pre-norm transformer and mean
pooling; the three vectors concatenated and an MLP. ``train_baseline`` trains it with Adam at a
constant rate and keeps the best-on-validation epoch.

    python benchmarks/task_family.py --task mosi_aligned --seed 0      # baseline MAE on one task
"""

from __future__ import annotations

import argparse
import copy
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fdmer_lite.data.base import MultimodalData, Split

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


def make_task(name: str | TaskSpec, seed: int = 0) -> MultimodalData:
    """The task ``name`` (a key of ``TASKS`` or a TaskSpec), deterministic in ``seed``.

    The directions (signal and marker per modality) depend on ``seed`` only, so the three splits
    share them; the splits are drawn from separate streams of the same generator."""
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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", default="mosi_aligned", choices=sorted(TASKS))
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    data = make_task(a.task, a.seed)
    print(data.summary())
    print(f"ridge MAE {ridge_mae(data):.3f}; training-mean MAE "
          f"{np.mean(np.abs(data.splits['test'].labels - data.splits['train'].labels.mean())):.3f}")
    r = train_baseline(data, a.seed)
    print(f"baseline test MAE {r['test_mae']:.3f} (best epoch {r['best_epoch']}, {r['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
