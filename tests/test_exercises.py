"""fdmer_lite.exercises: for every check, a right answer (worked out here by hand) passes and a
wrong one fails with a hint that does not give the answer, one printed line each; and the
``%%solution`` cells run only when solutions are switched on."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from fdmer_lite import exercises
from fdmer_lite.errors import DataError

# the validation MAE is lowest at epoch 2, the validation task loss at epoch 3
HISTORY = [{"epoch": e, "valid": {"task": loss}, "valid_metrics": {"mae": mae}}
           for e, loss, mae in ((1, 0.9, 0.8), (2, 0.7, 0.5), (3, 0.6, 0.6))]
REP = SimpleNamespace(modalities="ta", disc_prob_common={
    "t": np.array([[0.9, 0.1], [0.2, 0.8]]),          # right, wrong; mean (0.55, 0.45): names t
    "a": np.array([[0.3, 0.7], [0.6, 0.4]])})         # right, wrong; mean (0.45, 0.55): names a
NAMES = ("C_t", "P_t", "C_a", "P_a")
PSI_ON = SimpleNamespace(psi=np.array([[0.5, 0.1, 0.2, 0.2]]), psi_names=NAMES)    # 0.7 on C
PSI_OFF = SimpleNamespace(psi=np.array([[0.3, 0.2, 0.2, 0.3]]), psi_names=NAMES)   # 0.5 on C
FULL = {"mae_mean": 0.5, "mae_std": 0.25, "common_modality_acc_mean": 0.5, "common_modality_acc_std": 0.3, "n": 9}
ROW = {"mae_mean": 1.0, "mae_std": 0.5, "common_modality_acc_mean": 0.75, "common_modality_acc_std": 0.4, "n": 4}


def _run(folder, loss=None, **fields):
    """A finished run as the checks read it: metrics, history and (when ``loss``) its config.json."""
    folder.mkdir(parents=True, exist_ok=True)
    if loss is not None:
        (folder / "config.json").write_text(json.dumps({"config": {"loss": loss}}))
    return SimpleNamespace(path=folder, **fields)


def _separated(seed):
    """Representations whose modality any probe reads: t around +3, a around -3, v around (3, -3)."""
    rng = np.random.default_rng(seed)
    centres = {"t": (3.0, 3.0), "a": (-3.0, -3.0), "v": (3.0, -3.0)}
    return {m: rng.normal(size=(40, 2)) + c for m, c in centres.items()}


def cases(tmp):
    """exercise: (right answer, wrong answer, context); the right ones by hand, not by the module."""
    ideal, labels = [0.4, 1.6, -2.2], [0.6, 1.4, -2.2]         # rounded: (0, 2, -2) vs (1, 1, -2)
    before = np.full((2, 4), 0.25)
    after = np.array([[0.3, 0.1, 0.3, 0.3], [0.2, 0.3, 0.25, 0.25]])   # slot 1: 0.25 -> 0.2
    base = _run(tmp / "base", metrics={"mae": 0.75}, history=[{"train": {"ami": 0.5}}])
    heavy = _run(tmp / "heavy", {"beta": 0.5}, metrics={"mae": 1.0}, history=[{"train": {"ami": 1.5}}])
    align = {"adversary": "confusion", "align_weight": 10.0, "align_form": "mean"}
    path = "/data/unaligned_50.pkl"
    return {
        "1.1": ([-1.0, -1.0, 1.0, -1.0], [1.0, 1.0, 1.0, -1.0], {}),   # has0 0.5 vs non0 1.0
        "1.2": ({0.5: 0.40, 1.0: 0.79}, {0.5: 0.40, 1.0: 0.40}, {}),   # sqrt(2/pi) = 0.798
        "1.3": (2 / 3, 1 / 3, {"ideal": ideal, "labels": labels}),
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
        "4.3": ((False, True), (True, True), {}),
        "5.1": ((1024 * 1024 + 1024, 256 * 256 + 256), (1024 * 1024, 256 * 256), {}),
        "5.2": (-0.05, 0.05, {"before": before, "after": after}),
        "6.1": ((0.25, 1.0), (-0.25, 1.0), {"heavy": heavy, "base": base}),
        "6.2": (2, 3, {"history": HISTORY}),
        "6.3": (77.0, 7.7, {"history": [{"seconds": 2.0}, {"seconds": 4.0}], "n_train": 100}),  # 0.03 s x 1284 x 2
        "7.1": (0.5, 0.25, {"rep": REP}),
        "7.2": ({"t": "t", "a": "a"}, {"t": "a", "a": "t"}, {"rep": REP}),
        "7.3": (-0.2, 0.2, {"with_losses": PSI_ON, "without": PSI_OFF}),
        "8.1": (DataError(path, "train.regression_labels", "finite labels", "1 NaN/inf"),
                DataError(path, "train.vision", "a 3-d array", "shape (2,)"), {"path": path}),
        "8.2": (0.05, -0.05, {"text_only": SimpleNamespace(metrics={"mae": 0.95}),
                              "both": SimpleNamespace(metrics={"mae": 0.90})}),
        "9.1": ({"x"}, {"mae", "x"}, {"off": {"mae": 1.0, "x": 0.5, "s": "a"},     # mae moves 5 %, x 29 %
                                      "paper": {"mae": 1.05, "x": 0.7, "s": "b"}, "keys": ["mae", "x", "s"]}),
        "9.2": ({"t": 0.55, "a": 0.55}, {"t": 0.45, "a": 0.45}, {"rep": REP}),
        "10.1": (5, 4, {"full": FULL, "row": ROW}),                    # 4 (1/16 + 1/4) / (1/2)^2 = 5
        "10.2": ((0.25, math.sqrt(0.09 / 9 + 0.16 / 4)), (0.25, 0.05), {"full": FULL, "row": ROW}),
        "11.1": (True, False, {"train": _separated(0), "test": _separated(1), "mods": "tav"}),
        "11.2": (7 / 12, 0.5, {"common": {"t": np.array([[1.0, 0.0], [1.0, 2.0]]),    # 2/3 and 1/2
                                          "a": np.array([[0.0, 0.0], [2.0, 0.0]])}, "mods": "ta"}),
        "11.3": (_run(tmp / "aligned", align), _run(tmp / "other", {**align, "align_form": "whiten"}), {}),
    }


# what a hint must not print: the expected answer, as the ✓ line or a solution would write it
NOT_IN_HINT = {"1.3": ["0.667"], "2.2": ["[1, 47]"], "2.3": ["16"], "5.2": ["-0.05"], "6.1": ["+0.25"],
               "6.2": ["epoch 2 "], "6.3": ["77"], "7.1": ["0.5"], "7.2": ["'t': 't'"], "7.3": ["-0.2"],
               "8.2": ["+0.05"], "9.1": ["['x']"], "9.2": ["0.55"], "10.1": ["5 seeds"],
               "10.2": ["0.2236"], "11.2": ["0.583"]}


def test_every_exercise_of_the_tutorials_has_a_check_and_every_check_a_case(tmp_path):
    import re
    from pathlib import Path

    text = "".join(p.read_text() for p in sorted((Path(__file__).parents[1] / "tutorials").glob("*.py")))
    named = set(re.findall(r"### Exercise (\d+\.\d+):", text))
    assert len(named) == 29 and named == set(exercises.CHECKS) == set(cases(tmp_path))


@pytest.mark.parametrize("key", sorted(exercises.CHECKS))
def test_right_answer_passes_and_wrong_one_fails_with_a_hint(key, capsys, tmp_path):
    right, wrong, context = cases(tmp_path)[key]
    assert exercises.check(key, right, **context) is True
    assert capsys.readouterr().out.startswith(f"✓ {key}: ")
    assert exercises.check(key, wrong, **context) is False
    out = capsys.readouterr().out
    assert out.startswith(f"✗ {key}: ") and out.count("\n") == 1 and len(out) > 40
    for answer in NOT_IN_HINT.get(key, []):
        assert answer not in out, f"the hint of {key} gives the answer {answer!r}: {out}"


def test_ids_with_a_leading_zero_and_bad_input(capsys):
    assert exercises.check("02.2", [1, 47])
    assert exercises.check("2.1", "not numbers") is False            # a clear ✗, not a traceback
    assert "could not read the answer" in capsys.readouterr().out
    with pytest.raises(ValueError, match="no check for exercise '9.9'"):
        exercises.check("9.9", 1)
    with pytest.raises(TypeError, match="history"):
        exercises.check("6.2", 2)                                    # the run is needed


def test_the_kept_epoch_check_follows_the_runs_criterion(capsys):
    assert exercises.check("6.2", 3, history=HISTORY, criterion="task_loss")
    assert not exercises.check("6.2", 2, history=HISTORY, criterion="task_loss")
    capsys.readouterr()
    assert not exercises.check("6.2", 2, history=HISTORY, criterion="MAE")
    assert "criterion must be 'mae' or 'task_loss'" in capsys.readouterr().out


def test_a_heavy_run_trained_with_another_beta_is_refused(tmp_path, capsys):
    base = _run(tmp_path / "b", metrics={"mae": 0.75}, history=[{"train": {"ami": 0.5}}])
    light = _run(tmp_path / "l", {"beta": 0.02}, metrics={"mae": 1.0}, history=[{"train": {"ami": 1.5}}])
    assert not exercises.check("6.1", (0.25, 1.0), heavy=light, base=base)
    assert "trained with beta = 0.02" in capsys.readouterr().out


def test_the_bayes_floor_check_agrees_with_a_simulated_floor():
    rng = np.random.default_rng(0)
    floors = {s: float(np.abs(s * rng.standard_normal(20000)).mean()) for s in (0.2, 1.0)}
    assert exercises.check("1.2", floors)


def test_the_numpy_neighbour_probe_agrees_with_scikit_learns(tmp_path):
    from fdmer_lite.analysis import modality_probe_accuracy

    rng = np.random.default_rng(3)
    train = {m: rng.normal(size=(60, 4)) + 0.7 * i for i, m in enumerate("tav")}
    test = {m: rng.normal(size=(30, 4)) + 0.7 * i for i, m in enumerate("tav")}
    ours = exercises._knn_accuracy(train, test, "tav")
    assert abs(ours - modality_probe_accuracy(train, test, "tav", kind="knn")) < 0.03
    assert 0.4 < ours < 0.95                                         # neither chance nor trivial


def test_solution_cells_run_only_when_switched_on(monkeypatch, capsys):
    code = "# Solution 1.1: a comment\nx = 40\nx + 2\n"
    monkeypatch.delenv(exercises.SOLUTIONS_ENV, raising=False)
    monkeypatch.setattr(exercises, "_SHOWN", None)
    space = {}
    assert exercises.run_solution(code, space) is False and "x" not in space
    assert "Solution 1.1 is hidden and was not run" in capsys.readouterr().out
    monkeypatch.setenv(exercises.SOLUTIONS_ENV, "1")                # what the notebook tests set
    assert exercises.run_solution(code, space) is True and space["x"] == 40
    assert capsys.readouterr().out.strip() == "42"                   # the last expression is shown
    exercises.show_solutions(False)                                   # the notebook's switch wins
    assert exercises.run_solution(code, {}) is False
    exercises.show_solutions(True)
    monkeypatch.setenv(exercises.SOLUTIONS_ENV, "0")
    assert exercises.run_solution(code, {}) is True
    with pytest.raises(AssertionError):                               # a failing solution fails its cell
        exercises.run_solution("# Solution 9.9\nassert 1 == 2\n", {}, shown=True)
    monkeypatch.setattr(exercises, "_SHOWN", None)
    monkeypatch.setenv(exercises.SOLUTIONS_ENV, "maybe")
    with pytest.raises(ValueError, match="FDMER_LITE_SOLUTIONS: expected 1 or 0"):
        exercises.solutions_shown()


def test_the_cell_magic_is_registered_in_ipython(monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    exercises.load_ipython_extension(shell)
    monkeypatch.setattr(exercises, "_SHOWN", True)
    shell.run_cell("%%solution\n# Solution 1.1\ny_magic = 3\n", store_history=False).raise_error()
    assert shell.user_ns["y_magic"] == 3
    monkeypatch.setattr(exercises, "_SHOWN", False)
    shell.run_cell("%%solution\n# Solution 1.1\ny_magic = 4\n", store_history=False).raise_error()
    assert shell.user_ns["y_magic"] == 3
