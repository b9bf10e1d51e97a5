"""fdmer_lite.lessons, the exercises' checks: for every check, a right answer (worked out here by hand) passes and a
wrong one fails, with one printed line each."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from fdmer_lite import lessons

# the validation MAE is lowest at epoch 2, the validation task loss at epoch 3
HISTORY = [{"epoch": e, "valid": {"task": loss}, "valid_metrics": {"mae": mae}}
           for e, loss, mae in ((1, 0.9, 0.8), (2, 0.7, 0.5), (3, 0.6, 0.6))]
REP = SimpleNamespace(modalities="ta", disc_prob_common={
    "t": np.array([[0.9, 0.1], [0.2, 0.8]]),          # right, wrong
    "a": np.array([[0.3, 0.7], [0.6, 0.4]])})         # right, wrong -> 2 of 4

# exercise: (right answer, wrong answer, context); the right ones by hand, not by the module
CASES = {
    "1.1": ([-1.0, -1.0, 1.0, -1.0], [1.0, 1.0, 1.0, -1.0], {}),   # has0 0.5 vs non0 1.0
    "1.2": ({0.5: 0.40, 1.0: 0.79}, {0.5: 0.40, 1.0: 0.40}, {}),   # sqrt(2/pi) = 0.798
    "2.1": ([math.exp(-15 / 2 ** 0.5) / (2 * math.exp(-15 / 2 ** 0.5) + 1)] * 2
            + [1 / (2 * math.exp(-15 / 2 ** 0.5) + 1)], [1 / 3, 1 / 3, 1 / 3], {}),
    "2.2": ([47, 1], [1, 2, 47], {}),
    "2.3": (16.3, 1.0, {}),
    "3.1": (2.05, 1.0, {}),
    "3.2": (0.003, 2.0, {}),
    "3.3": (0.0, 0.5, {}),
    "4.1": ([math.e ** 2 / (math.e ** 2 + 1 + math.e ** -1) - 1, 1 / (math.e ** 2 + 1 + math.e ** -1),
             math.e ** -1 / (math.e ** 2 + 1 + math.e ** -1)], [0.0, 0.0, 0.0], {}),
    "4.2": (([1 / 3] * 3, math.log(3)), ([1.0, 0.0, 0.0], 0.0), {}),
    "5.1": ((1024 * 1024 + 1024, 256 * 256 + 256), (1024 * 1024, 256 * 256), {}),
    "6.2": (2, 3, {"history": HISTORY}),
    "7.1": (0.5, 0.25, {"rep": REP}),
}


def test_every_check_has_a_case():
    assert set(CASES) == set(lessons.CHECKS)


@pytest.mark.parametrize("key", sorted(CASES))
def test_right_answer_passes_and_wrong_one_fails(key, capsys):
    right, wrong, context = CASES[key]
    assert lessons.check(key, right, **context) is True
    assert capsys.readouterr().out.startswith(f"✓ {key}: ")
    assert lessons.check(key, wrong, **context) is False
    out = capsys.readouterr().out
    assert out.startswith(f"✗ {key}: ") and out.count("\n") == 1


def test_ids_with_a_leading_zero_and_bad_input(capsys):
    assert lessons.check("02.2", [1, 47])
    assert lessons.check("2.1", "not numbers") is False            # a clear ✗, not a traceback
    assert "could not read the answer" in capsys.readouterr().out
    with pytest.raises(ValueError, match="no check for exercise '9.9'"):
        lessons.check("9.9", 1)
    with pytest.raises(TypeError, match="history"):
        lessons.check("6.2", 2)                                    # the run is needed


def test_the_kept_epoch_check_follows_the_runs_criterion(capsys):
    assert lessons.check("6.2", 3, history=HISTORY, criterion="task_loss")
    assert not lessons.check("6.2", 2, history=HISTORY, criterion="task_loss")
    capsys.readouterr()
    assert not lessons.check("6.2", 2, history=HISTORY, criterion="MAE")
    assert "criterion must be 'mae' or 'task_loss'" in capsys.readouterr().out


def test_the_bayes_floor_check_agrees_with_a_simulated_floor():
    rng = np.random.default_rng(0)
    floors = {s: float(np.abs(s * rng.standard_normal(20000)).mean()) for s in (0.2, 1.0)}
    assert lessons.check("1.2", floors)
