"""Evaluation metrics for CMU-MOSI / CMU-MOSEI (regression) and UR-FUNNY (binary classification).

FDMER (Yang et al., ACM MM 2022), Section 4.3 and Tables 1-3 report, following the MMSA toolkit
(``utils/metricsTop.py``, ``__eval_mosei_regression``; MOSI uses the same function):

- MAE    mean absolute error between prediction and label (no clipping);
- Corr   Pearson correlation;
- Acc7   accuracy of ``round(clip(x, -3, 3))`` for prediction against label (7 classes);
- Acc5   the same with ``clip(x, -2, 2)`` (5 classes);
- Acc2 / F1, in two readings that papers often mix up:
    * ``has0``: negative = ``x < 0``, non-negative = ``x >= 0``, over **all** samples;
    * ``non0``: negative = ``x <= 0``, positive = ``x > 0``, over samples whose **label is not 0**;
  F1 is scikit-learn's weighted F1 (per-class F1 averaged with class support as weights).

Rounding is numpy's (``np.round``: half to even, so 0.5 -> 0 and 1.5 -> 2), exactly as MMSA.
Unlike MMSA we return unrounded values; accuracies and F1 are fractions in [0, 1].

This module is a pure function of arrays: it never imports the model.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

REGRESSION_KEYS = ("mae", "corr", "acc7", "acc5", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0")
CLASSIFICATION_KEYS = ("acc2", "f1")


# ---------------------------------------------------------------- helpers


def _to_numpy(x, name: str) -> np.ndarray:
    """numpy array from a numpy array, a list or a torch tensor (without importing torch)."""
    if hasattr(x, "detach"):                      # torch.Tensor
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except Exception as err:                      # ragged lists and the like
        raise ValueError(f"{name}: could not be read as an array ({err})") from None


def _flat(x, name: str) -> np.ndarray:
    """(N,) or (N, 1) -> (N,) float64; rejects anything else, empty input and NaN/inf."""
    a = _to_numpy(x, name)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]                               # (N, 1) -> (N,)
    if a.ndim != 1:
        raise ValueError(f"{name}: expected shape (N,) or (N, 1), got {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name}: empty; metrics need at least one sample")
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{name}: expected numbers, got dtype {a.dtype}")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        bad = int((~np.isfinite(a)).sum())
        raise ValueError(f"{name}: contains {bad} NaN/inf value(s) out of {a.size}")
    return a


def _check_same_length(pred: np.ndarray, label: np.ndarray) -> None:
    if len(pred) != len(label):
        raise ValueError(f"length mismatch: pred has {len(pred)} samples, label has {len(label)}")


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; 0.0 (not NaN) when either side is constant."""
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


def _multiclass_acc(pred: np.ndarray, label: np.ndarray) -> float:
    """Fraction of samples whose rounded values agree (MMSA's ``__multiclass_acc``)."""
    return float(np.mean(np.round(pred) == np.round(label)))


def _acc_f1(pred_bin: np.ndarray, label_bin: np.ndarray) -> tuple[float, float]:
    acc = accuracy_score(label_bin, pred_bin)
    # zero_division=0 is sklearn's default value, minus the warning (a class never predicted).
    f1 = f1_score(label_bin, pred_bin, average="weighted", zero_division=0)
    return float(acc), float(f1)


# ---------------------------------------------------------------- public API


def regression_metrics(pred, label) -> dict[str, float]:
    """MOSI/MOSEI regression metrics, numerically identical to MMSA's definitions.

    Args:
        pred: predictions, shape (N,) or (N, 1); numpy array, list or torch tensor.
        label: sentiment labels in [-3, 3], same length.

    Returns:
        ``{"mae", "corr", "acc7", "acc5", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0"}`` as
        plain floats; accuracies and F1 are fractions in [0, 1].

    Degenerate input:
        - empty arrays, a length mismatch, or NaN/inf in ``pred`` or ``label`` raise ValueError
          naming the argument;
        - constant predictions (or constant labels) give ``corr = 0.0`` instead of NaN: Pearson's
          correlation is undefined there, and 0 ("no linear relation") is the honest score;
        - if every label is 0, the ``non0`` metrics have no samples and are ``nan``.
    """
    pred, label = _flat(pred, "pred"), _flat(label, "label")          # (N,), (N,)
    _check_same_length(pred, label)

    out = {
        "mae": float(np.mean(np.abs(pred - label))),
        "corr": pearson(pred, label),
        "acc7": _multiclass_acc(np.clip(pred, -3.0, 3.0), np.clip(label, -3.0, 3.0)),
        "acc5": _multiclass_acc(np.clip(pred, -2.0, 2.0), np.clip(label, -2.0, 2.0)),
    }
    # has0: ">= 0" versus "< 0" over all samples.
    out["acc2_has0"], out["f1_has0"] = _acc_f1(pred >= 0, label >= 0)
    # non0: "> 0" versus "< 0", dropping samples whose label is exactly 0.
    keep = label != 0                                                   # (N,) bool
    if keep.any():
        out["acc2_non0"], out["f1_non0"] = _acc_f1(pred[keep] > 0, label[keep] > 0)
    else:
        out["acc2_non0"] = out["f1_non0"] = float("nan")
    return {k: out[k] for k in REGRESSION_KEYS}


def classification_metrics(pred, label) -> dict[str, float]:
    """Accuracy and weighted F1 for classification (UR-FUNNY: humour vs not, Table 3).

    Args:
        pred: either class ids (N,) / (N, 1), or scores (N, C) with C >= 2 (logits or
            probabilities; the predicted class is the argmax).
        label: class ids (N,) or (N, 1).

    Returns:
        ``{"acc2": accuracy, "f1": weighted F1}`` as plain floats in [0, 1]. The key is ``acc2``
        because the benchmark task is binary; with more classes it is plain accuracy.
    """
    p = _to_numpy(pred, "pred")
    if p.ndim == 2 and p.shape[1] >= 2:
        if p.shape[0] == 0:
            raise ValueError("pred: empty; metrics need at least one sample")
        if not np.all(np.isfinite(p)):
            raise ValueError("pred: contains NaN/inf scores")
        p = p.argmax(axis=1)                                            # (N, C) -> (N,)
    p = _flat(p, "pred")
    y = _flat(label, "label")
    _check_same_length(p, y)
    for name, a in (("pred", p), ("label", y)):
        if np.any(a != np.round(a)):
            hint = " (a single logit per sample? pass (N, C) scores or class ids)" \
                if name == "pred" else ""
            raise ValueError(f"{name}: expected integer class ids{hint}")
    acc, f1 = _acc_f1(p.astype(np.int64), y.astype(np.int64))
    return {"acc2": acc, "f1": f1}
