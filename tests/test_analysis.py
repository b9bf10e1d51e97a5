"""The disentanglement scores against hand-built representations whose answer is known."""

import numpy as np
import pytest

from fdmer_lite.analysis import common_gap, factor_r2, modality_probe_accuracy, offset_share


def test_common_gap_matches_loops():
    rng = np.random.default_rng(0)
    C = {m: rng.normal(size=(5, 3)) for m in "tav"}
    spreads = []
    for m in "tav":
        mean = [sum(C[m][b, k] for b in range(5)) / 5 for k in range(3)]
        spreads.append(sum((C[m][b, k] - mean[k]) ** 2 for b in range(5) for k in range(3)) / 5)
    gaps = [sum((C[i][b, k] - C[j][b, k]) ** 2 for b in range(5) for k in range(3)) / 5
            for i, j in (("t", "a"), ("t", "v"), ("a", "v"))]
    expected = (sum(gaps) / 3) / (2 * sum(spreads) / 3)
    assert common_gap(C, "tav") == pytest.approx(expected, rel=1e-12)


def test_common_gap_reads_identical_unrelated_and_separated():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4000, 6))
    assert common_gap({"t": x, "a": x.copy()}, "ta") == pytest.approx(0.0, abs=1e-12)
    unrelated = {"t": x, "a": rng.normal(size=(4000, 6))}
    assert common_gap(unrelated, "ta") == pytest.approx(1.0, abs=0.05)
    apart = {"t": x, "a": x + 10.0}                 # same sample, shifted cloud: 600 / 12 = 50
    assert common_gap(apart, "ta") == pytest.approx(50.0, rel=0.05)


def test_modality_probe_is_at_chance_on_identical_clouds_and_perfect_on_shifted_ones():
    rng = np.random.default_rng(2)
    same = lambda: {m: rng.normal(size=(600, 4)) for m in "tav"}          # noqa: E731
    assert modality_probe_accuracy(same(), same(), "tav") < 0.42           # chance is 1/3
    shifted = lambda: {m: rng.normal(size=(600, 4)) + 3 * i for i, m in enumerate("tav")}  # noqa: E731
    assert modality_probe_accuracy(shifted(), shifted(), "tav") > 0.99


def test_factor_r2_is_one_for_a_linear_code_and_zero_for_noise():
    rng = np.random.default_rng(3)
    Z = rng.normal(size=(800, 4))
    A = rng.normal(size=(4, 16))
    X = Z @ A + 0.01 * rng.normal(size=(800, 16))
    assert factor_r2(X[:600], Z[:600], X[600:], Z[600:]) > 0.99
    noise = rng.normal(size=(800, 16))
    assert factor_r2(noise[:600], Z[:600], noise[600:], Z[600:]) < 0.05


def test_centred_probe_cannot_read_a_per_modality_offset():
    rng = np.random.default_rng(3)
    n, d = 600, 4
    # the modalities differ only by a constant offset: the raw probe reads it, the centred one cannot
    base = lambda: rng.normal(size=(n, d))                                   # noqa: E731
    shift = {"t": 0.0, "a": 3.0, "v": -3.0}
    train = {m: base() + shift[m] for m in "tav"}
    test = {m: base() + shift[m] for m in "tav"}
    assert modality_probe_accuracy(train, test, "tav") > 0.95
    assert modality_probe_accuracy(train, test, "tav", centre=True) < 0.40


def test_offset_share_by_hand():
    x = {"t": np.array([[1.0, 0.0], [3.0, 0.0]]), "a": np.array([[0.0, 1.0], [0.0, -1.0]])}
    # t: mean (2, 0) -> 4; energy (1 + 9) / 2 = 5 -> 0.8.   a: mean 0 -> 0
    assert offset_share(x, "ta") == pytest.approx(0.4)
    assert offset_share({"t": np.ones((5, 3)) * 7}, "t") == pytest.approx(1.0)


def test_probe_on_leading_components_misses_an_offset_in_a_quiet_direction():
    # Each modality: large variation in dims 0-1 (the same distribution for all), and a small but
    # steady per-modality offset in dim 4, where the representations hardly vary.
    rng = np.random.default_rng(3)

    def reps(n):
        out = {}
        for i, m in enumerate("tav"):
            x = rng.normal(scale=0.01, size=(n, 6))
            x[:, :2] = rng.normal(scale=5.0, size=(n, 2))
            x[:, 4] += 0.1 * i
            out[m] = x
        return out

    train, test = reps(1500), reps(600)
    assert modality_probe_accuracy(train, test, "tav") > 0.99                     # every direction
    assert modality_probe_accuracy(train, test, "tav", top_components=2) < 0.42   # dims 0-1 only: chance
    # the projection by hand: the two leading principal directions are dims 0 and 1
    pooled = np.concatenate([train[m] for m in "tav"])
    basis = np.linalg.svd(pooled - pooled.mean(0), full_matrices=False)[2][:2]
    assert np.abs(basis[:, 2:]).max() < 0.01
    with pytest.raises(ValueError, match="top_components"):
        modality_probe_accuracy(train, test, "tav", top_components=7)


def test_knn_probe_reads_what_the_linear_probe_cannot():
    # Equal means, different spreads: no linear classifier beats a constant guess (chance 1/3),
    # but the spread alone tells the modalities apart to neighbours.
    rng = np.random.default_rng(3)
    scale = {"t": 0.2, "a": 1.0, "v": 5.0}

    def reps(n):
        return {m: rng.normal(scale=scale[m], size=(n, 3)) for m in "tav"}

    train, test = reps(1500), reps(600)
    assert modality_probe_accuracy(train, test, "tav") < 0.45
    assert modality_probe_accuracy(train, test, "tav", kind="knn") > 0.85
    with pytest.raises(ValueError, match="kind"):
        modality_probe_accuracy(train, test, "tav", kind="mlp")
