"""Evaluation metrics for CMU-MOSI / CMU-MOSEI (regression) and UR-FUNNY (binary classification).

FDMER (Yang et al., ACM MM 2022), Section 4.3 and Tables 1-3, report the MMSA toolkit's metrics
(``utils/metricsTop.py``, ``__eval_mosei_regression``, used for MOSI too):

- MAE    mean absolute error between prediction and label (no clipping);
- Corr   Pearson correlation;
- Acc7   accuracy of ``round(clip(x, -3, 3))`` for prediction against label (7 classes);
- Acc5   the same with ``clip(x, -2, 2)`` (5 classes);
- Acc2 / F1, in two readings that papers often mix up:
    * ``has0``: negative = ``x < 0``, non-negative = ``x >= 0``, over **all** samples;
    * ``non0``: negative = ``x <= 0``, positive = ``x > 0``, over samples whose **label is not 0**;
  F1 is scikit-learn's weighted F1 (per-class F1 averaged with class support as weights).

Rounding is numpy's (half to even), as MMSA's; values are unrounded fractions in [0, 1]. The
module never imports the model; it also holds the scores' plain names (:data:`SCORES`) and the
paper's own numbers (Tables 1-4). scikit-learn is imported only when a metric is computed.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

REGRESSION_KEYS = ("mae", "corr", "acc7", "acc5", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0")


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


def _pair(pred, label) -> tuple[np.ndarray, np.ndarray]:
    """``pred`` and ``label`` read by :func:`_flat`, refused unless of one length."""
    pred, label = _flat(pred, "pred"), _flat(label, "label")
    if len(pred) != len(label):
        raise ValueError(f"length mismatch: pred has {len(pred)} samples, label has {len(label)}")
    return pred, label


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; 0.0 (not NaN) when either side is constant."""
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


def _multiclass_acc(pred: np.ndarray, label: np.ndarray) -> float:
    """Fraction of samples whose rounded values agree (MMSA's ``__multiclass_acc``)."""
    return float(np.mean(np.round(pred) == np.round(label)))


def _acc_f1(pred_bin: np.ndarray, label_bin: np.ndarray) -> tuple[float, float]:
    from sklearn.metrics import accuracy_score, f1_score
    acc = accuracy_score(label_bin, pred_bin)
    # zero_division=0 is sklearn's default value, minus the warning (a class never predicted).
    f1 = f1_score(label_bin, pred_bin, average="weighted", zero_division=0)
    return float(acc), float(f1)


def regression_metrics(pred, label) -> dict[str, float]:
    """MOSI/MOSEI regression metrics, :data:`REGRESSION_KEYS`, as plain floats, numerically MMSA's.

    ``pred`` (N,) or (N, 1) and ``label`` (in [-3, 3]) may be numpy arrays, lists or torch tensors.
    Empty input, a length mismatch or NaN/inf raise ValueError naming the argument. Constant
    predictions or labels give ``corr = 0.0`` ("no linear relation"), not NaN; if every label is 0,
    the ``non0`` metrics have no samples and are ``nan``.
    """
    pred, label = _pair(pred, label)                                    # (N,), (N,)
    out = {
        "mae": float(np.mean(np.abs(pred - label))),
        "corr": pearson(pred, label),
        "acc7": _multiclass_acc(np.clip(pred, -3.0, 3.0), np.clip(label, -3.0, 3.0)),
        "acc5": _multiclass_acc(np.clip(pred, -2.0, 2.0), np.clip(label, -2.0, 2.0)),
    }
    out["acc2_has0"], out["f1_has0"] = _acc_f1(pred >= 0, label >= 0)
    keep = label != 0                                                   # non0 drops the zero labels
    if keep.any():
        out["acc2_non0"], out["f1_non0"] = _acc_f1(pred[keep] > 0, label[keep] > 0)
    else:
        out["acc2_non0"] = out["f1_non0"] = float("nan")
    return {k: out[k] for k in REGRESSION_KEYS}


