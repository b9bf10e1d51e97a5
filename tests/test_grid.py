"""The one grid runner (``experiments.runs.run_grid``): deterministic run folders, resuming,
failures, the bundled runs as a read-only second root, and Ray == local processes."""

import csv
import io
import json

import pytest

from fdmer_lite.ablations import run_ablation
from fdmer_lite.config import get_preset
from fdmer_lite.experiments import runstore
from fdmer_lite.experiments.runs import (ERROR_FILE, RUN_FILE, DataSpec, RunSpec, execute, publish_returned,
                                         run_grid)

TINY = DataSpec("synthetic", options=dict(kind="emotion", n_train=48, n_valid=16, n_test=24, seq_len=8, seed=0))


def _config(**train):
    return get_preset("fast").replace(train={"epochs": 1, "device": "cpu", **train})


def test_run_names_are_deterministic_and_follow_the_configuration(tmp_path):
    a = RunSpec.create(_config(seed=1), TINY, tmp_path, "full-seed1")
    b = RunSpec.create(_config(seed=1), TINY, tmp_path, "full-seed1")
    c = RunSpec.create(_config(seed=2), TINY, tmp_path, "full-seed1")
    quiet = RunSpec.create(_config(seed=1, progress=True), TINY, tmp_path, "full-seed1")
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
