"""Tests for fdmer_lite.viz: each builder returns a Figure with the expected traces and points."""

import re
from types import SimpleNamespace

import nbformat
import numpy as np
import plotly.graph_objects as go
import pytest
from plotly.offline import get_plotlyjs

from fdmer_lite import viz

MODS = "tav"


def _history(n_epochs=4, terms=("task", "ami", "ams", "con", "dis", "all")):
    return [{"epoch": e, "train": {t: 1.0 / e for t in terms}, "valid": {t: 1.2 / e for t in terms},
             "valid_metrics": {"mae": 1.0}, "seconds": 0.1} for e in range(1, n_epochs + 1)]


def _reps(n=40, d_k=8, seed=0):
    rng = np.random.default_rng(seed)
    M = len(MODS)
    return SimpleNamespace(
        modalities=MODS,
        common={m: rng.normal(size=(n, d_k)) for m in MODS},
        private={m: rng.normal(size=(n, d_k)) + 3 * i for i, m in enumerate(MODS)},
        labels=rng.uniform(-3, 3, size=n),
        ids=[f"vid{i}_clip" for i in range(n)],
        disc_prob_common={m: rng.dirichlet(np.ones(M), size=n) for m in MODS},
        disc_prob_private={m: rng.dirichlet(np.ones(M), size=n) for m in MODS},
        psi=rng.dirichlet(np.ones(4), size=n),
        psi_names=["C", "P_t", "P_a", "P_v"],
    )


def _n_points(fig):
    return sum(len(tr.x) for tr in fig.data)


# ---------------------------------------------------------------- loss curves


def test_loss_curves_one_subplot_per_term_train_and_valid():
    fig = viz.loss_curves(_history(4))
    assert isinstance(fig, go.Figure)
    assert len(fig.data) == 6 * 2                                   # 6 terms x (train, valid)
    assert [a.text for a in fig.layout.annotations][:6] == [viz.TERM_TITLES[t] for t in
                                                             ("task", "ami", "ams", "con", "dis", "all")]
    train_task = fig.data[0]
    assert list(train_task.x) == [1, 2, 3, 4]
    assert list(train_task.y) == pytest.approx([1.0, 0.5, 1 / 3, 0.25])
    assert fig.data[1].name == "valid" and list(fig.data[1].y) == pytest.approx([1.2, 0.6, 0.4, 0.3])


def test_loss_curves_skip_missing_terms():
    fig = viz.loss_curves(_history(3, terms=("task", "con", "all")))
    assert len(fig.data) == 3 * 2
    titles = {a.text for a in fig.layout.annotations}
    assert viz.TERM_TITLES["ami"] not in titles and viz.TERM_TITLES["con"] in titles
    assert len(viz.loss_curves([]).data) == 0


# ---------------------------------------------------------------- embeddings


def test_embedding_figure_groups_colours_and_hover():
    n = 5
    points = np.arange(n * 6 * 2, dtype=float).reshape(n * 6, 2)
    modality = np.repeat(list(MODS) * 2, n)                         # t*5 a*5 v*5 t*5 a*5 v*5
    kind = np.repeat(["common", "private"], 3 * n)
    ids = [f"s{i % n}" for i in range(n * 6)]
    labels = np.tile(np.linspace(-1, 1, n), 6)
    fig = viz.embedding_figure(points, modality, kind, labels=labels, ids=ids, title="x")
    assert len(fig.data) == 6 and _n_points(fig) == n * 6
    by_name = {tr.name: tr for tr in fig.data}
    text_common = by_name["text common (C_t)"]
    text_private = by_name["text private (P_t)"]
    assert text_common.marker.color == viz.MODALITY_COLORS["t"][0]   # light shade
    assert text_private.marker.color == viz.MODALITY_COLORS["t"][1]  # dark shade
    assert list(text_private.x) == list(points[15:20, 0])            # the right rows
    assert "id: s0" in text_common.text[0] and "label: -1" in text_common.text[0]
    with pytest.raises(ValueError, match="kind: expected 30 entries"):
        viz.embedding_figure(points, modality, kind[:-1])
    with pytest.raises(ValueError, match="kind: expected 'common' or 'private'"):
        viz.embedding_figure(points, modality, np.repeat(["common", "shared"], 3 * n))


