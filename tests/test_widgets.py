"""The beta/gamma explorer widget (``fdmer_lite.sweep.BetaGammaExplorer``) on a tiny sweep cache.

How fast a cached update is was measured (``benchmarks/results/widget-latency.md``), not asserted here.
"""

import threading

import pytest
from tiny_sweep import A, B, C, TINY, count_fits, filled, no_training, title  # noqa: F401 (fixtures)

from fdmer_lite import sweep as sw
from fdmer_lite.sweep import FIGURES, BetaGammaExplorer, setting_text


# ------------------------------------------------------------------------ the explorer


def test_slider_change_to_a_cached_setting_updates_every_figure_without_training(filled, monkeypatch):
    ex = BetaGammaExplorer(filled, [0.0, 0.02, 2.0], [0.0, 0.02, 2.0], reference=A)
    before = {k: out.outputs for k, out in ex.current.figures.items()}
    metrics_before = ex.current.metrics.value
    assert all(title(v[0]).startswith(setting_text(*A)) for v in before.values())
    no_training(monkeypatch)

    ex.beta_slider.value = 0.0                                 # what moving the slider does
    assert ex.setting == B
    assert setting_text(*B) in ex.current.metrics.value and ex.current.metrics.value != metrics_before
    for k, out in ex.current.figures.items():
        assert title(out.outputs[0]).startswith(setting_text(*B)), k
        assert out.outputs != before[k]
    for out in ex.reference_panel.figures.values():            # the pinned reference stays
        assert title(out.outputs[0]).startswith(setting_text(*A))
    assert ex.train_calls == 0 and not ex.busy and "from the cache" in ex.status.value

    ex.pin()                                                   # pin B, then the revisit is instant too
    assert title(ex.reference_panel.figures["fusion"].outputs[0]).startswith(setting_text(*B))
    ex.select(*A)
    assert title(ex.current.figures["embedding"].outputs[0]).startswith(setting_text(*A))


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
    assert title(ex.current.figures["fusion"].outputs[0]).startswith(setting_text(*B))


def test_uncached_setting_says_so_and_train_on_a_cached_one_does_nothing(filled, monkeypatch):
    ex = BetaGammaExplorer(filled, [0.0, 0.02, 2.0], [0.0, 0.02, 2.0])
    no_training(monkeypatch)
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
    assert title(ex.current.figures["embedding"].outputs[0]).startswith(setting_text(*B))


def test_another_projection_is_computed_once_in_the_background(tmp_path):
    cache = sw.SweepCache(tmp_path / "cache", TINY)
    cache.fill([A], log=None)
    ex = BetaGammaExplorer(cache, [0.02], [0.02])
    ex.method.value = "pca"
    assert ex.wait(60) and ex.last_error is None
    assert cache.has_projection(*A, "pca")
    assert "PCA" in title(ex.current.figures["embedding"].outputs[0])
    assert "PCA" in title(ex.reference_panel.figures["embedding"].outputs[0])


def test_the_explorer_sends_a_static_copy_of_its_figures_for_html_exports(filled, monkeypatch):
    from fdmer_lite.viz import export_html, inspect_html

    ex = BetaGammaExplorer(filled, [0.0, 0.02, 2.0], [0.0, 0.02, 2.0], reference=A)
    no_training(monkeypatch)
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


def test_a_bar_that_early_stopping_ends_turns_red_and_a_full_one_does_not(tiny_data, fast_config, monkeypatch):
    import io

    from tqdm import tqdm

    from fdmer_lite import train as train_module
    from fdmer_lite.train import mark_stopped

    bars = []

    def recording_bar(enabled=True, **kw):
        bars.append(tqdm(file=io.StringIO(), **kw))
        return bars[-1]

    monkeypatch.setattr(train_module, "progress_bar", recording_bar)
    stopped = fast_config.replace(train={"epochs": 50, "patience": 2, "lr": 0.0})
    assert len(train_module.Trainer(stopped, tiny_data, progress=True).fit()) == 3    # lr 0: stops at 3
    assert bars[-1].colour == "red" and bars[-1].desc.startswith("stopped early at epoch 3/50, kept epoch 1")
    full = fast_config.replace(train={"epochs": 2, "patience": 5})
    train_module.Trainer(full, tiny_data, progress=True).fit()
    assert bars[-1].colour is None and bars[-1].desc.startswith("epoch 2/2")

    class NotebookBar:                                # the parts of tqdm.notebook's bar it touches
        colour, desc = None, ""
        container = type("HBox", (), {"children": [None, type("Bar", (), {"bar_style": ""})(), None]})()

        def set_description(self, text, refresh=True):
            self.desc = text

        def refresh(self):
            pass

    bar = NotebookBar()
    mark_stopped(bar, "stopped early")
    assert bar.container.children[1].bar_style == "danger" and bar.colour == "red"
    mark_stopped(None, "no bar: nothing to do")
