"""Plotly figure builders for the FDMER lessons. Every function RETURNS a figure; none shows it.

The paper's figures (Yang et al., ACM MM 2022, Sec. 4.5): Figure 2, t-SNE of C_m and P_m
(:func:`representation_embedding`; text blue, audio orange, visual green, light for common, dark
for private); Figure 3, the loss terms per epoch (:func:`loss_curves`, :func:`training_game`);
Figure 4a, the discriminator's probability of the true modality (:func:`discriminator_probabilities`);
Figure 4b, the fusion weights psi of Eq. 15-17 (:func:`fusion_weights`). Then tables, the
tutorials' teaching figures and offline HTML (:func:`write_report`, :func:`export_html`). The
``reps`` objects are duck-typed (``fdmer_lite.analysis`` makes them): no model import here.
"""

from __future__ import annotations

import hashlib
import html
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

MODALITY_NAMES = {"t": "text", "a": "audio", "v": "visual"}
# (light = common, dark = private) blue, orange and green, as in the paper's Figure 2.
MODALITY_COLORS = {"t": ("#9ecae1", "#08519c"), "a": ("#fdae6b", "#a63603"), "v": ("#a1d99b", "#006d2c")}
OTHER_COLORS = ("#cccccc", "#525252")      # any other modality key: light / dark grey
COMMON_COLOR = "#756bb1"                    # the fused common target C in the psi box plot
KIND_SYMBOLS = {"common": "circle", "private": "diamond"}

TERM_TITLES = {"task": "L_task", "ami": "L_ami (Eq. 10)", "ams": "L_ams (Eq. 11)", "con": "L_con (Eq. 5)",
               "dis": "L_dis (Eq. 7)", "all": "L_all (Eq. 18)", "confusion": "confusion loss (extension)"}
PROJECTION_METHODS = ("tsne", "umap", "pca")


def _colors(m: str) -> tuple[str, str]:
    return MODALITY_COLORS.get(m, OTHER_COLORS)


def _mod_name(m: str) -> str:
    return MODALITY_NAMES.get(m, m)


def _fmt(value) -> str:
    """Short text for a label or metric value in hover text and tables."""
    if value is None:
        return "—"
    if isinstance(value, (float, np.floating)):
        return "nan" if math.isnan(value) else f"{value:.3g}"
    return str(value)


def _chance_line(fig: go.Figure, y: float, text: str) -> None:
    """A dashed horizontal line at chance (or uniform attention), labelled top left."""
    fig.add_hline(y=y, line_dash="dash", line_color="black",
                  annotation_text=text, annotation_position="top left")


# ---------------------------------------------------------------- Figure 3: loss curves

def loss_curves(history: list[dict], terms=("task", "ami", "ams", "con", "dis", "all"),
                title: str = "Loss terms per epoch") -> go.Figure:
    """One subplot per loss term with train and valid lines over the epochs of the trainer's
    ``history`` (paper Figure 3); terms no epoch recorded (``ami`` when beta = 0) are skipped."""
    present = [t for t in terms
               if any(t in (h.get(split) or {}) for h in history for split in ("train", "valid"))]
    if not present:
        return go.Figure(layout=dict(title=f"{title}: no loss terms recorded"))
    cols = min(3, len(present))
    rows = math.ceil(len(present) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[TERM_TITLES.get(t, t) for t in present])
    epochs = [h.get("epoch", i + 1) for i, h in enumerate(history)]
    styles = {"train": dict(color="#1f77b4", dash="solid"), "valid": dict(color="#d62728", dash="dash")}
    for i, term in enumerate(present):
        row, col = i // cols + 1, i % cols + 1
        for split, line in styles.items():
            y = [(h.get(split) or {}).get(term) for h in history]     # None leaves a gap
            if all(v is None for v in y):
                continue
            fig.add_trace(go.Scatter(x=epochs, y=y, mode="lines+markers", name=split, line=line,
                                     marker=dict(size=4), legendgroup=split, showlegend=(i == 0)),
                          row=row, col=col)
        fig.update_xaxes(title_text="epoch", row=row, col=col)
    fig.update_layout(title=title, height=300 * rows, template="plotly_white")
    return fig


GAME_TERMS = {"task": ("L_task", "#333333"), "ami": ("beta L_ami (reversed)", "#d62728"),
              "confusion": ("beta confusion loss", "#e377c2"), "ams": ("beta L_ams", "#ff9896"),
              "con": ("gamma L_con", "#1f77b4"), "dis": ("gamma L_dis", "#9467bd")}