def test_representation_embedding_has_n_times_2m_points():
    reps = _reps(n=50)
    fig = viz.representation_embedding(reps, method="pca", max_points=20, seed=1)
    assert len(fig.data) == 2 * len(MODS)
    assert _n_points(fig) == 20 * 2 * len(MODS)
    # the same 20 samples in every set
    id_sets = [{re.search(r"id: (\S+?)<br>", t).group(1) for t in tr.text} for tr in fig.data]
    assert all(s == id_sets[0] for s in id_sets) and len(id_sets[0]) == 20
    assert id_sets[0] <= set(reps.ids)


def test_representation_embedding_tsne_small():
    reps = _reps(n=20)
    fig = viz.representation_embedding(reps, method="tsne", max_points=None)
    assert _n_points(fig) == 20 * 2 * len(MODS)                      # 120 points, one t-SNE


# ---------------------------------------------------------------- projection + cache


def test_project_shapes_and_invalid_method():
    X = np.random.default_rng(0).normal(size=(60, 5))
    assert viz.project(X, method="pca").shape == (60, 2)
    assert viz.project(X, method="tsne").shape == (60, 2)
    with pytest.raises(ValueError, match="method: expected one of"):
        viz.project(X, method="isomap")
    with pytest.raises(ValueError, match="X: expected shape"):
        viz.project(np.zeros(10), method="pca")


@pytest.mark.parametrize("use_dir", [False, True])
def test_project_cache_avoids_recomputation(monkeypatch, tmp_path, use_dir):
    import sklearn.decomposition

    calls = []
    real_pca = sklearn.decomposition.PCA

    class CountingPCA(real_pca):
        def fit_transform(self, X, y=None):
            calls.append(X.shape)
            return super().fit_transform(X)

    monkeypatch.setattr(sklearn.decomposition, "PCA", CountingPCA)
    cache = tmp_path / "proj" if use_dir else {}
    X = np.random.default_rng(0).normal(size=(50, 6))
    first = viz.project(X, method="pca", seed=0, cache=cache)
    second = viz.project(X.copy(), method="pca", seed=0, cache=cache)
    assert len(calls) == 1                                       # second call came from the cache
    np.testing.assert_array_equal(first, second)
    viz.project(X, method="pca", seed=1, cache=cache)            # other seed: a new key
    viz.project(X[:40], method="pca", seed=0, cache=cache)       # other data: a new key
    assert len(calls) == 3
    if use_dir:
        assert len(list((tmp_path / "proj").glob("*.npy"))) == 3


# ---------------------------------------------------------------- Figure 4a, 4b


def test_discriminator_probabilities_uses_true_modality_column():
    n, M = 10, 3
    reps = _reps(n=n)
    # Column j holds the value 0.1 * (j + 1) + 0.01 * (0 common / 1 private) everywhere, so the
    # true-modality probability of modality j is known: t -> 0.1, a -> 0.2, v -> 0.3 (+0.01).
    base = np.tile(0.1 * np.arange(1, M + 1), (n, 1))                 # (n, M)
    reps.disc_prob_common = {m: base.copy() for m in MODS}
    reps.disc_prob_private = {m: base + 0.01 for m in MODS}
    fig = viz.discriminator_probabilities(reps)
    assert len(fig.data) == 2 * M
    got = {tr.name: set(np.round(tr.y, 6)) for tr in fig.data}
    assert got["C_t (common)"] == {0.1} and got["C_a (common)"] == {0.2} and got["C_v (common)"] == {0.3}
    assert got["P_t (private)"] == {0.11} and got["P_v (private)"] == {0.31}
    assert all(len(tr.y) == n for tr in fig.data)
    chance = [s for s in fig.layout.shapes if s.line.dash == "dash"]
    assert len(chance) == 1 and chance[0].y0 == pytest.approx(1 / 3)
    assert isinstance(viz.discriminator_probabilities(reps, style="violin").data[0], go.Violin)
    reps.disc_prob_common["t"] = np.zeros((n, 2))
    with pytest.raises(ValueError, match=r"disc_prob_common\['t'\]: expected shape \(N, 3\)"):
        viz.discriminator_probabilities(reps)


