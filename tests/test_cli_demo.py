"""``fdmer-lite demo --fast`` end to end: the files, the terminal output and the report."""

import json

import pytest

from fdmer_lite import cli


@pytest.mark.slow
def test_demo_fast_writes_a_run_and_a_report_that_explains_itself(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["demo", "--fast", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    run = tmp_path / "runs" / "demo-fast"                      # never the full demo's folder
    assert not (tmp_path / "runs" / "demo").exists()
    for name in ("metrics.json", "history.json", "config.json", "model.pt", "report.html"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert "on cpu" in out and "known-factor benchmark" in out and "<synthetic" not in out
    assert f"| FDMER (this run) | {metrics['mae']:.3f} |" in out
    assert "Figure-2 contrast" in out
    report = (run / "report.html").read_text(encoding="utf-8")
    assert report.count('class="caption"') >= 5                  # one per figure and the MAE table
    assert "device used</td><td>cpu" in report and "<td>common_modality_acc</td>" in report
    assert f"{metrics['disc_prob_common']:.2f} on C_m" in report   # the caption reads this run's numbers
    assert report.count("Plotly.newPlot") == 4
