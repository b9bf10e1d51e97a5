"""The run store (``fdmer_lite.experiments.runs.obtain``): a finished run of (config, data), or train it.

Also the one grid runner over it (``run_grid``) and the one thread policy (``set_threads``)."""

import copy
import csv
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from fdmer_lite import config, lessons
from fdmer_lite.ablations import run_ablation
from fdmer_lite.analysis import extract_representations, load_representations
from fdmer_lite.config import get_preset
from fdmer_lite.data.synthetic import make_benchmark
from fdmer_lite.experiments import runs, runstore
from fdmer_lite.experiments.runs import (ERROR_FILE, REPS_FILE, RUN_FILE, DataSpec, RunSpec, data_fingerprint,
                                         execute, obtain, publish_returned, run_grid)
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
    same = runs.find(fast_config.replace(train={"device": "auto"}), tiny_data, tmp_path / "run")
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


# ---------------------------------------------------------------- the grid runner
# The one grid runner (``experiments.runs.run_grid``): deterministic run folders, resuming, failures, the bundled runs as a read-only second root, and Ray == local processes.

TINY = DataSpec("synthetic", options=dict(kind="emotion", n_train=48, n_valid=16, n_test=24, seq_len=8, seed=0))


def _config(**train):
    return get_preset("fast").replace(train={"epochs": 1, "device": "cpu", **train})


def test_run_names_are_deterministic_and_follow_the_configuration(tmp_path):
    a = RunSpec.create(_config(seed=1), TINY, tmp_path, "full-seed1")
    b = RunSpec.create(_config(seed=1), TINY, tmp_path, "full-seed1")
    c = RunSpec.create(_config(seed=2), TINY, tmp_path, "full-seed1")
    old = _config(seed=1).to_dict()
    old["train"]["progress"] = True                      # an old config.json's setting, never learnt
    quiet = RunSpec(f"full-seed1-{runs.config_hash(old, TINY)}", old, TINY, str(tmp_path))
    other_data = RunSpec.create(_config(seed=1), DataSpec("synthetic", options={"kind": "humor"}),
                                tmp_path, "full-seed1")
    assert a.name == b.name == quiet.name and a.path == b.path == tmp_path / a.name
    assert a.name.startswith("full-seed1-") and len({a.name, c.name, other_data.name}) == 3


def test_a_setting_added_later_at_its_default_keeps_the_run_names(tmp_path):
    from fdmer_lite.experiments.runs import config_hash
    cfg = _config(seed=1).replace(model={"aux_scope": "all"}, loss={"con_norm": "sum"}).to_dict()
    old = json.loads(json.dumps(cfg))
    del old["model"]["aux_scope"], old["loss"]["con_norm"]           # as a run saved before they existed
    assert config_hash(old, TINY) == config_hash(cfg, TINY)
    changed = json.loads(json.dumps(cfg))
    changed["loss"]["con_norm"] = "entry"                            # away from the default: a new run
    assert config_hash(changed, TINY) != config_hash(cfg, TINY)
    changed = json.loads(json.dumps(cfg))
    changed["train"]["lr"] = cfg["train"]["lr"] * 2
    assert config_hash(changed, TINY) != config_hash(cfg, TINY)


