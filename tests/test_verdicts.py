"""fdmer_lite.verdicts: each verdict function meets every outcome it can give, and its sentence
quotes the paper, says holds / does not hold / too short to tell and carries the numbers read."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from fdmer_lite import verdicts as V

#: the paper's text, where the checkout sits beside it (not shipped with the package)
PAPER = Path(__file__).resolve().parents[3] / "shared" / "paper" / "000_1ef8efc0e83e884a.txt"


def _plain(text: str) -> str:
    """The paper's text with its LaTeX markup written out as the claims write it."""
    text = re.sub(r"\\mathcal\{L\}_\{(\w+)\}", r"L_\1", text)          # \mathcal{L}_{con} -> L_con
    text = text.replace("$", "").replace("\\{", "").replace("\\}", "")
    text = " ".join(text.split())
    return text.replace("( ", "(").replace(" )", ")")


# ------------------------------------------------------------------ the claims

@pytest.mark.parametrize("key, words", [
    ("figure2", "are blended together and gradually blurred"),
    ("figure3", "decrease almost monotonously and converge smoothly"),
    ("figure4a", "are centered around 0.33"),
    ("figure4b", "adaptively assign larger attention values to meaningful representations"),
])
def test_each_claim_keeps_the_papers_words(key, words):
    assert words in V.CLAIMS[key]


@pytest.mark.skipif(not PAPER.is_file(), reason="the paper's text is not beside this checkout")
@pytest.mark.parametrize("key", sorted(V.CLAIMS))
def test_each_claim_is_in_the_paper(key):
    assert V.CLAIMS[key] in " ".join(_plain(PAPER.read_text()).split())


# ------------------------------------------------------------------ Figure 2

def test_figure2_holds_when_the_probe_is_at_chance():
    v = V.figure2(0.36, 0.8, epochs=24)
    assert v.outcome == "holds"
    assert V.CLAIMS["figure2"] in v.sentence and ": holds (" in v.sentence
    assert "0.36" in v.sentence and "0.80" in v.sentence


def test_figure2_does_not_hold_when_the_probe_reads_the_modality():
    v = V.figure2(1.0, 9.78, epochs=24, gap_without=2.6, probe_acc_without=1.0)
    assert v.outcome == "does not hold"
    assert ": does not hold (" in v.sentence and "1.00" in v.sentence and "9.78" in v.sentence
    assert "sit no closer than without the losses (common_gap 2.60); probe without the losses 1.00" in v.sentence


def test_figure2_says_closer_when_the_losses_lower_the_gap():
    v = V.figure2(1.0, 2.0, epochs=24, gap_without=2.6)
    assert "sit closer together than without the losses" in v.sentence
    v = V.figure2(1.0, 2.0, epochs=24, gap_without=2.6, probe_acc_without=0.9, without="without L_ami + L_ams")
    assert "closer together than without L_ami + L_ams (common_gap 2.60); probe without L_ami + L_ams 0.90" in v.sentence


def test_figure2_too_short():
    v = V.figure2(0.34, 0.5, epochs=3)
    assert v.outcome == "too short to tell"
    assert "too short to tell: 3 epochs" in v.sentence and "holds" in v.sentence


# ------------------------------------------------------------------ Figure 3

def _brute_jumps(curve, after=5, factor=2.0):
    """An independent loop: the epochs after `after` whose value exceeds factor x min(before)."""
    return [i + 1 for i in range(len(curve)) if i + 1 > after and i > 0 and curve[i] > factor * min(curve[:i])]


def test_jumps_agrees_with_a_plain_loop():
    rng = np.random.default_rng(0)
    for _ in range(50):
        curve = list(rng.uniform(0.1, 3.0, size=20))
        assert [j[0] for j in V.jumps(curve)] == _brute_jumps(curve)


def test_figure3_monotone():
    curve = [3.0, 2.0, 1.5, 1.2, 1.1, 1.0, 0.95, 0.97, 0.9, 0.85, 0.8, 0.82]
    v = V.figure3(curve, [1.0, 0.8, 0.7, 0.6, 0.55, 0.5, 0.5, 0.49, 0.48, 0.47, 0.46, 0.45], best_epoch=11)
    assert v.outcome == "monotone"
    assert V.CLAIMS["figure3"] in v.sentence and ": holds (" in v.sentence
    assert "L_all from 3 to 0.82" in v.sentence and "kept epoch 11 of 12" in v.sentence