def training_game(history: list[dict], best_epoch: int | None = None,
                  title: str = "The training game, beside Figure 3") -> go.Figure:
    """Four panels over the epochs (``train.game_record``): Figure 3's three curves; the gradient
    each term of Eq. 18 sends into the common and the private encoders; the discriminator's
    accuracy and the reversal's strength. A dotted line marks ``best_epoch``."""
    epochs = [h.get("epoch", i + 1) for i, h in enumerate(history)]
    fig = make_subplots(rows=2, cols=2, subplot_titles=(
        "Figure 3: L_all, L_ami + L_ams, L_con + L_dis (train)",
        "gradient norm into the common encoder", "gradient norm into the private encoders",
        "discriminator accuracy and reversal strength"), vertical_spacing=0.14)
    train = [h.get("train") or {} for h in history]
    adversarial = [None if "ami" not in t else t["ami"] + t.get("confusion", 0.0) + t.get("ams", 0.0)
                   for t in train]
    curves = {"L_all": [t.get("all") for t in train], "L_ami + L_ams": adversarial,
              "L_con + L_dis": [None if "con" not in t else t["con"] + t.get("dis", 0.0) for t in train]}
    for (name, y), color in zip(curves.items(), ("#333333", "#d62728", "#1f77b4")):
        fig.add_trace(go.Scatter(x=epochs, y=y, name=name, mode="lines", line=dict(color=color),
                                 legendgroup="fig3"), row=1, col=1)
    games = [h.get("game") or {} for h in history]
    for row, col, part in ((1, 2, "common"), (2, 1, "private")):
        for term, (name, color) in GAME_TERMS.items():
            y = [g.get("grad", {}).get(term, {}).get(part) or None for g in games]  # 0: does not reach it
            if all(v is None for v in y):
                continue
            fig.add_trace(go.Scatter(x=epochs, y=y, name=name, mode="lines",
                                     line=dict(color=color), legendgroup=term,
                                     showlegend=part == "common" or term in ("ams", "dis")),
                          row=row, col=col)
        fig.update_yaxes(type="log", row=row, col=col)
    for key, name, color, dash in (("disc_acc_common", "D accuracy on C_m", "#9ecae1", "solid"),
                                   ("disc_acc_private", "D accuracy on P_m", "#08519c", "solid"),
                                   ("coeff", "reversal strength", "#555555", "dot")):
        fig.add_trace(go.Scatter(x=epochs, y=[g.get(key) for g in games], name=name, mode="lines",
                                 line=dict(color=color, dash=dash)), row=2, col=2)
    fig.update_yaxes(range=[-0.05, 1.05], row=2, col=2)
    for row, col in ((1, 1), (1, 2), (2, 1), (2, 2)):
        fig.update_xaxes(title_text="epoch", row=row, col=col)
        if best_epoch:
            fig.add_vline(x=best_epoch, line_dash="dot", line_color="black", row=row, col=col)
    if best_epoch:
        fig.add_annotation(x=best_epoch, y=1.0, yref="y domain", text=f"kept: epoch {best_epoch}",
                           showarrow=False, xanchor="left", row=1, col=1)
    fig.update_layout(title=title, template="plotly_white", height=700)
    return fig


# ---------------------------------------------------------------- Figure 2: embeddings

def embedding_figure(points, modality, kind, labels=None, ids=None, title: str = "") -> go.Figure:
    """2-D scatter of projected ``points`` (N, 2), coloured as in the paper's Figure 2: one trace
    per ``modality`` ('t', 'a', 'v') and ``kind`` ('common' light, 'private' dark), with optional
    ``labels`` and ``ids`` on hover."""
    points = np.asarray(points)
    modality, kind = np.asarray(modality).astype(str), np.asarray(kind).astype(str)
    n = len(points)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points: expected shape (N, 2), got {points.shape}")
    for name, arr in (("modality", modality), ("kind", kind), ("labels", labels), ("ids", ids)):
        if arr is not None and len(arr) != n:
            raise ValueError(f"{name}: expected {n} entries (one per point), got {len(arr)}")
    unknown = set(kind.tolist()) - set(KIND_SYMBOLS)
    if unknown:
        raise ValueError(f"kind: expected 'common' or 'private', got {sorted(unknown)}")
    fig = go.Figure()
    mods = list(dict.fromkeys(modality.tolist()))          # first-seen order
    for k in ("common", "private"):
        for m in mods:
            sel = np.flatnonzero((modality == m) & (kind == k))             # indices of this group
            if sel.size == 0:
                continue
            text = [f"id: {ids[i] if ids is not None else i}<br>"
                    f"label: {_fmt(labels[i]) if labels is not None else '—'}<br>{_mod_name(m)} {k}"
                    for i in sel]
            fig.add_trace(go.Scatter(
                x=points[sel, 0], y=points[sel, 1], mode="markers",
                name=f"{_mod_name(m)} {k} ({'C' if k == 'common' else 'P'}_{m})",
                marker=dict(color=_colors(m)[0 if k == "common" else 1], size=6, opacity=0.8,
                            symbol=KIND_SYMBOLS.get(k, "circle"), line=dict(width=0.3, color="white")),
                text=text, hoverinfo="text",
            ))
    fig.update_layout(title=title, template="plotly_white", legend_title_text="representation",
                      xaxis=dict(showticklabels=False), yaxis=dict(showticklabels=False))
    return fig


