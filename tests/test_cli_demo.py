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


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["ablate", "--help"]])
def test_help_answers_without_importing_torch(argv):
    import subprocess
    import sys
    code = ("import sys\nfrom fdmer_lite import cli\ntry:\n    cli.main(%r)\nexcept SystemExit as e:\n"
            "    assert e.code == 0, e.code\nassert 'torch' not in sys.modules, 'torch was imported'\n" % argv)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "usage: fdmer-lite" in proc.stdout


def test_the_command_line_honours_fdmer_lite_threads(tmp_path, capsys, monkeypatch):
    import torch

    from fdmer_lite.experiments.runs import set_threads
    seen = []
    monkeypatch.setattr(torch, "set_num_threads", seen.append)
    monkeypatch.setenv("FDMER_LITE_THREADS", "3")
    set_threads()
    assert seen == [3]
    monkeypatch.setenv("FDMER_LITE_THREADS", "two")
    rc = cli.main(["train", "--dataset", "synthetic", "--epochs", "1", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "$FDMER_LITE_THREADS" in err and len(err.splitlines()) == 1
    assert seen == [3] and not (tmp_path / "out" / "complete.json").exists()
