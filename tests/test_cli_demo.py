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
    assert "<pre>" not in report and "<h2>The paper's Figure-2 contrast</h2><table>" in report


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


def test_the_reports_figure_2_contrast_is_an_html_table_not_raw_markdown():
    contrast = ("| run | C_m modality probe | common_gap |\n|---|---|---|\n"
                "| this run | 0.512 | 0.031 |\n| losses off | 0.990 | - |\n\n"
                "The adversary lowers the probe: 0.512 against 0.990 <without> the losses.")
    page = cli.markdown_html(contrast)
    assert "<pre>" not in page and "|---|" not in page
    assert page.startswith("<table><thead><tr><th>run</th><th>C_m modality probe</th><th>common_gap</th>")
    assert "<tr><td>this run</td><td>0.512</td><td>0.031</td></tr>" in page
    assert "<tr><td>losses off</td><td>0.990</td><td>-</td></tr></tbody></table>" in page
    assert page.endswith("<p>The adversary lowers the probe: 0.512 against 0.990 &lt;without&gt; the losses.</p>")