def test_a_resumed_grid_skips_finished_runs_and_redoes_partial_ones(tmp_path):
    specs = [RunSpec.create(_config(seed=s), TINY, tmp_path, f"r-seed{s}") for s in (1, 2, 3)]
    first = run_grid(specs, log=None)
    assert sorted(first.computed) == sorted(s.name for s in specs) and not first.skipped
    before = {s.name: (s.path / runstore.RECORD).stat().st_mtime_ns for s in specs}
    # interrupt run 2: its completion record is gone and it left some junk behind
    (specs[1].path / runstore.RECORD).unlink()
    (specs[1].path / "half-written.tmp").write_text("junk")
    lines = []
    with pytest.warns(UserWarning, match="the run never finished"):           # named, then trained again
        second = run_grid(specs, log=lines.append)
    assert sorted(second.skipped) == sorted([specs[0].name, specs[2].name]) and second.computed == [specs[1].name]
    assert lines[0] == "2 of 3 run(s) finished before, 1 to train on this process"
    assert lines[-1].startswith("1 computed, 2 skipped (finished before), 0 failed;")
    assert not (specs[1].path / "half-written.tmp").exists()          # the whole folder replaced
    assert specs[1].find() is not None
    for s in (specs[0], specs[2]):                                    # finished runs untouched
        assert (s.path / runstore.RECORD).stat().st_mtime_ns == before[s.name]
    third = run_grid(specs + specs[:1], log=None)                     # a run listed twice runs once
    assert len(third.skipped) == 3 and not third.computed
    record = json.loads((specs[1].path / RUN_FILE).read_text())       # what the run was, and where
    assert record["name"] == specs[1].name and record["config"] == specs[1].config and record["pid"] > 0


def test_a_truncated_metrics_file_makes_the_grid_redo_that_run(tmp_path):
    spec = RunSpec.create(_config(), TINY, tmp_path, "full-seed1")
    assert run_grid([spec], log=None).computed == [spec.name]
    m = spec.path / "metrics.json"
    m.write_text(m.read_text()[:20])                                  # half-written
    with pytest.raises(runstore.RunCorrupt, match="metrics.json: field 'bytes'"):
        runstore.read_finished(spec.path)
    with pytest.warns(UserWarning, match="metrics.json"):
        assert spec.find() is None
    with pytest.warns(UserWarning, match="metrics.json"):
        again = run_grid([spec], log=None)
    assert again.computed == [spec.name] and "mae" in spec.find().metrics


def test_a_failing_run_is_reported_never_published_and_the_others_go_on(tmp_path):
    good = RunSpec.create(_config(), TINY, tmp_path, "good")
    bad = RunSpec.create(_config().replace(model={"fusion": "no-such-fusion"}), TINY, tmp_path, "bad")
    lines = []
    report = run_grid([bad, good], log=lines.append)
    assert report.computed == [good.name] and list(report.failed) == [bad.name]
    assert "no-such-fusion" in report.failed[bad.name]
    assert "no-such-fusion" in (bad.path / ERROR_FILE).read_text() and bad.find() is None
    assert any(line.startswith(f"[1/2] {bad.name}: FAILED") for line in lines)
    again = run_grid([bad, good], log=None)                           # tried again, never reused
    assert list(again.failed) == [bad.name] and again.skipped == [good.name]


def test_a_bundled_run_is_found_in_the_second_root_and_never_written(tmp_path):
    made = RunSpec.create(_config(), TINY, tmp_path / "made", "full")
    assert run_grid([made], log=None).computed == [made.name]
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (made.path).rename(bundle / made.name)                            # "shipped with the package"
    spec = RunSpec.create(_config(), TINY, tmp_path / "mine", "full", bundle=str(bundle))
    assert spec.name == made.name
    report = run_grid([spec], log=None)
    assert report.skipped == report.bundled == [spec.name] and not report.computed
    assert spec.find().path == bundle / spec.name and not (tmp_path / "mine").exists()
    other = RunSpec(spec.name, _config(seed=9).to_dict(), TINY, str(tmp_path / "other"), bundle=str(bundle))
    assert other.find() is None                                       # same folder name, other config
    assert run_grid([other], log=None).computed == [other.name]
    assert other.find().path == other.path                            # trained in its own root
    with open(bundle / spec.name / "metrics.json", "a") as f:         # damaged: passed over
        f.write(" ")
    with pytest.warns(UserWarning, match="metrics.json"):
        assert run_grid([spec], log=None).computed == [spec.name]


