"""The paper's own numbers (Yang et al., ACM MM 2022), typed from its Tables 1-4.

Metrics are named as in ``metrics.json`` and given as fractions (the paper prints accuracies and
F1 in percent); ``None`` where the paper prints "-". Tables 1 and 2 report one Acc-2 and one F1
without saying which reading (has0 or non0) they are; :data:`TABLE1` and :data:`TABLE2` store
them as ``acc2`` and ``f1``. Table 3 reports Acc-2 on UR_FUNNY's binary humour labels.
"""

from __future__ import annotations


def _rows(text: str, keys: tuple[str, ...], percent: tuple[str, ...]) -> dict[str, dict[str, float | None]]:
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
