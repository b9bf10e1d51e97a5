"""The beta/gamma sweep cache (``fdmer_lite.sweep``): cells, layout, resuming, the command line."""

import json
import shutil
import subprocess

import pytest
from tiny_sweep import A, B, C, RUN_FILES, TINY, count_fits, filled, no_training  # noqa: F401 (fixtures)

from fdmer_lite import cli
from fdmer_lite import sweep as sw
from fdmer_lite.experiments import runs


# ------------------------------------------------------------------------ names and the layout


def test_cell_names_round_trip_and_reject_bad_weights():
    assert sw.cell_name(0.02, 0.02) == "beta=0.02_gamma=0.02"
    assert sw.cell_name(0, 2) == "beta=0_gamma=2" == sw.cell_name(-0.0, 2.0)
    assert sw.cell_name(0.020000000000000004, 1e-5) == "beta=0.02_gamma=1e-05"
    assert sw.parse_cell_name("beta=0.002_gamma=0.2") == (0.002, 0.2)
    assert sw.parse_cell_name("spec.json") is None
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite and >= 0"):
            sw.cell_name(bad, 0.02)
    assert len(sw.grid(sw.DEFAULT_VALUES, sw.DEFAULT_VALUES)) == 25
    plus = sw.cross(sw.DEFAULT_VALUES, sw.DEFAULT_VALUES, center=(0.02, 0.02))
    assert plus[0] == (0.02, 0.02) and len(plus) == 9 and len(set(plus)) == 9
    assert all(b == 0.02 or g == 0.02 for b, g in plus)
    assert 0.0 in sw.DEFAULT_VALUES and 0.0 in sw.FAST_VALUES


def test_cache_layout(filled):
    root = filled.root
    assert json.loads((root / "spec.json").read_text())["spec"] == TINY.to_dict()
    assert {p.name for p in root.iterdir()} == {"spec.json", ".locks", sw.cell_name(*A), sw.cell_name(*B)}
    for beta, gamma in (A, B):
        d = root / sw.cell_name(beta, gamma)
        for f in RUN_FILES + ("reps.npz", "cell.json", "projections/index.json", "complete.json"):
            assert (d / f).is_file(), f
        assert len(list((d / "projections").glob("tsne-*.npy"))) == 1
        info = json.loads((d / "cell.json").read_text())
        assert (info["beta"], info["gamma"]) == (beta, gamma) and info["seconds"] > 0
        assert json.loads((d / "config.json").read_text())["config"]["loss"]["beta"] == beta
        assert filled.has_projection(beta, gamma, "tsne")
        assert not filled.has_projection(beta, gamma, "umap")
    cell = filled.load(*B)
    reps = cell.reps
    assert reps.modalities == "tav" and reps.psi_names == ("C", "P_t", "P_a", "P_v")
    assert reps.common["t"].shape == (32, 16) and reps.psi.shape == (32, 4)
    assert reps.disc_prob_common["a"].shape == (32, 3) and len(reps.ids) == 32
    assert {"mae", "bayes_mae", "disc_prob_common", "common_modality_acc"} <= set(cell.metrics)
    assert filled.finished() == sorted([A, B])
    assert filled.load(*B) is cell                               # a revisit is read from memory


def test_opening_a_cache_with_another_spec_is_an_error(filled):
    other = sw.SweepSpec(**{**TINY.to_dict(), "max_points": 30})
    with pytest.raises(sw.SpecMismatch, match="max_points"):
        sw.SweepCache(filled.root, other)
    assert sw.SweepCache(filled.root).spec == TINY            # no spec given: the stored one


# ------------------------------------------------------------------------ resuming


def test_fill_skips_finished_cells_and_restarts_interrupted_ones(tmp_path, count_fits, monkeypatch):
    cache = sw.SweepCache(tmp_path / "cache", TINY)
    first = cache.fill([A, B], log=None)
    assert len(first["computed"]) == 2 and len(count_fits) == 2

    # A crash in the middle of a cell leaves no finished folder and no partial one.
    real_write = runs._write_run

    def crash(*args, **kwargs):
        real_write(*args, **kwargs)
        raise KeyboardInterrupt                              # after the run files were written
    monkeypatch.setattr(runs, "_write_run", crash)
    with pytest.raises(KeyboardInterrupt):
        cache.compute(*C)
    monkeypatch.setattr(runs, "_write_run", real_write)
    assert not cache.has(*C) and not list(cache.root.glob(".*.partial-*"))

    # A killed process leaves its partial folder behind: the next fill deletes it.
    dead = subprocess.Popen(["true"])
    dead.wait()                                                # reaped: its pid is free
    stale = cache.root / f".{sw.cell_name(*C)}.partial-{dead.pid}-abc123"
    stale.mkdir()
    (stale / "model.pt").write_bytes(b"half a checkpoint")
    count_fits.clear()
    logs = []
    again = cache.fill([A, B, C], log=logs.append)
    assert again["skipped"] == [A, B] and again["computed"] == [C]
    assert len(count_fits) == 1                                # only C trained
    assert not stale.exists() and any("interrupted" in line for line in logs)
    assert cache.has(*C)

    count_fits.clear()
    done = cache.fill([A, B, C], log=None)
    assert done["computed"] == [] and len(done["skipped"]) == 3 and count_fits == []


