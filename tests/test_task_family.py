"""The generated task family of benchmarks/task_family.py: seeded, and the label's sign is
carried by the marker after the window, not by one before it. And its runner: the models of
``--models``, the ratio column, finished runs reused (on a tiny task, in seconds)."""

import sys
from pathlib import Path

import numpy as np
import pytest

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



# ---------------------------------------------------------------- the runner

import task_family  # noqa: E402
from fdmer_lite.config import get_preset  # noqa: E402


def test_models_split_at_commas_and_overrides_stay_with_their_preset():
    assert task_family.split_models("baseline,synthetic,synthetic:loss.beta=0,loss.gamma=0, fast") == [
        "baseline", "synthetic", "synthetic:loss.beta=0,loss.gamma=0", "fast"]
    assert task_family.split_models("mosi:train.device=cuda:0,model.dropout=0.2") == [
        "mosi:train.device=cuda:0,model.dropout=0.2"]
    with pytest.raises(ValueError, match="follows a preset"):
        task_family.split_models("baseline,loss.beta=0")


def test_an_override_is_json_else_a_string_on_top_of_the_preset():
    assert task_family.model_config("baseline") is None
    got = task_family.model_config("synthetic:loss.beta=0,train.early_stop=mae,model.mlp=default,"
                                   "train.lr=5e-4,model.attn_scale=false")
    want = get_preset("synthetic")
    want.loss.beta, want.train.early_stop, want.model.mlp = 0, "mae", "default"
    want.train.lr, want.model.attn_scale, want.train.device = 5e-4, False, "cpu"
    assert got == want and type(got.loss.beta) is int and got.loss.gamma == want.loss.gamma
    assert task_family.model_config("fast") == get_preset("fast").replace(train={"device": "cpu"})
    for bad, message in (("synthetic:loss.betta=0", "no field 'betta'"), ("nopreset", "unknown preset"),
                         ("synthetic:beta=0", "section.field=value"), ("synthetic:data.x=1", "section.field=value"),
                         ("synthetic:train.seed=3", "set by --seeds")):
        with pytest.raises(ValueError, match=message):
            task_family.model_config(bad)


def test_the_ratio_is_the_mean_of_per_seed_ratios_over_the_seeds_both_ran():
    rows = {"a": {0: {"mae": 1.0, "common_gap": 0.5}, 1: {"mae": 3.0, "common_gap": 1.5}, 2: None},
            "ref": {0: {"mae": 2.0}, 1: {"mae": 1.0}, 2: {"mae": 5.0}},
            task_family.REFERENCES[0]: {s: {"mae": 4.0} for s in (0, 1, 2)}}
    lines = task_family.table("t", [0, 1, 2], rows, "ref").splitlines()
    cells = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")[1:]] for line in lines[4:]}
    # (1/2 + 3/1) / 2, seed 2 failed; not the ratio of the means (4/3)
    assert cells["`a`"] == ["1.000", "3.000", "failed", "2.000", "1.75", "1.000", "-", "-", "-"]
    assert cells["`ref`"] == ["2.000", "1.000", "5.000", "2.667", "1.00", "-", "-", "-", "-"]
    assert cells[task_family.REFERENCES[0]][3:5] == ["4.000", f"{(2 + 4 + 0.8) / 3:.2f}"]


def test_the_runner_prints_the_table_and_skips_finished_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(task_family.TASKS, "tiny", TaskSpec("tiny", (48, 16, 16), (6, 5, 4), length=12))
    argv = ["--tasks", "tiny", "--seeds", "0,1", "--models", "baseline,fast:train.epochs=1,fast:train.epochs=1,loss.beta=0",
            "--ratio-to", "baseline", "--out", str(tmp_path)]
    assert task_family.main(argv) == 0
    first = capsys.readouterr().out
    table = (tmp_path / "table.md").read_text()
    assert table in first and "| `fast:train.epochs=1,loss.beta=0` |" in table
    lines = table.splitlines()
    head = lines.index(next(line for line in lines if line.startswith("| model |")))
    assert lines[head].count("|") == lines[head + 1].count("|"), "the separator row has one cell per column"
    runs = sorted(p.parent.name for p in tmp_path.glob("tiny/seed*/*/complete.json"))
    assert runs == sorted(["fast_train.epochs=1", "fast_train.epochs=1_loss.beta=0"] * 2)
    assert sorted(p.parent.name for p in tmp_path.glob("tiny/seed*/baseline.json")) == ["seed0", "seed1"]
    row = next(line for line in table.splitlines() if line.startswith("| `fast:train.epochs=1` |"))
    gap, disc, r2, jumped = (c.strip() for c in row.strip("|").split("|")[-4:])   # metrics.json, history
    assert float(gap) > 0 and 0 < float(disc) < 1 and r2 == jumped == "-"   # no latents; one epoch: no jump
    baseline_row = next(line for line in table.splitlines() if line.startswith("| `baseline` |"))
    assert baseline_row.strip("|").split("|")[4].strip() == "1.00" and baseline_row.endswith("| - | - | - | - |")

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")
    monkeypatch.setattr(task_family, "train_baseline", no_training)
    monkeypatch.setattr("fdmer_lite.train.Trainer.fit", no_training)
    assert task_family.main(argv) == 0
    again = capsys.readouterr().out
    assert again.count("finished run reused") == 6 and (tmp_path / "table.md").read_text() == table


def test_bad_runner_options_stop_with_one_message_and_status_2(capsys):
    for argv, field in ((["--tasks", "nope"], "--tasks"), (["--seeds", "0,x"], "--seeds"),
                        (["--models", "baseline,synthetic:loss.betta=0"], "--models"),
                        (["--models", "baseline,baseline"], "--models"),
                        (["--models", "baseline", "--ratio-to", "synthetic"], "--ratio-to")):
        with pytest.raises(SystemExit) as err:
            task_family.main(argv)
        assert err.value.code == 2 and f"error: {field}" in capsys.readouterr().err, argv


def test_jump_is_the_largest_rise_of_l_all_over_its_lowest_so_far_after_the_fifth_epoch():
    history = [{"train": {"all": v}} for v in (5.0, 4.0, 3.0, 2.0, 1.5, 1.4, 1.2, 3.0, 1.1)]
    assert task_family.jump(history) == pytest.approx(3.0 / 1.2)     # epoch 8 against epoch 7's 1.2
    falling = [{"train": {"all": v}} for v in (5.0, 4.0, 3.0, 2.0, 1.5, 1.4, 1.3)]
    assert task_family.jump(falling) == pytest.approx(1.4 / 1.5)      # below 1: never rose
    early = [{"train": {"all": v}} for v in (1.0, 9.0, 1.0, 1.0, 1.0, 0.9)]
    assert task_family.jump(early) == pytest.approx(0.9)               # a rise before epoch 6 does not count


def test_the_known_factor_tasks_are_the_demos_data_and_a_seeded_mosi_sized_set(monkeypatch):
    calls = []
    monkeypatch.setattr(task_family, "make_benchmark", lambda *a, **k: calls.append((a, k)) or "data")
    assert task_family.make_task("known_factor", seed=3) == "data"
    assert calls == [(("emotion",), {})]                     # the demo's data, whatever the seed
    monkeypatch.undo()
    a, b = (task_family.make_task("mosi_known_humor", seed=s) for s in (0, 1))
    assert [len(a.splits[k]) for k in ("train", "valid", "test")] == [1284, 229, 686]
    assert a.fingerprint() != b.fingerprint() and "bayes_mae" in a.info
