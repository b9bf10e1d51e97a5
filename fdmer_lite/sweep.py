"""A sweep over FDMER's trade-off weights beta and gamma: one run per setting, kept on disk.

FDMER (Yang et al., ACM MM 2022) trains with Eq. 18,

    L_all = L_task + beta (L_ami + L_ams) + gamma (L_con + L_dis),

so beta weighs the adversarial/discriminative losses (Eq. 10-11) and gamma the consistency and
HSIC disparity constraints (Eq. 5, 7). A sweep trains one small model per setting on the same data
and seeds. Each setting is a *cell*, one run of the run store (``experiments.runs``) named by
``format(value, "g")`` of each weight, reused only while its configuration and data fingerprint
match. On disk (the *cache*)::

    <cache>/spec.json                 what every cell shares (:class:`SweepSpec`); one spec a cache
    <cache>/beta=0.02_gamma=0.02/     a run folder, with reps.npz (the test split's representations)
        projections/                  2-D projections and their index.json, outside the seal

The cells of the full-size spec's cross ship in ``fdmer_lite/shipped_runs/sweep/``, a read-only
second root. :class:`BetaGammaExplorer` shows a setting beside a pinned reference (paper Figures 2
and 4) and trains a missing one in the background.
"""

from __future__ import annotations

import functools
import html
import json
import math
import os
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import ipywidgets as W
import plotly.io as pio

from . import __version__, viz
from .analysis import load_representations
from .config import Config, fast_mode, get_preset
from .data.synthetic import FAST_SIZES
from .experiments import runstore
from .experiments.runs import (BUNDLED, REPS_FILE, DataSpec, GridReport, ProjectionCache, Run, RunSpec,
                               run_grid)
from .paths import runs_root
from .metrics import SCORES

SWEEP_FILE = "spec.json"             # the cache's SweepSpec
PROJECTIONS = "projections"
CACHE_ENV = "FDMER_LITE_SWEEP_CACHE"
BUNDLED_SWEEPS = BUNDLED / "sweep"

# Log-spaced slider values including 0: decades around the paper's 0.02 (Sec. 4.2).
DEFAULT_VALUES = (0.0, 0.002, 0.02, 0.2, 2.0)
FAST_VALUES = (0.0, 0.02, 2.0)
PAPER_SETTING = (0.02, 0.02)                     # CMU-MOSI's beta and gamma (Sec. 4.2)

Progress = Callable[[int, int, str], None]      # (done, total, message)


# ---------------------------------------------------------------- cells and their names

def format_value(x: float) -> str:
    """The text a weight has in a cell name: ``format(x, "g")``; ``-0.0`` is ``0``."""
    x = float(x)
    if not math.isfinite(x) or x < 0:
        raise ValueError(f"beta and gamma must be finite and >= 0, got {x!r}")
    return format(x + 0.0, "g")


def cell_name(beta: float, gamma: float) -> str:
    """``beta=0.02_gamma=0.02``."""
    return f"beta={format_value(beta)}_gamma={format_value(gamma)}"


def parse_cell_name(name: str) -> tuple[float, float] | None:
    """Inverse of :func:`cell_name`; ``None`` for any other folder name."""
    if not name.startswith("beta=") or "_gamma=" not in name:
        return None
    b, g = name[len("beta="):].split("_gamma=", 1)
    try:
        return float(b), float(g)
    except ValueError:
        return None


def grid(betas: Iterable[float], gammas: Iterable[float]) -> list[tuple[float, float]]:
    """Every (beta, gamma) pair."""
    return [(float(b), float(g)) for b in betas for g in gammas]


def cross(betas: Iterable[float], gammas: Iterable[float],
          center: tuple[float, float] = PAPER_SETTING) -> list[tuple[float, float]]:
    """The center, then the settings that change only beta, then only gamma (a '+' in the grid):
    moving one slider away from the center always lands on a cell of the cross."""
    b0, g0 = float(center[0]), float(center[1])
    out = [(b0, g0)]
    out += [(float(b), g0) for b in betas if format_value(b) != format_value(b0)]
    out += [(b0, float(g)) for g in gammas if format_value(g) != format_value(g0)]
    return out


# ---------------------------------------------------------------- the spec