def classification_metrics(pred, label) -> dict[str, float]:
    """``{"acc2": accuracy, "f1": weighted F1}`` (UR-FUNNY: humour or not, Table 3).

    ``pred``: class ids (N,) / (N, 1), or scores (N, C) with C >= 2 whose argmax is the class;
    ``label``: class ids. With more than two classes ``acc2`` is plain accuracy.
    """
    p = _to_numpy(pred, "pred")
    if p.ndim == 2 and p.shape[1] >= 2:
        if p.shape[0] == 0:
            raise ValueError("pred: empty; metrics need at least one sample")
        if not np.all(np.isfinite(p)):
            raise ValueError("pred: contains NaN/inf scores")
        p = p.argmax(axis=1)                                            # (N, C) -> (N,)
    p, y = _pair(p, label)
    for name, a in (("pred", p), ("label", y)):
        if np.any(a != np.round(a)):
            hint = " (a single logit per sample? pass (N, C) scores or class ids)" if name == "pred" else ""
            raise ValueError(f"{name}: expected integer class ids{hint}")
    acc, f1 = _acc_f1(p.astype(np.int64), y.astype(np.int64))
    return {"acc2": acc, "f1": f1}


class Score(NamedTuple):
    """How the commands name a score of ``metrics.json`` (no name or ideal holds a "|": they go
    into markdown tables as they are)."""
    key: str                     # the metrics.json key
    name: str                    # plain name
    ideal: str                   # what a good value looks like


SCORES: dict[str, Score] = {s.key: s for s in (
    Score("mae", "test MAE", "lower is better"),
    Score("corr", "Corr", "higher is better"),
    Score("acc2_non0", "Acc2 (non0)", "higher is better"),
    Score("acc2", "Acc2", "higher is better"),
    Score("best_epoch", "best epoch", "the checkpoint kept (best on validation)"),
    # the disentanglement scores; M is the number of streams (1/3 for t, a, v)
    Score("common_modality_acc", "linear probe: modality from C_m", "chance, 1/M"),
    Score("private_modality_acc", "linear probe: modality from P_m", "1.0"),
    Score("common_factor_r2", "R² of the shared factor s from C_m", "near 1"),
    Score("private_factor_r2", "R² of the private factors z_m from P_m", "near 1"),
    Score("disc_prob_common", "D's p(true modality) on C_m", "~0.33 in the paper"),
    Score("disc_prob_private", "D's p(true modality) on P_m", "1.0"),
    Score("common_gap", "distance between one sample's C_m", "0; 1 = unrelated samples"),
)}

#: the disentanglement scores, in the order the tables show them
DISENTANGLEMENT = ("common_modality_acc", "private_modality_acc", "common_factor_r2", "private_factor_r2",
                   "disc_prob_common", "disc_prob_private", "common_gap")


def _rows(text: str, keys: tuple[str, ...], percent: tuple[str, ...]) -> dict[str, dict[str, float | None]]:
    """The paper's tables, typed from Tables 1-4: ``name | cell | ...`` rows, "-" for None; the
    ``percent`` keys are stored as fractions. Tables 1 and 2 do not say which Acc-2 reading (has0
    or non0) they report: it is stored as ``acc2`` (and ``f1``)."""
    out = {}
    for line in text.strip().splitlines():
        name, *cells = [c.strip() for c in line.split("|")]
        row = {}
        for key, cell in zip(keys, cells):
            value = None if cell == "-" else float(cell)
            row[key] = round(value / 100, 6) if (value is not None and key in percent) else value
        out[name] = row
    return out


_T1_T2_KEYS = ("acc7", "acc2", "f1", "mae", "corr")
_PCT = ("acc7", "acc2", "f1")

#: Table 1, CMU-MOSI: {"glove" | "bert": {model: {acc7, acc2, f1, mae, corr}}}.
TABLE1 = {
    "glove": _rows("""
TFN    | 32.1 | 73.9 | 73.4 | 0.970 | 0.633
LMF    | 32.8 | 76.4 | 75.7 | 0.912 | 0.668
RAVEN  | 33.2 | 78.0 | 76.6 | 0.915 | 0.691
MCTN   | 35.6 | 79.3 | 79.1 | 0.909 | 0.676
MFM    | 36.2 | 78.1 | 78.1 | 0.951 | 0.662
MulT   | 40.0 | 83.0 | 82.8 | 0.871 | 0.698
TCSP   | -    | 80.9 | 81.0 | 0.908 | 0.710
PMR    | 40.6 | 83.6 | 83.4 | -     | -
FDMER  | 42.1 | 84.2 | 83.9 | 0.845 | 0.732
""", _T1_T2_KEYS, _PCT),
    "bert": _rows("""
TFN    | 34.9 | 80.8 | 80.7 | 0.901 | 0.698
LMF    | 33.2 | 82.5 | 82.4 | 0.917 | 0.695
MFM    | 35.4 | 81.7 | 81.6 | 0.877 | 0.706
ICCN   | 39.0 | 83.0 | 83.0 | 0.860 | 0.710
MISA   | 42.3 | 83.4 | 83.6 | 0.783 | 0.761
FDMER  | 44.1 | 84.6 | 84.7 | 0.724 | 0.788
""", _T1_T2_KEYS, _PCT),
}

