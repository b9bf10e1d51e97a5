"""tools/ship_runs.py, the build tool of the bundled runs: the command line that decides what is
regenerated (nothing trains), and the copies it bundles."""

import json
import sys
from pathlib import Path

import pytest
from tiny_sweep import TINY, A, count_fits  # noqa: F401 (a fixture)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import ship_runs  # noqa: E402


@pytest.fixture
def calls(monkeypatch):
    """Replace each part's shipper with one that records its call and returns a chosen status."""
    seen, status = [], {}

    def fake(part):
        def ship(*args):
            seen.append((part, args))
            return status.get(part, 0)
        return ship

    for part in ("ship_lessons", "ship_sweep", "ship_grid", "ship_projections"):
        monkeypatch.setattr(ship_runs, part, fake(part))
    monkeypatch.setattr(ship_runs, "compact_all", lambda: 0)
    monkeypatch.setattr(ship_runs, "write_report", lambda: seen.append(("write_report", ())))
    return seen, status


def test_all_regenerates_every_part_lessons_before_projections(calls):
    seen, _ = calls
    assert ship_runs.main(["--all", "--workers", "2", "--grid-from", "g", "--sweep-from", "s"]) == 0
    assert [part for part, _ in seen] == ["ship_lessons", "ship_sweep", "ship_grid", "ship_projections",
                                          "write_report"]
    args = dict(seen)
    assert args["ship_lessons"] == (list(ship_runs.LESSON_RUNS), None, 2, False)
    assert args["ship_sweep"] == ("s", 2) and args["ship_grid"] == ("g", 2, True)


def test_all_draws_no_projections_when_a_lesson_run_was_not_shipped(calls, capsys):
    seen, status = calls
    status["ship_lessons"] = 1
    assert ship_runs.main(["--all"]) == 1
    assert "ship_projections" not in [part for part, _ in seen]
    assert "ship_grid" in [part for part, _ in seen]           # the other parts still run
    assert "a lesson run was not shipped" in capsys.readouterr().err


def test_all_reports_a_failed_part(calls):
    _, status = calls
    status["ship_grid"] = 1
    assert ship_runs.main(["--all"]) == 1


@pytest.mark.parametrize("other", ["--check", "--grid", "--sweep", "--projections"])
def test_all_refuses_a_second_mode(calls, capsys, other):
    seen, _ = calls
    with pytest.raises(SystemExit) as exit_:
        ship_runs.main(["--all", other])
    assert exit_.value.code == 2 and "--all" in capsys.readouterr().err and seen == []


def test_without_all_only_the_lesson_runs_are_looked_at(calls):
    seen, _ = calls
    assert ship_runs.main(["--check"]) == 0
    assert [part for part, _ in seen] == ["ship_lessons"]


def test_help_answers():
    import subprocess
    proc = subprocess.run([sys.executable, str(ship_runs.__file__), "--help"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and "--all" in proc.stdout and "usage" in proc.stdout, proc.stderr


# ------------------------------------------------------------------ the copies it bundles


def test_a_slim_copy_keeps_what_the_explorer_reads_and_reads_back_as_float32(tmp_path, count_fits):
    import numpy as np

    from fdmer_lite import sweep as sw
    from fdmer_lite.analysis import load_representations

    made = sw.SweepCache(tmp_path / "made" / TINY.slug, TINY, bundled=None)
    assert not made.fill([A], log=None).failed
    src, ship = made.cell_dir(*A), tmp_path / "ship" / TINY.slug
    ship.mkdir(parents=True)
    (ship / sw.SWEEP_FILE).write_bytes((made.root / sw.SWEEP_FILE).read_bytes())
    ship_runs.bundle_copy(src, ship / src.name, weights=False, half=True, leave_out=("run.json",))
    sw.add_projections(ship / src.name, methods=("pca",), max_points=TINY.max_points, seed=TINY.projection_seed)
    assert not (ship / src.name / "model.pt").exists() and (src / "model.pt").exists()
    record = json.loads((ship / src.name / "complete.json").read_text())
    assert "model.pt" not in record["files"] and record["kind"] == "run" and "float16" in record["slim"]
    with np.load(ship / src.name / "reps.npz") as z:                    # stored half ...
        assert z["C_t"].dtype == np.float16 and z["psi"].dtype == np.float32
    before, after = load_representations(src / "reps.npz"), load_representations(ship / src.name / "reps.npz")
    for m in "tav":                                                     # ... read back as float32
        assert after.common[m].dtype == np.float32
        np.testing.assert_allclose(after.common[m], before.common[m], rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(after.private[m], before.private[m], rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal(after.prediction, before.prediction)
    cache = sw.SweepCache(tmp_path / "mine" / TINY.slug, TINY, bundled=tmp_path / "ship")
    assert cache.fill([A], log=None).bundled == [src.name] and len(count_fits) == 1   # nothing trained
    assert cache.has_projection(*A, "pca")                                            # the bundled one
    assert cache.load(*A).metrics == made.load(*A).metrics
    with pytest.warns(UserWarning, match="holds no model.pt"):           # a run store never loads weights
        from fdmer_lite.experiments.runs import obtain                   # that are not there
        obtain(TINY.config(*A), TINY.make_data(), ship / src.name)
    assert len(count_fits) == 2


def _close(a, b) -> bool:
    """The same structure, every float within 6 significant digits of the other."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return b == pytest.approx(a, rel=1e-5, abs=1e-12)
    return a == b


def test_a_compacted_bundled_run_keeps_its_history_values_record_and_projections(tmp_path, count_fits):
    from fdmer_lite import sweep as sw
    from fdmer_lite.experiments import runstore

    made = sw.SweepCache(tmp_path / "made" / TINY.slug, TINY, bundled=None)
    assert not made.fill([A], log=None).failed
    cell = made.cell_dir(*A)
    made.ensure_projection(*A, "pca")                                   # a sub-folder the record leaves out
    text = (cell / "history.json").read_text()
    before = json.loads(text)
    assert "\n  " in text                                               # written indented
    record = runstore.read_finished(cell)
    other = ship_runs.bundle_copy(cell, tmp_path / "elsewhere", folders=True)   # the source untouched
    assert _close(json.loads((other / "history.json").read_text()), before)
    assert (cell / "history.json").read_text() == text
    assert runstore.read_finished(other)["kind"] == record["kind"] and "slim" not in runstore.read_finished(other)
    assert ship_runs.compact_bundled(cell) is True
    after = (cell / "history.json").read_text()
    assert "\n" not in after and len(after) < 0.9 * len(text) and _close(json.loads(after), before)
    again = runstore.read_finished(cell)                                # sealed again, every file intact
    assert again["files"]["history.json"]["bytes"] == len(after.encode())
    assert set(again["files"]) == set(record["files"]) and again["kind"] == record["kind"]
    assert made.has_projection(*A, "pca") and made.has_projection(*A, "tsne")   # the projections kept
    assert ship_runs.compact_bundled(cell) is False                     # already compact: nothing done
    assert runstore.read_finished(cell)["written"] == again["written"]
    assert not [p for p in cell.parent.iterdir() if ".partial-" in p.name]  # no partial folder left