def test_figure3_jump_names_the_epoch_and_the_kept_one():
    curve = [3.0, 2.0, 1.5, 1.2, 1.1, 1.0, 0.9, 0.9, 4.0, 4.2, 3.9, 4.1]     # jump at epoch 9
    v = V.figure3(curve, best_epoch=8)
    assert v.outcome == "jump"
    assert ": does not hold (" in v.sentence
    assert "L_all jumps at epoch 9 to 4, over 2 times its lowest so far 0.9 (and 3 later epochs)" in v.sentence
    assert "kept epoch 8 of 12, before the jump" in v.sentence


def test_figure3_a_rise_of_less_than_twice_is_no_jump():
    curve = [3.0, 2.0, 1.5, 1.2, 1.1, 1.0, 1.9, 1.8, 1.0, 0.9, 0.9, 0.8]
    assert V.figure3(curve).outcome == "monotone"


def test_figure3_jump_in_the_constraint_loss_only():
    curve = [3.0, 2.0, 1.5, 1.2, 1.1, 1.0, 0.9, 0.9, 0.8, 0.8, 0.7, 0.7]
    con = [1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.3, 1.0, 1.1, 1.0, 1.0, 1.0]
    v = V.figure3(curve, con)
    assert v.outcome == "jump" and "L_con + L_dis jumps at epoch 8" in v.sentence


def test_figure3_no_decrease():
    curve = [1.0, 1.1, 1.2, 1.3, 1.35, 1.4, 1.45, 1.5, 1.55, 1.6, 1.65, 1.7]
    v = V.figure3(curve)
    assert v.outcome == "no decrease" and "not below its start 1" in v.sentence


def test_figure3_too_short():
    v = V.figure3([3.0, 2.0, 1.0])
    assert v.outcome == "too short to tell" and "3 epochs" in v.sentence
    v = V.figure3([3.0, 2.0, 1.5, 1.2, 1.1, 1.0, 4.0])                    # 7 epochs, a jump
    assert v.outcome == "too short to tell" and "jumps at epoch 7" in v.sentence


# ------------------------------------------------------------------ Figure 4a

def test_modality_box_cases():
    rng = np.random.default_rng(1)
    assert V.modality_box(rng.uniform(0.25, 0.4, 500))[0] == "fooled"
    assert V.modality_box(rng.uniform(0.0, 0.05, 500))[0] == "confidently wrong"
    assert V.modality_box(rng.uniform(0.9, 1.0, 500))[0] == "not fooled"
    half = np.r_[np.zeros(250), np.ones(250), [1 / 3]]                      # mean 0.5, median 1/3
    assert V.modality_box(half)[0] == "mixed"


@pytest.mark.parametrize("low, high, outcome, word", [
    (0.28, 0.38, "fooled", "holds"),
    (0.0, 0.03, "confidently wrong", "does not hold"),
    (0.95, 1.0, "not fooled", "does not hold"),
])
def test_figure4a_one_outcome_on_every_modality(low, high, outcome, word):
    rng = np.random.default_rng(2)
    p = {m: rng.uniform(low, high, 300) for m in "tav"}
    v = V.figure4a(p, epochs=24)
    assert v.outcome == outcome
    assert V.CLAIMS["figure4a"] in v.sentence and f": {word} (" in v.sentence
    assert all(f"C_{m} {outcome} (median" in v.sentence for m in "tav")


def test_figure4a_does_not_let_a_mean_hide_boxes_at_0_and_1():
    p = {"t": np.ones(100), "a": np.zeros(100), "v": np.zeros(100)}        # the mean is 1/3
    assert abs(np.mean([x.mean() for x in p.values()]) - 1 / 3) < 1e-12
    v = V.figure4a(p, epochs=24)
    assert v.outcome == "different per modality" and ": does not hold (" in v.sentence
    assert "C_t not fooled (median 1.00)" in v.sentence and "C_a confidently wrong (median 0.00)" in v.sentence


