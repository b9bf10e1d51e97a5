"""The known-factor benchmark: generated multimodal data whose causes are known.

FDMER (Yang et al., ACM MM 2022, Sec. 3) splits each modality's representation into a *common*
part C_m (what text, audio and video share) and a *private* part P_m. On real data nobody knows
those factors; here we choose them, so the claim can be measured:

* every sample has a shared latent ``s`` and one private latent ``z_m`` per modality, all
  standard normal;
* each modality shows ``[s; z_m]`` through its own random map ``h_m = tanh(W1_m [s; z_m] + b1_m)``
  during a random time window: at window position r in (0, 1) the frame is
  ``W2_m h_m + motion * sqrt(2) cos(pi r) V2_m h_m`` (the cosine part averages to zero, so time
  averages cannot see it); outside the window frames carry nothing about the latents;
* every frame gets a smooth label-free *nuisance* process and white noise, and each modality its
  own offset and scale (the "distribution gap" the common space has to close);
* the label adds a function ``g`` of ``s`` and of each ``z_m``::

      f = label_std * (w_s g(s) + w_t g(z_t) + w_a g(z_a) + w_v g(z_v)) / sqrt(w_s^2 + sum w_m^2)
      g(u) = sqrt(1 - nonlinearity) u_0 + sqrt(nonlinearity / 2) (u_1 u_2 + (u_3^2 - 1) / sqrt(2))

  ``g`` has mean 0 and variance 1, so ``w_s^2 / (w_s^2 + sum w_m^2)`` is the shared share of
  the label variance. Regression: ``y = clip(f + eps, -3, 3)``, ``eps ~ N(0, label_noise^2)``;
  classification: ``1[f + eps > 0]``.

``"emotion"`` takes 80 % of the label variance from the ``z_m``, ``"humor"`` 80 % from ``s``;
with the same seeds both share the same features and latents. Each split's ``extras`` hold the
latents ``s``, ``z_m``, the noise-free label ``clean`` (= f), its parts ``clean_s`` ...
``clean_v`` and each modality's ``window_m`` = [start, stop). ``info["bayes_mae"]`` is the
**Bayes floor**, the test MAE of ``clip(f, -3, 3)`` (``bayes_acc``, of ``1[f > 0]``, for
classification). ``world_seed`` draws the maps, offsets and scales; ``seed`` draws the samples,
one stream per split. How the defaults were chosen: ``benchmarks/results/code-notes.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch

from ..config import MODALITIES
from .base import SPLITS, DataError, MultimodalData, Split

WIDTHS = {
    "glove": {"t": 300, "a": 74, "v": 47},    # CMU-MOSI: GloVe 300, COVAREP 74, FACET 4.1 (47; see tutorial 01)
    "bert": {"t": 768, "a": 5, "v": 20},      # CMU-MOSI in MMSA's BERT files
}

KINDS = ("emotion", "humor")

# shared share of the label variance = shared_weight^2 / (shared_weight^2 + private_weight^2)
KIND_WEIGHTS = {
    "emotion": {"shared_weight": 0.5, "private_weight": 1.0},   # 20 % shared, 80 % private
    "humor": {"shared_weight": 1.0, "private_weight": 0.5},     # 80 % shared, 20 % private
}

DEFAULT_SIZES = {"n_train": 10000, "n_valid": 500, "n_test": 1000}


def _check_positive(name, value, allow_zero=False):
    ok = value >= 0 if allow_zero else value > 0
    if not ok:
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")


def _resolve_widths(widths) -> dict[str, int]:
    if isinstance(widths, str):
        if widths not in WIDTHS:
            raise ValueError(f"widths must be one of {sorted(WIDTHS)} or a dict, got {widths!r}")
        return dict(WIDTHS[widths])
    if isinstance(widths, Mapping):
        if set(widths) != set(MODALITIES):
            raise ValueError(f"widths dict needs exactly the keys {MODALITIES}, got {sorted(widths)}")
        out = {m: int(widths[m]) for m in MODALITIES}
        for m, d in out.items():
            _check_positive(f"widths[{m!r}]", d)
        return out
    raise ValueError(f"widths must be 'glove', 'bert' or a dict, got {widths!r}")


def _resolve_private_weights(private_weight) -> dict[str, float]:
    """A float is the total private weight, split equally; a dict gives each modality's weight."""
    if isinstance(private_weight, Mapping):
        if set(private_weight) != set(MODALITIES):
            raise ValueError(f"private_weight dict needs the keys {MODALITIES}, got {sorted(private_weight)}")
        return {m: float(private_weight[m]) for m in MODALITIES}
    return {m: float(private_weight) / math.sqrt(len(MODALITIES)) for m in MODALITIES}