def project(X, method: str = "tsne", seed: int = 0, cache=None) -> np.ndarray:
    """2-D projection (N, d) -> (N, 2) by t-SNE, UMAP (imported here: slow) or PCA. ``cache``, a
    dict-like or a directory, is keyed by a hash of (X, method, seed): no set is projected twice."""
    if method not in PROJECTION_METHODS:
        raise ValueError(f"method: expected one of {PROJECTION_METHODS}, got {method!r}")
    X = np.ascontiguousarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 3 or X.shape[1] < 2:
        raise ValueError(f"X: expected shape (N, d) with N >= 3 and d >= 2, got {X.shape}")
    h = hashlib.sha256(f"{X.shape}|{X.dtype.str}|{method}|{seed}|".encode())
    h.update(X.tobytes())
    key = f"{method}-{h.hexdigest()[:32]}"
    file = Path(cache) / f"{key}.npy" if isinstance(cache, (str, os.PathLike)) else None
    if file is not None and file.exists():
        return np.load(file)
    if file is None and cache is not None and key in cache:
        return np.array(cache[key], copy=True)
    n = X.shape[0]
    if method == "tsne":
        from sklearn.manifold import TSNE
        Y = TSNE(n_components=2, init="pca", perplexity=min(30.0, (n - 1) / 3),
                 random_state=seed).fit_transform(X)
    elif method == "umap":
        import umap                     # lazy: slow import, optional dependency
        Y = umap.UMAP(n_components=2, n_neighbors=min(15, n - 1), random_state=seed,
                      n_jobs=1).fit_transform(X)
    else:
        from sklearn.decomposition import PCA
        Y = PCA(n_components=2, random_state=seed).fit_transform(X)
    Y = np.asarray(Y, dtype=np.float64)                                     # (N, 2)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        np.save(file, Y)
    elif cache is not None:
        cache[key] = Y.copy()
    return Y


def representation_embedding(reps, method: str = "tsne", max_points: int | None = 600,
                             seed: int = 0, cache=None) -> go.Figure:
    """Paper Figure 2: all C_m and P_m of up to ``max_points`` samples (the same for every set),
    projected together so that distances between sets compare. ``reps``: ``common``, ``private``
    (m -> (N, d_k)), ``labels``, ``ids``, ``modalities``."""
    mods = list(reps.modalities)
    n_all = len(reps.labels)
    rng = np.random.default_rng(seed)
    n = n_all if max_points is None else min(n_all, max_points)
    idx = np.sort(rng.choice(n_all, size=n, replace=False))                 # (n,)
    blocks, modality, kind = [], [], []
    for k, store in (("common", reps.common), ("private", reps.private)):
        for m in mods:
            blocks.append(np.asarray(store[m])[idx])                       # (n, d_k)
            modality += [m] * n
            kind += [k] * n
    widths = {b.shape[1] for b in blocks}
    if len(widths) != 1:
        raise ValueError(f"common/private widths differ ({sorted(widths)}); cannot project jointly")
    X = np.concatenate(blocks, axis=0)                                      # (2*M*n, d_k)
    labels = np.tile(np.asarray(reps.labels)[idx], 2 * len(mods))          # (2*M*n,)
    ids = [str(reps.ids[i]) for i in idx] * (2 * len(mods))
    Y = project(X, method=method, seed=seed, cache=cache)                   # (2*M*n, 2)
    title = f"Common (light) and private (dark) representations, {method.upper()}, {n} samples"
    return embedding_figure(Y, modality, kind, labels=labels, ids=ids, title=title)


def embedding_comparison(panels: dict, method: str = "tsne", max_points: int | None = 300,
                         seed: int = 0, cache=None) -> go.Figure:
    """Figure 2 for several runs side by side: ``{"beta = gamma = 0": reps0, "paper": reps}``,
    each panel :func:`representation_embedding` of one representation set."""
    if not panels:
        raise ValueError("panels: expected at least one {title: reps} entry")
    figs = {name: representation_embedding(r, method=method, max_points=max_points, seed=seed,
                                           cache=cache)
            for name, r in panels.items()}
    fig = make_subplots(rows=1, cols=len(figs), subplot_titles=list(figs), horizontal_spacing=0.04)
    for col, sub in enumerate(figs.values(), start=1):
        for tr in sub.data:
            tr.legendgroup = tr.name
            tr.showlegend = col == 1
            fig.add_trace(tr, row=1, col=col)
        fig.update_xaxes(showticklabels=False, row=1, col=col)
        fig.update_yaxes(showticklabels=False, row=1, col=col)
    fig.update_layout(title=f"Common (light) and private (dark) representations, {method.upper()}",
                      template="plotly_white", height=480, width=460 * len(figs) + 200,
                      legend_title_text="representation")
    return fig


# ---------------------------------------------------------------- Figure 4: discriminator, psi

