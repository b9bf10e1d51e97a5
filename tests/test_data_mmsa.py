"""MMSA aligned_50.pkl / unaligned_50.pkl, written in the exact layout the toolkit pickles."""

import pickle

import numpy as np
import pytest

from fdmer_lite.data import load_dataset, make_loader
from fdmer_lite.data.base import DataError
from fdmer_lite.data.mmsa import load

SIZES = {"train": 8, "valid": 4, "test": 6}
MOSI = {"t": 768, "a": 5, "v": 20}


def mmsa_dict(aligned=False, widths=MOSI, seq=(50, 30, 40), seed=0):
    """A dict laid out like MMSA's pickles (MOSI widths by default)."""
    rng = np.random.default_rng(seed)
    L_t, L_a, L_v = (50, 50, 50) if aligned else seq
    out = {}
    for s, n in SIZES.items():
        tl = rng.integers(3, L_t + 1, n)
        mask = (np.arange(L_t)[None, :] < tl[:, None]).astype(np.float32)
        text_bert = np.stack([mask * rng.integers(100, 3000, (n, L_t)), mask, np.zeros_like(mask)], axis=1)
        part = {
            "raw_text": np.array([f"utterance {i}" for i in range(n)], dtype=object),
            "id": np.array([f"vid{s}{i}$_${i}" for i in range(n)], dtype=object),
            "text": rng.normal(size=(n, L_t, widths["t"])).astype(np.float32) * mask[:, :, None],
            "text_bert": text_bert,
            "audio": rng.normal(size=(n, L_a, widths["a"])).astype(np.float32),
            "vision": rng.normal(size=(n, L_v, widths["v"])).astype(np.float32),
            "classification_labels": rng.integers(0, 3, n).astype(np.float64),
            "regression_labels": rng.uniform(-3, 3, n).astype(np.float32),
        }
        if not aligned:
            al, vl = rng.integers(1, L_a + 1, n), rng.integers(1, L_v + 1, n)
            part["audio"] *= (np.arange(L_a)[None, :] < al[:, None])[:, :, None]
            part["vision"] *= (np.arange(L_v)[None, :] < vl[:, None])[:, :, None]
            part["audio_lengths"] = [int(x) for x in al]          # MMSA stores plain lists
            part["vision_lengths"] = [int(x) for x in vl]
        out[s] = part
    return out


def write(path, d, protocol=4):
    path.write_bytes(pickle.dumps(d, protocol=protocol))
    return path


def test_unaligned_loads_with_masks(tmp_path):
    d = mmsa_dict()
    data = load(write(tmp_path / "unaligned_50.pkl", d))
    assert data.modalities == "tav" and data.widths == MOSI
    assert data.seq_lengths == {"t": 50, "a": 30, "v": 40}
    assert {s: len(data.splits[s]) for s in SIZES} == SIZES
    tr = data.splits["train"]
    np.testing.assert_array_equal(tr.lengths["a"], d["train"]["audio_lengths"])
    np.testing.assert_array_equal(tr.lengths["v"], d["train"]["vision_lengths"])
    np.testing.assert_array_equal(tr.lengths["t"], d["train"]["text_bert"][:, 1].sum(1))
    np.testing.assert_allclose(tr.labels, d["train"]["regression_labels"])
    assert tr.ids[0] == "vidtrain0$_$0"
    assert data.info["format"] == "MMSA pickle (unaligned)" and data.info["dataset"] == "MOSI"
    assert data.info["nonfinite_replaced_total"] == 0 and data.info["nonzero_padding"] == {}
    batch = next(iter(make_loader(data, "train", batch_size=8)))
    assert batch.masks["a"].sum(1).tolist() == d["train"]["audio_lengths"]


def test_aligned_has_no_audio_vision_masks_and_registry_name(tmp_path):
    data = load_dataset("mmsa", write(tmp_path / "aligned_50.pkl", mmsa_dict(aligned=True)))
    assert data.seq_lengths == {"t": 50, "a": 50, "v": 50}
    assert set(data.splits["train"].lengths) == {"t"}
    assert data.info["format"] == "MMSA pickle (aligned)"


def test_mosei_and_sims_widths_and_glove_text(tmp_path):
    for widths, name in (({"t": 768, "a": 74, "v": 35}, "MOSEI"), ({"t": 768, "a": 33, "v": 709}, "SIMS"),
                         ({"t": 300, "a": 74, "v": 35}, "MOSEI")):
        data = load(write(tmp_path / "f.pkl", mmsa_dict(widths=widths, seq=(50, 8, 6))))
        assert data.widths == widths and data.info["dataset"] == name


