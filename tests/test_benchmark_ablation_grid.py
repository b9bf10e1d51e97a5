"""benchmarks/ablation_grid.py: the parts that are not training."""

import math
import sys
from pathlib import Path

import pytest

from fdmer_lite.ablations import to_markdown

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import ablation_grid  # noqa: E402


def _row(variant, name, mae, corr):
    return {"variant": variant, "name": name, "n": 2, "seeds": "0 1", "note": "",
            "mae_mean": mae, "mae_std": 0.01, "corr_mean": corr, "corr_std": 0.02,
            "acc7_mean": 0.3, "acc7_std": 0.01, "acc2_has0_mean": 0.8, "acc2_has0_std": 0.01,
            "acc2_non0_mean": 0.81, "acc2_non0_std": 0.01, "f1_has0_mean": 0.79, "f1_has0_std": 0.01,
            "f1_non0_mean": 0.82, "f1_non0_std": 0.01}


def test_side_by_side_puts_the_paper_mosi_rows_beside_ours():
    rows = [_row("full", "FDMER (full)", 0.900, 0.710), _row("wo_text", "w/o Text", 1.400, 0.100)]
    md = ablation_grid.paper_side_by_side(rows, runs=[])
    full, wo_text = md.splitlines()[2:4]
    assert "| 0.845 | 0.732 |" in full                                   # the paper's full row (Table 4)
    cells = [c.strip() for c in wo_text.strip("|").split("|")]
    assert cells[2] == "1.400 ± 0.010" and cells[9] == "+0.500" and cells[10] == "-0.610"
    assert cells[6] == "81.0 ± 1.0" and cells[7] == "79.0 ± 1.0"             # Acc-2 non0, F1 has0 in %
    assert cells[12:15] == ["1.275", "0.345", f"{1.275 - 0.845:+.3f}"]


def test_text_features_only_for_the_real_text_audio_data(capsys):
    with pytest.raises(SystemExit) as err:
        ablation_grid.main(["--dataset", "synthetic", "--text-features", "minilm"])
    assert err.value.code == 2 and "--text-features" in capsys.readouterr().err


def test_no_train_refuses_a_grid_of_other_variants_or_seeds(tmp_path, capsys):
    from fdmer_lite.experiments import runstore
    out = tmp_path / "mosi-text-audio-minilm"
    out.mkdir()
    runstore.write_json(out / "ablation.json", {"variants": ["full", "wo_text"], "seeds": [0], "runs": []})
    with pytest.raises(SystemExit) as err:
        ablation_grid.main(["--dataset", "mosi-text-audio", "--text-features", "minilm", "--variants",
                            "wo_text,wo_dis", "--seeds", "0", "--out", str(tmp_path), "--no-train"])
    msg = capsys.readouterr().err.strip().splitlines()
    assert err.value.code == 2 and len(msg) == 1
    assert "ablation.json" in msg[0] and "'wo_dis'" in msg[0] and "found ['full', 'wo_text']" in msg[0]


def test_table_note_names_the_text_features():
    rows = [{"variant": "full", "name": "FDMER (full)", "n": 1, "seeds": "0", "note": "",
             "mae_mean": 0.9, "mae_std": math.nan}]
    base = {"task": "regression", "paper_dataset": "mosi", "seeds": [0], "dataset": "x"}
    minilm = to_markdown(rows, {**base, "data": {"name": "mosi-text-audio", "options": {"text_features": "minilm"}}})
    glove = to_markdown(rows, {**base, "data": {"name": "mosi-text-audio", "options": {}}})
    assert "all-MiniLM-L6-v2" in minilm and "GloVe 50-d" not in minilm
    assert "GloVe 50-d" in glove and "MiniLM" not in glove

