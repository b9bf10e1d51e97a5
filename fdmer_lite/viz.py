"""Plotly figure builders for the FDMER lessons. Every function RETURNS a figure; none shows it.

FDMER (Yang et al., ACM MM 2022) explains the method with four kinds of figures, rebuilt here:

- Figure 2 (Sec. 4.5): t-SNE of the common and private representations C_m, P_m of each
  modality -> :func:`project`, :func:`embedding_figure`, :func:`representation_embedding`.
  Colours follow the paper: one hue per modality (text blue, audio orange, visual green), a light
  shade for common and a dark shade for private.
- Figure 3 (Sec. 4.5): training curves of every loss term -> :func:`loss_curves`.
- Figure 4a (Sec. 4.5): the modality discriminator's probability of the true modality, near
  chance (1/3) on C_m and near 1 on P_m -> :func:`discriminator_probabilities`.
- Figure 4b (Sec. 4.5): the CMAF phase-2 fusion weights psi over the targets C, P_t, P_a, P_v
  (Eq. 15-17) -> :func:`fusion_weights`.

Plus :func:`metrics_table` (ours beside the paper's Tables 1-3) and :func:`write_report`, which
writes one self-contained, offline HTML file.

The ``reps`` objects are duck-typed: anything with the attributes named in each docstring works
(``fdmer_lite.analysis`` produces them), so this module imports neither the model nor the trainer.
"""

from __future__ import annotations

import hashlib
import html
import math
import os
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

MODALITY_NAMES = {"t": "text", "a": "audio", "v": "visual"}
# (light = common, dark = private), as in the paper's Figure 2.
MODALITY_COLORS = {
    "t": ("#9ecae1", "#08519c"),   # light / dark blue
    "a": ("#fdae6b", "#a63603"),   # light / dark orange
    "v": ("#a1d99b", "#006d2c"),   # light / dark green
}
OTHER_COLORS = ("#cccccc", "#525252")      # any other modality key: light / dark grey
COMMON_COLOR = "#756bb1"                    # the fused common target C in the psi box plot
KIND_SYMBOLS = {"common": "circle", "private": "diamond"}

TERM_TITLES = {
    "task": "L_task", "ami": "L_ami (Eq. 10)", "ams": "L_ams (Eq. 11)",
    "con": "L_con (Eq. 5)", "dis": "L_dis (Eq. 7)", "all": "L_all (Eq. 18)",
}
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


# ---------------------------------------------------------------- Figure 3: loss curves


def loss_curves(history: list[dict], terms=("task", "ami", "ams", "con", "dis", "all"),
                title: str = "Loss terms per epoch") -> go.Figure:
    """One subplot per loss term with train and valid lines over epochs (paper Figure 3).

    ``history`` is the trainer's list of per-epoch dicts:
    ``{"epoch": 1, "train": {"task": ..., "ami": ...}, "valid": {...}, ...}``.
    Terms that appear in no epoch (e.g. ``ami`` when beta = 0 disables it) are skipped.
    """
    present = [t for t in terms
               if any(t in (h.get(split) or {}) for h in history for split in ("train", "valid"))]
    if not present:
        fig = go.Figure()
        fig.update_layout(title=f"{title}: no loss terms recorded")
        return fig

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


# ---------------------------------------------------------------- Figure 2: embeddings