@dataclass
class SweepSpec:
    """What every cell of a sweep shares; only beta and gamma differ between cells.

    ``overrides``: ``Config.replace`` sections applied on top of ``preset``; ``data``: the keyword
    arguments of ``data.synthetic.make_benchmark``; ``max_points`` samples per modality and kind
    go into the 2-D projections, drawn with ``projection_seed``.
    """

    preset: str = "synthetic"
    overrides: dict = field(default_factory=dict)
    data: dict = field(default_factory=lambda: {"kind": "emotion", "seed": 0})
    dataset: str = "synthetic"
    max_points: int = 300
    projection_seed: int = 0

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))          # plain JSON types only

    @classmethod
    def from_dict(cls, d: dict) -> "SweepSpec":
        return cls(**d)

    def config(self, beta: float, gamma: float, device: str = "auto") -> Config:
        """The training config of one cell (no progress bars: cells run in the background)."""
        cfg = get_preset(self.preset)
        if self.overrides:
            cfg = cfg.replace(**self.overrides)
        return cfg.replace(loss={"beta": float(beta), "gamma": float(gamma)},
                           train={"device": device})

    def data_spec(self) -> DataSpec:
        if self.dataset != "synthetic":
            raise ValueError(f"dataset: only 'synthetic' can be swept for now, got {self.dataset!r}")
        return DataSpec("synthetic", options=self.data)

    def make_data(self):
        """The sweep's data, generated once per process (``DataSpec.load``)."""
        return self.data_spec().load()

    @property
    def slug(self) -> str:
        """A short folder name for the default cache location, e.g. ``fast-emotion-seed0``."""
        return f"{self.preset}-{self.data.get('kind', 'emotion')}-seed{self.data.get('seed', 0)}"


def default_spec(fast: bool | None = None, kind: str = "emotion", seed: int = 0) -> SweepSpec:
    """FAST (``FDMER_LITE_FAST=1`` or ``fast=True``): the ``fast`` preset on ``demo --fast``'s small
    benchmark, 100 points per set in the projections; else ``synthetic`` at full size, 300."""
    if fast_mode() if fast is None else fast:
        return SweepSpec(preset="fast", data={"kind": kind, "seed": seed, **FAST_SIZES}, max_points=100)
    return SweepSpec(preset="synthetic", data={"kind": kind, "seed": seed}, max_points=300)


def default_values(fast: bool | None = None) -> tuple[float, ...]:
    """Slider values: 0 and decades around 0.02 (FAST: 0, 0.02, 2)."""
    return FAST_VALUES if (fast_mode() if fast is None else fast) else DEFAULT_VALUES


def default_cache_dir(spec: SweepSpec, base: str | os.PathLike | None = None) -> Path:
    """``<base>/<spec.slug>``; ``base``: given, else ``$FDMER_LITE_SWEEP_CACHE``, else ``sweep`` in
    ``paths.runs_root()`` (so the command line and the notebooks share one cache)."""
    if base is None:
        env = os.environ.get(CACHE_ENV)
        base = Path(env).expanduser() if env else runs_root() / "sweep"
    return Path(base) / spec.slug


# ---------------------------------------------------------------- projections

def projection_index(folder: Path) -> dict:
    """``{method: {"max_points", "seed"}}`` of the projections kept in ``folder``."""
    f = Path(folder) / "index.json"
    return runstore.read_json(f) if f.is_file() else {}


def add_projections(folder: str | Path, *, methods: Iterable[str], max_points: int, seed: int,
                    into: str | Path | None = None) -> None:
    """Project the test-split C and P stored in ``folder/reps.npz`` to 2-D by each of ``methods``
    and keep them, with an index, in ``into`` (default ``folder/projections``)."""
    into = Path(into or Path(folder) / PROJECTIONS)
    reps = load_representations(Path(folder) / REPS_FILE)
    index = projection_index(into)
    for method in methods:
        viz.representation_embedding(reps, method=method, max_points=max_points, seed=seed,
                                     cache=ProjectionCache(into))
        index[method] = {"max_points": max_points, "seed": seed}
    into.mkdir(parents=True, exist_ok=True)
    runstore.write_json(into / "index.json", index)


# ---------------------------------------------------------------- the cache

@dataclass
class CellResult:
    """A finished cell, read back from disk (from the cache, or bundled with the package)."""

    beta: float
    gamma: float
    path: Path
    metrics: dict
    history: list
    reps: object                      # analysis.Representations of the test split

    @property
    def name(self) -> str:
        return cell_name(self.beta, self.gamma)


