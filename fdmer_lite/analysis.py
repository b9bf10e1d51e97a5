"""What the model learned: representations, probes and disentanglement scores.

``extract_representations`` runs a trained model over a split and returns, as numpy arrays, the
common and private representations (FDMER Eq. 2-3), the discriminator's probabilities (Eq. 8-9,
Figure 4a), the fusion weights psi (Eq. 16, Figure 4b) and the predictions.
``disentanglement_scores`` fits probes on train-split representations and scores them on the
test split (``metrics.SCORES`` names each score and its ideal value). The modality probe is
stricter than anything the paper reports: a discriminator can be fooled while the modality stays
linearly readable by a fresh probe; ``common_gap`` stays continuous where the probe saturates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import r2_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .data.base import MultimodalData, make_loader


@dataclass
class Representations:
    """One split's representations, by modality, as :func:`extract_representations` returns them."""
    modalities: str
    common: dict[str, np.ndarray]            # m -> (N, d_k)
    private: dict[str, np.ndarray]           # m -> (N, d_k)
    features: dict[str, np.ndarray]          # h_m (N, d_k)
    psi: np.ndarray                          # (N, T)
    psi_names: tuple[str, ...]
    disc_prob_common: dict[str, np.ndarray]  # m -> (N, M) probabilities over the modalities
    disc_prob_private: dict[str, np.ndarray]
    prediction: np.ndarray                   # (N,) or (N, C)
    labels: np.ndarray                       # (N,)
    ids: list[str]
    extras: dict[str, np.ndarray] = field(default_factory=dict)


@torch.no_grad()
def extract_representations(model: torch.nn.Module, data: MultimodalData, split: str = "test", *,
                            device: str | torch.device = "cpu", batch_size: int = 256) -> Representations:
    """Run ``model`` (evaluation mode) over ``split`` of ``data``, in split order."""
    model.eval()
    device = torch.device(device)
    mods = model.modalities
    data = data.select(mods)
    parts: dict[str, list] = {}

    def add(key, value):
        parts.setdefault(key, []).append(value.detach().float().cpu().numpy())

    for batch in make_loader(data, split, batch_size):
        batch = batch.to(device)
        out = model(batch.features, batch.masks)
        add("prediction", out.prediction)
        add("psi", out.psi)
        for i, m in enumerate(mods):
            add(f"h_{m}", out.features[m])
            if out.common:
                add(f"C_{m}", out.common[m])
                add(f"P_{m}", out.private[m])
            if out.disc_logits_common is not None:
                add(f"pc_{m}", model.discriminator.probability(out.disc_logits_common[:, i]))   # (B, M)
                add(f"pp_{m}", model.discriminator.probability(out.disc_logits_private[:, i]))
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    sp = data.splits[split]
    pick = lambda prefix: {m: cat[f"{prefix}_{m}"] for m in mods if f"{prefix}_{m}" in cat}  # noqa: E731
    return Representations(modalities=mods, common=pick("C"), private=pick("P"), features=pick("h"),
                           psi=cat["psi"], psi_names=tuple(model.psi_names),
                           disc_prob_common=pick("pc"), disc_prob_private=pick("pp"),
                           prediction=cat["prediction"], labels=np.asarray(sp.labels), ids=list(sp.ids),
                           extras=dict(sp.extras))


def save_representations(reps: Representations, path: Path) -> None:
    """Write what the figures plot (no raw features, no latents) to one ``.npz``."""
    arrays = {"modalities": np.array(reps.modalities), "psi": reps.psi,
              "psi_names": np.array(list(reps.psi_names)), "prediction": reps.prediction,
              "labels": reps.labels, "ids": np.array([str(i) for i in reps.ids])}
    for m in reps.modalities:
        arrays[f"C_{m}"] = reps.common[m]
        arrays[f"P_{m}"] = reps.private[m]
        if m in reps.disc_prob_common:
            arrays[f"pc_{m}"] = reps.disc_prob_common[m]
            arrays[f"pp_{m}"] = reps.disc_prob_private[m]
    np.savez(path, **arrays)


def _float32(a: np.ndarray) -> np.ndarray:
    """float16 (how the shipped sweep cells store C and P) as float32: every caller sees one dtype."""
    return a.astype(np.float32) if a.dtype == np.float16 else a


def load_representations(path: Path) -> Representations:
    """Read :func:`save_representations`' file back (no pickles: ``allow_pickle=False``)."""
    with np.load(path, allow_pickle=False) as z:
        mods = str(z["modalities"])
        pick = lambda prefix: {m: _float32(z[f"{prefix}_{m}"])                 # noqa: E731
                               for m in mods if f"{prefix}_{m}" in z}
        return Representations(modalities=mods, common=pick("C"), private=pick("P"), features={},
                               psi=z["psi"], psi_names=tuple(str(s) for s in z["psi_names"]),
                               disc_prob_common=pick("pc"), disc_prob_private=pick("pp"),
                               prediction=z["prediction"], labels=z["labels"],
                               ids=[str(s) for s in z["ids"]])


def _stack_by_modality(reps: dict[str, np.ndarray], mods: str) -> tuple[np.ndarray, np.ndarray]:
    X = np.concatenate([reps[m] for m in mods])                              # (N*M, d_k)
    y = np.concatenate([np.full(len(reps[m]), i) for i, m in enumerate(mods)])
    return X, y