def test_inf_and_nan_are_zeroed_and_counted(tmp_path):
    d = mmsa_dict()
    d["train"]["audio"][0, 0, :3] = -np.inf                     # COVAREP log-energy of silence
    d["test"]["audio"][1, 2, 0] = np.inf
    d["valid"]["vision"][0, 0, 0] = np.nan
    data = load(write(tmp_path / "u.pkl", d))
    assert data.info["nonfinite_replaced"] == {"train.audio": 3, "test.audio": 1, "valid.vision": 1}
    assert data.info["nonfinite_replaced_total"] == 5
    assert data.splits["train"].features["a"][0, 0, :3].tolist() == [0, 0, 0]
    with pytest.raises(DataError, match=r"train\.audio.*3 NaN/inf.*3 -inf"):
        load(tmp_path / "u.pkl", nonfinite="error")


def test_zero_lengths_are_set_to_one_and_counted(tmp_path):
    d = mmsa_dict()
    d["train"]["vision_lengths"][2] = 0
    d["train"]["vision"][2] = 0
    data = load(write(tmp_path / "u.pkl", d))
    assert data.splits["train"].lengths["v"][2] == 1
    assert data.info["zero_lengths_set_to_1"] == {"train.vision_lengths": 1}


def test_nonzero_padding_is_reported(tmp_path):
    d = mmsa_dict()
    d["train"]["audio_lengths"][0] = 1
    d["train"]["audio"][0, 1:] = 1.0
    data = load(write(tmp_path / "u.pkl", d))
    assert data.info["nonzero_padding"]["train.audio"] == 29


@pytest.mark.parametrize("mutate,field,expected", [
    (lambda d: d.pop("valid"), "<top level>", "keys"),
    (lambda d: d["train"].pop("regression_labels"), "train.regression_labels", "regression labels"),
    (lambda d: d["test"].__setitem__("audio", d["test"]["audio"][:-1]), "test.audio", "6 samples"),
    (lambda d: d["valid"].__setitem__("vision", d["valid"]["vision"][:, :, :7]), "valid.v", "width"),
    (lambda d: d["train"]["regression_labels"].__setitem__(0, 4.5), "train.regression_labels", r"\[-3, 3\]"),
    (lambda d: d["train"]["regression_labels"].__setitem__(0, np.nan), "train.regression_labels", "finite"),
    (lambda d: d["train"].__setitem__("audio_lengths", [99] * 8), "train.audio_lengths", "truncated"),
    (lambda d: d["train"].__setitem__("audio", d["train"]["audio"][:, :, 0]), "train.audio", "3-d"),
    (lambda d: d["test"].__setitem__("id", d["test"]["id"][:2]), "test.id", "6 ids"),
])
def test_bad_files_name_file_field_and_expectation(tmp_path, mutate, field, expected):
    d = mmsa_dict()
    mutate(d)
    path = write(tmp_path / "bad.pkl", d)
    with pytest.raises(DataError, match=expected) as err:
        load(path)
    assert str(path) in str(err.value) and field in str(err.value)


def test_widths_checked_against_configuration_and_sizes(tmp_path):
    path = write(tmp_path / "u.pkl", mmsa_dict())
    with pytest.raises(DataError, match=r"audio width.*expected 74 \(as configured\), found 5"):
        load(path, widths={"t": 768, "a": 74})
    with pytest.raises(DataError, match="split sizes"):
        load(path, expected_sizes={"train": 1284, "valid": 229, "test": 686})
    with pytest.raises(DataError, match="token ids"):
        load(path, text_key="text_bert")


def test_old_numpy_module_names_load(tmp_path):
    """Pickles written by numpy 1.x name numpy.core.multiarray._reconstruct."""
    raw = pickle.dumps(mmsa_dict(aligned=True), protocol=2)
    assert b"numpy._core" in raw or b"numpy.core" in raw
    legacy = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    data = load(write(tmp_path / "legacy.pkl", pickle.loads(legacy)))
    assert data.widths == MOSI
    (tmp_path / "legacy_raw.pkl").write_bytes(legacy)
    assert load(tmp_path / "legacy_raw.pkl").widths == MOSI


def _nested(depth_lengths):
    """Nested lists of zeros, e.g. (8, 10, 5) -> 8 lists of 10 lists of 5 floats."""
    if not depth_lengths:
        return 0.0
    return [_nested(depth_lengths[1:]) for _ in range(depth_lengths[0])]


@pytest.mark.parametrize("key,value,found", [
    ("regression_labels", [[1.0], [1.0, 2.0]] + [[0.0]] * 6,
     "sequences of uneven lengths: [0] holds 1 entries, [1] holds 2"),
    ("regression_labels", [0.5] * 7 + [[1.0]], "numbers beside sequences: [0] is a number, [7] a sequence of 1"),
    ("regression_labels", [0.5] * 7 + ["x"], "a str at [7], not a number"),
    ("audio", _nested((7, 10, 5)) + [_nested((10, 4))], "sequences of uneven lengths: [0][0] holds 5 entries, "
                                                         "[7][0] holds 4"),
])
def test_values_that_are_no_array_of_numbers_say_which_entry(tmp_path, key, value, found):
    d = mmsa_dict(seq=(12, 10, 8), widths={"t": 6, "a": 5, "v": 4})
    d["train"][key] = value
    path = write(tmp_path / "bad.pkl", d)
    with pytest.raises(DataError) as err:
        load(path)
    assert (err.value.source, err.value.field, err.value.found) == (str(path), f"train.{key}", found)
    with pytest.raises(ValueError, match="inhomogeneous|could not convert"):   # what numpy would say instead
        np.asarray(value, dtype=np.float32)


