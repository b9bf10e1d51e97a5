"""Tests for fdmer_lite.metrics: hand-worked examples and an independent loop implementation."""

import math
import warnings

import numpy as np
import pytest
import torch

from fdmer_lite import cli, lessons, sweep
from fdmer_lite.ablations import _SCORE_COLUMNS
from fdmer_lite.metrics import DISENTANGLEMENT, REGRESSION_KEYS, SCORES, classification_metrics, regression_metrics

# Six samples, two of them with label 0 (samples 1 and 3).
LABEL = [2.6, 0.0, -1.0, 0.0, 1.4, -2.6]
PRED = [2.2, 0.3, -0.4, -0.2, -0.5, -3.5]


# ---------------------------------------------------------------- independent reference (loops)


def _ref_round(x):
    """Round half to even (numpy's rule), written out by hand."""
    f = math.floor(x)
    d = x - f
    if d > 0.5:
        return f + 1
    if d < 0.5:
        return f
    return f if f % 2 == 0 else f + 1


def _ref_weighted_f1(y_true, y_pred):
    classes = sorted(set(y_true) | set(y_pred))
    total = 0.0
    for c in classes:
        tp = sum(1 for t, p in zip(y_true, y_pred) if t == c and p == c)
        fp = sum(1 for t, p in zip(y_true, y_pred) if t != c and p == c)
        fn = sum(1 for t, p in zip(y_true, y_pred) if t == c and p != c)
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        total += f1 * sum(1 for t in y_true if t == c)
    return total / len(y_true)


def _ref_regression(pred, label):
    n = len(pred)
    mp, ml = sum(pred) / n, sum(label) / n
    cov = sum((p - mp) * (y - ml) for p, y in zip(pred, label))
    sp = math.sqrt(sum((p - mp) ** 2 for p in pred))
    sl = math.sqrt(sum((y - ml) ** 2 for y in label))

    def clip(x, lo, hi):
        return min(max(x, lo), hi)

    def acc_k(bound):
        hits = sum(1 for p, y in zip(pred, label)
                   if _ref_round(clip(p, -bound, bound)) == _ref_round(clip(y, -bound, bound)))
        return hits / n

    has0_t = [y >= 0 for y in label]
    has0_p = [p >= 0 for p in pred]
    nz = [i for i in range(n) if label[i] != 0]
    non0_t = [label[i] > 0 for i in nz]
    non0_p = [pred[i] > 0 for i in nz]
    return {
        "mae": sum(abs(p - y) for p, y in zip(pred, label)) / n,
        "corr": cov / (sp * sl),
        "acc7": acc_k(3),
        "acc5": acc_k(2),
        "acc2_has0": sum(a == b for a, b in zip(has0_t, has0_p)) / n,
        "f1_has0": _ref_weighted_f1(has0_t, has0_p),
        "acc2_non0": sum(a == b for a, b in zip(non0_t, non0_p)) / len(nz),
        "f1_non0": _ref_weighted_f1(non0_t, non0_p),
    }


# ---------------------------------------------------------------- regression: by hand