def label_part(u: np.ndarray, nonlinearity: float) -> np.ndarray:
    """g(u), (N, >= 4) -> (N,): mean 0, variance 1 for u ~ N(0, I). A linear term, a product
    and a centred square, pairwise uncorrelated; ``nonlinearity`` is the non-linear share."""
    lin = u[:, 0]
    prod = u[:, 1] * u[:, 2]                                     # var 1
    square = (u[:, 3] ** 2 - 1.0) / math.sqrt(2.0)               # var 1 (E u^4 = 3)
    return math.sqrt(1 - nonlinearity) * lin + math.sqrt(nonlinearity / 2) * (prod + square)


def _make_world(widths, world_seed, shared_dim, private_dim, hidden, map_gain, motion,
                nuisance_dim, offset, scale_gap):
    """The random rules of one world: per-modality maps, nuisance maps, offsets and scales (one
    seed stream per modality, so the text map does not change with the audio width)."""
    order = np.random.default_rng([world_seed, 999]).permutation(len(MODALITIES))
    levels = np.linspace(-1.0, 1.0, len(MODALITIES))[order]      # distinct offset levels
    scales = scale_gap ** np.linspace(-0.5, 0.5, len(MODALITIES))[order[::-1]]  # distinct scales
    world = {}
    k_in = shared_dim + private_dim
    for i, m in enumerate(MODALITIES):
        rng = np.random.default_rng([world_seed, i])
        d = widths[m]
        world[m] = {
            "W1": rng.normal(0, map_gain / math.sqrt(k_in), (k_in, hidden)),      # (k_in, H)
            "b1": rng.normal(0, 0.5, hidden),                                     # (H,)
            "W2": rng.normal(0, 1 / math.sqrt(hidden), (hidden, d)),              # (H, d)
            "V2": rng.normal(0, motion / math.sqrt(hidden), (hidden, d)),         # (H, d)
            "N": rng.normal(0, 1 / math.sqrt(nuisance_dim), (nuisance_dim, d)),   # (k_n, d)
            "offset": offset * (levels[i] + 0.5 * rng.normal(0, 1, d)),           # (d,)
            "scale": float(scales[i]),
        }
    return world


def _smooth_process(rng, n, length, dim, timescale):
    """Stationary AR(1) process with unit variance and correlation exp(-1/timescale) per step."""
    rho = math.exp(-1.0 / timescale) if timescale > 0 else 0.0
    out = np.empty((n, length, dim), dtype=np.float32)                   # (N, L, k_n)
    out[:, 0] = rng.standard_normal((n, dim), dtype=np.float32)
    innov = rng.standard_normal((n, length, dim), dtype=np.float32) * math.sqrt(1 - rho * rho)
    for t in range(1, length):
        out[:, t] = rho * out[:, t - 1] + innov[:, t]
    return out


