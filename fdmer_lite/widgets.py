"""ipywidgets apps built on :mod:`fdmer_lite.viz`: the beta/gamma explorer.

FDMER's objective (Yang et al., ACM MM 2022, Eq. 18) weighs the adversarial and discriminative
losses (Eq. 10-11) by beta and the consistency and disparity constraints (Eq. 5, 7) by gamma.
:class:`BetaGammaExplorer` lets a learner move both and see, for the chosen setting beside a pinned
reference setting:

- the common/private embedding (paper Figure 2; t-SNE, UMAP or PCA) -> ``viz.representation_embedding``
- the discriminator's probability of the true modality (Figure 4a) -> ``viz.discriminator_probabilities``
- the fusion weights psi (Figure 4b, Eq. 16) -> ``viz.fusion_weights``
- the test metrics and the disentanglement scores (``analysis.disentanglement_scores``).

Every setting is one cell of a :class:`~fdmer_lite.sweep.SweepCache` on disk. A cached setting is
shown at once (read from disk once, then from memory). **Train** trains a missing setting in a
background thread (the notebook stays responsive) with a progress bar; a second click while a job
runs is refused with a message, and an error in the thread is shown in the status line.

Rendering: each figure goes into an ``ipywidgets.Output`` as a plotly mime bundle
(``application/vnd.plotly.v1+json``, drawn by the jupyterlab-plotly extension that ships with
plotly). Setting ``Output.outputs`` is one state message, safe from any thread, and needs neither
``FigureWidget`` nor its extra dependency (anywidget, for plotly >= 6).
"""

from __future__ import annotations

import html
import json
import threading
import time
import traceback
from collections import OrderedDict

import ipywidgets as W
import plotly.io as pio

from . import sweep as sw
from . import viz
from .scores import SCORES

FIGURES = ("embedding", "discriminator", "fusion")
FIG_HEIGHT = {"embedding": 380, "discriminator": 300, "fusion": 300}
METHOD_LABELS = (("t-SNE", "tsne"), ("UMAP", "umap"), ("PCA", "pca"))

# the disentanglement scores a cell's table shows, below its test metrics (names: scores.SCORES)
SCORE_KEYS = ("disc_prob_common", "disc_prob_private", "common_modality_acc", "private_modality_acc",
              "common_factor_r2", "private_factor_r2")


def setting_text(beta: float, gamma: float) -> str:
    """``β = 0.02, γ = 0.02`` (the same number formatting as the cache's cell names)."""
    return f"β = {sw.format_value(beta)}, γ = {sw.format_value(gamma)}"


def figure_output(fig) -> dict:
    """One ``display_data`` output holding a plotly figure as its mime bundle (+ a text fallback)."""
    # What plotly's "plotly_mimetype" renderer sends, built directly: importing plotly.io's
    # renderers pulls in nbformat and jsonschema (seconds on a busy two-core machine).
    spec = json.loads(pio.to_json(fig, validate=False, remove_uids=False))     # numpy -> JSON
    spec["config"] = {"displaylogo": False}
    title = fig.layout.title.text or "plotly figure"
    return {"output_type": "display_data", "metadata": {},
            "data": {"application/vnd.plotly.v1+json": spec, "text/plain": f"<{title}>"}}


def message_output(text: str) -> dict:
    return {"output_type": "display_data", "metadata": {},
            "data": {"text/plain": text, "text/html": f"<p style='color:#555'>{html.escape(text)}</p>"}}


def metrics_html(cell: sw.CellResult) -> str:
    """The metrics and disentanglement scores of one cell as a small HTML table."""
    m = cell.metrics
    num = lambda k: f"{m[k]:.3f}" if isinstance(m.get(k), (int, float)) else "—"   # noqa: E731
    rows = []
    if "mae" in m:
        floor = f" (Bayes floor {num('bayes_mae')}, ridge {num('ridge_mae')})" if "bayes_mae" in m else ""
        rows.append((SCORES["mae"].name, num("mae"), floor.strip(" ()") or SCORES["mae"].ideal))
        rows += [(SCORES[k].name, num(k), SCORES[k].ideal) for k in ("corr", "acc2_non0")]
    elif "acc2" in m:
        rows.append((SCORES["acc2"].name, num("acc2"), f"Bayes {num('bayes_acc')}" if "bayes_acc" in m else ""))
    rows += [(SCORES[k].name, num(k), SCORES[k].ideal) for k in SCORE_KEYS if k in m]
    body = "".join(f"<tr><td>{html.escape(a)}</td><td style='text-align:right'><b>{b}</b></td>"
                   f"<td style='color:#666'>{html.escape(c)}</td></tr>" for a, b, c in rows)
    epochs = f"best epoch {m.get('best_epoch', '—')}, trained in {m.get('train_seconds') or 0:.1f} s"
    return (f"<div class='fdmer-metrics-table' data-setting='{cell.name}'>"
            f"<b>{setting_text(cell.beta, cell.gamma)}</b> <span style='color:#666'>({epochs})</span>"
            f"<table style='font-size:12px'><tr><th>metric</th><th>value</th><th>ideal / reference</th></tr>"
            f"{body}</table></div>")