def test_cells_trained_on_changed_data_are_refused(tmp_path):
    cache = sw.SweepCache(tmp_path / "cache", TINY)
    cache.fill([A], log=None)
    spec_file = cache.root / "spec.json"
    recorded = json.loads(spec_file.read_text())["data_fingerprint"]
    assert recorded == TINY.make_data().fingerprint()
    assert json.loads((cache.root / sw.cell_name(*A) / "cell.json").read_text())["data_fingerprint"] == recorded
    # Pretend the generator changed since A was trained: B must not join the cache.
    content = json.loads(spec_file.read_text())
    content["data_fingerprint"] = "0" * 16
    spec_file.write_text(json.dumps(content))
    with pytest.raises(sw.DataChanged, match="data_fingerprint"):
        cache.compute(*B)
    assert not cache.has(*B) and not list(cache.root.glob(".partial-*"))


def test_cli_sweep_fills_then_resumes(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sw, "default_spec", lambda **kwargs: TINY)
    argv = ["sweep", "--dataset", "synthetic", "--beta", "0,0.02", "--gamma", "0.02",
            "--cache", str(tmp_path / "c")]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "0 cell(s) already finished, 2 to compute" in out and "| 0 | 0.02 |" in out
    assert cli.main(argv) == 0
    assert "2 cell(s) already finished, 0 to compute" in capsys.readouterr().out
    assert cli.main(["sweep", "--dataset", "synthetic", "--beta", "-1", "--cache", str(tmp_path / "c")]) == 2
    assert "--beta: expected a finite number >= 0, got -1.0" in capsys.readouterr().err


def test_matrix_puts_each_cells_metric_at_its_beta_row_and_gamma_column(filled):
    # the filled cache holds A = (0.02, 0.02) and B = (0, 0.02); gamma = 0 and beta = 2 are missing
    table = filled.matrix("mae", [0.0, 0.02, 2.0], [0.0, 0.02], title="test MAE").splitlines()
    assert table[0] == "**test MAE** (rows β, columns γ)"
    assert table[2] == "| β \\ γ | 0 | 0.02 |" and table[3] == "|---|---|---|"
    rows = {line.strip("| ").split(" | ")[0]: line.strip("| ").split(" | ")[1:] for line in table[4:]}
    assert list(rows) == ["0", "0.02", "2"] and rows["2"] == ["—", "—"]
    for (beta, gamma), row in ((B, "0"), (A, "0.02")):
        on_disk = json.loads((filled.root / sw.cell_name(beta, gamma) / "metrics.json").read_text())
        assert rows[row] == ["—", f"{on_disk['mae']:.3f}"]
        epochs = filled.matrix("best_epoch", [beta], [gamma]).splitlines()[-1]
        assert epochs == f"| {row} | {on_disk['best_epoch']} |"          # an integer stays one
    assert filled.matrix("no_such_metric", [0.0], [0.02]).splitlines()[-1] == "| 0 | — |"


def test_cli_sweep_prints_the_matrices_of_a_grid_even_when_cells_fail(filled, tmp_path, monkeypatch, capsys):
    root = tmp_path / "copy"
    shutil.copytree(filled.root, root)
    no_training(monkeypatch)                               # the two gamma = 0 cells fail
    monkeypatch.setattr(sw, "default_spec", lambda **kwargs: TINY)
    argv = ["sweep", "--dataset", "synthetic", "--beta", "0,0.02", "--gamma", "0,0.02", "--cache", str(root)]
    assert cli.main(argv) == 1
    out = capsys.readouterr().out
    assert out.count("(rows β, columns γ)") == len(sw.MATRIX_KEYS)
    mae = json.loads((root / sw.cell_name(*B) / "metrics.json").read_text())["mae"]
    assert f"**test MAE** (rows β, columns γ)\n\n| β \\ γ | 0 | 0.02 |\n|---|---|---|\n| 0 | — | {mae:.3f} |" in out
    cross = argv[:-2] + ["--cross", "--center", "0.02,0.02"] + argv[-2:]   # a cross prints no matrices
    cli.main(cross)
    assert "(rows β" not in capsys.readouterr().out