def embedding_figure(points, modality, kind, labels=None, ids=None, title: str = "") -> go.Figure:
    """2-D scatter of already projected representations, coloured as in the paper's Figure 2.

    Args:
        points: (N, 2) projected coordinates.
        modality: (N,) modality key per point ('t', 'a', 'v').
        kind: (N,) 'common' or 'private' per point (light and dark shade of the modality hue).
        labels: optional (N,) label per point, shown on hover.
        ids: optional (N,) sample id per point, shown on hover.
    One trace per (modality, kind) pair, so the legend toggles e.g. "text private" alone.
    """
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
            light, dark = _colors(m)
            text = [
                f"id: {ids[i] if ids is not None else i}<br>"
                f"label: {_fmt(labels[i]) if labels is not None else '—'}<br>"
                f"{_mod_name(m)} {k}"
                for i in sel
            ]
            fig.add_trace(go.Scatter(
                x=points[sel, 0], y=points[sel, 1], mode="markers",
                name=f"{_mod_name(m)} {k} ({'C' if k == 'common' else 'P'}_{m})",
                marker=dict(color=light if k == "common" else dark, size=6, opacity=0.8,
                            symbol=KIND_SYMBOLS.get(k, "circle"),
                            line=dict(width=0.3, color="white")),
                text=text, hoverinfo="text",
            ))
    fig.update_layout(title=title, template="plotly_white", legend_title_text="representation",
                      xaxis=dict(showticklabels=False), yaxis=dict(showticklabels=False))
    return fig


def _cache_key(X: np.ndarray, method: str, seed: int) -> str:
    h = hashlib.sha256()
    h.update(f"{X.shape}|{X.dtype.str}|{method}|{seed}|".encode())
    h.update(X.tobytes())
    return f"{method}-{h.hexdigest()[:32]}"


def project(X, method: str = "tsne", seed: int = 0, cache=None) -> np.ndarray:
    """2-D projection (N, d) -> (N, 2) by t-SNE, UMAP or PCA, optionally cached.

    - ``tsne``: scikit-learn, ``init="pca"``, perplexity ``min(30, (N - 1) / 3)``;
    - ``umap``: umap-learn, imported here (importing it takes ~13 s; the first fit in a process
      ~40 s while numba compiles); ``n_neighbors = min(15, N - 1)``;
    - ``pca``: scikit-learn, two components.

    ``cache`` is a dict-like or a directory path. The key hashes (X's bytes and shape, method,
    seed), so the same representation set is never projected twice. A copy is returned.
    """
    if method not in PROJECTION_METHODS:
        raise ValueError(f"method: expected one of {PROJECTION_METHODS}, got {method!r}")
    X = np.ascontiguousarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 3 or X.shape[1] < 2:
        raise ValueError(f"X: expected shape (N, d) with N >= 3 and d >= 2, got {X.shape}")

    key = _cache_key(X, method, seed)
    file = None
    if cache is not None and isinstance(cache, (str, os.PathLike)):
        file = Path(cache) / f"{key}.npy"
        if file.exists():
            return np.load(file)
    elif cache is not None and key in cache:
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
    """Project all C_m and P_m jointly and plot them (paper Figure 2).

    ``reps`` needs ``common`` and ``private`` (dict m -> (N, d_k) arrays), ``labels`` (N,),
    ``ids`` (N str) and ``modalities`` (e.g. "tav"). Up to ``max_points`` samples are drawn
    (seeded; the same samples for every modality), the 2*M sets are stacked into one
    (2*M*n, d_k) array and projected once, so distances between sets are comparable.
    """
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


# ---------------------------------------------------------------- Figure 4: discriminator, psi


def discriminator_probabilities(reps, style: str = "box") -> go.Figure:
    """Distribution of the discriminator's probability of the TRUE modality (paper Figure 4a).

    ``reps.disc_prob_common[m]`` and ``reps.disc_prob_private[m]`` are (N, M) probabilities over
    the modalities in the order of ``reps.modalities``; for inputs from modality m the true
    column is ``reps.modalities.index(m)``. Ideal: near chance 1/M on C_m (the common space hides
    the modality), near 1 on P_m. ``style`` is "box" or "violin".
    """
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
            light, dark = _colors(m)
            fig.add_trace(trace(
                x=[_mod_name(m)] * len(p_true), y=p_true,
                name=f"{'C' if k == 'common' else 'P'}_{m} ({k})",
                offsetgroup=k, legendgroup=k,
                marker_color=light if k == "common" else dark,
            ))
    fig.add_hline(y=1 / M, line_dash="dash", line_color="black",
                  annotation_text=f"chance 1/{M}", annotation_position="top left")
    layout = dict(boxmode="group") if style == "box" else dict(violinmode="group")
    fig.update_layout(title="Discriminator probability of the true modality",
                      yaxis=dict(title="p(true modality)", range=[-0.02, 1.02]),
                      xaxis_title="modality", template="plotly_white", **layout)
    return fig