def _make_split(name, n, rng, world, *, seq_len, shared_dim, private_dim, weights,
                label_std, label_noise, nonlinearity, feature_noise, window, nuisance,
                nuisance_dim, nuisance_timescale, task):
    # white noise from torch's generator (faster; code-notes.md), seeded from this split's stream
    noise_gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    s = rng.standard_normal((n, shared_dim))                                      # (N, ds)
    z = {m: rng.standard_normal((n, private_dim)) for m in MODALITIES}            # m -> (N, dz)
    norm = math.sqrt(weights["s"] ** 2 + sum(weights[m] ** 2 for m in MODALITIES))
    parts = {"s": label_std * weights["s"] / norm * label_part(s, nonlinearity)}
    for m in MODALITIES:
        parts[m] = label_std * weights[m] / norm * label_part(z[m], nonlinearity)
    clean = parts["s"] + sum(parts[m] for m in MODALITIES)                        # (N,)
    noisy = clean + label_noise * rng.standard_normal(n)
    if task == "regression":
        labels = np.clip(noisy, -3.0, 3.0).astype(np.float32)
    else:
        labels = (noisy > 0).astype(np.int64)

    features, extras = {}, {"s": s.astype(np.float32)}
    steps = np.arange(seq_len)[None, :]                                           # (1, L)
    lo_frac, hi_frac = window
    for m in MODALITIES:
        w = world[m]
        d = w["W2"].shape[1]
        h = np.tanh(np.concatenate([s, z[m]], axis=1) @ w["W1"] + w["b1"])         # (N, H)
        pose = (h @ w["W2"]).astype(np.float32)                                   # (N, d)
        move = (h @ w["V2"]).astype(np.float32)                                   # (N, d)
        lo = max(1, int(round(lo_frac * seq_len)))
        hi = max(lo, int(round(hi_frac * seq_len)))
        win_len = rng.integers(lo, hi + 1, n)                                     # (N,)
        start = rng.integers(0, seq_len - win_len + 1)                            # (N,)
        inside = (steps >= start[:, None]) & (steps < (start + win_len)[:, None])  # (N, L)
        r = (steps - start[:, None] + 0.5) / win_len[:, None]                     # (N, L) in (0,1) inside
        env_pose = inside.astype(np.float32)                                      # (N, L)
        env_move = np.where(inside, math.sqrt(2) * np.cos(math.pi * r), 0.0).astype(np.float32)
        # each frame mixes a few rows [pose, motion, nuisance rows..., offset]: one batched matmul
        proc = _smooth_process(rng, n, seq_len, nuisance_dim, nuisance_timescale)  # (N, L, k_n)
        mix = np.concatenate([env_pose[:, :, None], env_move[:, :, None], proc,
                              np.ones((n, seq_len, 1), np.float32)], axis=2)       # (N, L, 3 + k_n)
        shared_rows = np.concatenate([nuisance * w["N"], w["offset"][None] / w["scale"]])  # (k_n + 1, d)
        rows = np.concatenate([pose[:, None], move[:, None],
                               np.broadcast_to(shared_rows, (n, *shared_rows.shape))], axis=1)
        rows = (w["scale"] * rows).astype(np.float32)                             # (N, 3 + k_n, d)
        x = torch.randn((n, seq_len, d), generator=noise_gen)                     # (N, L, d)
        x.mul_(w["scale"] * feature_noise)
        x.baddbmm_(torch.from_numpy(mix), torch.from_numpy(rows))                 # += mix @ rows
        features[m] = x.numpy()
        extras[f"z_{m}"] = z[m].astype(np.float32)
        extras[f"window_{m}"] = np.stack([start, start + win_len], axis=1).astype(np.int64)  # (N, 2)
    extras["clean"] = clean.astype(np.float32)
    for key, part in parts.items():
        extras[f"clean_{key}"] = part.astype(np.float32)
    ids = [f"syn_{name}_{i:05d}" for i in range(n)]
    return Split(features=features, labels=labels, ids=ids, extras=extras)