def test_fusion_weights_single_and_compare():
    reps = _reps(n=12)
    fig = viz.fusion_weights(reps)
    assert [tr.name for tr in fig.data] == ["C", "P_t", "P_a", "P_v"]
    np.testing.assert_allclose(fig.data[2].y, reps.psi[:, 2])
    assert fig.data[1].marker.color == viz.MODALITY_COLORS["t"][1]
    assert fig.layout.shapes[0].y0 == pytest.approx(1 / 4)

    other = _reps(n=7, seed=3)
    both = viz.fusion_weights({"emotion-like": reps, "humor-like": other})
    assert [tr.name for tr in both.data] == ["emotion-like", "humor-like"]
    assert len(both.data[0].y) == 12 * 4 and len(both.data[1].y) == 7 * 4
    # x and y stay paired: every y labelled "P_a" in the second trace is other.psi[:, 2]
    xs, ys = np.array(both.data[1].x), np.array(both.data[1].y)
    np.testing.assert_allclose(np.sort(ys[xs == "P_a"]), np.sort(other.psi[:, 2]))


# ---------------------------------------------------------------- table and report


def test_metrics_table_columns_and_formatting():
    ours = {"mae": 0.71234, "acc2_has0": 0.8456}
    paper = {"mae": 0.725, "acc2_has0": 0.846, "acc7": 0.448}
    fig = viz.metrics_table(ours, paper=paper, bayes={"mae": 0.5})
    table = fig.data[0]
    assert list(table.header.values) == ["metric", "ours", "paper", "ideal (Bayes)"]
    metric, ours_col, paper_col, bayes_col = (list(c) for c in table.cells.values)
    assert metric == ["mae", "acc2_has0", "acc7"]
    assert ours_col == ["0.7123", "84.6", "—"]
    assert paper_col == ["0.7250", "84.6", "44.8"]
    assert bayes_col == ["0.5000", "—", "—"]
    assert len(viz.metrics_table(ours).data[0].header.values) == 2


def test_write_report_is_self_contained(tmp_path):
    reps = _reps(n=10)
    figs = [("Loss curves", viz.loss_curves(_history(2))),
            ("Fusion <weights>", viz.fusion_weights(reps)),
            ("Metrics", viz.metrics_table({"mae": 0.7}))]
    out = viz.write_report(tmp_path / "sub" / "report.html", figs, title="Run 1",
                           summary_html="<p>summary here</p>")
    text = out.read_text(encoding="utf-8")
    bundle = get_plotlyjs()
    assert text.count(bundle[:60]) == 1                     # bundle header once
    assert text.count(bundle[-200:]) == 1                   # and its end once
    assert not re.search(r"<script[^>]*src=[\"']?https?:", text)
    assert text.count("<h2>") == 3 and "Fusion &lt;weights&gt;" in text
    assert "<p>summary here</p>" in text and "<title>Run 1</title>" in text


# ---------------------------------------------------------------- teaching figures


def test_compare_table_one_column_per_run_and_ideal():
    fig = viz.compare_table({"A": {"mae": 0.71234, "acc2": 0.8}, "B": {"mae": 1.0}},
                            ideal={"mae": "0.5 (Bayes)"}, percent=True)
    table = fig.data[0]
    assert list(table.header.values) == ["", "A", "B", "ideal"]
    keys, a, b, ideal = (list(c) for c in table.cells.values)
    assert keys == ["mae", "acc2"] and a == ["0.712", "80.0"] and b == ["1", "—"]
    assert ideal == ["0.5 (Bayes)", "—"]
    assert list(viz.compare_table({"A": {"x": 1.0, "y": 2.0}}, keys=["y"]).data[0].cells.values[0]) == ["y"]


