"""The beta/gamma sweep cache (fdmer_lite.sweep) and the explorer widget (fdmer_lite.widgets).

Cells here are tiny (fast preset, one epoch, 64 training clips of length 10), so the real
training paths run in seconds. How fast a cached update is gets measured in
``benchmarks/widget_latency.py``, not asserted here.
"""

import json
import shutil
import subprocess
import threading

import pytest

from fdmer_lite import cli
from fdmer_lite import sweep as sw
from fdmer_lite import train as train_mod
from fdmer_lite.widgets import FIGURES, BetaGammaExplorer, setting_text

TINY = sw.SweepSpec(preset="fast", overrides={"train": {"epochs": 1}},
                    data={"kind": "emotion", "seed": 0, "n_train": 64, "n_valid": 32, "n_test": 32,
                          "seq_len": 10},
                    max_points=20)
A, B, C = (0.02, 0.02), (0.0, 0.02), (2.0, 0.02)
RUN_FILES = ("config.json", "history.json", "metrics.json", "model.pt")


@pytest.fixture
def count_fits(monkeypatch):
    """Count Trainer.fit calls (every training goes through it)."""
    calls = []
    original = train_mod.Trainer.fit

    def fit(self, *args, **kwargs):
        calls.append(self.config.loss.beta)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(train_mod.Trainer, "fit", fit)
    return calls


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """A cache with two finished cells, A and B (shared by the read-only tests)."""
    cache = sw.SweepCache(tmp_path_factory.mktemp("sweep") / "cache", TINY)
    result = cache.fill([A, B], log=None)
    assert result["computed"] == [A, B] and not result["failed"]
    return cache


def _title(output: dict) -> str:
    return output["data"]["application/vnd.plotly.v1+json"]["layout"]["title"]["text"]


def _no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("training was called")
    monkeypatch.setattr(train_mod.Trainer, "fit", refuse)
    monkeypatch.setattr(sw, "compute_cell", refuse)


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
    real_run = train_mod.run_experiment

    def crash(*args, **kwargs):
        real_run(*args, **kwargs)
        raise KeyboardInterrupt                              # after the run files were written
    monkeypatch.setattr(train_mod, "run_experiment", crash)
    with pytest.raises(KeyboardInterrupt):
        cache.compute(*C)
    monkeypatch.setattr(train_mod, "run_experiment", real_run)
    assert not cache.has(*C) and not list(cache.root.glob(".partial-*"))

    # A killed process leaves its partial folder behind: the next fill deletes it.
    dead = subprocess.Popen(["true"])
    dead.wait()                                                # reaped: its pid is free
    stale = cache.root / f".partial-{sw.cell_name(*C)}-{dead.pid}-abc123"
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
    _no_training(monkeypatch)                               # the two gamma = 0 cells fail
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


# ------------------------------------------------------------------------ the explorer


def test_slider_change_to_a_cached_setting_updates_every_figure_without_training(filled, monkeypatch):
    ex = BetaGammaExplorer(filled, [0.0, 0.02, 2.0], [0.0, 0.02, 2.0], reference=A)
    before = {k: out.outputs for k, out in ex.current.figures.items()}
    metrics_before = ex.current.metrics.value
    assert all(_title(v[0]).startswith(setting_text(*A)) for v in before.values())
    _no_training(monkeypatch)

    ex.beta_slider.value = 0.0                                 # what moving the slider does
    assert ex.setting == B
    assert setting_text(*B) in ex.current.metrics.value and ex.current.metrics.value != metrics_before
    for k, out in ex.current.figures.items():
        assert _title(out.outputs[0]).startswith(setting_text(*B)), k
        assert out.outputs != before[k]
    for out in ex.reference_panel.figures.values():            # the pinned reference stays
        assert _title(out.outputs[0]).startswith(setting_text(*A))
    assert ex.train_calls == 0 and not ex.busy and "from the cache" in ex.status.value

    ex.pin()                                                   # pin B, then the revisit is instant too
    assert _title(ex.reference_panel.figures["fusion"].outputs[0]).startswith(setting_text(*B))
    ex.select(*A)
    assert _title(ex.current.figures["embedding"].outputs[0]).startswith(setting_text(*A))


def test_prefetch_builds_the_figures_of_cached_settings_in_the_background(filled, monkeypatch):
    ex = BetaGammaExplorer(filled, [0.0, 0.02, 2.0], [0.0, 0.02, 2.0], reference=A)
    ex._prefetcher.join(60)
    assert {(sw.cell_name(*B), "tsne"), (sw.cell_name(*A), "tsne")} <= set(ex._bundles)
    from fdmer_lite import viz

    def no_figures(*args, **kwargs):
        raise AssertionError("a figure was built on the slider move")
    for name in ("representation_embedding", "discriminator_probabilities", "fusion_weights"):
        monkeypatch.setattr(viz, name, no_figures)
    ex.select(*B)                                              # a first visit, served prefetched
    assert _title(ex.current.figures["fusion"].outputs[0]).startswith(setting_text(*B))


