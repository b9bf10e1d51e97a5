"""Tests of the known-factor benchmark (fdmer_lite/data/synthetic.py).

Each property the module docstring promises is checked against a second computation: the
label and the Bayes floor against the documented formula, the window against the features
themselves, the shared/private split of the label against probes fit on the latents.
"""

import math
import re

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, RidgeCV
from sklearn.preprocessing import PolynomialFeatures

from fdmer_lite.data.base import SPLITS, MultimodalData, make_loader
from fdmer_lite.data.synthetic import WIDTHS, baselines, make_benchmark

SMALL = dict(n_train=120, n_valid=40, n_test=80)
MODS = ("t", "a", "v")


@pytest.fixture(scope="module")
def emotion():
    return make_benchmark("emotion", **SMALL, seed=3)


def r2(y, pred):
    return 1.0 - np.mean((y - pred) ** 2) / np.var(y)


# ---------------------------------------------------------------- shapes and contracts

@pytest.mark.parametrize("widths", ["glove", "bert", {"t": 7, "a": 3, "v": 5}])
def test_shapes_widths_lengths(widths):
    data = make_benchmark("humor", **SMALL, widths=widths, seq_len=20)
    expected = WIDTHS[widths] if isinstance(widths, str) else widths
    assert isinstance(data, MultimodalData)
    assert data.task == "regression" and data.output_dim == 1 and data.modalities == "tav"
    assert data.widths == expected
    assert data.seq_lengths == {m: 20 for m in MODS}
    for name, n in zip(SPLITS, (SMALL["n_train"], SMALL["n_valid"], SMALL["n_test"])):
        sp = data.splits[name]
        assert len(sp) == n and sp.labels.shape == (n,) and sp.labels.dtype == np.float32
        for m in MODS:
            assert sp.features[m].shape == (n, 20, expected[m])
            assert sp.features[m].dtype == np.float32
            assert sp.extras[f"z_{m}"].shape == (n, 4)
            win = sp.extras[f"window_{m}"]                      # (N, 2) [start, stop)
            assert win.shape == (n, 2)
            assert (win[:, 0] >= 0).all() and (win[:, 1] <= 20).all()
            frac = (win[:, 1] - win[:, 0]) / 20
            assert frac.min() >= 0.4 - 1e-9 and frac.max() <= 1.0
        assert sp.extras["s"].shape == (n, 4) and sp.extras["clean"].shape == (n,)
        assert len(sp.ids) == n and len(set(sp.ids)) == n
        assert all(re.fullmatch(rf"syn_{name}_\d{{5}}", i) for i in sp.ids)
    assert data.splits["train"].ids[12] == "syn_train_00012"


def test_default_sizes_and_glove_widths():
    import inspect
    sig = inspect.signature(make_benchmark)
    assert (sig.parameters["n_train"].default, sig.parameters["n_valid"].default,
            sig.parameters["n_test"].default) == (10000, 500, 1000)
    assert WIDTHS["glove"] == {"t": 300, "a": 74, "v": 47}
    assert WIDTHS["bert"] == {"t": 768, "a": 5, "v": 20}


def test_loader_batches(emotion):
    batch = next(iter(make_loader(emotion, "train", batch_size=16)))
    assert batch.features["t"].shape == (16, 50, 300)
    assert batch.features["v"].shape == (16, 50, 47)
    assert batch.label.shape == (16,)


@pytest.mark.parametrize("bad", [dict(kind="sad"), dict(widths="elmo"), dict(task="ranking"),
                                 dict(widths={"t": 3}), dict(shared_dim=2),
                                 dict(window=(0.0, 1.0)), dict(nonlinearity=1.5)])
def test_bad_arguments(bad):
    kwargs = dict(SMALL, **bad)
    with pytest.raises(ValueError):
        make_benchmark(**kwargs)


# ---------------------------------------------------------------- determinism, seeds, world

def _arrays(data):
    for s in SPLITS:
        sp = data.splits[s]
        yield sp.labels
        yield from (sp.features[m] for m in MODS)
        yield from (sp.extras[k] for k in sorted(sp.extras))


def test_same_seed_identical():
    a = make_benchmark("emotion", **SMALL, seed=5)
    b = make_benchmark("emotion", **SMALL, seed=5)
    for x, y in zip(_arrays(a), _arrays(b), strict=True):
        np.testing.assert_array_equal(x, y)
    assert a.info["bayes_mae"] == b.info["bayes_mae"]