def discriminator_probabilities(reps, style: str = "box", title: str | None = None) -> go.Figure:
    """Box (or violin) plot of the discriminator's probability of the TRUE modality (Figure 4a),
    from ``reps.disc_prob_common[m]`` and ``disc_prob_private[m]`` (N, M). Ideal: 1/M on C_m, 1 on P_m."""
    if style not in ("box", "violin"):
        raise ValueError(f"style: expected 'box' or 'violin', got {style!r}")
    mods = list(reps.modalities)
    M = len(mods)
    trace = go.Box if style == "box" else go.Violin
    fig = go.Figure()
    for k, store in (("common", reps.disc_prob_common), ("private", reps.disc_prob_private)):
        for j, m in enumerate(mods):
            prob = np.asarray(store[m])                                     # (N, M)
            if prob.ndim != 2 or prob.shape[1] != M:
                raise ValueError(f"disc_prob_{k}[{m!r}]: expected shape (N, {M}), got {prob.shape}")
            p_true = prob[:, j]                                             # (N,)
            fig.add_trace(trace(x=[_mod_name(m)] * len(p_true), y=p_true,
                                name=f"{'C' if k == 'common' else 'P'}_{m} ({k})",
                                offsetgroup=k, legendgroup=k,
                                marker_color=_colors(m)[0 if k == "common" else 1]))
    _chance_line(fig, 1 / M, f"chance 1/{M}")
    layout = dict(boxmode="group") if style == "box" else dict(violinmode="group")
    fig.update_layout(title=title or "Discriminator probability of the true modality",
                      yaxis=dict(title="p(true modality)", range=[-0.02, 1.02]),
                      xaxis_title="modality", template="plotly_white", **layout)
    return fig


def fusion_weights(reps, names: list[str] | None = None, title: str | None = None) -> go.Figure:
    """Box plot of the CMAF phase-2 weights psi per fusion target (paper Figure 4b, Eq. 16), from
    ``reps.psi`` (N, T) and ``reps.psi_names`` (or ``names``); a dict ``{label: reps}`` compares
    models, one box trace each. The dashed line marks uniform attention 1/T."""
    groups = reps if isinstance(reps, dict) else {None: reps}
    fig = go.Figure()
    T = None
    for label, r in groups.items():
        psi = np.asarray(r.psi)                                             # (N, T)
        target_names = list(names if names is not None else r.psi_names)
        if psi.ndim != 2 or psi.shape[1] != len(target_names):
            raise ValueError(f"psi: expected shape (N, {len(target_names)}), got {psi.shape}")
        T = psi.shape[1]
        if label is None:                      # one model: one coloured box per target
            for j, name in enumerate(target_names):    # P_t: the dark shade of text; C: purple
                private = name.startswith("P_") and len(name) > 2
                fig.add_trace(go.Box(y=psi[:, j], x=[name] * len(psi), name=name,
                                     marker_color=_colors(name[2:])[1] if private else COMMON_COLOR))
        else:                                  # several models: one trace each, grouped
            x = np.repeat(np.array(target_names)[None, :], len(psi), axis=0)   # (N, T)
            fig.add_trace(go.Box(y=psi.ravel(), x=x.ravel(), name=str(label)))
    if T:
        _chance_line(fig, 1 / T, f"uniform 1/{T}")
    fig.update_layout(title=title or "Fusion attention ψ over targets", boxmode="group",
                      yaxis=dict(title="ψ", range=[-0.02, 1.02]), xaxis_title="target",
                      template="plotly_white", showlegend=not (None in groups))
    return fig


# ---------------------------------------------------------------- tables and the report

def _cell(value, key: str, percent: bool, number) -> str:
    """A table cell: a number through ``number`` (keys acc*/f1* x100 when ``percent``), else text."""
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        if percent and key.lower().startswith(("acc", "f1")):
            return f"{100 * float(value):.1f}"
        return number(float(value))
    return str(value)


def _table(header: list, cells: list, title: str) -> go.Figure:
    fig = go.Figure(go.Table(
        header=dict(values=header, fill_color="#deebf7", align="left", font=dict(size=13)),
        cells=dict(values=cells, align="left", height=24),
    ))
    fig.update_layout(title=title, height=120 + 26 * len(cells[0]), margin=dict(l=10, r=10, t=50, b=10))
    return fig


def metrics_table(ours: dict, paper: dict | None = None, bayes: dict | None = None,
                  percent: bool = True, title: str = "Test metrics") -> go.Figure:
    """Table of metric names with our values, and the paper's (and the Bayes floor) beside them.
    Accuracies and F1 are fractions, shown x100 with ``percent`` (pass the paper's 84.6 as 0.846)."""
    keys = list(ours) + [k for k in (paper or {}) if k not in ours]

    def column(d):
        return ["—" if d is None or k not in d else _cell(d[k], k, percent, "{:.4f}".format) for k in keys]

    header, cells = ["metric", "ours"], [keys, column(ours)]
    for name, d in (("paper", paper), ("ideal (Bayes)", bayes)):
        if d is not None:
            header.append(name)
            cells.append(column(d))
    return _table(header, cells, title)


def compare_table(columns: dict[str, dict], keys=None, ideal: dict | None = None,
                  percent: bool = False, title: str = "Comparison") -> go.Figure:
    """Table with one column per run (``{"run name": {"metric": value}}``), one row per key (``keys``
    picks and orders them), and an ``ideal`` column if given; numbers to 3 significant digits."""
    if keys is None:
        keys = list(dict.fromkeys(k for col in columns.values() for k in col))

    def column(d):
        return ["—" if d.get(k) is None else _cell(d[k], k, percent, _fmt) for k in keys]

    header = ["", *columns]
    cells = [list(keys)] + [column(col) for col in columns.values()]
    if ideal is not None:
        header.append("ideal")
        cells.append(column(ideal))
    return _table(header, cells, title)


