"""CMU-MultimodalSDK .csd files, written with h5py in the SDK's own layout."""

import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from fdmer_lite.data import load_dataset
from fdmer_lite.data.base import DataError
from fdmer_lite.data.sdk import average_over_intervals, load, load_folds


def write_csd(path, root, entries, metadata=None):
    """``<root>/data/<vid>/features|intervals`` and ``<root>/metadata/<key>`` (JSON strings), as the SDK writes."""
    with h5py.File(path, "w") as f:
        data = f.create_group(root).create_group("data")
        for vid, (features, intervals) in entries.items():
            g = data.create_group(vid)
            g.create_dataset("features", data=features)
            g.create_dataset("intervals", data=intervals)
        meta = f[root].create_group("metadata")
        for key, value in (metadata or {"root name": root, "dimension names": ["x"]}).items():
            ds = meta.create_dataset(key, (1,), dtype=h5py.special_dtype(vlen=str))
            ds[0] = json.dumps(value)
    return path


def make_folder(folder, n_videos=6, seed=0, drop_audio=("vid5",), words_per_video=24):
    """Words (8-d), COVAREP-like audio at 20 Hz (3-d), Facet-like video at 15 Hz (2-d), 3 labelled segments."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    words, audio, video, labels = {}, {}, {}, {}
    for i in range(n_videos):
        vid = f"vid{i}"
        T = 12.0
        starts = np.sort(rng.uniform(0.2, T - 0.5, words_per_video))
        words[vid] = (rng.normal(size=(words_per_video, 8)), np.stack([starts, starts + 0.3], 1))
        t = np.arange(0, T, 0.05)
        audio[vid] = (rng.normal(size=(len(t), 3)), np.stack([t, t + 0.05], 1))
        tv = np.arange(0, T, 1 / 15)
        video[vid] = (rng.normal(size=(len(tv), 2)).astype(np.float32), np.stack([tv, tv + 1 / 15], 1))
        labels[vid] = (rng.uniform(-3, 3, (3, 1)), np.array([[0.0, 4.0], [4.0, 8.0], [8.0, 12.0]]))
    audio["vid0"][0][5, 1] = -np.inf                            # COVAREP: -inf log-energy
    for vid in drop_audio:
        audio.pop(vid)
    write_csd(folder / "CMU_MOSI_TimestampedWordVectors.csd", "glove_vectors", words)
    write_csd(folder / "CMU_MOSI_COVAREP.csd", "COVAREP", audio)
    write_csd(folder / "CMU_MOSI_VisualFacet_4.1.csd", "FACET_4.1", video)
    write_csd(folder / "CMU_MOSI_Opinion_Labels.csd", "Opinion Segment Labels", labels)
    folds = {"train": ["vid0", "vid1", "vid2"], "valid": ["vid3"], "test": ["vid4", "vid5"]}
    (folder / "folds.json").write_text(json.dumps(folds))
    return {"words": words, "audio": audio, "video": video, "labels": labels, "folds": folds}


def loop_average(frames, frame_iv, word_iv):
    """Reference: for every word, a plain loop over every frame (the SDK's definition of overlap)."""
    out, empty = np.zeros((len(word_iv), frames.shape[1])), 0
    for w, (ws, we) in enumerate(word_iv):
        rows = [f for f, (fs, fe) in enumerate(frame_iv)
                if (fs < we and fe > ws) or (ws == we and fs <= ws < fe)]
        if rows:
            out[w] = frames[rows].mean(axis=0)
        else:
            empty += 1
    return out, empty


def test_vectorised_average_matches_a_plain_loop():
    rng = np.random.default_rng(1)
    t = np.sort(rng.uniform(0, 10, 200))
    frame_iv = np.stack([t, np.append(t[1:], 10.5)], 1)          # irregular, contiguous frames
    frame_iv = frame_iv[rng.permutation(len(t))]                 # stored out of order
    frames = rng.normal(size=(200, 4))
    ws = rng.uniform(-1, 11, 50)
    word_iv = np.stack([ws, ws + rng.uniform(0, 0.6, 50)], 1)
    word_iv[:3, 1] = word_iv[:3, 0]                              # zero-length words
    word_iv[3] = [20.0, 21.0]                                    # after the last frame
    got, empty = average_over_intervals(frames, frame_iv, word_iv)
    ref, ref_empty = loop_average(frames, frame_iv, word_iv)
    np.testing.assert_allclose(got, ref, atol=1e-12)
    assert empty == ref_empty >= 1


def test_nested_frames_are_refused():
    frames = np.ones((3, 1))
    iv = np.array([[0.0, 5.0], [1.0, 2.0], [2.0, 6.0]])
    with pytest.raises(DataError, match="nested"):
        average_over_intervals(frames, iv, np.array([[0.0, 1.0]]))


def test_folder_loads_word_aligned_segments(tmp_path):
    raw = make_folder(tmp_path)
    data = load_dataset("sdk", tmp_path)
    info = data.info
    assert data.modalities == "tav" and data.widths == {"t": 8, "a": 3, "v": 2}
    # vid5 has no audio: dropped and reported, not silently kept
    assert info["videos_dropped"] == {"t": {"count": 1, "examples": ["vid5"]},
                                      "v": {"count": 1, "examples": ["vid5"]},
                                      "labels": {"count": 1, "examples": ["vid5"]}}
    assert info["fold_videos_missing"]["examples"] == ["vid5"]
    assert info["nonfinite_replaced"] == {"a": 1}
    assert {s: len(data.splits[s]) for s in ("train", "valid", "test")} == {"train": 9, "valid": 3, "test": 3}
    assert info["truncated_segments"] == 0 and info["seq_len"] == data.seq_lengths["t"]
    assert info["folds"] == "from folds.json"
    assert info["metadata"]["a"]["root name"] == "COVAREP"

    # check one segment against a direct computation
    tr = data.splits["train"]
    k = tr.ids.index("vid1[1]")
    feats, wiv = raw["words"]["vid1"]
    mid = wiv.mean(1)
    inside = np.flatnonzero((mid >= 4.0) & (mid < 8.0))
    n = len(inside)
    assert tr.lengths["t"][k] == n
    np.testing.assert_allclose(tr.features["t"][k, :n], feats[inside], rtol=1e-6)
    assert np.all(tr.features["t"][k, n:] == 0)
    a_feat, a_iv = raw["audio"]["vid1"]
    ref, _ = loop_average(a_feat, a_iv, wiv[inside])
    np.testing.assert_allclose(tr.features["a"][k, :n], ref, rtol=1e-5)
    assert tr.labels[k] == pytest.approx(raw["labels"]["vid1"][0][1, 0])


def test_explicit_truncation_is_counted(tmp_path):
    make_folder(tmp_path, drop_audio=())
    data = load(tmp_path, seq_len=4, progress=False)
    assert data.seq_lengths == {"t": 4, "a": 4, "v": 4}
    assert data.info["truncated_segments"] > 0
    assert "explicit truncation" in data.info["seq_len_rule"]


def test_segments_without_words_are_dropped_and_counted(tmp_path):
    raw = make_folder(tmp_path, drop_audio=())
    labels = dict(raw["labels"])
    y, iv = labels["vid0"]
    labels["vid0"] = (np.vstack([y, [[1.0]]]), np.vstack([iv, [[50.0, 60.0]]]))   # after the video ends
    write_csd(tmp_path / "CMU_MOSI_Opinion_Labels.csd", "Opinion Segment Labels", labels)
    data = load(tmp_path, progress=False)
    assert data.info["segments_without_words"] == 1


def test_sdk_style_fold_file_is_read_as_literals(tmp_path):
    make_folder(tmp_path, drop_audio=())
    (tmp_path / "folds.json").unlink()
    (tmp_path / "cmu_mosi_std_folds.py").write_text(
        "import os\nos.system('touch {m}')\n"
        "standard_train_fold=['vid0','vid1','vid2']\nstandard_valid_fold=['vid3']\n"
        "standard_test_fold=['vid4',\n 'vid5']\n".format(m=tmp_path / "pwned"))
    data = load(tmp_path, progress=False)
    assert not (tmp_path / "pwned").exists()                    # parsed, never run
    assert data.info["folds"] == "read as literals from cmu_mosi_std_folds.py"
    assert len(data.splits["test"]) == 6


def test_missing_folds_and_bad_folds(tmp_path):
    make_folder(tmp_path)
    (tmp_path / "folds.json").unlink()
    with pytest.raises(DataError, match="folds.json"):
        load(tmp_path, progress=False)
    with pytest.raises(DataError, match="each video in one fold only"):
        load_folds({"train": ["a"], "valid": ["a"], "test": ["b"]})
    with pytest.raises(DataError, match="lists for"):
        load_folds({"train": ["a"], "test": ["b"]})


def test_bad_streams(tmp_path):
    raw = make_folder(tmp_path, drop_audio=())
    labels = dict(raw["labels"])
    labels["vid2"] = (labels["vid2"][0] * 2, labels["vid2"][1])
    labels["vid2"][0][0, 0] = 7.0
    write_csd(tmp_path / "CMU_MOSI_Opinion_Labels.csd", "Opinion Segment Labels", labels)
    with pytest.raises(DataError, match=r"vid2/features.*\[-3, 3\]"):
        load(tmp_path, progress=False)
    write_csd(tmp_path / "CMU_MOSI_Opinion_Labels.csd", "Opinion Segment Labels", raw["labels"])
    audio = dict(raw["audio"])
    audio["vid3"] = (audio["vid3"][0][:, :2], audio["vid3"][1])
    write_csd(tmp_path / "CMU_MOSI_COVAREP.csd", "COVAREP", audio)
    with pytest.raises(DataError, match=r"COVAREP\.csd.*vid3/features.*width 3"):
        load(tmp_path, progress=False)


def test_words_as_strings_and_ambiguous_folder(tmp_path):
    raw = make_folder(tmp_path, drop_audio=())
    words = {v: (np.array([b"hello"] * len(f), dtype="S5"), iv) for v, (f, iv) in raw["words"].items()}
    write_csd(tmp_path / "extra_COVAREP_v2.csd", "COVAREP2", raw["audio"])
    with pytest.raises(DataError, match="one .csd per modality"):
        load(tmp_path, progress=False)
    os.remove(tmp_path / "extra_COVAREP_v2.csd")
    write_csd(tmp_path / "CMU_MOSI_TimestampedWordVectors.csd", "words", words)
    with pytest.raises(DataError, match="numeric features"):
        load(tmp_path, progress=False)


def test_explicit_streams_any_subset(tmp_path):
    make_folder(tmp_path, drop_audio=())
    data = load(None, streams={"t": tmp_path / "CMU_MOSI_TimestampedWordVectors.csd",
                               "v": tmp_path / "CMU_MOSI_VisualFacet_4.1.csd"},
                labels=tmp_path / "CMU_MOSI_Opinion_Labels.csd", folds=tmp_path / "folds.json", progress=False)
    assert data.modalities == "tv"


@pytest.mark.skipif(not os.environ.get("FDMER_LITE_MOSI_DIR"),
                    reason="FDMER_LITE_MOSI_DIR is not set (folds='mosi' reads the real CMU-MOSI folder)")
def test_mosi_folds_from_the_real_folder():
    folds, desc = load_folds("mosi")
    assert {s: len(v) for s, v in folds.items()} == {"train": 52, "valid": 10, "test": 31}


@pytest.mark.skipif(not os.environ.get("FDMER_LITE_MOSI_DIR"),
                    reason="FDMER_LITE_MOSI_DIR is not set (MOSI folds come from the real CMU-MOSI folder)")
def test_mosi_videos_without_a_folds_file_use_the_standard_folds(tmp_path):
    folds, _ = load_folds("mosi")
    names = {s: v[:2] for s, v in folds.items()}                # two real MOSI videos per fold
    raw = make_folder(tmp_path, n_videos=6, drop_audio=())
    (tmp_path / "folds.json").unlink()
    rename = dict(zip([f"vid{i}" for i in range(6)], names["train"] + names["valid"] + names["test"]))
    for name, root, key in (("CMU_MOSI_TimestampedWordVectors.csd", "glove_vectors", "words"),
                            ("CMU_MOSI_COVAREP.csd", "COVAREP", "audio"),
                            ("CMU_MOSI_VisualFacet_4.1.csd", "FACET_4.1", "video"),
                            ("CMU_MOSI_Opinion_Labels.csd", "Opinion Segment Labels", "labels")):
        write_csd(tmp_path / name, root, {rename[v]: e for v, e in raw[key].items()})
    data = load(tmp_path, progress=False)
    assert "standard MOSI folds" in data.info["folds"]
    assert {s: len(data.splits[s]) for s in ("train", "valid", "test")} == {"train": 6, "valid": 6, "test": 6}


def test_features_too_large_and_a_one_segment_training_split_are_refused(tmp_path):
    raw = make_folder(tmp_path, drop_audio=())
    audio = dict(raw["audio"])
    frames = audio["vid1"][0].copy()
    frames[7, 2] = 1e30                                           # finite, but its square overflows float32
    audio["vid1"] = (frames, audio["vid1"][1])
    write_csd(tmp_path / "CMU_MOSI_COVAREP.csd", "COVAREP", audio)
    with pytest.raises(DataError) as err:
        load(tmp_path, progress=False)
    assert (err.value.source, err.value.field) == (str(tmp_path / "CMU_MOSI_COVAREP.csd"), "COVAREP/data/vid1/features")
    assert "at most 2**58" in err.value.expected and "the largest of magnitude 1e+30" in err.value.found

    raw = make_folder(tmp_path, drop_audio=())
    labels = dict(raw["labels"])
    labels["vid0"] = (labels["vid0"][0][:1], labels["vid0"][1][:1])  # one labelled segment
    write_csd(tmp_path / "CMU_MOSI_Opinion_Labels.csd", "Opinion Segment Labels", labels)
    (tmp_path / "folds.json").write_text(json.dumps({"train": ["vid0"], "valid": ["vid3"], "test": ["vid4"]}))
    with pytest.raises(DataError) as err:
        load(tmp_path, progress=False)
    assert (err.value.field, err.value.found) == ("train", "1")
    assert err.value.expected.startswith("at least 2 samples in the train split")