def _psi_color(name: str) -> str:
    # "C" -> purple; "P_t" -> the dark (private) shade of text, etc.
    if name.startswith("P_") and len(name) > 2:
        return _colors(name[2:])[1]
    return COMMON_COLOR


def fusion_weights(reps, names: list[str] | None = None) -> go.Figure:
    """Box plot of the CMAF phase-2 weights psi per fusion target (paper Figure 4b, Eq. 16).

    ``reps`` has ``psi`` (N, T) and ``psi_names`` (T names such as ["C", "P_t", "P_a", "P_v"]);
    ``names`` overrides the displayed names. Pass a dict ``{label: reps}`` to compare several
    models side by side (e.g. "emotion-like" vs "humor-like"): one box trace per entry.
    The dashed line marks uniform attention 1/T.
    """
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
            for j, name in enumerate(target_names):
                fig.add_trace(go.Box(y=psi[:, j], x=[name] * len(psi), name=name,
                                     marker_color=_psi_color(name)))
        else:                                  # several models: one trace each, grouped
            x = np.repeat(np.array(target_names)[None, :], len(psi), axis=0)   # (N, T)
            fig.add_trace(go.Box(y=psi.ravel(), x=x.ravel(), name=str(label)))
    if T:
        fig.add_hline(y=1 / T, line_dash="dash", line_color="black",
                      annotation_text=f"uniform 1/{T}", annotation_position="top left")
    fig.update_layout(title="Fusion attention ψ over targets", boxmode="group",
                      yaxis=dict(title="ψ", range=[-0.02, 1.02]), xaxis_title="target",
                      template="plotly_white", showlegend=not (None in groups))
    return fig


# ---------------------------------------------------------------- tables and the report


def metrics_table(ours: dict, paper: dict | None = None, bayes: dict | None = None,
                  percent: bool = True, title: str = "Test metrics") -> go.Figure:
    """Table of metric names with our values, and the paper's (and the Bayes floor) beside them.

    All dicts use the ``metrics.json`` convention: accuracies and F1 as fractions in [0, 1].
    With ``percent=True`` keys starting with ``acc`` or ``f1`` are shown x100, as papers print
    them (so pass the paper's 84.6 as 0.846). A missing value shows as "—".
    """
    keys = list(ours) + [k for k in (paper or {}) if k not in ours]

    def show(d, key):
        if d is None or key not in d:
            return "—"
        v = d[key]
        if isinstance(v, (int, float, np.number)) and not isinstance(v, bool):
            v = float(v)
            if percent and key.lower().startswith(("acc", "f1")):
                return f"{100 * v:.1f}"
            return f"{v:.4f}"
        return str(v)

    header = ["metric", "ours"]
    columns = [keys, [show(ours, k) for k in keys]]
    for name, d in (("paper", paper), ("ideal (Bayes)", bayes)):
        if d is not None:
            header.append(name)
            columns.append([show(d, k) for k in keys])
    fig = go.Figure(go.Table(
        header=dict(values=header, fill_color="#deebf7", align="left", font=dict(size=13)),
        cells=dict(values=columns, align="left", height=24),
    ))
    fig.update_layout(title=title, height=120 + 26 * len(keys), margin=dict(l=10, r=10, t=50, b=10))
    return fig


def write_report(path, figures: list[tuple[str, go.Figure]], title: str = "fdmer_lite report",
                 summary_html: str = "") -> Path:
    """Write one self-contained HTML file (works offline): plotly.js embedded once, then each
    figure under its own heading. ``summary_html`` is inserted as is, below the title."""
    parts = []
    for i, (heading, fig) in enumerate(figures):
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        parts.append(fig.to_html(full_html=False, include_plotlyjs=(i == 0)))   # bundle once
    page = (
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;}</style>\n"
        "</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n{summary_html}\n" + "\n".join(parts) + "\n</body>\n</html>\n"
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
