"""The run engine: deterministic run directories, resuming, failures, and Ray == local processes."""

import csv
import io
import json

import pytest

from fdmer_lite.ablations import run_ablation
from fdmer_lite.config import get_preset
from fdmer_lite.experiments.specs import COMPLETE_MARKER, ERROR_FILE, DataSpec, RunSpec, run_all

TINY = DataSpec("synthetic", options=dict(kind="emotion", n_train=48, n_valid=16, n_test=24, seq_len=8, seed=0))


def _config(**train):
    return get_preset("fast").replace(train={"epochs": 1, "device": "cpu", **train})


def test_run_ids_are_deterministic_and_follow_the_configuration(tmp_path):
    a = RunSpec.create(_config(seed=1), TINY, tmp_path, "full-seed1")
    b = RunSpec.create(_config(seed=1), TINY, tmp_path, "full-seed1")
    c = RunSpec.create(_config(seed=2), TINY, tmp_path, "full-seed1")
    quiet = RunSpec.create(_config(seed=1, progress=True), TINY, tmp_path, "full-seed1")
    other_data = RunSpec.create(_config(seed=1), DataSpec("synthetic", options={"kind": "humor"}),
                                tmp_path, "full-seed1")
    assert a.run_id == b.run_id == quiet.run_id and a.out_dir == b.out_dir
    assert len({a.run_id, c.run_id, other_data.run_id}) == 3
    assert RunSpec.from_dict(json.loads(json.dumps(a.to_dict()))) == a


def test_a_resumed_run_skips_finished_runs_and_redoes_partial_ones(tmp_path):
    specs = [RunSpec.create(_config(seed=s), TINY, tmp_path, f"r-seed{s}") for s in (1, 2, 3)]
    first = run_all(specs, workers=0, progress=False)
    assert sorted(first.ran) == sorted(s.run_id for s in specs) and not first.skipped
    before = {s.run_id: (s.path / COMPLETE_MARKER).stat().st_mtime_ns for s in specs}
    # interrupt run 2: its completion marker is gone and it left some junk behind
    (specs[1].path / COMPLETE_MARKER).unlink()
    (specs[1].path / "half-written.tmp").write_text("junk")
    second = run_all(specs, workers=0, progress=False)
    assert len(second.skipped) == 2 and second.ran == [specs[1].run_id]
    assert not (specs[1].path / "half-written.tmp").exists()          # partial dir wiped
    assert specs[1].is_complete()
    for s in (specs[0], specs[2]):                                    # finished runs untouched
        assert (s.path / COMPLETE_MARKER).stat().st_mtime_ns == before[s.run_id]
    third = run_all(specs, workers=0, progress=False)
    assert len(third.skipped) == 3 and not third.ran


def test_a_failing_run_is_reported_and_the_others_go_on(tmp_path):
    good = RunSpec.create(_config(), TINY, tmp_path, "good")
    bad = RunSpec.create(_config().replace(model={"fusion": "no-such-fusion"}), TINY, tmp_path, "bad")
    report = run_all([bad, good], workers=0, progress=False)
    assert report.ran == [good.run_id] and list(report.failed) == [bad.run_id]
    assert "no-such-fusion" in report.failed[bad.run_id]
    assert "no-such-fusion" in (bad.path / ERROR_FILE).read_text() and not bad.is_complete()


def _table(path):
    rows = list(csv.DictReader(io.StringIO((path / "table.csv").read_text())))
    timing = ("train_seconds",)
    return [{k: v for k, v in r.items() if not k.startswith(timing)} for r in rows]


def test_ray_gives_the_same_table_as_local_processes(tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'fdmer_lite[ray]'")
    grid = dict(variants="wo_con", seeds=(1, 2), progress=False)
    local = run_ablation(_config(), TINY, out_dir=tmp_path / "local", workers=2, **grid)
    assert len(local.report.ran) == 4 and not local.report.failed
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)   # this machine only
    try:
        remote = run_ablation(_config(), TINY, out_dir=tmp_path / "ray", ray_address="local", **grid)
    finally:
        ray.shutdown()
    assert remote.report.engine.startswith("ray") and len(remote.report.ran) == 4, remote.report.failed
    assert _table(tmp_path / "ray") == _table(tmp_path / "local")
    for run in (tmp_path / "ray").glob("*-seed*"):                   # files came back complete
        assert {"metrics.json", "history.json", "config.json", "model.pt", "run.json"} <= \
            {p.name for p in run.iterdir()}