def test_uncached_setting_says_so_and_train_on_a_cached_one_does_nothing(filled, monkeypatch):
    ex = BetaGammaExplorer(filled, [0.0, 0.02, 2.0], [0.0, 0.02, 2.0])
    _no_training(monkeypatch)
    ex.select(beta=2.0)
    assert "not trained yet" in ex.current.metrics.value
    ex.select(beta=0.02)
    assert ex.train() is False and "already trained" in ex.status.value
    with pytest.raises(ValueError, match="not a slider value"):
        ex.select(beta=0.5)


def test_second_click_while_training_is_refused(filled, monkeypatch):
    ex = BetaGammaExplorer(filled, [0.0, 0.02, 2.0], [0.0, 0.02, 2.0], start=C)
    release, started, calls = threading.Event(), threading.Event(), []

    def slow_compute(beta, gamma, **kwargs):
        calls.append((beta, gamma))
        started.set()
        assert release.wait(30)
    monkeypatch.setattr(ex.cache, "compute", slow_compute)

    assert ex.train() is True
    assert started.wait(10) and ex.busy
    assert ex.train_button.disabled
    assert ex.train() is False                                 # the second click
    assert "ignored" in ex.status.value
    ex.train_button.click()                                    # a click that slips through, too
    assert "ignored" in ex.status.value
    ex.select(beta=0.0)                                        # the app stays usable meanwhile
    assert setting_text(*B) in ex.current.metrics.value
    release.set()
    assert ex.wait(30)
    assert calls == [C] and ex.train_calls == 1 and not ex.train_button.disabled


def test_an_error_in_the_training_thread_is_shown(filled, monkeypatch):
    ex = BetaGammaExplorer(filled, [0.0, 0.02, 2.0], [0.0, 0.02, 2.0], start=C)

    def broken(*args, **kwargs):
        raise RuntimeError("boom: the loss went sideways")
    monkeypatch.setattr(ex.cache, "compute", broken)
    assert ex.train() is True
    assert ex.wait(30)
    assert isinstance(ex.last_error, RuntimeError)
    assert "boom: the loss went sideways" in ex.status.value and "RuntimeError" in ex.status.value
    assert ex.progress.bar_style == "danger" and not ex.train_button.disabled
    assert "failed" in ex.current.metrics.value


def test_train_button_trains_in_the_background_with_progress(tmp_path, count_fits):
    cache = sw.SweepCache(tmp_path / "cache", TINY)
    cache.fill([A], log=None)
    ex = BetaGammaExplorer(cache, [0.0, 0.02], [0.02], start=B)
    seen = []
    ex.progress.observe(lambda change: seen.append(change["new"]), names="value")
    count_fits.clear()
    ex.train_button.click()
    assert ex.wait(120)
    assert ex.last_error is None, ex.status.value
    assert count_fits == [0.0] and cache.has(*B)
    assert max(seen) == ex.progress.max > 1 and ex.progress.bar_style == "success"
    assert "done" in ex.status.value
    assert setting_text(*B) in ex.current.metrics.value and "test MAE" in ex.current.metrics.value
    assert _title(ex.current.figures["embedding"].outputs[0]).startswith(setting_text(*B))


def test_another_projection_is_computed_once_in_the_background(tmp_path):
    cache = sw.SweepCache(tmp_path / "cache", TINY)
    cache.fill([A], log=None)
    ex = BetaGammaExplorer(cache, [0.02], [0.02])
    ex.method.value = "pca"
    assert ex.wait(60) and ex.last_error is None
    assert cache.has_projection(*A, "pca")
    assert "PCA" in _title(ex.current.figures["embedding"].outputs[0])
    assert "PCA" in _title(ex.reference_panel.figures["embedding"].outputs[0])


def test_the_explorer_sends_a_static_copy_of_its_figures_for_html_exports(filled, monkeypatch):
    from fdmer_lite.offline import export_html, inspect_html

    ex = BetaGammaExplorer(filled, [0.0, 0.02, 2.0], [0.0, 0.02, 2.0], reference=A)
    _no_training(monkeypatch)
    bundle = ex._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle          # JupyterLab draws the widget
    snapshot = bundle["text/html"]
    assert snapshot.count('class="plotly-graph-div"') == 2 * len(FIGURES)  # both panels, every figure
    assert setting_text(*A) in snapshot
    assert snapshot.count("plotly.js v") == 1                           # plotly.js inlined, once
    ex.select(*C)                                                      # not cached: a message, no figure
    assert ex._repr_mimebundle_()["text/html"].count('class="plotly-graph-div"') == len(FIGURES)
    # In an export without saved widget state (what nbconvert gets from a kernel run), the copy shows.
    import nbformat
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("explorer", outputs=[nbformat.v4.new_output(
        "display_data", data={k: v for k, v in bundle.items()})]))
    found = inspect_html(export_html(nb, filled.root.parent / "html" / "explorer.html").read_text())
    assert found["figures"] == 2 * len(FIGURES) and found["external_loads"] == []