class _Panel:
    """One column: a header, the metrics and the three figures of one setting."""

    def __init__(self, role: str, title: str):
        self.role, self.title = role, title
        self.header = W.HTML()
        self.metrics = W.HTML()
        self.figures = {k: W.Output(layout=W.Layout(min_height=f"{FIG_HEIGHT[k]}px")) for k in FIGURES}
        self.metrics.add_class(f"fdmer-{role}-metrics")
        for k, out in self.figures.items():
            out.add_class(f"fdmer-{role}-{k}")
        self.shown: tuple[str, str] | None = None            # (cell name, method) on display
        self.box = W.VBox([self.header, self.metrics, *self.figures.values()],
                          layout=W.Layout(width="50%", padding="0 6px"))
        self.box.add_class(f"fdmer-{role}")

    def set_header(self, beta, gamma, note: str = "") -> None:
        self.header.value = (f"<h4 style='margin:4px 0'>{self.title}: {setting_text(beta, gamma)}"
                             f"<span style='font-weight:normal;color:#666'>{note}</span></h4>")

    def show_message(self, beta, gamma, text: str) -> None:
        self.set_header(beta, gamma)
        self.metrics.value = (f"<div class='fdmer-metrics-table' data-setting='{sw.cell_name(beta, gamma)}'>"
                              f"<b>{setting_text(beta, gamma)}</b>: {html.escape(text)}</div>")
        for out in self.figures.values():
            out.outputs = (message_output(text),)
        self.shown = None


