"""A sweep over FDMER's trade-off weights beta and gamma: one run per setting, kept on disk.

FDMER (Yang et al., ACM MM 2022) trains with Eq. 18,

    L_all = L_task + beta (L_ami + L_ams) + gamma (L_con + L_dis),

so beta weighs the adversarial/discriminative losses on the common and private representations
(Eq. 10-11) and gamma the consistency and HSIC disparity constraints (Eq. 5, 7). A *sweep* trains
one small model per (beta, gamma) setting on the same data with the same seeds, and keeps
everything the beta/gamma explorer (``fdmer_lite.widgets``) shows, so revisiting a setting never
retrains.

A setting is a *cell*: one run of the run store (``experiments.runs``), described by a
``RunSpec`` and run by ``run_grid`` like any grid's runs, so it is reused only when its
configuration and the data's fingerprint match and its folder is sealed and intact. On disk (the
*cache*)::

    <cache>/
      spec.json                       what every cell shares (:class:`SweepSpec`: preset, config
                                      overrides, make_benchmark arguments, projection sample size
                                      and seed); a cache holds one spec
      beta=0.02_gamma=0.02/           one run: config.json, history.json, metrics.json, model.pt,
                                      run.json and complete.json, written by ``obtain``, plus
        reps.npz                      the test split's representations (C_<m>, P_<m>, the
                                      discriminator probabilities, psi, predictions, labels)
        projections/index.json        which 2-D projections (t-SNE, UMAP, PCA) are present
        projections/<method>-<hash>.npy   written by viz.project (the hash is of the stacked C/P);
                                      a sub-folder, left out of the seal: it may grow later

The package ships the cells of the full-size spec's cross (``fdmer_lite/shipped_runs/sweep/``):
a read-only second root that a cache searches when its spec is the one they were made for.

Cell names print each weight with ``format(value, "g")`` (``0``, ``0.002``, ``0.02``, ``2``), so
0.02 and 0.020000000000000004 are the same cell.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import __version__, viz
from .analysis import load_representations
from .config import Config, fast_mode, get_preset
from .data.synthetic import FAST_SIZES
from .experiments import runstore
from .experiments.runs import BUNDLED, REPS_FILE, DataSpec, GridReport, ProjectionCache, Run, RunSpec, run_grid
from .paths import runs_root
from .scores import SCORES

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
    """The center, then the settings that change only beta, then only gamma (a '+' in the grid).

    Moving one slider away from the center always lands on a cell of the cross: a cheap sweep
    for a class or a FAST notebook run.
    """
    b0, g0 = float(center[0]), float(center[1])
    out = [(b0, g0)]
    out += [(float(b), g0) for b in betas if format_value(b) != format_value(b0)]
    out += [(b0, float(g)) for g in gammas if format_value(g) != format_value(g0)]
    return out


# ---------------------------------------------------------------- the spec


@dataclass
class SweepSpec:
    """What every cell of a sweep shares; only beta and gamma differ between cells.

    ``preset`` names a config preset; ``overrides`` are ``Config.replace`` sections applied on
    top (e.g. ``{"train": {"epochs": 5}}``); ``data`` are the keyword arguments of
    ``data.synthetic.make_benchmark`` (``kind``, sizes, ``seed`` ...); ``max_points`` samples
    per modality and kind go into the 2-D projections, drawn with ``projection_seed``.
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
                           train={"device": device, "progress": False})

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
    """FAST (``FDMER_LITE_FAST=1`` or ``fast=True``): the ``fast`` preset on the small benchmark of
    ``demo --fast``, 100 points per set in the projections. Otherwise the ``synthetic`` preset on
    the full benchmark, 300 points per set."""
    fast = fast_mode() if fast is None else fast
    if fast:
        return SweepSpec(preset="fast", data={"kind": kind, "seed": seed, **FAST_SIZES}, max_points=100)
    return SweepSpec(preset="synthetic", data={"kind": kind, "seed": seed}, max_points=300)


def default_values(fast: bool | None = None) -> tuple[float, ...]:
    """Slider values: 0 and decades around 0.02 (FAST: 0, 0.02, 2)."""
    return FAST_VALUES if (fast_mode() if fast is None else fast) else DEFAULT_VALUES


