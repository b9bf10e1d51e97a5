"""benchmarks/ship_runs.py: the command line that decides what is regenerated (nothing trains)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
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