def test_sample_sequences_one_heatmap_per_modality_and_window():
    feats = {"t": np.zeros((10, 6)), "a": np.ones((10, 3))}
    fig = viz.sample_sequences(feats, windows={"a": (2, 7)})
    assert [type(tr) for tr in fig.data] == [go.Heatmap, go.Heatmap]
    assert np.asarray(fig.data[1].z).shape == (3, 10)                 # features down, time across
    assert len(fig.layout.shapes) == 1 and fig.layout.shapes[0].x0 == 1.5
    with pytest.raises(ValueError, match=r"features\['t'\]: expected shape \(L, d\)"):
        viz.sample_sequences({"t": np.zeros(5)})


def test_attention_heatmap_values_and_names():
    w = np.array([[0.5, 0.5], [0.9, 0.1]])
    fig = viz.attention_heatmap(w, rows=["q0", "q1"], cols=["k0", "k1"])
    np.testing.assert_allclose(fig.data[0].z, w)
    assert list(fig.data[0].y) == ["q0", "q1"] and list(fig.data[0].x) == ["k0", "k1"]
    with pytest.raises(ValueError, match="rows/cols"):
        viz.attention_heatmap(w, rows=["only one"])


def _equal_weights(M=3):
    phi = 2 * np.pi * np.arange(M) / M
    return np.stack([np.cos(phi), np.sin(phi)])                        # (2, M)


def _ring_fraction(fig, label, radius):
    """Fraction of the circle covered by the arcs of one ring (independent of how it is drawn)."""
    covered = 0
    for tr in fig.data:
        if tr.name and tr.name.startswith(label):
            r = np.hypot(np.asarray(tr.x, float), np.asarray(tr.y, float))[:-1]   # drop the closing point
            covered += np.sum(np.isclose(r, radius))
    return covered / 720


@pytest.mark.parametrize("tau", [0.0, 0.3, 0.5])
def test_angular_geometry_margin_gap_is_tau_per_boundary(tau):
    fig = viz.angular_geometry(_equal_weights(), margin=tau, resolution=720)
    # Between two class weights 120 degrees apart a feature satisfies the margin for class y iff
    # theta_y + tau < theta_other, so a gap of angle tau sits on each of the three boundaries.
    assert _ring_fraction(fig, "plain softmax region", 1.15) == pytest.approx(1.0)
    assert _ring_fraction(fig, "margin region", 1.3) == pytest.approx(1 - 3 * tau / (2 * np.pi), abs=0.01)
    rays = [tr for tr in fig.data if tr.name.startswith("W_D column")]
    assert [tr.name for tr in rays] == ["W_D column t", "W_D column a", "W_D column v"]
    assert np.hypot(rays[1].x[1], rays[1].y[1]) == pytest.approx(1.0)


def test_angular_geometry_features_on_the_circle():
    rng = np.random.default_rng(0)
    feats, labels = rng.normal(size=(30, 2)) * 5, np.repeat([0, 1, 2], 10)
    fig = viz.angular_geometry(_equal_weights(), 0.5, features=feats, labels=labels)
    pts = [tr for tr in fig.data if tr.name.startswith("features of")]
    assert len(pts) == 3 and sum(len(tr.x) for tr in pts) == 30
    np.testing.assert_allclose(np.hypot(pts[0].x, pts[0].y), 1.0)
    with pytest.raises(ValueError, match="class_weights"):
        viz.angular_geometry(np.zeros((3, 3)))


def test_embedding_comparison_panels_share_legend():
    panels = {"beta = gamma = 0": _reps(n=30, seed=1), "paper": _reps(n=30, seed=2)}
    fig = viz.embedding_comparison(panels, method="pca", max_points=10)
    assert len(fig.data) == 2 * 2 * len(MODS)
    assert _n_points(fig) == 2 * 10 * 2 * len(MODS)
    assert sum(tr.showlegend for tr in fig.data) == 2 * len(MODS)      # legend once
    assert [a.text for a in fig.layout.annotations] == list(panels)
    with pytest.raises(ValueError, match="panels"):
        viz.embedding_comparison({})