def test_returned_files_are_checked_against_their_record_then_published(tmp_path):
    spec = RunSpec.create(_config(), TINY, tmp_path, "full-seed1")
    result = execute(spec, return_files=True)                         # what a Ray node sends back
    assert "error" not in result and runstore.RECORD in result["files"]
    assert not spec.path.exists()                                     # trained elsewhere
    forged = dict(result["files"], **{"metrics.json": b'{"mae": 0.0}'})
    with pytest.raises(runstore.RunCorrupt, match="metrics.json"):
        publish_returned(spec, forged)
    assert not spec.path.exists()
    publish_returned(spec, result["files"])
    assert spec.find().metrics == result["metrics"] and (spec.path / RUN_FILE).is_file()


def _table(path):
    rows = list(csv.DictReader(io.StringIO((path / "table.csv").read_text())))
    timing = ("train_seconds",)
    return [{k: v for k, v in r.items() if not k.startswith(timing)} for r in rows]


def test_ray_gives_the_same_table_as_local_processes(tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'fdmer_lite[ray]'")
    grid = dict(variants="wo_con", seeds=(1, 2), progress=False, log=None)
    local = run_ablation(_config(), TINY, out_dir=tmp_path / "local", workers=2, **grid)
    assert len(local.report.computed) == 4 and not local.report.failed
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)   # this machine only
    try:
        remote = run_ablation(_config(), TINY, out_dir=tmp_path / "ray", ray_address="local", **grid)
    finally:
        ray.shutdown()
    assert remote.report.engine.startswith("ray") and len(remote.report.computed) == 4, remote.report.failed
    assert _table(tmp_path / "ray") == _table(tmp_path / "local")
    for run in (tmp_path / "ray").glob("*-seed*"):                   # files came back complete
        assert {"metrics.json", "history.json", "config.json", "model.pt", "run.json"} <= \
            {p.name for p in run.iterdir()}


# ---------------------------------------------------------------- the thread policy
# The one thread policy: ``config.thread_count`` ($FDMER_LITE_THREADS, else ``config.default_thread_count``), applied by ``experiments.runs.set_threads`` when a run or an entry point starts; nothing written to the environment at import.

@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_the_count_is_the_variable_else_the_default(monkeypatch):
    monkeypatch.delenv("FDMER_LITE_THREADS", raising=False)
    assert config.thread_count() == config.default_thread_count() == 1
    monkeypatch.setenv("FDMER_LITE_THREADS", " 3 ")
    assert config.thread_count() == 3
    monkeypatch.setenv("FDMER_LITE_THREADS", "")
    assert config.thread_count() == 1
    monkeypatch.setattr(config, "default_thread_count", lambda: 5)     # the one place to change it
    assert config.thread_count() == 5


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5"])
def test_a_bad_variable_is_refused_by_name(monkeypatch, value):
    monkeypatch.setenv("FDMER_LITE_THREADS", value)
    with pytest.raises(ValueError, match=r"\$FDMER_LITE_THREADS: expected a whole number >= 1"):
        config.thread_count()


def test_the_command_line_the_notebooks_and_every_run_apply_the_same_policy(
        monkeypatch, restore_threads, tiny_data, fast_config, tmp_path):
    seen = []
    monkeypatch.setattr(torch, "set_num_threads", seen.append)
    monkeypatch.setenv("FDMER_LITE_THREADS", "3")
    assert runs.set_threads() == 3
    for fast in ("0", "1"):                                            # FAST mode picks no count of its own
        monkeypatch.setenv("FDMER_LITE_FAST", fast)
        lessons.setup(verbose=False)
    runs.obtain(fast_config.replace(train={"epochs": 1}), tiny_data, tmp_path / "run")
    assert seen == [3, 3, 3, 3]
    monkeypatch.delenv("FDMER_LITE_THREADS")
    runs.obtain(fast_config.replace(train={"epochs": 1}), tiny_data, tmp_path / "run")   # found: still set
    assert seen[-1] == config.default_thread_count()


def test_importing_the_package_writes_nothing_to_the_environment():
    code = ("import json, os\nbefore = dict(os.environ)\n"
            "import fdmer_lite, fdmer_lite.config, fdmer_lite.cli, fdmer_lite.lessons, fdmer_lite.sweep\n"
            "print(json.dumps({k: v for k, v in os.environ.items() if before.get(k) != v}))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMP_")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {}