def modality_probe_accuracy(train: dict[str, np.ndarray], test: dict[str, np.ndarray], mods: str, *,
                            centre: bool = False, top_components: int | None = None,
                            kind: str = "linear") -> float:
    """Test accuracy of a probe, fitted on standardised ``train``, that predicts the modality of a
    representation: ``kind="linear"`` (logistic regression; ``common_modality_acc``) or ``"knn"``
    (15 nearest neighbours, which also reads differences in spread and shape where a linear probe
    reads only differences of means; Belrose et al. 2023, LEACE).

    ``centre=True`` first subtracts each modality's train-split mean from its train and test
    representations, so the probe reads everything *except* a per-modality offset (notebook 11).
    ``top_components=k`` first projects onto the k leading principal components of the pooled train
    representations: is the modality readable where they vary, or only where they hardly do?
    """
    if centre:
        mu = {m: np.asarray(train[m]).mean(axis=0) for m in mods}
        train = {m: train[m] - mu[m] for m in mods}
        test = {m: test[m] - mu[m] for m in mods}
    if top_components is not None:
        pooled = np.concatenate([np.asarray(train[m], dtype=np.float64) for m in mods])   # (N*M, d)
        if not 1 <= top_components <= pooled.shape[1]:
            raise ValueError(f"top_components must be in [1, {pooled.shape[1]}], got {top_components!r}")
        mean = pooled.mean(axis=0)
        basis = np.linalg.svd(pooled - mean, full_matrices=False)[2][:top_components].T    # (d, k)
        train = {m: (np.asarray(train[m]) - mean) @ basis for m in mods}
        test = {m: (np.asarray(test[m]) - mean) @ basis for m in mods}
    if kind not in ("linear", "knn"):
        raise ValueError(f"kind must be 'linear' or 'knn', got {kind!r}")
    X_tr, y_tr = _stack_by_modality(train, mods)
    X_te, y_te = _stack_by_modality(test, mods)
    head = LogisticRegression(max_iter=2000) if kind == "linear" else KNeighborsClassifier(15)
    probe = make_pipeline(StandardScaler(), head)
    probe.fit(X_tr, y_tr)
    return float(probe.score(X_te, y_te))


def offset_share(reps: dict[str, np.ndarray], mods: str) -> float:
    """Mean over modalities of ||mean_b C_m[b]||^2 / mean_b ||C_m[b]||^2: the share of the
    representations' energy that is one constant vector per modality. Near 1, every sample's C_m
    is the same vector plus a small variation (the common space has collapsed onto an offset)."""
    shares = []
    for m in mods:
        x = np.asarray(reps[m], dtype=np.float64)
        energy = (x ** 2).sum(axis=1).mean()
        shares.append((x.mean(axis=0) ** 2).sum() / energy if energy > 0 else float("nan"))
    return float(np.mean(shares))


def common_gap(common: dict[str, np.ndarray], mods: str) -> float:
    """Mean over modality pairs of mean_b ||C_i[b] - C_j[b]||^2, divided by twice the mean over
    modalities of the spread mean_b ||C_m[b] - mean(C_m)||^2 (``losses.alignment_loss`` measures
    the same gaps after whitening; this score keeps plain distances)."""
    C = [np.asarray(common[m], dtype=np.float64) for m in mods]
    spread = np.mean([((c - c.mean(axis=0)) ** 2).sum(axis=1).mean() for c in C])
    gaps = [((C[i] - C[j]) ** 2).sum(axis=1).mean() for i in range(len(C)) for j in range(i + 1, len(C))]
    return float(np.mean(gaps) / (2 * spread)) if gaps and spread > 0 else float("nan")


def factor_r2(X_tr: np.ndarray, Z_tr: np.ndarray, X_te: np.ndarray, Z_te: np.ndarray) -> float:
    """Test R^2 (averaged over the factor's dimensions) of a ridge probe from X to Z."""
    probe = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
    probe.fit(X_tr, Z_tr)
    return float(r2_score(Z_te, probe.predict(X_te), multioutput="uniform_average"))


def true_modality_probability(probs: dict[str, np.ndarray], mods: str) -> float:
    """Mean over modalities and samples of the discriminator's probability of the true modality."""
    return float(np.mean([probs[m][:, i].mean() for i, m in enumerate(mods)]))


def disentanglement_scores(model: torch.nn.Module, data: MultimodalData, *,
                           device: str | torch.device = "cpu", max_train: int = 4000,
                           test: Representations | None = None) -> dict[str, float]:
    """The disentanglement scores on the test split (factor R^2 only where the data carries latents);
    ``test``: the test split's representations, if the caller has extracted them already."""
    tr = extract_representations(model, data, "train", device=device)
    te = test if test is not None else extract_representations(model, data, "test", device=device)
    mods = tr.modalities
    if not tr.common:
        return {}
    if len(tr.labels) > max_train:                                          # keep the probes quick
        keep = np.random.default_rng(0).choice(len(tr.labels), max_train, replace=False)
        sub = lambda d: {m: v[keep] for m, v in d.items()}                  # noqa: E731
        tr.common, tr.private, tr.extras = sub(tr.common), sub(tr.private), sub(tr.extras)
    scores: dict[str, float] = {}
    if len(mods) > 1:
        scores["common_modality_acc"] = modality_probe_accuracy(tr.common, te.common, mods)
        scores["private_modality_acc"] = modality_probe_accuracy(tr.private, te.private, mods)
        scores["disc_prob_common"] = true_modality_probability(te.disc_prob_common, mods)
        scores["disc_prob_private"] = true_modality_probability(te.disc_prob_private, mods)
        scores["common_gap"] = common_gap(te.common, mods)
    if "s" in tr.extras:                            # the known factors of the synthetic benchmark
        scores["common_factor_r2"] = float(np.mean(
            [factor_r2(tr.common[m], tr.extras["s"], te.common[m], te.extras["s"]) for m in mods]))
    if all(f"z_{m}" in tr.extras for m in mods):
        scores["private_factor_r2"] = float(np.mean(
            [factor_r2(tr.private[m], tr.extras[f"z_{m}"], te.private[m], te.extras[f"z_{m}"])
             for m in mods]))
    return scores
