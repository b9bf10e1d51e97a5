"""The names of the scores the commands show: key, plain name, what a good value looks like.

Every metric (``metrics``) and disentanglement score (``analysis.disentanglement_scores``) that
the demo, the beta/gamma explorer, the sweep's tables, the ablation table and the bundled
contrast print is named here (the scores themselves are computed elsewhere), by its ``metrics.json`` key; each of them chooses its keys. This
module imports nothing, so that the command line can name the scores without importing torch.
"""

from __future__ import annotations

from typing import NamedTuple


class Score(NamedTuple):
    key: str                     # the metrics.json key
    name: str                    # plain name
    ideal: str                   # what a good value looks like


# No name or ideal holds a "|": they go into markdown tables as they are.
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