def test_why_not_numeric_agrees_with_numpy():
    from fdmer_lite.data.mmsa import why_not_numeric
    arr = np.empty(3, dtype=object)
    arr[:] = [1.0, 2.0, 3.0]
    for good in ([[1, 2], [3, 4]], arr, np.zeros((2, 3)), [np.zeros(3), np.ones(3)], 5.0):
        np.asarray(good, dtype=np.float32)                       # numpy makes an array of it ...
        assert why_not_numeric(good) is None                     # ... and nothing is said against it
    for bad in ([[1, 2], [3]], [1, [2]], [[1, 2], [3, "x"]], {"a": 1}, [np.zeros(3), np.zeros(4)]):
        with pytest.raises((ValueError, TypeError)):
            np.asarray(bad, dtype=np.float32)
        assert why_not_numeric(bad)


def test_numbers_beyond_float32_are_refused_not_made_inf_and_zeroed(tmp_path):
    d = mmsa_dict(seq=(12, 10, 8), widths={"t": 6, "a": 5, "v": 4})
    d["train"]["vision"] = d["train"]["vision"].astype(np.float64)
    d["train"]["vision"][2, 1, 0] = -1e39                         # float32 tops out at 3.4e38
    path = write(tmp_path / "big.pkl", d)
    with pytest.raises(DataError) as err:
        load(path)
    assert err.value.field == "train.vision" and "float32's range" in err.value.expected
    assert err.value.found == "1 value(s) beyond it, the largest of magnitude 1e+39"


def test_the_feature_bound_is_where_sums_of_squares_overflow_float32():
    from fdmer_lite.data.base import FEATURE_LIMIT

    def sum_of_squares(value, n=2048):                            # a layer norm's variance, in float32
        x = np.full(n, value, np.float32)
        with np.errstate(over="ignore"):
            return np.sum(x * x, dtype=np.float32)

    assert FEATURE_LIMIT == 2.0 ** 58 and float(np.float32(FEATURE_LIMIT)) == FEATURE_LIMIT
    assert np.isfinite(sum_of_squares(FEATURE_LIMIT))
    assert not np.isfinite(sum_of_squares(2 * FEATURE_LIMIT))


def test_features_too_large_to_train_on_are_refused_naming_the_bound(tmp_path):
    d = mmsa_dict(seq=(12, 10, 8), widths={"t": 6, "a": 5, "v": 4})
    d["valid"]["vision"][0, 0, 0] = 1e30                         # finite in float32, its square is not
    d["valid"]["vision"][1, 2, 3] = -3e17
    d["valid"]["vision"][2, 2, 3] = 2.0 ** 58                     # the bound itself is allowed
    path = write(tmp_path / "big.pkl", d)
    with pytest.raises(DataError) as err:
        load(path)
    beyond = sum(1 for v in d["valid"]["vision"].ravel().tolist() if abs(v) > 2.0 ** 58)
    assert beyond == 2
    assert (err.value.source, err.value.field) == (str(path), "valid.vision")
    assert "at most 2**58 = 2.9e+17" in err.value.expected and "float32" in err.value.expected
    assert err.value.found == f"{beyond} value(s) beyond it, the largest of magnitude 1e+30"
    d["valid"]["vision"][0, 0, 0] = d["valid"]["vision"][1, 2, 3] = 1e17
    assert load(write(tmp_path / "fine.pkl", d)).splits["valid"].features["v"].max() == 2.0 ** 58


@pytest.mark.parametrize("split,n,need", [("train", 1, 2), ("train", 0, 2), ("valid", 0, 1), ("test", 0, 1)])
def test_a_split_too_small_to_use_is_refused_saying_what_is_needed(tmp_path, split, n, need):
    d = mmsa_dict(seq=(12, 10, 8), widths={"t": 6, "a": 5, "v": 4})
    d[split] = {k: v[:n] for k, v in d[split].items()}
    path = write(tmp_path / "small.pkl", d)
    with pytest.raises(DataError) as err:
        load(path)
    assert (err.value.source, err.value.field, err.value.found) == (str(path), f"{split}.regression_labels", str(n))
    assert err.value.expected.startswith(f"at least {need} sample") and f"in the {split} split" in err.value.expected
    d[split] = {k: v[:need] for k, v in mmsa_dict(seq=(12, 10, 8), widths={"t": 6, "a": 5, "v": 4})[split].items()}
    assert len(load(write(tmp_path / "enough.pkl", d)).splits[split]) == need