def test_titles_can_be_set():
    reps = _reps(n=8)
    assert viz.discriminator_probabilities(reps, title="GRL").layout.title.text == "GRL"
    assert viz.fusion_weights(reps, title="psi").layout.title.text == "psi"


def test_lesson_figures_carry_an_html_copy_for_exported_notebooks():
    import plotly.graph_objects as go
    import plotly.io as pio

    from fdmer_lite import lessons
    before = pio.renderers.default
    try:
        lessons.setup(verbose=False)
        bundle = go.Figure(go.Scatter(x=[0, 1], y=[1, 0]))._repr_mimebundle_()
        assert "application/vnd.plotly.v1+json" in bundle               # JupyterLab's own
        assert "text/html" in bundle and "Plotly.newPlot" in bundle["text/html"]
        assert "cdn.plot.ly" not in bundle["text/html"]                 # plotly.js inlined, not fetched
    finally:
        pio.renderers.default = before


def test_similarity_matrices_and_dependence_curve_draw_what_they_are_given():
    import numpy as np
    S = np.eye(3)
    fig = viz.similarity_matrices({"S_t": S, "S_a": -S})
    assert [t.z.tolist() for t in fig.data] == [S.tolist(), (-S).tolist()]
    assert fig.data[0].zmin == -1 and fig.data[0].zmax == 1
    with pytest.raises(ValueError, match="square"):
        viz.similarity_matrices({"S_t": np.ones((2, 3))})
    curve = viz.dependence_curve([0, 1, 2], {"a": [1, 2, 4]}, "x", "y", log_y=True)
    assert list(curve.data[0].y) == [1, 2, 4] and curve.layout.yaxis.type == "log"


def test_modality_confusion_rows_are_true_modalities_and_cells_mean_probabilities():
    n = 6
    reps = _reps(n=n)
    rng = np.random.default_rng(1)
    reps.disc_prob_common = {m: rng.dirichlet(np.ones(3), size=n) for m in MODS}
    fig = viz.modality_confusion({"run A": reps, "run B": reps})
    assert len(fig.data) == 2 and [a.text for a in fig.layout.annotations] == ["run A", "run B"]
    heat = fig.data[0]
    expected = [[reps.disc_prob_common[m][:, j].sum() / n for j in range(3)] for m in MODS]  # a plain loop
    np.testing.assert_allclose(np.asarray(heat.z), expected)
    assert list(heat.y) == ["C_t", "C_a", "C_v"] and list(heat.x) == ["text", "audio", "visual"]
    assert fig.layout.xaxis.title.text == "modality the discriminator names"
    assert fig.layout.yaxis.title.text == "true modality of C_m"
    reps.disc_prob_common["a"] = np.zeros((n, 2))
    with pytest.raises(ValueError, match=r"run A: disc_prob_common\['a'\]"):
        viz.modality_confusion({"run A": reps})


def test_probe_bars_one_bar_per_run_and_a_chance_line():
    fig = viz.probe_bars({"x": {"linear": 0.9, "knn": 1.0}, "y": {"linear": 0.4}}, chance=1 / 3)
    assert [tr.name for tr in fig.data] == ["x", "y"]
    assert list(fig.data[0].x) == ["linear", "knn"] and list(fig.data[0].y) == [0.9, 1.0]
    assert fig.data[1].y[0] == 0.4 and np.isnan(fig.data[1].y[1])          # a missing probe is a gap
    chance = [s for s in fig.layout.shapes if s.line.dash == "dash"]
    assert len(chance) == 1 and chance[0].y0 == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="at least one run"):
        viz.probe_bars({})