def test_different_seed_resamples_same_world():
    quiet = dict(SMALL, feature_noise=0.0, nuisance=0.0)     # outside the window: only the offset
    a = make_benchmark("emotion", **quiet, seed=1)
    b = make_benchmark("emotion", **quiet, seed=2)
    c = make_benchmark("emotion", **quiet, seed=1, world_seed=7)
    assert not np.allclose(a.splits["train"].extras["s"], b.splits["train"].extras["s"])
    assert not np.allclose(a.splits["train"].features["t"], b.splits["train"].features["t"])

    def outside_frame(data, m):
        sp = data.splits["train"]
        win = sp.extras[f"window_{m}"]
        i = int(np.flatnonzero(win[:, 0] > 0)[0])              # a sample whose window starts late
        return sp.features[m][i, 0]                             # (d,) frame before the window

    for m in MODS:
        # the same world (same offsets, drawn after the maps from the same stream) ...
        np.testing.assert_allclose(outside_frame(a, m), outside_frame(b, m), rtol=1e-6)
        # ... and a different world for a different world_seed
        assert not np.allclose(outside_frame(a, m), outside_frame(c, m))


def test_test_split_independent_of_train_size():
    a = make_benchmark("humor", n_train=50, n_valid=20, n_test=30)
    b = make_benchmark("humor", n_train=90, n_valid=20, n_test=30)
    np.testing.assert_array_equal(a.splits["test"].features["a"], b.splits["test"].features["a"])
    np.testing.assert_array_equal(a.splits["test"].labels, b.splits["test"].labels)


# ---------------------------------------------------------------- the label and the Bayes floor

def _g(u, nu):
    """The documented label part, written out again."""
    return (math.sqrt(1 - nu) * u[:, 0]
            + math.sqrt(nu / 2) * (u[:, 1] * u[:, 2] + (u[:, 3] ** 2 - 1) / math.sqrt(2)))


@pytest.mark.parametrize("kind,ws,wp", [("emotion", 0.5, 1.0), ("humor", 1.0, 0.5)])
def test_clean_label_matches_formula(kind, ws, wp):
    data = make_benchmark(kind, **SMALL)
    nu, std = data.info["knobs"]["nonlinearity"], data.info["knobs"]["label_std"]
    w = {"s": ws, **{m: wp / math.sqrt(3) for m in MODS}}
    norm = math.sqrt(sum(v * v for v in w.values()))
    for s in SPLITS:
        ex = data.splits[s].extras
        parts = {"s": std * w["s"] / norm * _g(ex["s"].astype(np.float64), nu)}
        for m in MODS:
            parts[m] = std * w[m] / norm * _g(ex[f"z_{m}"].astype(np.float64), nu)
        np.testing.assert_allclose(ex["clean"], sum(parts.values()), rtol=1e-4, atol=1e-5)
        for k, v in parts.items():
            np.testing.assert_allclose(ex[f"clean_{k}"], v, rtol=1e-4, atol=1e-5)


def test_bayes_floor_recomputed(emotion):
    test = emotion.splits["test"]
    y = test.labels.astype(np.float64)
    ideal = np.minimum(np.maximum(test.extras["clean"].astype(np.float64), -3.0), 3.0)
    floor = sum(abs(yi - pi) for yi, pi in zip(y, ideal)) / len(y)
    assert emotion.info["bayes_mae"] == pytest.approx(floor, rel=1e-6)


def test_labels_in_range_and_noise_level():
    data = make_benchmark("emotion", n_train=3000, n_valid=10, n_test=10,
                          widths={"t": 2, "a": 2, "v": 2})
    sp = data.splits["train"]
    y, clean = sp.labels.astype(np.float64), sp.extras["clean"].astype(np.float64)
    assert y.min() >= -3.0 and y.max() <= 3.0
    assert (np.abs(y) == 3.0).any()                           # clipping happens, as on MOSI
    assert 1.3 < y.std() < 1.8                                # MOSI-like spread
    unclipped = np.abs(y) < 3.0
    resid = (y - clean)[unclipped]
    assert abs(resid.std() - data.info["knobs"]["label_noise"]) < 0.05


def test_classification_labels():
    data = make_benchmark("humor", task="classification", **SMALL)
    assert data.task == "classification" and data.n_classes == 2 and data.output_dim == 2
    test = data.splits["test"]
    assert test.labels.dtype == np.int64 and set(np.unique(test.labels)) == {0, 1}
    acc = np.mean((test.extras["clean"] > 0).astype(np.int64) == test.labels)
    assert data.info["bayes_acc"] == pytest.approx(acc)
    assert "bayes_mae" not in data.info
    # the same samples as the regression version: labels are the sign of the same noisy value
    reg = make_benchmark("humor", **SMALL)
    np.testing.assert_array_equal(reg.splits["test"].extras["clean"], test.extras["clean"])
    agree = (reg.splits["test"].labels > 0) == (test.labels == 1)
    assert agree.all()


# ---------------------------------------------------------------- the features

def test_modality_offset_and_scale_gap(emotion):
    x = {m: emotion.splits["train"].features[m] for m in MODS}
    means = {m: float(x[m].mean()) for m in MODS}
    stds = {m: float(x[m].std(axis=(0, 1)).mean()) for m in MODS}   # spread per feature
    for i, m1 in enumerate(MODS):
        for m2 in MODS[i + 1:]:
            assert abs(means[m1] - means[m2]) > 0.5, means
    assert max(stds.values()) / min(stds.values()) > 2.0, stds