def make_benchmark(
    kind: str = "emotion", *, task: str = "regression",
    n_train: int = DEFAULT_SIZES["n_train"], n_valid: int = DEFAULT_SIZES["n_valid"],
    n_test: int = DEFAULT_SIZES["n_test"], seq_len: int = 50,
    widths: str | Mapping[str, int] = "glove", seed: int = 0, world_seed: int = 0,
    shared_weight: float | None = None, private_weight: float | Mapping[str, float] | None = None,
    shared_dim: int = 4, private_dim: int = 4, nonlinearity: float = 0.4,
    label_std: float = 1.5, label_noise: float = 0.5, hidden: int = 16, map_gain: float = 0.5,
    motion: float = 0.0, feature_noise: float = 0.2, window: tuple[float, float] = (0.8, 1.0),
    nuisance: float = 0.3, nuisance_dim: int = 3, nuisance_timescale: float = 5.0,
    offset: float = 2.0, scale_gap: float = 4.0,
) -> MultimodalData:
    """Generate the known-factor benchmark (the recipe is in the module docstring).

    ``kind`` sets the defaults of ``shared_weight`` (w_s; emotion 0.5, humor 1.0) and
    ``private_weight`` (a float is the total private weight, w_m = private_weight / sqrt(3); a
    dict sets each w_m; emotion 1.0, humor 0.5). ``task``: regression (labels in [-3, 3]) or
    classification ({0, 1}). ``seq_len``: L, all steps valid. ``widths``: ``"glove"``
    (300/74/47), ``"bert"`` (768/5/20) or a dict. ``shared_dim``, ``private_dim`` >= 4 (g uses
    four coordinates). ``nonlinearity``, ``label_std``, ``label_noise``, ``motion``: as in the
    formulas above; ``feature_noise``: std of the white noise on every feature.
    ``hidden``: H of each map; ``map_gain``: std of W1's pre-activations;
    ``window``: (min, max) fraction of ``seq_len`` per expression window; ``nuisance``,
    ``nuisance_dim``, ``nuisance_timescale``: the nuisance's strength, dimension and correlation
    time in steps; ``offset``: size of the per-modality offsets; ``scale_gap``: ratio of the
    largest to the smallest modality scale.

    Returns a :class:`MultimodalData` named ``synthetic-<kind>``; ``info`` holds the Bayes floor
    (``bayes_mae`` or ``bayes_acc``), ``label_shares``, ``kind``, the seeds and every knob.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if task not in ("regression", "classification"):
        raise ValueError(f"task must be 'regression' or 'classification', got {task!r}")
    for name, value in (("n_train", n_train), ("n_valid", n_valid), ("n_test", n_test),
                        ("seq_len", seq_len), ("hidden", hidden), ("nuisance_dim", nuisance_dim)):
        _check_positive(name, value)
    if shared_dim < 4 or private_dim < 4:
        raise ValueError(f"shared_dim and private_dim must be >= 4 (g uses four coordinates), "
                         f"got {shared_dim} and {private_dim}")
    if not 0.0 <= nonlinearity <= 1.0:
        raise ValueError(f"nonlinearity must be in [0, 1], got {nonlinearity!r}")
    lo_frac, hi_frac = window
    if not 0.0 < lo_frac <= hi_frac <= 1.0:
        raise ValueError(f"window must be (min, max) with 0 < min <= max <= 1, got {window!r}")
    for name, value in (("label_std", label_std), ("label_noise", label_noise),
                        ("feature_noise", feature_noise), ("nuisance", nuisance),
                        ("offset", offset), ("motion", motion), ("map_gain", map_gain),
                        ("nuisance_timescale", nuisance_timescale)):
        _check_positive(name, value, allow_zero=True)
    _check_positive("scale_gap", scale_gap)
    widths_d = _resolve_widths(widths)
    defaults = KIND_WEIGHTS[kind]
    shared_weight = defaults["shared_weight"] if shared_weight is None else float(shared_weight)
    private_weight = defaults["private_weight"] if private_weight is None else private_weight
    weights = {"s": shared_weight, **_resolve_private_weights(private_weight)}
    total = sum(w * w for w in weights.values())
    if total <= 0:
        raise ValueError("shared_weight and private_weight cannot all be zero")
    shares = {k: w * w / total for k, w in weights.items()}   # exact variance shares of f

    world = _make_world(widths_d, world_seed, shared_dim, private_dim, hidden, map_gain, motion,
                        nuisance_dim, offset, scale_gap)
    sizes = {"train": n_train, "valid": n_valid, "test": n_test}
    splits = {}
    for i, name in enumerate(SPLITS):
        rng = np.random.default_rng([seed, 1000 + i])     # one stream per split
        splits[name] = _make_split(
            name, sizes[name], rng, world, seq_len=seq_len, shared_dim=shared_dim,
            private_dim=private_dim, weights=weights, label_std=label_std,
            label_noise=label_noise, nonlinearity=nonlinearity, feature_noise=feature_noise,
            window=window, nuisance=nuisance, nuisance_dim=nuisance_dim,
            nuisance_timescale=nuisance_timescale, task=task)
    test = splits["test"]
    knobs = dict(shared_weight=shared_weight,
                 private_weight=dict(private_weight) if isinstance(private_weight, Mapping)
                 else private_weight,
                 shared_dim=shared_dim, private_dim=private_dim, nonlinearity=nonlinearity,
                 label_std=label_std, label_noise=label_noise, hidden=hidden, map_gain=map_gain,
                 motion=motion, feature_noise=feature_noise, window=tuple(window),
                 nuisance=nuisance, nuisance_dim=nuisance_dim,
                 nuisance_timescale=nuisance_timescale, offset=offset, scale_gap=scale_gap)
    info = {"kind": kind, "seed": seed, "world_seed": world_seed, "widths": widths_d,
            "seq_len": seq_len, "label_shares": shares, "knobs": knobs,
            "modality_scales": {m: world[m]["scale"] for m in MODALITIES}}
    if task == "regression":
        ideal = np.clip(test.extras["clean"], -3.0, 3.0)
        info["bayes_mae"] = float(np.mean(np.abs(test.labels - ideal)))
    else:
        ideal = (test.extras["clean"] > 0).astype(np.int64)
        info["bayes_acc"] = float(np.mean(ideal == test.labels))
    source = f"<synthetic kind={kind} task={task} seed={seed} world_seed={world_seed}>"
    return MultimodalData(name=f"synthetic-{kind}", task=task, splits=splits,
                          n_classes=2 if task == "classification" else 0, info=info, source=source)


def time_average(split: Split) -> np.ndarray:
    """Concatenate every modality's mean over its valid steps: (N, sum of widths)."""
    cols = []
    for m in MODALITIES:
        if m not in split.features:
            continue
        x = split.features[m]                                                    # (N, L, d)
        if m in split.lengths:
            valid = np.arange(x.shape[1])[None, :] < split.lengths[m][:, None]   # (N, L)
            cols.append((x * valid[:, :, None]).sum(1) / split.lengths[m][:, None])
        else:
            cols.append(x.mean(axis=1))
    return np.concatenate(cols, axis=1).astype(np.float64)


