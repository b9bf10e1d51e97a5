"""UR-FUNNY v1 / v2 feature folders, pickled in the released layout."""

import pickle
from pathlib import Path

import numpy as np
import pytest

from fdmer_lite.data import load_dataset
from fdmer_lite.data.base import DataError
from fdmer_lite.data.urfunny import load

V_WIDTH = {1: 75, 2: 371}


def make_folder(folder, version=2, seed=0, n=(10, 4, 6), vocab=40):
    """data_folds, word_embedding_list, language_sdk (v2) / word_embedding_indexes_sdk (v1),
    covarep_features_sdk, openface_features_sdk, humor_label_sdk."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ids = {s: [int(1000 * k + i) for i in range(c)] for k, (s, c) in enumerate(zip(("train", "dev", "test"), n))}
    emb = [list(rng.normal(size=300)) for _ in range(vocab)]           # a list of 300-d vectors
    lang, cov, face, lab = {}, {}, {}, {}
    for sid in sum(ids.values(), []):
        p = int(rng.integers(2, 9))
        ctx = [int(rng.integers(1, 6)) for _ in range(int(rng.integers(1, 4)))]
        entry = {"punchline_embedding_indexes": list(rng.integers(0, vocab, p)),
                 "context_embedding_indexes": [list(rng.integers(0, vocab, c)) for c in ctx]}
        if version == 2:
            entry.update({"punchline_sentence": "a joke", "context_sentences": ["x"] * len(ctx),
                          "punchline_intervals": [[0.0, 1.0]] * p, "context_intervals": [[[0.0, 1.0]] * c for c in ctx]})
        lang[sid] = entry
        cov[sid] = {"punchline_features": rng.normal(size=(p, 81)).tolist(),
                    "context_features": [rng.normal(size=(c, 81)).tolist() for c in ctx]}
        face[sid] = {"punchline_features": rng.normal(size=(p, V_WIDTH[version])),
                     "context_features": [rng.normal(size=(c, V_WIDTH[version])) for c in ctx]}
        lab[sid] = int(rng.integers(0, 2))
    files = {"data_folds.pkl": ids, "word_embedding_list.pkl": emb,
             ("language_sdk.pkl" if version == 2 else "word_embedding_indexes_sdk.pkl"): lang,
             "covarep_features_sdk.pkl": cov, "openface_features_sdk.pkl": face, "humor_label_sdk.pkl": lab}
    for name, obj in files.items():
        (folder / name).write_bytes(pickle.dumps(obj, protocol=2))
    return files


def save(folder, name, obj):
    (Path(folder) / name).write_bytes(pickle.dumps(obj, protocol=2))


@pytest.mark.parametrize("version", [1, 2])
def test_punchline_features_labels_and_folds(tmp_path, version):
    files = make_folder(tmp_path, version)
    data = load_dataset("urfunny", tmp_path)
    assert data.task == "classification" and data.n_classes == 2
    assert data.widths == {"t": 300, "a": 81, "v": V_WIDTH[version]}
    assert {s: len(data.splits[s]) for s in ("train", "valid", "test")} == {"train": 10, "valid": 4, "test": 6}
    assert data.info["version"] == version
    tr = data.splits["train"]
    sid = files["data_folds.pkl"]["train"][3]
    i = tr.ids.index(str(sid))
    idx = files["language_sdk.pkl" if version == 2 else "word_embedding_indexes_sdk.pkl"][sid]["punchline_embedding_indexes"]
    n = len(idx)
    assert tr.lengths["t"][i] == n
    np.testing.assert_allclose(tr.features["t"][i, :n], np.array(files["word_embedding_list.pkl"])[idx], rtol=1e-6)
    np.testing.assert_allclose(tr.features["a"][i, :n], files["covarep_features_sdk.pkl"][sid]["punchline_features"],
                               rtol=1e-6)
    assert np.all(tr.features["v"][i, n:] == 0)
    assert tr.labels[i] == files["humor_label_sdk.pkl"][sid]


def test_context_is_prepended(tmp_path):
    files = make_folder(tmp_path)
    data = load(tmp_path, context=True)
    tr = data.splits["train"]
    sid = files["data_folds.pkl"]["train"][0]
    e = files["language_sdk.pkl"][sid]
    n = sum(len(c) for c in e["context_embedding_indexes"]) + len(e["punchline_embedding_indexes"])
    i = tr.ids.index(str(sid))
    assert tr.lengths["t"][i] == n
    np.testing.assert_allclose(tr.features["a"][i, n - len(e["punchline_embedding_indexes"]):n],
                               files["covarep_features_sdk.pkl"][sid]["punchline_features"], rtol=1e-6)


def test_missing_ids_nan_and_truncation_are_counted(tmp_path):
    files = make_folder(tmp_path)
    cov = files["covarep_features_sdk.pkl"]
    gone = files["data_folds.pkl"]["test"][0]
    del cov[gone]                                                   # missing from one stream
    first = files["data_folds.pkl"]["train"][0]
    cov[first]["punchline_features"][0][0] = float("nan")
    save(tmp_path, "covarep_features_sdk.pkl", cov)
    data = load(tmp_path, max_words=3)
    assert data.info["dropped"] == {"missing_a": {"count": 1, "examples": [gone]}}
    assert len(data.splits["test"]) == 5
    assert data.info["nonfinite_replaced"] == {"a": 1}
    assert data.info["truncated_samples"] > 0 and data.seq_lengths["t"] == 3
    with pytest.raises(DataError, match="NaN"):
        load(tmp_path, nonfinite="error")


def test_mismatches_are_errors(tmp_path):
    files = make_folder(tmp_path)
    face = files["openface_features_sdk.pkl"]
    sid = files["data_folds.pkl"]["dev"][1]
    face[sid]["punchline_features"] = face[sid]["punchline_features"][:-1]
    save(tmp_path, "openface_features_sdk.pkl", face)
    with pytest.raises(DataError, match=f"{sid} word counts.*same number of words"):
        load(tmp_path)
    make_folder(tmp_path, version=2)
    make_folder(tmp_path / "v1", version=1)
    # v1's 75-d OpenFace next to v2's language file: a dimension mismatch, named
    (tmp_path / "openface_features_sdk.pkl").write_bytes((tmp_path / "v1" / "openface_features_sdk.pkl").read_bytes())
    with pytest.raises(DataError, match="openface_features_sdk.pkl.*width 371"):
        load(tmp_path)


def test_bad_label_and_index(tmp_path):
    files = make_folder(tmp_path)
    lab = files["humor_label_sdk.pkl"]
    lab[files["data_folds.pkl"]["train"][2]] = 2
    save(tmp_path, "humor_label_sdk.pkl", lab)
    with pytest.raises(DataError, match="humour label 0 or 1"):
        load(tmp_path)
    files = make_folder(tmp_path)
    lang = files["language_sdk.pkl"]
    lang[files["data_folds.pkl"]["train"][0]]["punchline_embedding_indexes"][0] = 999
    save(tmp_path, "language_sdk.pkl", lang)
    with pytest.raises(DataError, match=r"word indexes in \[0, 40\)"):
        load(tmp_path)


def test_missing_file(tmp_path):
    make_folder(tmp_path)
    (tmp_path / "humor_label_sdk.pkl").unlink()
    with pytest.raises(FileNotFoundError, match="humor_label_sdk.pkl"):
        load(tmp_path)


def test_values_that_are_no_array_of_numbers_say_which_entry(tmp_path):
    files = make_folder(tmp_path)
    sid = files["data_folds.pkl"]["train"][1]
    cov = files["covarep_features_sdk.pkl"]
    rows = cov[sid]["punchline_features"]
    cov[sid]["punchline_features"] = rows[:-1] + [rows[-1][:80]]          # the last word: 80 values, not 81
    save(tmp_path, "covarep_features_sdk.pkl", cov)
    with pytest.raises(DataError) as err:
        load(tmp_path)
    n = len(rows)
    assert err.value.source == str(tmp_path / "covarep_features_sdk.pkl")
    assert err.value.field == f"{sid}.punchline_features"
    assert err.value.found == f"sequences of uneven lengths: [0] holds 81 entries, [{n - 1}] holds 80"

    files = make_folder(tmp_path)
    lang = files["language_sdk.pkl"]
    lang[sid]["punchline_embedding_indexes"] = [[1, 2], [3]]
    save(tmp_path, "language_sdk.pkl", lang)
    with pytest.raises(DataError) as err:
        load(tmp_path)
    assert err.value.field == f"{sid}.punchline_embedding_indexes"
    assert err.value.found == "sequences of uneven lengths: [0] holds 2 entries, [1] holds 1"

    files = make_folder(tmp_path)
    lab = files["humor_label_sdk.pkl"]
    lab[sid] = [[0], [1, 1]]
    save(tmp_path, "humor_label_sdk.pkl", lab)
    with pytest.raises(DataError, match=r"humour label 0 or 1, found \[\[0\], \[1, 1\]\]"):
        load(tmp_path)


def test_one_training_segment_is_refused_naming_the_split(tmp_path):
    files = make_folder(tmp_path)
    folds = files["data_folds.pkl"]
    save(tmp_path, "data_folds.pkl", dict(folds, train=folds["train"][:1]))
    with pytest.raises(DataError) as err:
        load(tmp_path)
    assert (err.value.source, err.value.field, err.value.found) == (str(tmp_path), "train", "1")
    assert err.value.expected.startswith("at least 2 samples in the train split")
    save(tmp_path, "data_folds.pkl", dict(folds, train=folds["train"][:2]))
    assert len(load(tmp_path).splits["train"]) == 2


def test_features_too_large_to_train_on_are_refused(tmp_path):
    files = make_folder(tmp_path)
    sid = files["data_folds.pkl"]["test"][0]
    face = files["openface_features_sdk.pkl"]
    face[sid]["punchline_features"][0, 3] = -1e30
    save(tmp_path, "openface_features_sdk.pkl", face)
    with pytest.raises(DataError, match=r"magnitude at most 2\*\*58.*found 1 value\(s\) beyond it, the largest "
                                        r"of magnitude 1e\+30") as err:
        load(tmp_path)
    assert err.value.source == str(tmp_path / "openface_features_sdk.pkl")