def default_cache_dir(spec: SweepSpec, base: str | os.PathLike | None = None) -> Path:
    """``<base>/<spec.slug>``.

    ``base``: given, else ``$FDMER_LITE_SWEEP_CACHE``, else ``sweep`` in ``paths.runs_root()``
    (``runs/`` of the checkout, so ``fdmer-lite sweep`` run at the root and the notebook run from
    ``notebooks/`` share one cache; git ignores ``runs/``).
    """
    if base is None and os.environ.get(CACHE_ENV):
        base = Path(os.environ[CACHE_ENV]).expanduser()
    if base is None:
        base = runs_root() / "sweep"
    return Path(base) / spec.slug


# ---------------------------------------------------------------- projections


def projection_index(folder: Path) -> dict:
    """``{method: {"max_points", "seed"}}`` of the projections kept in ``folder``."""
    f = Path(folder) / "index.json"
    return runstore.read_json(f) if f.is_file() else {}


def add_projections(folder: str | Path, *, methods: Iterable[str], max_points: int, seed: int,
                    into: str | Path | None = None) -> None:
    """Project the test-split C and P of the cell in ``folder`` to 2-D by each of ``methods``,
    from its ``reps.npz`` *as stored* (so the explorer's later call finds them), and keep them in
    ``into`` (default ``folder/projections``) with an index of what is there. The function a
    cell's spec calls before its run is sealed."""
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
    """The cells of one :class:`SweepSpec`: trained into ``root``; found there or among the
    cells bundled with the package for the same spec (layout: module docstring).

    ``bundled``: the folder of bundled sweeps (default: the package's); a sweep there is
    searched when its ``spec.json`` holds this spec.
    """

    def __init__(self, root: str | os.PathLike, spec: SweepSpec | None = None, *,
                 bundled: str | os.PathLike | None = BUNDLED_SWEEPS, memory: int = 16):
        self.root = Path(root)
        spec_file = self.root / SWEEP_FILE
        saved = runstore.read_json(spec_file).get("spec") if spec_file.is_file() else None
        if spec is None and saved is None:
            raise FileNotFoundError(f"{spec_file}: no sweep here (give a spec to start one)")
        self.spec = spec = spec or SweepSpec.from_dict(saved)
        if not spec_file.is_file():
            self.root.mkdir(parents=True, exist_ok=True)
            runstore.write_json(spec_file, {"spec": spec.to_dict(), "fdmer_lite": __version__})
        elif saved != spec.to_dict():
            diff = sorted(k for k in set(saved or {}) | set(spec.to_dict())
                          if (saved or {}).get(k) != spec.to_dict().get(k))
            raise SpecMismatch(f"{spec_file}: field(s) {diff} differ: this cache holds cells for "
                               f"{saved}, not {spec.to_dict()}; use another cache folder")
        self.bundled = None
        if bundled is not None:
            there = Path(bundled) / spec.slug
            try:
                if runstore.read_json(there / SWEEP_FILE).get("spec") == spec.to_dict():
                    self.bundled = there
            except (FileNotFoundError, runstore.RunCorrupt):
                pass
        self._found: dict[str, Run | None] = {}
        self._memory: "OrderedDict[str, CellResult]" = OrderedDict()
        self._memory_size = memory

    # -- lookup ---------------------------------------------------------------------------------
    def cell_spec(self, beta: float, gamma: float, *, projections: Iterable[str] = ("tsne",),
                  device: str = "auto") -> RunSpec:
        """The run of one setting, for ``run_grid``: its representations stored and ``projections``
        added before it is sealed."""
        return RunSpec(cell_name(beta, gamma), self.spec.config(beta, gamma, device).to_dict(),
                       self.spec.data_spec(), str(self.root),
                       bundle=None if self.bundled is None else str(self.bundled),
                       meta={"beta": float(beta), "gamma": float(gamma)}, representations=True,
                       finish=functools.partial(add_projections, methods=tuple(projections),
                                                max_points=self.spec.max_points, seed=self.spec.projection_seed))

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

    def missing(self, cells: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
        seen, out = set(), []
        for b, g in cells:
            name = cell_name(b, g)
            if name not in seen and not self.has(b, g):
                out.append((float(b), float(g)))
            seen.add(name)
        return out

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
        run = self.run(beta, gamma)
        shipped = run.path / PROJECTIONS if run is not None and run.path != self.cell_dir(beta, gamma) else None
        return ProjectionCache(self.cell_dir(beta, gamma) / PROJECTIONS, shipped)

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
        """Train every cell of ``cells`` that is not finished (``experiments.runs.run_grid``:
        ``workers`` 1 trains here, N in N worker processes); a finished cell lacking one of
        ``projections`` gets it. Returns the grid's report (cell names)."""
        cells = list(dict.fromkeys((float(b), float(g)) for b, g in cells))
        projections = tuple(projections)
        specs = [self.cell_spec(b, g, projections=projections, device=device) for b, g in cells]
        report = run_grid(specs, workers=workers, log=log, on_epoch=on_epoch)
        for b, g in cells:
            self._found.pop(cell_name(b, g), None)
            self._memory.pop(cell_name(b, g), None)
            if cell_name(b, g) in report.skipped:      # a sweep may add e.g. UMAP later
                for method in projections:
                    if not self.has_projection(b, g, method):
                        if log:
                            log(f"{cell_name(b, g)}: adding the {method} projection")
                        self.ensure_projection(b, g, method)
        return report

    def compute(self, beta: float, gamma: float, *, projections: Iterable[str] = ("tsne",),
                device: str = "auto", progress: Progress | None = None) -> CellResult:
        """Train one missing cell here, in this process (the explorer's Train button);
        ``progress(done, total, message)`` after each epoch."""
        epochs = self.spec.config(beta, gamma).train.epochs
        report = progress or (lambda done, total, msg: None)
        report(0, epochs + 1, f"training (epoch 1/{epochs})")
        result = self.fill([(beta, gamma)], projections=projections, device=device, log=None, on_epoch=lambda e:
                           report(e["epoch"], epochs + 1, f"trained epoch {e['epoch']}/{epochs}"))
        if result.failed:
            raise RuntimeError(result.failed[cell_name(beta, gamma)].strip().splitlines()[-1])
        report(epochs + 1, epochs + 1, "done")
        return self.load(beta, gamma)

    # -- tables ---------------------------------------------------------------------------------
    def table(self, cells: Iterable[tuple[float, float]] | None = None,
              keys: tuple[str, ...] = ("mae", "disc_prob_common", "common_modality_acc",
                                       "private_modality_acc", "common_factor_r2", "private_factor_r2")) -> str:
        """A markdown table of the finished cells' metrics (one row per cell)."""
        cells = self.finished() if cells is None else [c for c in cells if self.has(*c)]
        lines = ["| beta | gamma | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys)]
        for b, g in cells:
            vals = [_value(self.run(b, g).metrics, k) for k in keys]
            lines.append(f"| {format_value(b)} | {format_value(g)} | " + " | ".join(vals) + " |")
        return "\n".join(lines)

    def matrix(self, key: str, betas: Iterable[float], gammas: Iterable[float], title: str | None = None) -> str:
        """One metric over a grid as a markdown table, a row per beta and a column per gamma
        ("—" where a cell is not finished or lacks the metric), titled with the metric's plain name."""
        gammas = list(gammas)
        title = title or (SCORES[key].name if key in SCORES else key)
        lines = [f"**{title}** (rows β, columns γ)", "",
                 "| β \\ γ | " + " | ".join(format_value(g) for g in gammas) + " |",
                 "|---|" + "---|" * len(gammas)]
        for b in betas:
            vals = [_value(self.run(b, g).metrics, key) if self.has(b, g) else "—" for g in gammas]
            lines.append(f"| {format_value(b)} | " + " | ".join(vals) + " |")
        return "\n".join(lines)


# The matrices `fdmer-lite sweep` prints after a grid (benchmarks/results/sweep-synthetic-emotion.md),
# each titled with its plain name (scores.SCORES).
MATRIX_KEYS = ("mae", "common_modality_acc", "common_factor_r2", "disc_prob_common", "private_factor_r2",
               "best_epoch")


def _value(metrics: dict, key: str) -> str:
    """One metric as table text ("—" when absent)."""
    value = metrics.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return f"{value:.3f}" if isinstance(value, float) else "—"