def test_quiet_frames_outside_window_are_exactly_the_offset():
    data = make_benchmark("emotion", **SMALL, feature_noise=0.0, nuisance=0.0)
    sp = data.splits["train"]
    for m in MODS:
        x, win = sp.features[m], sp.extras[f"window_{m}"]
        steps = np.arange(x.shape[1])[None, :]
        inside = (steps >= win[:, :1]) & (steps < win[:, 1:])  # (N, L)
        outside_frames = x[~inside]                             # (K, d)
        assert len(outside_frames) > 100
        np.testing.assert_allclose(outside_frames, outside_frames[:1].repeat(len(outside_frames), 0),
                                   atol=1e-5)
        inside_frames = x[inside]
        assert inside_frames.std(axis=0).mean() > 0.1           # the latents show inside


def test_outside_window_carries_no_latent_information():
    # With nuisance and noise on: average each sample's frames outside and inside its window,
    # and ask a ridge probe (fit on half the samples) for the latents on the other half.
    data = make_benchmark("emotion", n_train=500, n_valid=10, n_test=10, seq_len=40)
    sp = data.splits["train"]
    for m in MODS:
        x, win = sp.features[m].astype(np.float64), sp.extras[f"window_{m}"]
        target = np.concatenate([sp.extras["s"], sp.extras[f"z_{m}"]], axis=1)   # (N, 8)
        steps = np.arange(x.shape[1])[None, :]
        inside = (steps >= win[:, :1]) & (steps < win[:, 1:])
        keep = (~inside).sum(1) >= 4                            # samples with some outside steps
        out_avg = (x * ~inside[..., None]).sum(1)[keep] / (~inside).sum(1)[keep, None]
        in_avg = (x * inside[..., None]).sum(1)[keep] / inside.sum(1)[keep, None]
        t = target[keep]
        half = len(t) // 2
        scores = {}
        for name, feats in (("outside", out_avg), ("inside", in_avg)):
            probe = RidgeCV(alphas=np.logspace(-2, 5, 15)).fit(feats[:half], t[:half])
            scores[name] = r2(t[half:], probe.predict(feats[half:]))
        assert half > 100
        assert scores["outside"] < 0.03, (m, scores)
        assert scores["inside"] > 0.3, (m, scores)


def test_kinds_differ_in_shared_versus_private_share():
    shares = {}
    for kind in ("emotion", "humor"):
        data = make_benchmark(kind, n_train=1500, n_valid=10, n_test=500,
                              widths={"t": 2, "a": 2, "v": 2})
        tr, te = data.splits["train"], data.splits["test"]
        z = lambda sp: np.concatenate([sp.extras[f"z_{m}"] for m in MODS], 1)  # noqa: E731
        # The label parts are quadratic, so degree-2 features of a latent group are an exact
        # basis for that group's part: R^2 of y from s alone vs from the z alone.
        for name, get in (("s", lambda sp: sp.extras["s"]), ("z", z)):
            poly = PolynomialFeatures(2)
            fit = LinearRegression().fit(poly.fit_transform(get(tr)), tr.labels)
            shares[kind, name] = r2(te.labels, fit.predict(poly.transform(get(te))))
        comp = te.extras["clean_s"].var() / te.extras["clean"].var()
        assert comp == pytest.approx(data.info["label_shares"]["s"], abs=0.1)
    assert shares["humor", "s"] > 0.6 > 0.25 > shares["emotion", "s"], shares
    assert shares["emotion", "z"] > 0.6 > 0.25 > shares["humor", "z"], shares


# ---------------------------------------------------------------- baselines

def test_baselines_ordering_regression():
    # default sizes (a few seconds): the targets the benchmark is tuned for
    data = make_benchmark("emotion")
    b = baselines(data)
    assert set(b) == {"bayes_mae", "mean_mae", "ridge_mae"}
    assert b["bayes_mae"] < b["ridge_mae"] < b["mean_mae"]
    assert b["bayes_mae"] <= b["mean_mae"] / 3                 # not noise-dominated
    assert b["ridge_mae"] >= 2.0 * b["bayes_mae"]              # not trivially linear
    y_tr, y_te = data.splits["train"].labels, data.splits["test"].labels
    assert b["mean_mae"] == pytest.approx(np.abs(y_te - y_tr.mean()).mean(), rel=1e-5)


def test_baselines_ordering_classification():
    data = make_benchmark("humor", task="classification", n_train=500, n_valid=20, n_test=400)
    b = baselines(data)
    assert set(b) == {"bayes_acc", "majority_acc", "logistic_acc"}
    assert b["majority_acc"] < b["logistic_acc"] < b["bayes_acc"]