def test_prediction_scatter_draws_the_points_the_diagonal_and_the_mean():
    import numpy as np
    import pytest

    from fdmer_lite import viz

    y = np.array([-2.0, 0.0, 1.0, 3.0])
    fig = viz.prediction_scatter(y * 0.5, y, label_range=(-3, 3))
    points, diagonal, mean = fig.data
    assert list(points.x) == list(y) and list(points.y) == [-1.0, 0.0, 0.5, 1.5]
    assert list(diagonal.x) == [-3, 3] and list(diagonal.y) == [-3, 3]
    assert list(mean.y) == [0.5, 0.5]                              # the labels' mean, 2 / 4
    with pytest.raises(ValueError, match="3 predictions for 4 labels"):
        viz.prediction_scatter(y[:3], y)


def test_the_loss_caption_names_the_kept_epoch_not_the_lowest_loss():
    # epoch 3 has the lowest validation task loss, but epoch 2 (the lowest MAE) was kept
    history = [{"valid": {"task": t}, "valid_metrics": {"mae": m}}
               for t, m in ((2.0, 1.1), (1.5, 0.5), (1.2, 0.7))]
    caption = viz.demo_captions({"best_epoch": 2}, history)[0]
    assert "from 2.000 in epoch 1 to 1.500 in epoch 2 of 3, the epoch kept (validation MAE 0.500)" in caption
    assert "1.200" not in caption


def _game(epoch):
    grads = {t: {"transformers": 1.0, "common": 0.1 * epoch, "private": 0.2, "discriminator": 0.3}
             for t in ("task", "ami", "ams", "con", "dis")}
    grads["ams"]["common"] = grads["dis"]["common"] = 0.0      # terms that never reach C
    return {"coeff": epoch / 10, "grad": grads, "disc_acc_common": 0.5, "disc_acc_private": 1.0}


def test_training_game_draws_figure_3_the_gradients_and_marks_the_kept_epoch():
    history = _history(4)
    for h in history:
        h["game"] = _game(h["epoch"])
    fig = viz.training_game(history, best_epoch=3)
    names = [tr.name for tr in fig.data]
    assert {"L_all", "L_ami + L_ams", "L_con + L_dis"} <= set(names)
    fig3 = {tr.name: list(tr.y) for tr in fig.data if tr.name in ("L_all", "L_ami + L_ams", "L_con + L_dis")}
    assert fig3["L_ami + L_ams"] == pytest.approx([2.0 / e for e in range(1, 5)])   # ami + ams per epoch
    # the common panel: the terms that reach C (task, ami, con), read from the records
    common = [tr for tr in fig.data if tr.xaxis == "x2"]
    assert {tr.name for tr in common} == {"L_task", "beta L_ami (reversed)", "gamma L_con"}
    ami = next(tr for tr in common if tr.name.startswith("beta L_ami"))
    assert list(ami.y) == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert fig.layout.yaxis2.type == "log" and fig.layout.yaxis3.type == "log"
    coeff = next(tr for tr in fig.data if tr.name == "reversal strength")
    assert list(coeff.y) == pytest.approx([0.1, 0.2, 0.3, 0.4])
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert len(lines) == 4 and all(s.x0 == s.x1 == 3 for s in lines)   # the kept epoch, every panel
    assert any("epoch 3" in a.text for a in fig.layout.annotations)


def test_training_game_leaves_gaps_where_a_history_has_no_record():
    history = _history(3)
    history[1]["game"] = _game(2)                          # only epoch 2 was recorded
    fig = viz.training_game(history)
    acc = next(tr for tr in fig.data if tr.name == "D accuracy on C_m")
    assert list(acc.y) == [None, 0.5, None]
    assert not [s for s in fig.layout.shapes if s.type == "line"]     # no kept epoch given


