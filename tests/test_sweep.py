"""The beta/gamma sweep cache (``fdmer_lite.sweep``): cells, layout, resuming, the command line."""

import json
import shutil
import subprocess

import pytest
from tiny_sweep import A, B, C, RUN_FILES, TINY, count_fits, filled, no_training  # noqa: F401 (fixtures)

from fdmer_lite import cli
from fdmer_lite import sweep as sw
from fdmer_lite.experiments import runs, runstore


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
        for f in RUN_FILES + ("reps.npz", "run.json", "projections/index.json", "complete.json"):
            assert (d / f).is_file(), f
        assert len(list((d / "projections").glob("tsne-*.npy"))) == 1
        assert "projections/index.json" not in json.loads((d / "complete.json").read_text())["files"]
        assert json.loads((d / "run.json").read_text())["meta"] == {"beta": beta, "gamma": gamma}
        assert json.loads((d / "config.json").read_text())["config"]["loss"]["beta"] == beta
        assert filled.run(beta, gamma).path == d
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
    assert len(first.computed) == 2 and len(count_fits) == 2

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
    again = cache.fill([A, B, C], log=None)
    assert again.skipped == [sw.cell_name(*A), sw.cell_name(*B)] and again.computed == [sw.cell_name(*C)]
    assert len(count_fits) == 1                                # only C trained
    assert not stale.exists() and cache.has(*C)

    count_fits.clear()
    done = cache.fill([A, B, C], log=None)
    assert done.computed == [] and len(done.skipped) == 3 and count_fits == []


def test_a_cell_trained_on_other_data_is_trained_again(tmp_path, count_fits):
    cache = sw.SweepCache(tmp_path / "cache", TINY)
    cache.fill([A], log=None)
    d = cache.cell_dir(*A)
    saved = json.loads((d / "config.json").read_text())
    assert saved["fingerprint"]["content"] == TINY.make_data().fingerprint()
    saved["fingerprint"]["content"] = "0" * 16                 # as if the generator had changed since
    (d / "config.json").write_text(json.dumps(saved))
    runstore.seal(d, {"kind": "run"})                           # intact by its record, yet other data
    fresh = sw.SweepCache(tmp_path / "cache", TINY)
    assert not fresh.has(*A)
    count_fits.clear()
    assert fresh.fill([A], log=None).computed == [sw.cell_name(*A)] and len(count_fits) == 1
    assert json.loads((d / "config.json").read_text())["fingerprint"]["content"] == TINY.make_data().fingerprint()


def test_a_truncated_cell_file_makes_the_sweep_compute_the_cell_again(tmp_path):
    cache = sw.SweepCache(tmp_path / "cache", TINY)
    cache.fill([A], log=None)
    m = cache.cell_dir(*A) / "metrics.json"
    m.write_text(m.read_text()[:20])
    with pytest.warns(UserWarning, match="metrics.json"):
        result = sw.SweepCache(tmp_path / "cache", TINY).fill([A], log=None)
    assert result.computed == [sw.cell_name(*A)]
    assert json.loads(m.read_text())["mae"] > 0 and runstore.is_finished(cache.cell_dir(*A))


def test_bundled_cells_of_the_same_spec_are_found_read_only(tmp_path, count_fits):
    made = sw.SweepCache(tmp_path / "bundle" / TINY.slug, TINY, bundled=None)
    assert not made.fill([A], log=None).failed and len(count_fits) == 1
    cache = sw.SweepCache(tmp_path / "mine", TINY, bundled=tmp_path / "bundle")
    assert cache.bundled == made.root and cache.has(*A) and not cache.has(*B)
    assert cache.fill([A], log=None).bundled == [sw.cell_name(*A)] and len(count_fits) == 1   # nothing trained
    assert cache.load(*A).metrics == made.load(*A).metrics and cache.load(*A).path == made.cell_dir(*A)
    assert cache.finished() == [A] and cache.has_projection(*A, "tsne")
    cache.ensure_projection(*A, "pca")                          # written beside, never into the bundle
    assert cache.has_projection(*A, "pca") and not made.has_projection(*A, "pca")
    assert list((tmp_path / "mine" / sw.cell_name(*A) / "projections").glob("pca-*.npy"))
    other = sw.SweepSpec(**{**TINY.to_dict(), "data": {**TINY.data, "seed": 1}})
    assert sw.SweepCache(tmp_path / "other", other, bundled=tmp_path / "bundle").bundled is None


def test_cli_sweep_fills_then_resumes(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sw, "default_spec", lambda **kwargs: TINY)
    argv = ["sweep", "--dataset", "synthetic", "--beta", "0,0.02", "--gamma", "0.02",
            "--cache", str(tmp_path / "c")]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "0 of 2 run(s) finished before, 2 to train" in out and "| 0 | 0.02 |" in out
    assert cli.main(argv) == 0
    assert "2 of 2 run(s) finished before, 0 to train" in capsys.readouterr().out
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