def write_report(path, figures: list[tuple], title: str = "fdmer_lite report",
                 summary_html: str = "") -> Path:
    """Write one self-contained, offline HTML file: plotly.js embedded once, then each figure
    under its heading. ``figures`` holds ``(heading, figure)`` or ``(heading, figure, caption)``
    (plain text, printed under it); ``summary_html`` goes in as is, below the title."""
    parts = []
    for i, (heading, fig, *caption) in enumerate(figures):
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        parts.append(fig.to_html(full_html=False, include_plotlyjs=(i == 0)))   # bundle once
        if caption and caption[0]:
            parts.append(f'<p class="caption">{html.escape(caption[0])}</p>')
    page = (
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;}"
        ".caption{max-width:60em;line-height:1.4;color:#333;}</style>\n"
        "</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n{summary_html}\n" + "\n".join(parts) + "\n</body>\n</html>\n"
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def demo_captions(metrics: dict, history: list[dict], psi=None, psi_names=()) -> list[str]:
    """One caption per figure of the demo's report (loss curves, embedding, discriminator,
    fusion weights): what it shows, what a good result looks like, and what this run shows."""
    valid = [h["valid"]["task"] for h in history]
    best = int(metrics.get("best_epoch", 0) or 0)
    curve = ""
    if valid and 1 <= best <= len(valid):
        curve = (f"This run: the validation task loss went from {valid[0]:.3f} in epoch 1 to "
                 f"{valid[best - 1]:.3f} in epoch {best} of {len(valid)}, the epoch kept")
        mae = history[best - 1].get("valid_metrics", {}).get("mae")
        curve += f" (validation MAE {mae:.3f})." if mae is not None else "."
    get = lambda k: metrics.get(k, float("nan"))  # noqa: E731
    weights = ""
    if psi is not None and len(psi_names):
        mean = np.asarray(psi, dtype=float).mean(axis=0)
        weights = ("This run's mean weights: "
                   + ", ".join(f"{n} {w:.2f}" for n, w in zip(psi_names, mean)) + ".")
    return [
        "Every term of Eq. 18 per epoch, on the training and the validation split. A good run: the task loss "
        "falls on both splits and the validation curve levels off; the constraint terms fall too. " + curve,
        "The common (light) and private (dark) representations of the test split, coloured by modality. In "
        "the paper's picture the light clouds of the three modalities mix and the dark ones stay apart. This "
        f"run: a fresh linear probe tells the modality from C_m at {get('common_modality_acc'):.2f} (chance "
        f"is 1/3) and from P_m at {get('private_modality_acc'):.2f}.",
        "The discriminator's probability of the true modality, on C_m and on P_m. The paper shows about 1/3 "
        "on C_m (fooled) and near 1 on P_m (recognised); a mean near 1/3 can also hide boxes at 0 and 1. "
        f"This run's means: {get('disc_prob_common'):.2f} on C_m, {get('disc_prob_private'):.2f} on P_m.",
        "CMAF's weights psi over the fused tokens (Eq. 16), one box per token. No value is right in itself: "
        "the weights say which tokens the prediction leans on. " + weights,
    ]


# ---------------------------------------------------------------- teaching figures

def sample_sequences(features: dict, windows: dict | None = None, title: str = "One sample") -> go.Figure:
    """Heatmaps of one sample's sequences ``{m: (L_m, d_m)}``, one row per modality (time across,
    features down); ``windows`` ``{m: (start, stop)}`` outlines a time window."""
    mods = list(features)
    arrays = {m: np.asarray(features[m], dtype=float) for m in mods}       # m -> (L, d)
    for m, x in arrays.items():
        if x.ndim != 2:
            raise ValueError(f"features[{m!r}]: expected shape (L, d), got {x.shape}")
    fig = make_subplots(rows=len(mods), cols=1, shared_xaxes=False, vertical_spacing=0.08,
                        subplot_titles=[f"{_mod_name(m)} ({m}): {arrays[m].shape[0]} steps x "
                                        f"{arrays[m].shape[1]} features" for m in mods])
    for i, (m, x) in enumerate(arrays.items()):
        fig.add_trace(go.Heatmap(z=x.T, colorscale="RdBu", zmid=float(np.median(x)), showscale=False,
                                 hovertemplate="step %{x}<br>feature %{y}<br>value %{z:.2f}"
                                               "<extra>" + m + "</extra>"),
                      row=i + 1, col=1)
        if windows and m in windows:
            start, stop = (int(v) for v in windows[m])
            fig.add_vrect(x0=start - 0.5, x1=stop - 0.5, line=dict(color="black", width=2),
                          fillcolor="rgba(0,0,0,0)", row=i + 1, col=1)
        fig.update_yaxes(title_text="feature", row=i + 1, col=1)
    fig.update_xaxes(title_text="time step", row=len(mods), col=1)
    fig.update_layout(title=title, height=220 * len(mods) + 80, template="plotly_white")
    return fig