#: Table 2, CMU-MOSEI, the same layout as :data:`TABLE1`.
TABLE2 = {
    "glove": _rows("""
Graph-MFN | 45.0 | 76.9 | 77.0 | 0.710 | 0.540
RAVEN     | 50.0 | 79.1 | 79.5 | 0.614 | 0.662
MCTN      | 49.6 | 79.8 | 80.6 | 0.609 | 0.670
MulT      | 51.8 | 82.5 | 82.3 | 0.580 | 0.703
TCSP      | -    | 82.8 | 82.7 | 0.576 | 0.715
PMR       | 52.5 | 83.3 | 82.6 | -     | -
FDMER     | 53.8 | 83.9 | 83.8 | 0.568 | 0.736
""", _T1_T2_KEYS, _PCT),
    "bert": _rows("""
TFN    | 50.2 | 82.5 | 82.1 | 0.593 | 0.700
LMF    | 48.0 | 82.0 | 82.1 | 0.623 | 0.677
MFM    | 51.3 | 84.4 | 84.3 | 0.568 | 0.717
ICCN   | 51.6 | 84.2 | 84.2 | 0.565 | 0.713
MISA   | 52.2 | 85.5 | 85.3 | 0.555 | 0.756
FDMER  | 54.1 | 86.1 | 85.8 | 0.536 | 0.773
""", _T1_T2_KEYS, _PCT),
}

#: Table 3, UR_FUNNY Acc-2: {"glove" | "bert": {model (inputs): {"acc2": value}}}; C-MFN appears
#: three times, with the context, the target utterance, or both.
TABLE3 = {
    "glove": _rows("""
C-MFN (context)          | 58.45
C-MFN (target)           | 64.47
TFN                      | 64.71
LMF                      | 65.16
C-MFN (context + target) | 65.23
MISA                     | 68.60
FDMER                    | 70.55
""", ("acc2",), ("acc2",)),
    "bert": _rows("""
LMF    | 67.53
TFN    | 68.57
MISA   | 70.61
FDMER  | 71.87
""", ("acc2",), ("acc2",)),
}

_T4 = _rows("""
full             | 0.845 | 0.732 | 0.568 | 0.736 | 70.55
wo_text          | 1.275 | 0.345 | 0.896 | 0.378 | 57.58
wo_audio         | 0.883 | 0.726 | 0.604 | 0.727 | 70.43
wo_visual        | 0.925 | 0.714 | 0.639 | 0.713 | 69.81
wo_ami_ams       | 0.872 | 0.718 | 0.590 | 0.715 | 68.36
wo_con           | 0.867 | 0.723 | 0.577 | 0.728 | 69.87
wo_dis           | 0.854 | 0.728 | 0.571 | 0.731 | 70.28
ce_loss          | 0.852 | 0.725 | 0.582 | 0.724 | 68.95
wo_common        | 0.868 | 0.720 | 0.575 | 0.724 | 68.31
wo_private       | 0.885 | 0.714 | 0.582 | 0.712 | 69.27
non_disentangled | 0.862 | 0.725 | 0.571 | 0.727 | 69.68
wo_cmaf          | 0.871 | 0.712 | 0.606 | 0.710 | 67.33
wo_phase1        | 0.864 | 0.724 | 0.582 | 0.726 | 68.41
wo_phase2        | 0.855 | 0.728 | 0.570 | 0.729 | 69.75
addition         | 0.869 | 0.715 | 0.607 | 0.718 | 67.85
multiplication   | 0.854 | 0.727 | 0.579 | 0.726 | 68.96
""", ("mosi_mae", "mosi_corr", "mosei_mae", "mosei_corr", "ur_funny_acc2"), ("ur_funny_acc2",))

#: Table 4 (GloVe features), by ablation variant key (``fdmer_lite.ablations``):
#: {"mosi" | "mosei": {variant: {"mae", "corr"}}, "ur_funny": {variant: {"acc2"}}}.
TABLE4 = {
    "mosi": {k: {"mae": r["mosi_mae"], "corr": r["mosi_corr"]} for k, r in _T4.items()},
    "mosei": {k: {"mae": r["mosei_mae"], "corr": r["mosei_corr"]} for k, r in _T4.items()},
    "ur_funny": {k: {"acc2": r["ur_funny_acc2"]} for k, r in _T4.items()},
}