def test_regression_hand_worked_example():
    m = regression_metrics(np.array(PRED), np.array(LABEL))
    assert list(m) == list(REGRESSION_KEYS)
    assert all(type(v) is float for v in m.values())

    # MAE: |2.2-2.6| + |0.3-0| + |-0.4+1| + |-0.2-0| + |-0.5-1.4| + |-3.5+2.6|
    #    = 0.4 + 0.3 + 0.6 + 0.2 + 1.9 + 0.9 = 4.3  ->  4.3 / 6
    assert m["mae"] == pytest.approx(4.3 / 6)

    # Acc7: clip to [-3, 3] then round. pred -> [2, 0, -0, -0, -0 (round(-0.5) = -0), -3]
    #                                   label -> [3, 0, -1,  0,  1, -3]
    # hits: s1, s3, s5 -> 3 / 6 (s0 misses: 2 vs 3)
    assert m["acc7"] == pytest.approx(3 / 6)

    # Acc5: clip to [-2, 2] then round. pred -> [2, 0, 0, 0, 0, -2]; label -> [2, 0, -1, 0, 1, -2]
    # hits: s0, s1, s3, s5 -> 4 / 6 (clipping makes s0 a hit: 2.2 and 2.6 both become 2)
    assert m["acc5"] == pytest.approx(4 / 6)

    # has0, all six samples: label >= 0 -> [T, T, F, T, T, F]; pred >= 0 -> [T, T, F, F, F, F]
    # hits: s0, s1, s2, s5 -> 4 / 6
    # F1, class T (support 4): TP 2, FP 0, FN 2 -> P 1, R 1/2, F1 2/3
    #     class F (support 2): TP 2, FP 2, FN 0 -> P 1/2, R 1, F1 2/3
    #     weighted: (4 * 2/3 + 2 * 2/3) / 6 = 2/3
    assert m["acc2_has0"] == pytest.approx(4 / 6)
    assert m["f1_has0"] == pytest.approx(2 / 3)

    # non0 drops s1 and s3 (label 0): labels [2.6, -1, 1.4, -2.6], preds [2.2, -0.4, -0.5, -3.5]
    # label > 0 -> [T, F, T, F]; pred > 0 -> [T, F, F, F]; hits 3 / 4
    # F1, class T (support 2): TP 1, FP 0, FN 1 -> P 1, R 1/2, F1 2/3
    #     class F (support 2): TP 2, FP 1, FN 0 -> P 2/3, R 1, F1 4/5
    #     weighted: (2 * 2/3 + 2 * 4/5) / 4 = 11/15
    assert m["acc2_non0"] == pytest.approx(3 / 4)
    assert m["f1_non0"] == pytest.approx(11 / 15)
    assert m["acc2_has0"] != pytest.approx(m["acc2_non0"])   # the two readings differ

    # Corr: Pearson with means -2.1/6 (pred) and 0.4/6 (label); checked against the loop version.
    assert m["corr"] == pytest.approx(_ref_regression(PRED, LABEL)["corr"])


def test_zero_label_is_positive_in_has0_and_dropped_in_non0():
    # label 0 predicted 0.4: has0 calls both ">= 0" -> a hit (with "> 0" the label would be
    # negative and this a miss); non0 ignores the sample.
    # label 1 predicted -1: a miss in both readings.
    m = regression_metrics([0.4, -1.0], [0.0, 1.0])
    assert m["acc2_has0"] == 0.5          # 1 hit out of 2
    assert m["acc2_non0"] == 0.0          # only the second sample counts, and it is a miss


def test_rounding_is_half_to_even_as_numpy():
    # round(0.5) = 0 != round(1.0) = 1 -> miss; round(1.5) = 2 == round(2.0) -> hit;
    # round(2.5) = 2 != round(3.0) = 3 -> miss. Acc7 = 1/3.
    m = regression_metrics([0.5, 1.5, 2.5], [1.0, 2.0, 3.0])
    assert m["acc7"] == pytest.approx(1 / 3)


def test_regression_matches_loop_reference_on_random_data():
    rng = np.random.default_rng(0)
    label = np.round(rng.uniform(-3, 3, size=200) * 3) / 3      # MOSI-like thirds, many zeros
    label[:25] = 0.0
    pred = np.clip(label + rng.normal(0, 1.0, size=200), -3.5, 3.5)
    ours = regression_metrics(pred, label)
    ref = _ref_regression(pred.tolist(), label.tolist())
    for key in REGRESSION_KEYS:
        assert ours[key] == pytest.approx(ref[key], abs=1e-12), key


def test_accepts_lists_and_torch_column_tensors():
    expected = regression_metrics(np.array(PRED), np.array(LABEL))
    from_list = regression_metrics(PRED, LABEL)
    from_torch = regression_metrics(torch.tensor(PRED).view(-1, 1), torch.tensor(LABEL).view(-1, 1))
    assert from_list == expected
    for key in REGRESSION_KEYS:      # float32 tensors: equal up to float32 precision
        assert from_torch[key] == pytest.approx(expected[key], abs=1e-6)