def test_figure4a_takes_means_and_says_too_short():
    v = V.figure4a({"t": 0.33, "a": 0.35, "v": 0.30}, epochs=3)
    assert v.outcome == "too short to tell" and "holds" in v.sentence


def test_p_true_by_modality_picks_the_true_column():
    probs = {m: np.eye(3)[[k, (k + 1) % 3]] for k, m in enumerate("tav")}   # (2, 3) each
    got = V.p_true_by_modality(probs, "tav")
    assert [got[m].tolist() for m in "tav"] == [[1.0, 0.0]] * 3


# ------------------------------------------------------------------ Figure 4b

@pytest.mark.parametrize("before, after, outcome, word, moved", [
    (0.114, 0.30, "up", "holds", "rises by 0.186"),
    (0.114, 0.010, "down", "does not hold", "falls by 0.104"),
    (0.114, 0.120, "flat", "does not hold", "stays within 0.02 (change +0.006)"),
])
def test_figure4b_direction_and_size(before, after, outcome, word, moved):
    v = V.figure4b(before, after, epochs=24)
    assert v.outcome == outcome
    assert V.CLAIMS["figure4b"] in v.sentence and f": {word}: the mean psi on C {moved}" in v.sentence
    assert f"emotion-like ({before:.3f}) to humor-like ({after:.3f})" in v.sentence


def test_figure4b_too_short():
    v = V.figure4b(0.2, 0.4, epochs=2)
    assert v.outcome == "too short to tell" and "rises by 0.200" in v.sentence


# ------------------------------------------------------------------ runs

def test_kept_epoch():
    assert V.kept_epoch(1, 20).outcome == "first"
    assert V.kept_epoch(20, 20).outcome == "last"
    v = V.kept_epoch(15, 20)
    assert v.outcome == "middle" and "15 of 20" in v.sentence


def test_seed_spread():
    runs = {f"s{i}": {"mae": m, "disc_prob_common": d, "jump": j}
            for i, (m, d, j) in enumerate([(0.46, 0.30, False), (0.48, 0.40, True), (0.47, 0.35, False)])}
    v = V.seed_spread(runs)
    mae = np.array([0.46, 0.48, 0.47])
    assert v.outcome == "same regime"
    assert f"{mae.mean():.3f} ± {np.std(mae, ddof=1):.3f}" in v.sentence and "jumps in 1 of 3" in v.sentence
    runs["s3"] = {"mae": 0.5, "disc_prob_common": 1.0, "jump": False}
    v = V.seed_spread(runs)
    assert v.outcome == "different regimes" and "from 0.30 to 1.00" in v.sentence
    assert V.seed_spread({"s0": runs["s0"]}).outcome == "too few runs"


# ------------------------------------------------------------------ benchmarks/verdict_lines.py

def test_verdict_lines_reads_run_folders(tmp_path, capsys):
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location(
        "verdict_lines", Path(__file__).resolve().parents[1] / "benchmarks" / "verdict_lines.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    steady = [3.0, 2.0, 1.5, 1.2, 1.1, 1.0, 0.95, 0.9, 0.85, 0.8, 0.78, 0.75]
    jumpy = steady[:8] + [4.0, 4.1, 4.0, 3.9]
    for seed, (name, curve) in enumerate((("emotion-paper", steady), ("emotion-seed1", jumpy))):
        folder = tmp_path / name
        folder.mkdir()
        history = [{"epoch": i + 1, "train": {"all": v, "con": v / 10, "dis": 0.0}} for i, v in enumerate(curve)]
        (folder / "history.json").write_text(json.dumps(history))
        (folder / "metrics.json").write_text(json.dumps({"mae": 0.5 + seed / 10, "disc_prob_common": 0.3,
                                                         "best_epoch": 8}))
    (tmp_path / "not-a-run").mkdir()
    assert module.main(["--root", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "**emotion-paper**: Figure 3" in text and ": holds (" in text
    assert "**emotion-seed1**: Figure 3" in text and "L_all jumps at epoch 9" in text
    assert "not-a-run" not in text
    assert "2 seeds: test MAE 0.550 ± 0.071" in text and "L_all jumps in 1 of 2" in text
    assert module.main(["--root", str(tmp_path / "missing")]) == 2
