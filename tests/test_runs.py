"""The run store (``fdmer_lite.experiments.runs.obtain``): a finished run of (config, data), or train it."""

import copy
import json

import numpy as np
import pytest
import torch

from fdmer_lite.analysis import extract_representations, load_representations
from fdmer_lite.data.synthetic import make_benchmark
from fdmer_lite.experiments import runs, runstore
from fdmer_lite.experiments.runs import REPS_FILE, data_fingerprint, obtain
from fdmer_lite.train import load_checkpoint


def test_a_run_writes_the_contract_files(tiny_data, fast_config, tmp_path):
    m = obtain(fast_config, tiny_data, tmp_path, retrain=True).metrics
    for name in ("metrics.json", "history.json", "config.json", "model.pt"):
        assert (tmp_path / name).is_file()
    saved = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("mae", "corr", "acc7", "acc5", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0",
                "bayes_mae", "mean_mae", "ridge_mae", "common_modality_acc", "private_modality_acc",
                "common_factor_r2", "private_factor_r2", "disc_prob_common"):
        assert key in saved, key
    assert saved["mae"] == pytest.approx(m["mae"])
    ckpt = load_checkpoint(tmp_path / "model.pt")              # weights_only=True
    assert ckpt["widths"] == tiny_data.widths


def test_a_matching_run_is_reused_and_any_change_retrains(tiny_data, fast_config, tmp_path):
    a = obtain(fast_config, tiny_data, tmp_path).trainer
    stamp = (tmp_path / "model.pt").stat().st_mtime_ns
    b = obtain(fast_config, tiny_data, tmp_path).trainer
    assert (tmp_path / "model.pt").stat().st_mtime_ns == stamp          # not retrained
    pa, pb = a.predict("test")[0], b.predict("test")[0]
    np.testing.assert_allclose(pa, pb, rtol=1e-5, atol=1e-6)
    other = make_benchmark("emotion", n_train=96, n_valid=32, n_test=48, seq_len=12, seed=1)
    obtain(fast_config, other, tmp_path)
    assert (tmp_path / "model.pt").stat().st_mtime_ns != stamp          # other data: retrained
    stamp = (tmp_path / "model.pt").stat().st_mtime_ns
    c = obtain(fast_config.replace(loss={"beta": 0.5}), other, tmp_path).trainer
    assert (tmp_path / "model.pt").stat().st_mtime_ns != stamp          # config changed: retrained
    assert c.config.loss.beta == 0.5


def test_other_numbers_of_the_same_shape_retrain(tiny_data, fast_config, tmp_path):
    obtain(fast_config, tiny_data, tmp_path)
    stamp = (tmp_path / "model.pt").stat().st_mtime_ns
    other = copy.deepcopy(tiny_data)                 # same name, source, sizes, widths, Bayes floor
    other.splits["train"].labels[0] += 0.5
    assert data_fingerprint(other) != data_fingerprint(tiny_data)
    obtain(fast_config, other, tmp_path)
    assert (tmp_path / "model.pt").stat().st_mtime_ns != stamp          # retrained, not reused
    saved = json.loads((tmp_path / "config.json").read_text())["fingerprint"]
    assert saved["content"] == other.fingerprint() != tiny_data.fingerprint()


def test_the_reference_scores_are_computed_once_per_data(tiny_data, fast_config, tmp_path, monkeypatch):
    calls = []
    real = runs.baselines
    monkeypatch.setattr(runs, "baselines", lambda data: calls.append(1) or real(data))
    data = make_benchmark("emotion", n_train=64, n_valid=32, n_test=32, seq_len=8, seed=5)
    a = obtain(fast_config, data, tmp_path / "a", scores=False, retrain=True).metrics
    b = obtain(fast_config.replace(train={"seed": 1}), data, tmp_path / "b", scores=False, retrain=True).metrics
    assert len(calls) == 1
    assert a["ridge_mae"] == b["ridge_mae"] == pytest.approx(real(data)["ridge_mae"])


def test_obtain_says_whether_it_loaded_or_trained(tiny_data, fast_config, tmp_path):
    first = obtain(fast_config, tiny_data, tmp_path / "r")
    again = obtain(fast_config, tiny_data, tmp_path / "r")
    assert again.metrics == json.loads((tmp_path / "r" / "metrics.json").read_text())
    forced = obtain(fast_config, tiny_data, tmp_path / "r", retrain=True)
    assert (first.loaded, again.loaded, forced.loaded) == (False, True, False)
    assert again.history == first.history and again.name == "r"


def test_stored_representations_are_those_of_the_trained_model(tiny_data, fast_config, tmp_path):
    run = obtain(fast_config, tiny_data, tmp_path / "r", representations=True)
    stored = load_representations(tmp_path / "r" / REPS_FILE)
    fresh = extract_representations(run.model, tiny_data, "test")          # a second pass, here
    for m in tiny_data.modalities:
        np.testing.assert_array_equal(stored.common[m], fresh.common[m])
        np.testing.assert_array_equal(stored.disc_prob_common[m], fresh.disc_prob_common[m])
    np.testing.assert_array_equal(stored.prediction, fresh.prediction)
    assert REPS_FILE in runstore.read_finished(tmp_path / "r")["files"]     # sealed with the run