def attention_heatmap(weights, rows=None, cols=None, title: str = "Attention weights") -> go.Figure:
    """A small attention matrix (queries down, keys across) with its values written in the cells."""
    w = np.asarray(weights, dtype=float)
    if w.ndim != 2:
        raise ValueError(f"weights: expected a 2-d (queries, keys) matrix, got shape {w.shape}")
    rows = [str(r) for r in (rows if rows is not None else range(w.shape[0]))]
    cols = [str(c) for c in (cols if cols is not None else range(w.shape[1]))]
    if len(rows) != w.shape[0] or len(cols) != w.shape[1]:
        raise ValueError(f"rows/cols: expected {w.shape[0]} and {w.shape[1]} names, "
                         f"got {len(rows)} and {len(cols)}")
    fig = go.Figure(go.Heatmap(z=w, x=cols, y=rows, colorscale="Blues", zmin=0.0,
                               zmax=max(1.0, float(w.max())), text=np.round(w, 3), texttemplate="%{text}",
                               hovertemplate="query %{y}<br>key %{x}<br>%{z:.3f}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="key (attended to)", yaxis_title="query",
                      yaxis=dict(autorange="reversed"), template="plotly_white",
                      height=120 + 60 * len(rows), width=160 + 90 * len(cols))
    return fig


def angular_geometry(class_weights, margin: float = 0.5, features=None, labels=None,
                     class_names=("t", "a", "v"), resolution: int = 720,
                     title: str | None = None) -> go.Figure:
    """Decision geometry of Eq. 9 on the unit circle: a ray per column of ``class_weights`` (2, M);
    at radius 1.15 the plain regions (argmax_m cos theta_m); at radius 1.3 those where class y keeps
    the margin, cos(theta_y + tau) > max_{m != y} cos theta_m; optionally ``features`` (N, 2)."""
    W = np.asarray(class_weights, dtype=float)
    if W.ndim != 2 or W.shape[0] != 2:
        raise ValueError(f"class_weights: expected shape (2, M), got {W.shape}")
    M = W.shape[1]
    names = list(class_names)[:M] if len(class_names) >= M else [str(i) for i in range(M)]
    palette = ("#08519c", "#a63603", "#006d2c", "#54278f", "#636363")          # modality keys: dark shade
    colors = [MODALITY_COLORS[n][1] if n in MODALITY_COLORS else palette[j % 5] for j, n in enumerate(names)]
    W = W / np.linalg.norm(W, axis=0, keepdims=True)                        # (2, M)
    ang = np.linspace(0.0, 2 * np.pi, resolution, endpoint=False)           # (R,)
    u = np.stack([np.cos(ang), np.sin(ang)], axis=1)                        # (R, 2)
    cos = np.clip(u @ W, -1.0, 1.0)                                          # (R, M)
    plain = cos.argmax(axis=1)                                              # (R,)
    theta = np.arccos(cos)
    with_margin = np.full(resolution, -1)
    for y in range(M):
        others = np.delete(cos, y, axis=1).max(axis=1)
        ok = (np.cos(np.minimum(theta[:, y] + margin, np.pi)) > others) & (plain == y)
        with_margin[ok] = y
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=np.cos(ang), y=np.sin(ang), mode="lines", line=dict(color="#bbbbbb"),
                             name="unit circle", hoverinfo="skip"))
    a = np.append(ang, ang[0])                                              # closed loop
    for radius, region, label in ((1.15, plain, "plain softmax region"),
                                  (1.3, with_margin, f"margin region (tau={margin:g})")):
        for j in range(M):
            r = np.where(np.append(region, region[0]) == j, radius, np.nan)
            fig.add_trace(go.Scatter(x=r * np.cos(a), y=r * np.sin(a), mode="lines",
                                     line=dict(color=colors[j], width=6),
                                     name=f"{label}: {names[j]}", legendgroup=label,
                                     opacity=1.0 if radius > 1.2 else 0.45, hoverinfo="name"))
    for j in range(M):
        fig.add_trace(go.Scatter(x=[0, W[0, j]], y=[0, W[1, j]], mode="lines+markers",
                                 line=dict(color=colors[j], width=3),
                                 marker=dict(size=[0, 10]), name=f"W_D column {names[j]}"))
    if features is not None:
        F_ = np.asarray(features, dtype=float)
        if F_.ndim != 2 or F_.shape[1] != 2:
            raise ValueError(f"features: expected shape (N, 2), got {F_.shape}")
        F_ = F_ / np.linalg.norm(F_, axis=1, keepdims=True).clip(1e-12)
        lab = np.zeros(len(F_), dtype=int) if labels is None else np.asarray(labels, dtype=int)
        for j in range(M):
            sel = lab == j
            if sel.any():
                fig.add_trace(go.Scatter(x=F_[sel, 0], y=F_[sel, 1], mode="markers",
                                         marker=dict(color=colors[j], size=6, opacity=0.5),
                                         name=f"features of {names[j]}"))
    fig.update_layout(title=title or "Decision regions on the unit circle (Eq. 9)",
                      xaxis=dict(range=[-1.45, 1.45], visible=False),
                      yaxis=dict(range=[-1.45, 1.45], visible=False, scaleanchor="x", scaleratio=1),
                      template="plotly_white", width=640, height=560)
    return fig