def test_constant_prediction_gives_zero_corr_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = regression_metrics(np.zeros(4), np.array([1.0, -1.0, 2.0, 0.0]))
    assert m["corr"] == 0.0
    assert m["mae"] == pytest.approx(1.0)      # (1 + 1 + 2 + 0) / 4


def test_all_zero_labels_give_nan_non0():
    m = regression_metrics([0.1, -0.1], [0.0, 0.0])
    assert math.isnan(m["acc2_non0"]) and math.isnan(m["f1_non0"])
    assert m["acc2_has0"] == 0.5


@pytest.mark.parametrize(
    "pred, label, match",
    [
        ([], [], "empty"),
        ([1.0, 2.0], [1.0], "length mismatch: pred has 2 samples, label has 1"),
        ([1.0, float("nan")], [1.0, 2.0], "^pred: contains 1 NaN"),
        ([1.0, 2.0], [float("inf"), 2.0], "^label: contains 1 NaN/inf"),
        (np.zeros((3, 2)), np.zeros(3), r"pred: expected shape \(N,\) or \(N, 1\)"),
    ],
)
def test_regression_errors(pred, label, match):
    with pytest.raises(ValueError, match=match):
        regression_metrics(pred, label)


# ---------------------------------------------------------------- classification


def test_classification_ids_and_logits():
    label = [0, 0, 0, 0, 1, 1]
    pred = [0, 0, 0, 1, 1, 1]
    # acc: 5 hits of 6.
    # class 0 (support 4): TP 3, FP 0, FN 1 -> P 1, R 3/4, F1 6/7
    # class 1 (support 2): TP 2, FP 1, FN 0 -> P 2/3, R 1, F1 4/5
    # weighted: (4 * 6/7 + 2 * 4/5) / 6 = 88/105
    expected = {"acc2": 5 / 6, "f1": 88 / 105}
    assert _ref_weighted_f1(label, pred) == pytest.approx(88 / 105)

    m = classification_metrics(np.array(pred), np.array(label))
    assert m == pytest.approx(expected)
    assert all(type(v) is float for v in m.values())

    logits = np.array([[2.0, -1.0] if p == 0 else [-0.3, 0.4] for p in pred])   # (6, 2)
    assert classification_metrics(logits, label) == pytest.approx(expected)
    probs = torch.softmax(torch.tensor(logits), dim=1)
    assert classification_metrics(probs, torch.tensor(label).view(-1, 1)) == pytest.approx(expected)


def test_classification_errors():
    with pytest.raises(ValueError, match="pred: expected integer class ids"):
        classification_metrics(np.array([[0.3], [0.8]]), [0, 1])      # single logit per sample
    with pytest.raises(ValueError, match="length mismatch"):
        classification_metrics(np.zeros((3, 2)), [0, 1])
    with pytest.raises(ValueError, match="empty"):
        classification_metrics(np.zeros((0, 2)), [])
    with pytest.raises(ValueError, match="^pred: contains NaN"):
        classification_metrics(np.array([[0.1, np.nan], [0.2, 0.3]]), [0, 1])


# ---- the scores' plain names: The names of the scores (``metrics.SCORES``): every key a command shows is in it, and it fits a markdown table.


def test_every_shown_key_is_in_the_table():
    shown = set(DISENTANGLEMENT) | set(sweep.MATRIX_KEYS) | set(sweep.SCORE_KEYS) | set(lessons.CONTRAST_KEYS)
    shown |= {c[0] for c in _SCORE_COLUMNS}
    assert shown <= set(SCORES)
    assert {"mae", "corr", "acc2_non0"} <= set(REGRESSION_KEYS)


def test_names_and_ideals_fit_a_markdown_table():
    for s in SCORES.values():
        assert s.key and s.name and s.ideal and "|" not in s.name + s.ideal, s


def test_the_demo_table_names_each_score_once():
    m = {"mae": 1.0, "bayes_mae": 0.5, "ridge_mae": 1.2, "mean_mae": 1.5, **{k: 0.5 for k in DISENTANGLEMENT}}
    _, scores = cli.demo_rows(m)
    assert [r[1] for r in scores] == list(DISENTANGLEMENT)
    assert [r[0] for r in scores] == [SCORES[k].name for k in DISENTANGLEMENT]