def test_finish_adds_files_before_the_seal_and_a_sub_folder_is_left_out(tiny_data, fast_config, tmp_path):
    def finish(tmp):
        (tmp / "note.json").write_text(json.dumps({"mae": json.loads((tmp / "metrics.json").read_text())["mae"]}))
        (tmp / "later").mkdir()
        (tmp / "later" / "grows.txt").write_text("x")
    run = obtain(fast_config, tiny_data, tmp_path / "r", finish=finish)
    record = runstore.read_finished(tmp_path / "r")
    assert "note.json" in record["files"] and not any(f.startswith("later") for f in record["files"])
    assert json.loads((tmp_path / "r" / "note.json").read_text())["mae"] == run.metrics["mae"]
    (tmp_path / "r" / "later" / "grows.txt").write_text("changed after publishing")
    runstore.read_finished(tmp_path / "r")                                  # still intact


def test_a_checkpoint_that_no_longer_fits_the_model_is_retrained(tiny_data, fast_config, tmp_path):
    out = tmp_path / "r"
    obtain(fast_config, tiny_data, out)
    ckpt = load_checkpoint(out / "model.pt")
    ckpt["model_state"] = {k: v for k, v in ckpt["model_state"].items() if "head" not in k}
    torch.save(ckpt, out / "model.pt")
    runstore.seal(out, {"kind": "run"})                  # intact by its record, yet not loadable
    with pytest.warns(UserWarning, match="no longer fits the model"):
        run = obtain(fast_config, tiny_data, out)
    assert not run.loaded and "head.0.weight" in load_checkpoint(out / "model.pt")["model_state"]


def test_find_looks_in_the_folder_then_in_the_bundle_and_never_writes(tiny_data, fast_config, tmp_path):
    bundled = obtain(fast_config, tiny_data, tmp_path / "bundle" / "r")
    assert runs.find(fast_config, tiny_data, tmp_path / "mine" / "r") is None
    found = runs.find(fast_config, tiny_data, tmp_path / "mine" / "r", bundled=tmp_path / "bundle" / "r")
    assert found.path == bundled.path and found.metrics == bundled.metrics and not (tmp_path / "mine").exists()
    np.testing.assert_allclose(found.trainer.predict("test")[0], bundled.trainer.predict("test")[0], rtol=1e-5, atol=1e-6)
    own = obtain(fast_config, tiny_data, tmp_path / "mine" / "r", retrain=True)
    assert runs.find(fast_config, tiny_data, own.path, bundled=bundled.path).path == own.path   # the user's first
    slim = runs.find(fast_config, tiny_data, tmp_path / "x", bundled=bundled.path, weights=False)
    assert slim.trainer is None and slim.history == bundled.history and slim.metrics == bundled.metrics
    assert runs.find(fast_config.replace(train={"seed": 7}), tiny_data, own.path, bundled=bundled.path) is None
    reused = obtain(fast_config, tiny_data, tmp_path / "third", bundled=bundled.path)
    assert reused.loaded and reused.path == bundled.path and not (tmp_path / "third").exists()


def test_find_loads_only_a_matching_finished_run_and_never_trains(tiny_data, fast_config, tmp_path):
    assert runs.find(fast_config, tiny_data, tmp_path / "none") is None
    made = obtain(fast_config, tiny_data, tmp_path / "run")
    stamp = (tmp_path / "run" / "model.pt").stat().st_mtime_ns
    same = runs.find(fast_config.replace(train={"progress": True, "device": "cpu"}), tiny_data, tmp_path / "run")
    assert same is not None and same.loaded and same.metrics == made.metrics
    np.testing.assert_allclose(same.trainer.predict("test")[0], made.trainer.predict("test")[0], rtol=1e-5, atol=1e-6)
    assert runs.find(fast_config.replace(train={"seed": 5}), tiny_data, tmp_path / "run") is None
    assert runs.find(fast_config.replace(loss={"gamma": 0.0}), tiny_data, tmp_path / "run") is None
    assert (tmp_path / "run" / "model.pt").stat().st_mtime_ns == stamp                 # nothing written
    assert runs.comparable(fast_config) == runs.comparable(fast_config.replace(train={"device": "cuda"}))
    assert runs.comparable(fast_config) != runs.comparable(fast_config.replace(train={"lr": 0.5}))


def test_a_run_saved_before_an_opt_in_setting_existed_still_matches(fast_config):
    at_default = fast_config.replace(train={"early_stop": "task_loss"})     # the field's default
    saved = at_default.to_dict()
    del saved["train"]["early_stop"]                   # a setting added after the run was saved
    assert runs.comparable(saved) == runs.comparable(at_default)
    assert runs.comparable(saved) != runs.comparable(at_default.replace(train={"early_stop": "mae"}))
    assert runs.comparable(saved) != runs.comparable(at_default.replace(train={"early_stop": "auto"}))
    gone = fast_config.to_dict()
    gone["train"]["disc_lr_mult"] = 1.0                # a setting the code no longer has
    assert runs.comparable(gone) != runs.comparable(fast_config)