def similarity_matrices(matrices: dict, title: str = "Batch similarity matrices S_m (Eq. 4)") -> go.Figure:
    """Square matrices side by side on one colour scale from -1 to 1, e.g. ``{"S_t": S_t, ...}``:
    entry (i, j) relates samples i and j of one batch."""
    names = list(matrices)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.04)
    for k, name in enumerate(names, start=1):
        S = np.asarray(matrices[name], dtype=float)
        if S.ndim != 2 or S.shape[0] != S.shape[1]:
            raise ValueError(f"{name}: expected a square matrix, got shape {S.shape}")
        fig.add_trace(go.Heatmap(z=S, zmin=-1.0, zmax=1.0, colorscale="RdBu", reversescale=True,
                                 showscale=k == len(names), colorbar=dict(title="cosine"),
                                 hovertemplate="sample %{y}, sample %{x}: %{z:.2f}<extra></extra>"), 1, k)
        fig.update_yaxes(autorange="reversed", title_text="sample i" if k == 1 else None, row=1, col=k)
        fig.update_xaxes(title_text="sample j", row=1, col=k)
    fig.update_layout(title=title, template="plotly_white", height=330, width=300 * len(names) + 80)
    return fig


def dependence_curve(x, curves: dict, xlabel: str, ylabel: str, title: str = "",
                     log_y: bool = False) -> go.Figure:
    """One line per entry of ``curves`` (name -> y values over ``x``), with markers."""
    fig = go.Figure()
    for name, y in curves.items():
        fig.add_trace(go.Scatter(x=list(x), y=list(np.asarray(y, dtype=float)), mode="lines+markers",
                                 name=name))
    fig.update_layout(title=title, xaxis_title=xlabel, yaxis_title=ylabel, template="plotly_white",
                      height=380, width=640)
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def prediction_scatter(predictions, labels, title: str = "Predicted against true label",
                       label_range: tuple[float, float] | None = None) -> go.Figure:
    """One point per sample, prediction against label, with the diagonal of a perfect model and
    the line of always predicting the labels' mean (regression)."""
    pred, y = np.asarray(predictions, dtype=float).ravel(), np.asarray(labels, dtype=float).ravel()
    if pred.shape != y.shape:
        raise ValueError(f"prediction_scatter: {pred.shape[0]} predictions for {y.shape[0]} labels")
    lo, hi = label_range or (float(min(y.min(), pred.min())), float(max(y.max(), pred.max())))
    fig = go.Figure(go.Scatter(x=y, y=pred, mode="markers", name="samples",
                               marker=dict(size=5, opacity=0.5, color="#1f77b4")))
    for y_line, name, color, dash in (([lo, hi], "perfect (prediction = label)", "#2ca02c", "dash"),
                                      ([float(y.mean())] * 2, "the labels' mean", "#7f7f7f", "dot")):
        fig.add_trace(go.Scatter(x=[lo, hi], y=y_line, mode="lines", name=name,
                                 line=dict(color=color, dash=dash)))
    fig.update_layout(title=title, xaxis_title="true label", yaxis_title="prediction",
                      template="plotly_white", height=420, width=560)
    return fig


# ---------------------------------------------------------------- notebook 11: beyond the paper

def modality_confusion(panels: dict, title: str = "Where the discriminator puts its probability on C_m"
                       ) -> go.Figure:
    """One heatmap per run (``panels``: name -> reps with ``disc_prob_common``): row = the true
    modality of C_m, column = the modality the discriminator (Eq. 8-9) names, cell = its mean
    probability. A confused discriminator gives 1/M everywhere; a relabelling one, off the diagonal."""
    if not panels:
        raise ValueError("panels: expected at least one run")
    names = list(panels)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.08)
    for i, name in enumerate(names, start=1):
        mods = list(panels[name].modalities)
        rows = []
        for m in mods:
            prob = np.asarray(panels[name].disc_prob_common[m], dtype=float)          # (N, M)
            if prob.ndim != 2 or prob.shape[1] != len(mods):
                raise ValueError(f"{name}: disc_prob_common[{m!r}]: expected shape (N, {len(mods)}), "
                                 f"got {prob.shape}")
            rows.append(prob.mean(axis=0))                                            # (M,)
        z = np.stack(rows)                                                            # (M, M)
        fig.add_trace(go.Heatmap(z=z, x=[_mod_name(m) for m in mods], y=[f"C_{m}" for m in mods],
                                 zmin=0.0, zmax=1.0, colorscale="Blues", showscale=i == len(names),
                                 text=np.round(z, 2), texttemplate="%{text}",
                                 hovertemplate="true %{y}<br>named %{x}<br>p %{z:.3f}<extra></extra>"),
                      row=1, col=i)
        fig.update_xaxes(title_text="modality the discriminator names", row=1, col=i)
        fig.update_yaxes(autorange="reversed", row=1, col=i,
                         title_text="true modality of C_m" if i == 1 else None)
    fig.update_layout(title=title, template="plotly_white", height=360, width=max(420, 330 * len(names)))
    return fig


