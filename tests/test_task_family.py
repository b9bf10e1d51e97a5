"""The generated task family of benchmarks/task_family.py: seeded, and the label's sign is
carried by the marker after the window, not by one before it."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from task_family import TaskSpec, make_task  # noqa: E402

TINY = TaskSpec("tiny", (40, 10, 10), (6, 5, 4), length=12, noise=(0.0, 0.0, 0.0))


def test_the_same_seed_gives_the_same_data_and_another_seed_other_data():
    a, b, c = make_task(TINY, 3), make_task(TINY, 3), make_task(TINY, 4)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_the_marker_after_the_window_flips_the_label_and_one_before_it_does_not():
    from dataclasses import replace
    base = make_task(replace(TINY, p_flip=0.0, p_distractor=0.0), 0)
    flipped = make_task(replace(TINY, p_flip=1.0, p_distractor=0.0), 0)
    distracted = make_task(replace(TINY, p_flip=0.0, p_distractor=1.0), 0)
    y0, y1 = base.splits["train"].labels, flipped.splits["train"].labels
    np.testing.assert_array_equal(y1, -y0)
    np.testing.assert_array_equal(distracted.splits["train"].labels, y0)
    x0, x1 = base.splits["train"].features["t"], flipped.splits["train"].features["t"]
    changed = np.abs(x1 - x0).sum(axis=2) > 0                     # (N, L): one marker step each
    assert (changed.sum(axis=1) == 1).all()
    for i in range(len(y0)):                                      # ... right after the window
        window = np.flatnonzero(np.abs(x0[i]).sum(axis=1) > 0)
        assert np.flatnonzero(changed[i])[0] == window.max() + 1


def test_the_plain_baseline_takes_a_depth_per_modality_and_a_feed_forward_width():
    from task_family import PlainBaseline
    model = PlainBaseline({"t": 6, "a": 5, "v": 4}, length=12, dim=16, layers={"t": 3, "a": 1, "v": 2},
                          heads=2, ff_mult=4)
    assert {m: len(model.enc[m].layers) for m in "tav"} == {"t": 3, "a": 1, "v": 2}
    assert model.enc["t"].layers[0].linear1.out_features == 64
    uniform = PlainBaseline({"t": 6, "a": 5}, length=12, dim=16, layers=2, heads=2)
    assert [len(uniform.enc[m].layers) for m in "ta"] == [2, 2]
    assert uniform.enc["a"].layers[0].linear1.out_features == 32


def test_a_weight_seed_other_than_the_data_seed_is_a_run_of_its_own():
    import family_runs
    assert family_runs.key("mosi_spread", 2, "baseline") == "mosi_spread|2|baseline"
    assert family_runs.key("mosi_spread", 2, "baseline", init=2) == "mosi_spread|2|baseline"
    assert family_runs.key("mosi_spread", 2, "baseline", init=12) == "mosi_spread|2|baseline|init12"
    store = {"t|2|synthetic": {"task": "t", "seed": 2, "model": "synthetic",
                               "config": family_runs.variant_config("synthetic", 2).to_dict()}}
    assert family_runs.find(store, "t", 2, "synthetic") is store["t|2|synthetic"]
    assert family_runs.find(store, "t", 2, "synthetic", init=12) is None      # other weights
    assert family_runs.find(store, "t", 12, "synthetic") is None              # other data


def _leaves(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_leaves(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k: v})
    return out


def test_a_cut_variant_is_its_preset_stopped_early_and_mosi_reg_a_shorter_budget():
    import family_runs
    for cut, preset in (("mosei_cut", "mosei"), ("mosi_cut40", "mosi")):
        assert family_runs.variant_config(cut, 3) == family_runs.variant_config(preset, 3), cut
        assert family_runs.CUT[cut] < family_runs.variant_config(cut, 3).train.epochs
    a = _leaves(family_runs.variant_config("mosi_reg", 3).to_dict())
    b = _leaves(family_runs.variant_config("mosi", 3).to_dict())
    assert {k: (a[k], b[k]) for k in a if a[k] != b[k]} == {"train.epochs": (40, 120)}
    # and mosi_before differs from today's mosi preset exactly in its regularisation reading
    a = _leaves(family_runs.variant_config("mosi_before", 3).to_dict())
    b = _leaves(family_runs.variant_config("mosi", 3).to_dict())
    assert {k: (a[k], b[k]) for k in a if a[k] != b[k]} == {
        "model.dropout": (0.1, 0.3), "train.weight_decay": (0.0, 1e-3), "train.early_stop": ("task_loss", "auto")}


def test_run_fdmer_stops_a_cut_variant_after_its_epochs(monkeypatch):
    import family_runs
    monkeypatch.setitem(family_runs.CUT, "synthetic", 2)
    result = family_runs.run_fdmer(make_task(TINY, seed=0), "synthetic", seed=0)
    assert [c["epoch"] for c in result["curve"]] == [1, 2] and result["cut_at"] == 2
    assert result["config"]["train"]["epochs"] > 2            # the preset's budget, cut short


def test_a_cut_run_is_not_found_as_its_presets_full_run_nor_the_other_way():
    import family_runs
    config = family_runs.variant_config("mosi", 0).to_dict()
    full = {"task": "t", "seed": 0, "model": "mosi", "config": config}
    cut = {"task": "t", "seed": 0, "model": "mosi_cut40", "config": config, "cut_at": 40}
    assert family_runs.find({"t|0|mosi_cut40": cut}, "t", 0, "mosi") is None
    assert family_runs.find({"t|0|mosi": full}, "t", 0, "mosi_cut40") is None
    both = {"t|0|mosi": full, "t|0|mosi_cut40": cut}
    assert family_runs.find(both, "t", 0, "mosi") is full
    assert family_runs.find(both, "t", 0, "mosi_cut40") is cut