def baselines(data: MultimodalData) -> dict:
    """Reference scores on the test split. Regression: ``bayes_mae`` (when the data carry it),
    ``mean_mae`` (predict the training mean), ``ridge_mae`` (RidgeCV on standardised time
    averages of all streams). Classification: ``bayes_acc``, ``majority_acc``, ``logistic_acc``."""
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train, test = data.splits["train"], data.splits["test"]
    x_tr, x_te = time_average(train), time_average(test)
    out = {}
    if data.task == "regression":
        y_tr, y_te = train.labels.astype(np.float64), test.labels.astype(np.float64)
        if "bayes_mae" in data.info:
            out["bayes_mae"] = float(data.info["bayes_mae"])
        out["mean_mae"] = float(np.mean(np.abs(y_te - y_tr.mean())))
        ridge = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 4, 13)))
        ridge.fit(x_tr, y_tr)
        out["ridge_mae"] = float(np.mean(np.abs(y_te - ridge.predict(x_te))))
    else:
        y_tr, y_te = train.labels, test.labels
        if "bayes_acc" in data.info:
            out["bayes_acc"] = float(data.info["bayes_acc"])
        majority = np.bincount(y_tr).argmax()
        out["majority_acc"] = float(np.mean(y_te == majority))
        logreg = make_pipeline(StandardScaler(), GridSearchCV(
            LogisticRegression(solver="newton-cholesky", max_iter=200),
            {"C": np.logspace(-3, 1, 5).tolist()}, cv=3))
        logreg.fit(x_tr, y_tr)
        out["logistic_acc"] = float(np.mean(logreg.predict(x_te) == y_te))
    return out


FAST_SIZES = {"n_train": 256, "n_valid": 64, "n_test": 128}


def load(path=None, *, kind: str = "emotion", seed: int = 0, fast: bool = False, **knobs) -> MultimodalData:
    """Entry point for ``load_dataset("synthetic")``: ``path`` must be None (nothing is read);
    ``fast`` uses :data:`FAST_SIZES` unless ``knobs`` give sizes."""
    if path is not None:
        raise DataError(str(path), "--data", "no path: the synthetic benchmark is generated")
    sizes = dict(FAST_SIZES) if fast else {}
    sizes.update(knobs)
    return make_benchmark(kind, seed=seed, **sizes)