def probe_bars(table: dict, chance: float | None = None, title: str = "Probes for the modality on C_m",
               yaxis: str = "test accuracy") -> go.Figure:
    """Grouped bars: ``table`` is run name -> {probe name: value}; one group per probe, one bar
    per run, and a dashed line at ``chance`` if given."""
    if not table:
        raise ValueError("table: expected at least one run")
    probes = list(dict.fromkeys(k for row in table.values() for k in row))
    fig = go.Figure()
    for run, row in table.items():
        values = [row.get(p, float("nan")) for p in probes]
        fig.add_trace(go.Bar(x=probes, y=values, name=run, text=[_fmt(v) for v in values],
                             textposition="outside"))
    if chance is not None:
        _chance_line(fig, chance, f"chance {chance:.2f}")
    fig.update_layout(title=title, barmode="group", yaxis_title=yaxis, xaxis_title="probe",
                      template="plotly_white", height=420, width=720)
    return fig


# ---------------------------------------------------------------- figures offline
# Figures and equations with no network, live in JupyterLab and in an nbconvert HTML export: no CDN
# script (MathJax, require.js, mermaid, the widget manager) and plotly.js inlined once per notebook.

RENDERER = "notebook_offline"
MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"     # the configuration jupyter-server-mathjax ships
_MATHJAX_TAG = re.compile(r'<script[^>]*\bsrc="https?://[^"]*mathjax[^"]*"[^>]*>\s*</script>', re.I)
# What a page *loads* (not URLs quoted inside plotly.js): script/link/img sources and imports.
_LOADS = re.compile(r'<(?:script|img|iframe)\b[^>]*\bsrc="(https?://[^"]+)"'
                    r'|<link\b[^>]*\bhref="(https?://[^"]+)"'
                    r'|\bimport\(\s*"(https?://[^"]+)"\s*\)'
                    r"|\b\w*src\s*=\s*'(https?://[^']+)'", re.I)        # a script added by code

# Without the widget manager a widget shows the static HTML copy it sent, if any.
_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block data_widget_view scoped -%}
{%- if 'text/html' in output.data -%}
<div class="jp-RenderedHTMLCommon jp-RenderedHTML jp-OutputArea-output {{ extra_class }}" data-mime-type="text/html">
{{ output.data['text/html'] }}
</div>
{%- else -%}{{ super() }}{%- endif -%}
{%- endblock data_widget_view -%}
"""


def use_offline_renderer() -> str:
    """Register the offline notebook renderer and make ``plotly_mimetype+`` it the default."""
    import plotly.io as pio
    from plotly.io._base_renderers import NotebookRenderer

    class OfflineNotebookRenderer(NotebookRenderer):
        def to_mimebundle(self, fig_dict):
            bundle = super().to_mimebundle(fig_dict)
            bundle["text/html"] = _MATHJAX_TAG.sub("", bundle["text/html"])
            return bundle

    if RENDERER not in pio.renderers:
        pio.renderers[RENDERER] = OfflineNotebookRenderer()
    pio.renderers.default = f"plotly_mimetype+{RENDERER}"
    return pio.renderers.default


def mathjax_source() -> Path:
    """The MathJax 2 files of the ``jupyter-server-mathjax`` package."""
    try:
        import jupyter_server_mathjax
    except ImportError:
        raise ImportError("offline equations need the package jupyter-server-mathjax "
                          "(pip install jupyter-server-mathjax)") from None
    static = Path(jupyter_server_mathjax.__file__).parent / "static"
    if not (static / "MathJax.js").is_file():
        raise FileNotFoundError(f"{static}: no MathJax.js in jupyter-server-mathjax")
    return static


def export_html(notebook, out_path: str | Path) -> Path:
    """Write ``notebook`` (a path or an executed ``nbformat`` node) as HTML that needs no network:
    MathJax from ``<folder of out_path>/mathjax`` (a relative URL, so the folder can be moved)."""
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter
    out_path = Path(out_path)
    mathjax = out_path.parent / "mathjax"
    if not (mathjax / "MathJax.js").is_file():                          # copied once per folder
        shutil.copytree(mathjax_source(), mathjax, dirs_exist_ok=True)
    nb = nbformat.read(notebook, as_version=4) if isinstance(notebook, (str, Path)) else notebook
    exporter = HTMLExporter(template_name="lab", template_file="offline.html.j2",
                            extra_loaders=[DictLoader({"offline.html.j2": _TEMPLATE})],
                            mathjax_url=f"mathjax/MathJax.js?config={MATHJAX_CONFIG}")
    body, _ = exporter.from_notebook_node(nb)
    out_path.write_text(body, encoding="utf-8")
    return out_path


def inspect_html(text: str) -> dict:
    """Figures and outside loads of an exported page (``text``: its HTML)."""
    loads = sorted({next(g for g in m.groups() if g) for m in _LOADS.finditer(text)})
    mathjax = re.findall(r'<script[^>]*\bsrc="([^"]*MathJax[^"]*)"', text, re.I)
    return {"figures": text.count('class="plotly-graph-div"'),
            "plotlyjs_inlined": "plotly.js v" in text and "Plotly.newPlot" in text,
            "mathjax": mathjax,
            "mathjax_local": bool(mathjax) and all(not re.match(r"https?://", u) for u in mathjax),
            "external_loads": loads}
