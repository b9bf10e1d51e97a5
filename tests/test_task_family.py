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