class SpecMismatch(ValueError):
    """The cache folder was made for another spec."""


class SweepCache:
    """The cells of one :class:`SweepSpec`: trained into ``root``, found there or in the sweep of
    the same spec under ``bundled`` (default: the package's bundled sweeps)."""

    def __init__(self, root: str | os.PathLike, spec: SweepSpec | None = None, *,
                 bundled: str | os.PathLike | None = BUNDLED_SWEEPS, memory: int = 16):
        self.root = Path(root)
        spec_file = self.root / SWEEP_FILE
        saved = runstore.read_json(spec_file).get("spec") if spec_file.is_file() else None
        if spec is None and saved is None:
            raise FileNotFoundError(f"{spec_file}: no sweep here (give a spec to start one)")
        self.spec = spec = spec or SweepSpec.from_dict(saved)
        want = spec.to_dict()
        if not spec_file.is_file():
            self.root.mkdir(parents=True, exist_ok=True)
            runstore.write_json(spec_file, {"spec": want, "fdmer_lite": __version__})
        elif saved != want:
            diff = sorted(k for k in set(saved or {}) | set(want) if (saved or {}).get(k) != want.get(k))
            raise SpecMismatch(f"{spec_file}: field(s) {diff} differ: this cache holds cells for "
                               f"{saved}, not {want}; use another cache folder")
        self.bundled = None
        if bundled is not None:
            there = Path(bundled) / spec.slug
            try:
                if runstore.read_json(there / SWEEP_FILE).get("spec") == want:
                    self.bundled = there
            except (FileNotFoundError, runstore.RunCorrupt):
                pass
        self._found: dict[str, Run | None] = {}
        self._memory: "OrderedDict[str, CellResult]" = OrderedDict()
        self._memory_size = memory

    # -- lookup ---------------------------------------------------------------------------------
    def cell_spec(self, beta: float, gamma: float, *, projections: Iterable[str] = ("tsne",),
                  device: str = "auto") -> RunSpec:
        """The run of one setting, for ``run_grid``: representations stored, projections added."""
        finish = functools.partial(add_projections, methods=tuple(projections),
                                   max_points=self.spec.max_points, seed=self.spec.projection_seed)
        return RunSpec(cell_name(beta, gamma), self.spec.config(beta, gamma, device).to_dict(),
                       self.spec.data_spec(), str(self.root),
                       bundle=None if self.bundled is None else str(self.bundled),
                       meta={"beta": float(beta), "gamma": float(gamma)}, representations=True, finish=finish)

    def cell_dir(self, beta: float, gamma: float) -> Path:
        """Where this cache trains the cell (``run(...).path`` says where a finished one is)."""
        return self.root / cell_name(beta, gamma)

    def run(self, beta: float, gamma: float) -> Run | None:
        """The finished cell (``experiments.runs.find``, without weights), remembered."""
        name = cell_name(beta, gamma)
        if name not in self._found:
            self._found[name] = self.cell_spec(beta, gamma).find()
        return self._found[name]

    def has(self, beta: float, gamma: float) -> bool:
        return self.run(beta, gamma) is not None

    def finished(self) -> list[tuple[float, float]]:
        """Every finished cell, here or bundled, sorted by (beta, gamma)."""
        names = {d.name for folder in (self.root, self.bundled) if folder is not None
                 for d in folder.iterdir() if d.is_dir()}
        return sorted(c for c in map(parse_cell_name, names) if c is not None and self.has(*c))

    def load(self, beta: float, gamma: float) -> CellResult:
        """A finished cell (kept in memory afterwards: revisits cost nothing)."""
        name = cell_name(beta, gamma)
        if name in self._memory:
            self._memory.move_to_end(name)
            return self._memory[name]
        run = self.run(beta, gamma)
        if run is None:
            raise KeyError(f"{self.cell_dir(beta, gamma)}: no finished cell for beta={format_value(beta)}, "
                           f"gamma={format_value(gamma)}")
        cell = CellResult(float(beta), float(gamma), run.path, run.metrics, run.history,
                          load_representations(run.path / REPS_FILE))
        self._memory[name] = cell
        while len(self._memory) > self._memory_size:
            self._memory.popitem(last=False)
        return cell

    def projections(self, beta: float, gamma: float) -> ProjectionCache:
        """The cell's projections: written beside the cache's own cell, read there and, for a
        bundled cell, from the package."""
        run, own = self.run(beta, gamma), self.cell_dir(beta, gamma)
        shipped = run.path / PROJECTIONS if run is not None and run.path != own else None
        return ProjectionCache(own / PROJECTIONS, shipped)

    def has_projection(self, beta: float, gamma: float, method: str) -> bool:
        cache = self.projections(beta, gamma)
        want = {"max_points": self.spec.max_points, "seed": self.spec.projection_seed}
        return any(projection_index(f).get(method) == want for f in (cache.folder, cache.bundled) if f)

    def ensure_projection(self, beta: float, gamma: float, method: str) -> None:
        """Compute a projection a finished cell lacks (e.g. UMAP after a t-SNE-only sweep)."""
        if not self.has_projection(beta, gamma, method):
            add_projections(self.run(beta, gamma).path, methods=(method,), max_points=self.spec.max_points,
                            seed=self.spec.projection_seed, into=self.projections(beta, gamma).folder)

    # -- computing ------------------------------------------------------------------------------
    def fill(self, cells: Iterable[tuple[float, float]], *, workers: int = 1,
             projections: Iterable[str] = ("tsne",), device: str = "auto",
             log: Callable[[str], None] | None = print, on_epoch=None) -> GridReport:
        """Train every unfinished cell (``runs.run_grid``, ``workers`` processes; 1 trains here) and
        add any of ``projections`` a finished one lacks. Returns the grid's report."""
        cells = list(dict.fromkeys((float(b), float(g)) for b, g in cells))
        projections = tuple(projections)
        specs = [self.cell_spec(b, g, projections=projections, device=device) for b, g in cells]
        report = run_grid(specs, workers=workers, log=log, on_epoch=on_epoch)
        for b, g in cells:
            name = cell_name(b, g)
            self._found.pop(name, None)
            self._memory.pop(name, None)
            if name not in report.skipped:                 # a sweep may add e.g. UMAP later
                continue
            for method in projections:
                if not self.has_projection(b, g, method):
                    if log:
                        log(f"{name}: adding the {method} projection")
                    self.ensure_projection(b, g, method)
        return report

    def compute(self, beta: float, gamma: float, *, projections: Iterable[str] = ("tsne",),
                device: str = "auto", progress: Progress | None = None) -> CellResult:
        """Train one missing cell in this process, calling ``progress(done, total, message)`` after
        each epoch; returns it loaded."""
        epochs = self.spec.config(beta, gamma).train.epochs
        report = progress or (lambda done, total, msg: None)
        report(0, epochs + 1, f"training (epoch 1/{epochs})")
        result = self.fill([(beta, gamma)], projections=projections, device=device, log=None,
                           on_epoch=lambda e: report(e["epoch"], epochs + 1,
                                                     f"trained epoch {e['epoch']}/{epochs}"))
        if result.failed:
            raise RuntimeError(result.failed[cell_name(beta, gamma)].strip().splitlines()[-1])
        report(epochs + 1, epochs + 1, "done")
        return self.load(beta, gamma)

    # -- tables ---------------------------------------------------------------------------------
    def table(self, cells: Iterable[tuple[float, float]] | None = None,
              keys: tuple[str, ...] = ("mae", "disc_prob_common", "common_modality_acc",
                                       "private_modality_acc", "common_factor_r2",
                                       "private_factor_r2")) -> str:
        """A markdown table of the finished cells' metrics (one row per cell)."""
        cells = self.finished() if cells is None else [c for c in cells if self.has(*c)]
        lines = ["| beta | gamma | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys)]
        for b, g in cells:
            vals = [_value(self.run(b, g).metrics, k) for k in keys]
            lines.append(f"| {format_value(b)} | {format_value(g)} | " + " | ".join(vals) + " |")
        return "\n".join(lines)

    def matrix(self, key: str, betas: Iterable[float], gammas: Iterable[float],
               title: str | None = None) -> str:
        """One metric as a markdown table, a row per beta and a column per gamma ("—" where a cell
        is not finished or lacks it), titled with the metric's plain name."""
        gammas = list(gammas)
        title = title or (SCORES[key].name if key in SCORES else key)
        lines = [f"**{title}** (rows β, columns γ)", "",
                 "| β \\ γ | " + " | ".join(format_value(g) for g in gammas) + " |",
                 "|---|" + "---|" * len(gammas)]
        for b in betas:
            vals = [_value(self.run(b, g).metrics, key) if self.has(b, g) else "—" for g in gammas]
            lines.append(f"| {format_value(b)} | " + " | ".join(vals) + " |")
        return "\n".join(lines)


# The matrices `fdmer-lite sweep` prints after a grid, each titled with its plain name (metrics.SCORES).
MATRIX_KEYS = ("mae", "common_modality_acc", "common_factor_r2", "disc_prob_common", "private_factor_r2",
               "best_epoch")


def _value(metrics: dict, key: str) -> str:
    """One metric as table text ("—" when absent)."""
    value = metrics.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return f"{value:.3f}" if isinstance(value, float) else "—"


# ---------------------------------------------------------------- the explorer

FIGURES = ("embedding", "discriminator", "fusion")
FIG_HEIGHT = {"embedding": 380, "discriminator": 300, "fusion": 300}
METHOD_LABELS = (("t-SNE", "tsne"), ("UMAP", "umap"), ("PCA", "pca"))
# the disentanglement scores a cell's table shows, below its test metrics (names: metrics.SCORES)
SCORE_KEYS = ("disc_prob_common", "disc_prob_private", "common_modality_acc", "private_modality_acc",
              "common_factor_r2", "private_factor_r2")


def setting_text(beta: float, gamma: float) -> str:
    """``β = 0.02, γ = 0.02`` (the same number formatting as the cache's cell names)."""
    return f"β = {format_value(beta)}, γ = {format_value(gamma)}"


def figure_output(fig) -> dict:
    """One ``display_data`` output holding a plotly figure as its mime bundle (+ a text fallback)."""
    # Built directly: importing plotly.io's renderers pulls in nbformat and jsonschema (seconds).
    spec = json.loads(pio.to_json(fig, validate=False, remove_uids=False))     # numpy -> JSON
    spec["config"] = {"displaylogo": False}
    title = fig.layout.title.text or "plotly figure"
    return {"output_type": "display_data", "metadata": {},
            "data": {"application/vnd.plotly.v1+json": spec, "text/plain": f"<{title}>"}}


def message_output(text: str) -> dict:
    return {"output_type": "display_data", "metadata": {},
            "data": {"text/plain": text, "text/html": f"<p style='color:#555'>{html.escape(text)}</p>"}}


def metrics_html(cell: CellResult) -> str:
    """The metrics and disentanglement scores of one cell as a small HTML table."""
    m = cell.metrics
    num = lambda k: f"{m[k]:.3f}" if isinstance(m.get(k), (int, float)) else "—"   # noqa: E731
    rows = []
    if "mae" in m:
        floor = f"Bayes floor {num('bayes_mae')}, ridge {num('ridge_mae')}" if "bayes_mae" in m else ""
        rows.append((SCORES["mae"].name, num("mae"), floor or SCORES["mae"].ideal))
        rows += [(SCORES[k].name, num(k), SCORES[k].ideal) for k in ("corr", "acc2_non0")]
    elif "acc2" in m:
        bayes = f"Bayes {num('bayes_acc')}" if "bayes_acc" in m else ""
        rows.append((SCORES["acc2"].name, num("acc2"), bayes))
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
        self.title = title
        self.header, self.metrics = W.HTML(), W.HTML().add_class(f"fdmer-{role}-metrics")
        self.figures = {k: W.Output(layout=W.Layout(min_height=f"{h}px")).add_class(f"fdmer-{role}-{k}")
                        for k, h in FIG_HEIGHT.items()}
        self.shown: tuple[str, str] | None = None            # (cell name, method) on display
        self.box = W.VBox([self.header, self.metrics, *self.figures.values()],
                          layout=W.Layout(width="50%", padding="0 6px")).add_class(f"fdmer-{role}")

    def set_header(self, beta: float, gamma: float) -> None:
        self.header.value = f"<h4 style='margin:4px 0'>{self.title}: {setting_text(beta, gamma)}</h4>"

    def show_message(self, beta: float, gamma: float, text: str) -> None:
        self.set_header(beta, gamma)
        self.metrics.value = (f"<div class='fdmer-metrics-table' data-setting='{cell_name(beta, gamma)}'>"
                              f"<b>{setting_text(beta, gamma)}</b>: {html.escape(text)}</div>")
        for out in self.figures.values():
            out.outputs = (message_output(text),)
        self.shown = None


class BetaGammaExplorer:
    """Move beta and gamma, see what the representations, the discriminator and the fusion do.

    ``cache``: a :class:`SweepCache` or its folder; ``betas``, ``gammas``: slider values (default
    ``default_values()``); ``reference``: the pinned setting on the right; ``start``: the first
    current setting; ``method``: ``"tsne"``, ``"umap"`` or ``"pca"``; ``prefetch``: build the
    figures of every cached setting in the background. ``explorer.widget`` is the app (displaying
    the explorer displays it); ``select``, ``pin``, ``train`` and ``wait`` drive it from code.
    """

    def __init__(self, cache: SweepCache | str, betas=None, gammas=None, *,
                 reference: tuple[float, float] = PAPER_SETTING, start: tuple[float, float] | None = None,
                 method: str = "tsne", device: str = "auto", prefetch: bool = True):
        self.cache = cache if isinstance(cache, SweepCache) else SweepCache(cache)
        values = default_values(self.cache.spec.preset == "fast")
        self.betas = self._values(values if betas is None else betas, reference[0], start, 0)
        self.gammas = self._values(values if gammas is None else gammas, reference[1], start, 1)
        self.reference = (float(reference[0]), float(reference[1]))
        self.device = device
        self._job: threading.Thread | None = None      # the running job (None once it is over)
        self._thread: threading.Thread | None = None   # the last job's thread (wait() joins it)
        self._job_label = self._job_desc = ""          # the cell name (or projection) being computed
        self._lock = threading.RLock()
        self._memo_lock = threading.Lock()             # guards _bundles only
        self._bundles: "OrderedDict[tuple, dict]" = OrderedDict()
        self._prefetch_enabled, self._prefetcher = prefetch, None
        self.last_update_seconds: float | None = None
        self.last_error: BaseException | None = None
        self.train_calls = 0                           # training jobs started
        self._quiet = False                            # True while select() moves both sliders
        self._build(method)
        self.select(*(start if start is not None else self.reference), render=False)
        self.refresh()
        self.prefetch()

    @staticmethod
    def _values(values, ref, start, i) -> list[float]:
        vals = {format_value(v): float(v) for v in values}
        for extra in (ref,) if start is None else (ref, start[i]):
            vals.setdefault(format_value(extra), float(extra))
        return sorted(vals.values())

    def _build(self, method: str) -> None:
        def slider(name, values, css):
            s = W.SelectionSlider(options=[(format_value(v), v) for v in values], description=name,
                                  continuous_update=False, layout=W.Layout(width="340px")).add_class(css)
            s.observe(self._on_setting, names="value")
            return s

        self.beta_slider = slider("β (adv.)", self.betas, "fdmer-beta")
        self.gamma_slider = slider("γ (con./dis.)", self.gammas, "fdmer-gamma")
        self.method = W.ToggleButtons(options=METHOD_LABELS, value=method, description="embedding",
                                      style={"button_width": "64px"})
        self.method.observe(lambda change: (self.refresh(), self.prefetch()), names="value")
        self.train_button = W.Button(description="Train this setting", icon="play",
                                     button_style="primary").add_class("fdmer-train")
        self.train_button.on_click(lambda _: self.train())
        self.pin_button = W.Button(description="Pin as reference", icon="thumb-tack")
        self.pin_button.on_click(lambda _: self.pin())
        self.progress = W.IntProgress(value=0, min=0, max=1, description="idle",
                                      layout=W.Layout(width="340px"))
        self.status = W.HTML().add_class("fdmer-status")
        self.current = _Panel("current", "Current")
        self.reference_panel = _Panel("reference", "Reference (pinned)")
        spec = self.cache.spec
        caption = W.HTML(f"<span style='color:#666'>cache <code>{html.escape(str(self.cache.root))}</code>: "
                         f"preset <b>{html.escape(spec.preset)}</b>, data {html.escape(str(spec.data))}"
                         "</span>")
        self.widget = W.VBox([
            W.HBox([self.beta_slider, self.gamma_slider]),
            W.HBox([self.method, self.train_button, self.pin_button]),
            W.HBox([self.progress, self.status]),
            caption,
            W.HBox([self.current.box, self.reference_panel.box], layout=W.Layout(width="100%")),
        ]).add_class("fdmer-explorer")

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):                    # + a static copy for HTML exports
            bundle = {**bundle, "text/html": self.snapshot_html()}
        return bundle

    def snapshot_html(self) -> str:
        """A static copy of both panels (headers, metrics, figures) for a reader without a kernel
        (``viz.export_html``). plotly.js is inlined once: no renderer has put it on the page."""
        parts = ["<div class='fdmer-explorer-snapshot'><p style='color:#555'>A static copy of the explorer "
                 "(run the notebook to move the sliders).</p>"]
        inline = True
        for panel in (self.current, self.reference_panel):
            parts.append(panel.header.value + panel.metrics.value)
            for k in FIGURES:
                for out in panel.figures[k].outputs:
                    spec = out.get("data", {}).get("application/vnd.plotly.v1+json")
                    if spec:
                        parts.append(pio.to_html(spec, include_plotlyjs=inline, full_html=False,
                                                 validate=False))
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
            if format_value(v) == format_value(x):
                return v
        choices = [format_value(v) for v in values]
        raise ValueError(f"{x!r} is not a slider value; choose one of {choices}")

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

    def _figures(self, cell: CellResult, method: str) -> dict[str, dict]:
        """The three figures of a cell as display outputs, memoised once all three are there."""
        key = (cell.name, method)
        with self._memo_lock:
            if key in self._bundles:
                self._bundles.move_to_end(key)
                return self._bundles[key]
        spec = self.cache.spec
        figs = {"discriminator": viz.discriminator_probabilities(cell.reps),
                "fusion": viz.fusion_weights(cell.reps)}
        if self.cache.has_projection(cell.beta, cell.gamma, method):
            figs["embedding"] = viz.representation_embedding(
                cell.reps, method=method, max_points=spec.max_points, seed=spec.projection_seed,
                cache=self.cache.projections(cell.beta, cell.gamma))
        out = {}
        for k, fig in figs.items():
            title = f"{setting_text(cell.beta, cell.gamma)}<br><sup>{fig.layout.title.text}</sup>"
            fig.update_layout(height=FIG_HEIGHT[k], margin=dict(l=50, r=10, t=60, b=40),
                              title=dict(text=title, font=dict(size=13)), legend=dict(font=dict(size=10)))
            out[k] = figure_output(fig)
        if "embedding" in out:
            with self._memo_lock:
                self._bundles[key] = out
                while len(self._bundles) > 64:
                    self._bundles.popitem(last=False)
        return out

    def prefetch(self) -> None:
        """Build, in a background thread, the figures of every cached setting on the sliders that
        has the current projection, nearest to the current setting first."""
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
                training = self.busy and self._job_label == cell_name(beta, gamma)
                panel.show_message(beta, gamma, "training now…" if training
                                   else "not trained yet: press “Train this setting”.")
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
                        functools.partial(self._project_shown, method), quiet_busy=True)
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
        job = lambda progress: self.cache.compute(b, g, device=self.device, progress=progress)   # noqa: E731
        return self._start_job(f"training {setting_text(b, g)}", cell_name(b, g), job)

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
            self._job = self._thread = threading.Thread(target=self._run_job, args=(desc, fn),
                                                        daemon=True, name=f"fdmer-explorer-{label}")
            self._job.start()
        b, g = self.setting
        if label == cell_name(b, g):
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
            self.progress.bar_style, self.progress.description = "danger", "failed"
            tb = "".join(traceback.format_exception(type(error), error, error.__traceback__))
            self.status.value = (f"<span style='color:#b00'><b>{html.escape(desc)} failed:</b> "
                                 f"{html.escape(type(error).__name__)}: {html.escape(str(error))}</span>"
                                 f"<details><summary>traceback</summary><pre>{html.escape(tb[-3000:])}"
                                 f"</pre></details>")
            b, g = self.setting
            if not self.cache.has(b, g):
                self.current.show_message(b, g, f"{desc} failed (see the status line).")
            return
        self.progress.bar_style, self.progress.description = "success", "done"
        self.progress.value = self.progress.max
        self.current.shown = self.reference_panel.shown = None
        self.refresh()
        self.prefetch()
        self._say(f"{desc}: done in {time.perf_counter() - start:.1f} s")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the running job (if any) has finished, with the redraw it ends with and any
        job that redraw started; ``True`` when nothing is running."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (thread := self._thread) is not None:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if thread.is_alive() or self._thread is thread:    # timed out, or it started no other job
                break
        return not self.busy