class BetaGammaExplorer:
    """Move beta and gamma, see what the representations, the discriminator and the fusion do.

    Args:
        cache: a :class:`~fdmer_lite.sweep.SweepCache` (precomputed with ``fdmer-lite sweep`` or
            ``cache.fill``), or a folder holding one.
        betas, gammas: slider values (default: ``sweep.default_values()``, log-spaced with 0).
        reference: the pinned setting shown on the right (default: the paper's 0.02, 0.02).
        start: the first current setting (default: the reference).
        method: ``"tsne"``, ``"umap"`` or ``"pca"`` for the embedding.
        device: where the Train button trains.
        prefetch: build the figures of every cached setting on the sliders in a background
            thread, nearest first, so that even a first visit only sends them (default True).

    ``explorer.widget`` is the app (displaying the explorer displays it); ``select``, ``pin``,
    ``train`` and ``wait`` drive it from code.
    """

    def __init__(self, cache: sw.SweepCache | str, betas=None, gammas=None, *,
                 reference: tuple[float, float] = sw.PAPER_SETTING, start: tuple[float, float] | None = None,
                 method: str = "tsne", device: str = "auto", prefetch: bool = True):
        self.cache = cache if isinstance(cache, sw.SweepCache) else sw.SweepCache(cache)
        fast = self.cache.spec.preset == "fast"
        self.betas = self._values(betas if betas is not None else sw.default_values(fast), reference[0], start)
        self.gammas = self._values(gammas if gammas is not None else sw.default_values(fast), reference[1], start, 1)
        self.reference = (float(reference[0]), float(reference[1]))
        self.device = device
        self._job: threading.Thread | None = None              # the job while it computes
        self._thread: threading.Thread | None = None           # the last job's thread (wait() joins it)
        self._job_label = ""                                    # cell name (or projection) being computed
        self._job_desc = ""
        self._lock = threading.RLock()
        self._bundles: "OrderedDict[tuple, dict]" = OrderedDict()
        self._memo_lock = threading.Lock()                      # guards _bundles only
        self._prefetch_enabled = prefetch
        self._prefetcher: threading.Thread | None = None
        self.last_update_seconds: float | None = None
        self.last_error: BaseException | None = None
        self.train_calls = 0                                    # training jobs started
        self._build(method)
        self._quiet = False                                     # True while select() moves both sliders
        b0, g0 = start if start is not None else self.reference
        self.select(b0, g0, render=False)
        self.refresh()
        self.prefetch()

    # -- construction ---------------------------------------------------------------------------
    @staticmethod
    def _values(values, ref, start, i=0) -> list[float]:
        vals = {sw.format_value(v): float(v) for v in values}
        for extra in (ref, None if start is None else start[i]):
            if extra is not None:
                vals.setdefault(sw.format_value(extra), float(extra))
        return sorted(vals.values())

    def _build(self, method: str) -> None:
        slider = lambda name, values: W.SelectionSlider(                    # noqa: E731
            options=[(sw.format_value(v), v) for v in values], description=name,
            continuous_update=False, layout=W.Layout(width="340px"))
        self.beta_slider = slider("β (adv.)", self.betas)
        self.gamma_slider = slider("γ (con./dis.)", self.gammas)
        self.beta_slider.add_class("fdmer-beta")
        self.gamma_slider.add_class("fdmer-gamma")
        self.method = W.ToggleButtons(options=METHOD_LABELS, value=method, description="embedding",
                                      style={"button_width": "64px"})
        self.train_button = W.Button(description="Train this setting", icon="play", button_style="primary")
        self.pin_button = W.Button(description="Pin as reference", icon="thumb-tack")
        self.train_button.add_class("fdmer-train")
        self.progress = W.IntProgress(value=0, min=0, max=1, description="idle",
                                      layout=W.Layout(width="340px"))
        self.status = W.HTML()
        self.status.add_class("fdmer-status")
        self.current = _Panel("current", "Current")
        self.reference_panel = _Panel("reference", "Reference (pinned)")

        self.beta_slider.observe(self._on_setting, names="value")
        self.gamma_slider.observe(self._on_setting, names="value")
        self.method.observe(lambda change: (self.refresh(), self.prefetch()), names="value")
        self.train_button.on_click(lambda _: self.train())
        self.pin_button.on_click(lambda _: self.pin())

        spec = self.cache.spec
        caption = W.HTML(f"<span style='color:#666'>cache <code>{html.escape(str(self.cache.root))}</code>: "
                         f"preset <b>{html.escape(spec.preset)}</b>, data {html.escape(str(spec.data))}</span>")
        self.widget = W.VBox([
            W.HBox([self.beta_slider, self.gamma_slider]),
            W.HBox([self.method, self.train_button, self.pin_button]),
            W.HBox([self.progress, self.status]),
            caption,
            W.HBox([self.current.box, self.reference_panel.box], layout=W.Layout(width="100%")),
        ])
        self.widget.add_class("fdmer-explorer")

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):                    # + a static copy for HTML exports
            bundle = {**bundle, "text/html": self.snapshot_html()}
        return bundle

    def snapshot_html(self) -> str:
        """A static copy of what the two panels show now (headers, metrics, figures): what a reader
        without a kernel sees in an HTML export (``fdmer_lite.offline``). plotly.js comes inlined
        with the first figure: the explorer's figures never pass through plotly's renderers, so
        nothing else may have put it on the page."""
        parts = ["<div class='fdmer-explorer-snapshot'><p style='color:#555'>A static copy of the explorer "
                 "(run the notebook to move the sliders).</p>"]
        inline = True
        for panel in (self.current, self.reference_panel):
            parts.append(panel.header.value + panel.metrics.value)
            for k in FIGURES:
                for out in panel.figures[k].outputs:
                    spec = out.get("data", {}).get("application/vnd.plotly.v1+json")
                    if spec:
                        parts.append(pio.to_html(spec, include_plotlyjs=inline, full_html=False, validate=False))
                        inline = False
        return "".join(parts) + "</div>"

    # -- state ----------------------------------------------------------------------------------
    @property
    def setting(self) -> tuple[float, float]:
        return float(self.beta_slider.value), float(self.gamma_slider.value)

    @property
    def busy(self) -> bool:
        return self._job is not None and self._job.is_alive()

    def select(self, beta: float | None = None, gamma: float | None = None, *, render: bool = True) -> None:
        """Move the sliders (to values they offer); the panel is redrawn once, for both."""
        new_beta = self.beta_slider.value if beta is None else self._option(self.betas, beta)
        new_gamma = self.gamma_slider.value if gamma is None else self._option(self.gammas, gamma)
        self._quiet = True
        try:
            self.beta_slider.value, self.gamma_slider.value = new_beta, new_gamma
        finally:
            self._quiet = False
        if render:
            self._on_setting()

    @staticmethod
    def _option(values, x) -> float:
        for v in values:
            if sw.format_value(v) == sw.format_value(x):
                return v
        raise ValueError(f"{x!r} is not a slider value; choose one of {[sw.format_value(v) for v in values]}")

    def pin(self, beta: float | None = None, gamma: float | None = None) -> None:
        """Pin a setting (default: the current one) as the reference shown on the right."""
        cb, cg = self.setting
        self.reference = (cb if beta is None else float(beta), cg if gamma is None else float(gamma))
        self._render(self.reference_panel, *self.reference)
        self._say(f"pinned {setting_text(*self.reference)} as the reference")

    # -- rendering ------------------------------------------------------------------------------
    def _on_setting(self, change=None) -> None:
        if self._quiet:
            return
        start = time.perf_counter()
        b, g = self.setting
        state = self._render(self.current, b, g)
        self.last_update_seconds = time.perf_counter() - start
        if state == "shown":
            self._say(f"showing {setting_text(b, g)} from the cache ({self.last_update_seconds:.2f} s)")

    def refresh(self) -> None:
        """Redraw both panels (e.g. after the embedding method changed or a job finished)."""
        self._on_setting()
        self._render(self.reference_panel, *self.reference)

    def _figures(self, cell: sw.CellResult, method: str) -> dict[str, dict]:
        """The three figures of a cell as display outputs, memoised (a revisit re-sends them only)."""
        key = (cell.name, method)
        with self._memo_lock:
            if key in self._bundles:
                self._bundles.move_to_end(key)
                return self._bundles[key]
        spec = self.cache.spec
        prefix = setting_text(cell.beta, cell.gamma)
        figs = {"discriminator": viz.discriminator_probabilities(cell.reps),
                "fusion": viz.fusion_weights(cell.reps)}
        if self.cache.has_projection(cell.beta, cell.gamma, method):
            figs["embedding"] = viz.representation_embedding(
                cell.reps, method=method, max_points=spec.max_points, seed=spec.projection_seed,
                cache=self.cache.projections(cell.beta, cell.gamma))
        out = {}
        for k, fig in figs.items():
            fig.update_layout(height=FIG_HEIGHT[k], margin=dict(l=50, r=10, t=60, b=40),
                              title=dict(text=f"{prefix}<br><sup>{fig.layout.title.text}</sup>", font=dict(size=13)),
                              legend=dict(font=dict(size=10)))
            out[k] = figure_output(fig)
        if "embedding" not in out:                          # not memoised: it will come
            return out
        with self._memo_lock:
            self._bundles[key] = out
            while len(self._bundles) > 64:
                self._bundles.popitem(last=False)
        return out

    def prefetch(self) -> None:
        """Build, in a background thread, the figures of every cached setting on the sliders
        (nearest to the current setting first) that have the current projection."""
        if not self._prefetch_enabled or (self._prefetcher is not None and self._prefetcher.is_alive()):
            return
        self._prefetcher = threading.Thread(target=self._prefetch, args=(self.method.value,),
                                            daemon=True, name="fdmer-explorer-prefetch")
        self._prefetcher.start()

    def _prefetch(self, method: str) -> None:
        bi, gi = self.betas.index(self.setting[0]), self.gammas.index(self.setting[1])
        todo = sorted(((b, g) for b in self.betas for g in self.gammas),
                      key=lambda s: abs(self.betas.index(s[0]) - bi) + abs(self.gammas.index(s[1]) - gi))
        for b, g in todo:
            if method != self.method.value:
                return                                          # the learner switched projection
            if self.cache.has(b, g) and self.cache.has_projection(b, g, method):
                try:
                    self._figures(self.cache.load(b, g), method)
                except Exception:                               # best effort: a visit will say why
                    continue

    def _render(self, panel: _Panel, beta: float, gamma: float) -> str:
        """Show a setting in a panel; returns "shown", "missing" or "projecting"."""
        method = self.method.value
        with self._lock:
            if not self.cache.has(beta, gamma):
                if self.busy and self._job_label == sw.cell_name(beta, gamma):
                    panel.show_message(beta, gamma, "training now…")
                else:
                    panel.show_message(beta, gamma, "not trained yet: press “Train this setting”.")
                return "missing"
            cell = self.cache.load(beta, gamma)
            if panel.shown == (cell.name, method):
                return "shown"
            figs = self._figures(cell, method)
            panel.set_header(beta, gamma)
            panel.metrics.value = metrics_html(cell)
            for k in FIGURES:
                if k in figs:
                    panel.figures[k].outputs = (figs[k],)
            if "embedding" in figs:
                panel.shown = (cell.name, method)
                return "shown"
            label = dict((v, k) for k, v in METHOD_LABELS)[method]
            panel.figures["embedding"].outputs = (message_output(
                f"{label} projection not cached for this setting: computing it in the background…"),)
            panel.shown = None
        self._start_job(f"{label} projection", f"projection:{method}",
                        lambda progress: self._project_shown(method, progress), quiet_busy=True)
        return "projecting"

    def _project_shown(self, method: str, progress) -> None:
        """Compute the projection for every shown setting that lacks it (one job for both panels)."""
        todo = [s for s in dict.fromkeys([self.setting, self.reference])
                if self.cache.has(*s) and not self.cache.has_projection(*s, method)]
        for i, (b, g) in enumerate(todo):
            progress(i, len(todo), f"{setting_text(b, g)}")
            self.cache.ensure_projection(b, g, method)

    # -- background jobs ------------------------------------------------------------------------
    def _say(self, text: str, color: str = "#333") -> None:
        self.status.value = f"<span style='color:{color}'>{html.escape(text)}</span>"

    def train(self) -> bool:
        """Train the current setting in the background; ``False`` if it was not started."""
        b, g = self.setting
        if self.busy:
            self._say(f"still busy with {self._job_desc}: this click was ignored. "
                      "Train again when it has finished.", "#b35900")
            return False
        if self.cache.has(b, g):
            self._say(f"{setting_text(b, g)} is already trained: shown from the cache.")
            return False
        self.train_calls += 1
        return self._start_job(f"training {setting_text(b, g)}", sw.cell_name(b, g),
                               lambda progress: self.cache.compute(b, g, device=self.device, progress=progress))

    def _start_job(self, desc: str, label: str, fn, quiet_busy: bool = False) -> bool:
        with self._lock:
            if self.busy:
                if not quiet_busy:
                    self._say(f"still busy with {self._job_desc}", "#b35900")
                return False
            self._job_desc, self._job_label = desc, label
            self.last_error = None
            self.train_button.disabled = True
            self.progress.bar_style = "info"
            self.progress.value, self.progress.max = 0, 1
            self.progress.description = "working"
            self._say(f"{desc}…")
            self._job = self._thread = threading.Thread(target=self._run_job, args=(desc, fn), daemon=True,
                                                        name=f"fdmer-explorer-{label}")
            self._job.start()
        b, g = self.setting
        if label == sw.cell_name(b, g):
            self.current.show_message(b, g, "training now…")
        return True

    def _progress(self, done: int, total: int, message: str) -> None:
        self.progress.max = max(1, total)
        self.progress.value = min(done, total)
        self.progress.description = f"{done}/{total}"
        self._say(f"{self._job_desc}: {message}")

    def _run_job(self, desc: str, fn) -> None:
        start = time.perf_counter()
        error = None
        try:
            fn(self._progress)
        except BaseException as err:                       # shown in the status line, never lost
            error = err
        finally:
            with self._lock:                               # the job is over: not busy any more
                self._job, self._job_label = None, ""
                self.train_button.disabled = False
        if error is not None:
            self.last_error = error
            self.progress.bar_style = "danger"
            self.progress.description = "failed"
            tb = "".join(traceback.format_exception(type(error), error, error.__traceback__))
            self.status.value = (f"<span style='color:#b00'><b>{html.escape(desc)} failed:</b> "
                                 f"{html.escape(type(error).__name__)}: {html.escape(str(error))}</span>"
                                 f"<details><summary>traceback</summary><pre>{html.escape(tb[-3000:])}"
                                 f"</pre></details>")
            b, g = self.setting
            if not self.cache.has(b, g):
                self.current.show_message(b, g, f"{desc} failed (see the status line).")
            return
        self.progress.bar_style = "success"
        self.progress.value = self.progress.max
        self.progress.description = "done"
        for panel in (self.current, self.reference_panel):
            panel.shown = None
        self.refresh()
        self.prefetch()
        self._say(f"{desc}: done in {time.perf_counter() - start:.1f} s")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the running job (if any) has finished, including the redraw it does at the
        end and any job that redraw started; ``True`` when nothing is running."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (thread := self._thread) is not None:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if thread.is_alive():                          # timed out
                break
            if self._thread is thread:                     # it started no further job
                break
        return not self.busy


def explorer(cache: sw.SweepCache | str, **kwargs) -> BetaGammaExplorer:
    """Shorthand for :class:`BetaGammaExplorer`."""
    return BetaGammaExplorer(cache, **kwargs)