# ---------------------------------------------- figures and equations offline, in an HTML export
def test_setup_makes_the_offline_renderer_the_default(monkeypatch):
    import plotly.io as pio

    from fdmer_lite import lessons, viz as offline

    monkeypatch.setattr(pio.renderers, "default", "browser")
    lessons.setup(verbose=False)
    assert pio.renderers.default == f"plotly_mimetype+{offline.RENDERER}"
    bundle = pio.renderers[offline.RENDERER].to_mimebundle(go.Figure(go.Scatter(y=[1, 2])).to_dict())
    assert "plotly-graph-div" in bundle["text/html"]
    from fdmer_lite.viz import inspect_html
    assert inspect_html(bundle["text/html"])["external_loads"] == []   # plotly's own loads MathJax from a CDN
    assert "cdnjs" not in bundle["text/html"]
    plain = pio.renderers["notebook"].to_mimebundle(go.Figure(go.Scatter(y=[1, 2])).to_dict())
    assert "cdnjs.cloudflare.com/ajax/libs/mathjax" in plain["text/html"]   # what is stripped


def test_inspect_html_finds_figures_and_outside_loads():
    from fdmer_lite.viz import inspect_html

    page = ('<script src="https://cdn.example/require.js"></script><script src="mathjax/MathJax.js"></script>'
            '<div class="plotly-graph-div"></div><script>const u = "https://quoted.example/in/code"</script>'
            '<script>await import("https://cdn.example/m.mjs")</script>')
    found = inspect_html(page)
    assert found["figures"] == 1 and found["mathjax_local"]
    assert found["external_loads"] == ["https://cdn.example/m.mjs", "https://cdn.example/require.js"]


TINY = """# %% [markdown]
# # A figure and an equation
# $$ \\mathcal{L} = \\mathcal{L}_{task} + \\beta (\\mathcal{L}_{ami} + \\mathcal{L}_{ams}) $$

# %%
from fdmer_lite.viz import use_offline_renderer
use_offline_renderer()
import plotly.graph_objects as go
go.Figure(go.Scatter(y=[1, 3, 2]))
"""


def test_an_executed_notebook_exports_with_its_figure_and_no_cdn(tmp_path):
    import jupytext
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    from fdmer_lite.viz import export_html, inspect_html

    nb = jupytext.reads(TINY, fmt="py:percent")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    page = export_html(nb, tmp_path / "tiny.html")
    text = page.read_text(encoding="utf-8")
    found = inspect_html(text)
    assert found["figures"] == 1 and found["plotlyjs_inlined"]
    assert found["mathjax_local"] and (tmp_path / "mathjax" / "MathJax.js").is_file()
    assert found["external_loads"] == [], found["external_loads"]
    assert "cdnjs.cloudflare.com" not in text and "cdn.jsdelivr.net/npm/mathjax" not in text
    # nbconvert's own template, for contrast: the detector does see its CDN scripts.
    stock, _ = HTMLExporter(template_name="lab").from_notebook_node(nbformat.from_dict(nb))
    assert any("cdnjs.cloudflare.com" in u for u in inspect_html(stock)["external_loads"])


def test_a_widget_with_saved_state_shows_its_html_copy_and_loads_no_widget_manager(tmp_path):
    """nbclient saves widget state; nbconvert's template then fetches the widget manager from unpkg."""
    from nbconvert import HTMLExporter

    from fdmer_lite.viz import export_html, inspect_html

    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2,
                                                                            "version_minor": 0}}
    view = {"model_id": "abc", "version_major": 2, "version_minor": 0}
    nb.cells.append(nbformat.v4.new_code_cell("w", outputs=[nbformat.v4.new_output("display_data", data={
        "application/vnd.jupyter.widget-view+json": view, "text/plain": "W",
        "text/html": '<div class="plotly-graph-div"></div>'})]))
    stock, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    assert any("unpkg.com" in u for u in inspect_html(stock)["external_loads"])   # the detector sees it
    found = inspect_html(export_html(nb, tmp_path / "w.html").read_text())
    assert found["external_loads"] == [] and found["figures"] == 1


def test_missing_mathjax_package_is_one_clear_message(monkeypatch):
    import builtins

    from fdmer_lite import viz as offline

    real = builtins.__import__

    def no_mathjax(name, *args, **kwargs):
        if name == "jupyter_server_mathjax":
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mathjax)
    with pytest.raises(ImportError, match="pip install jupyter-server-mathjax"):
        offline.mathjax_source()
