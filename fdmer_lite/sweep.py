"""A sweep over FDMER's trade-off weights beta and gamma, cached on disk, one folder per setting.

FDMER (Yang et al., ACM MM 2022) trains with Eq. 18,

    L_all = L_task + beta (L_ami + L_ams) + gamma (L_con + L_dis),

so beta weighs the adversarial/discriminative losses on the common and private representations
(Eq. 10-11) and gamma the consistency and HSIC disparity constraints (Eq. 5, 7). A *sweep* trains
one small model per (beta, gamma) setting on the same data with the same seeds, and keeps
everything the beta/gamma explorer (``fdmer_lite.widgets``) shows, so revisiting a setting never
retrains.

On-disk layout (the *cache*)::

    <cache>/
      spec.json                       what every cell is trained on: preset, config overrides,
                                      data (make_benchmark arguments), projection sample size and
                                      seed, and the fingerprint of the generated data
                                      (MultimodalData.fingerprint: a hash of every split's
                                      features, labels and lengths). A cache holds one spec;
                                      opening it with another, or training a cell on data that
                                      hash differently (the generator changed), is an error,
                                      never a silent mix.
      beta=0.02_gamma=0.02/           one finished cell: complete, or absent
        config.json  history.json     written by experiments.runs.obtain
        metrics.json model.pt
        reps.npz                      test-split representations: C_<m>, P_<m> (N, d_k), the
                                      discriminator probabilities pc_<m>, pp_<m> (N, M), psi (N, T),
                                      psi_names, prediction, labels, ids, modalities
        projections/index.json        which 2-D projections (t-SNE, UMAP, PCA) are present
        projections/<method>-<hash>.npy   written by viz.project (the hash is of the stacked C/P)
        cell.json                     beta, gamma, seconds, finished time
        complete.json                 size and sha256 of every file above (not projections/):
                                      written last (experiments.runstore); a cell without it, or
                                      whose files do not match it, is not finished
      .locks/beta=0.02_gamma=0.02.lock   held (fcntl.flock) while a process computes the cell:
                                      a second process waits, then reuses the finished cell
      .beta=0.2_gamma=0.02.partial-<pid>-<random>/
                                      a cell being computed. It is renamed to its final name only
                                      when complete, so an interrupted cell leaves no finished
                                      folder; the next fill deletes partial folders whose process
                                      is gone and starts the cell again.

Cell names print each weight with ``format(value, "g")`` (``0``, ``0.002``, ``0.02``, ``2``), so
0.02 and 0.020000000000000004 are the same cell.

``fill(cache, cells)`` computes the missing cells and skips finished ones (resumable), on this
process or on the worker processes of ``experiments.pool``.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import __version__, viz
from .analysis import load_representations
from .config import Config, fast_mode, get_preset
from .data.synthetic import FAST_SIZES
from .experiments import runstore
from .experiments.pool import map_unordered
from .experiments.runs import REPS_FILE, obtain
from .experiments.specs import DataSpec
from .paths import runs_root
from .scores import SCORES
from .train import Trainer

SPEC_FILE = "spec.json"
CELL_FILE = "cell.json"
PROJECTIONS = "projections"
CACHE_ENV = "FDMER_LITE_SWEEP_CACHE"

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

    def make_data(self):
        """The sweep's data, generated once per process (``experiments.specs.DataSpec.load``)."""
        if self.dataset != "synthetic":
            raise ValueError(f"dataset: only 'synthetic' can be swept for now, got {self.dataset!r}")
        return DataSpec("synthetic", options=self.data).load()

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


# ---------------------------------------------------------------- one cell


@dataclass
class CellResult:
    """A finished cell, read back from disk."""

    beta: float
    gamma: float
    path: Path
    metrics: dict
    history: list
    config: dict
    info: dict
    reps: object                      # analysis.Representations of the test split

    @property
    def name(self) -> str:
        return cell_name(self.beta, self.gamma)


_SPEC_LOCK = threading.Lock()


class DataChanged(ValueError):
    """The data a cell would train on differ from the data of the cache's other cells."""


def _check_fingerprint(root: Path, data) -> str:
    """Record the data's fingerprint in spec.json on the first cell; refuse different data later."""
    with _SPEC_LOCK:
        fingerprint = data.fingerprint()                # computed once per data object
        spec_file = root / SPEC_FILE
        content = runstore.read_json(spec_file)
        saved = content.get("data_fingerprint")
        if saved is None:
            content["data_fingerprint"] = fingerprint
            runstore.write_json(spec_file, content)
        elif saved != fingerprint:
            raise DataChanged(
                f"{spec_file}: field 'data_fingerprint': the cells here were trained on data with "
                f"fingerprint {saved}, but the same spec now generates data with fingerprint "
                f"{fingerprint} (the generator changed). Use a new cache folder, or delete this one.")
    return fingerprint


def compute_cell(root: str | os.PathLike, spec: SweepSpec, beta: float, gamma: float, *,
                 projections: Iterable[str] = ("tsne",), device: str = "auto",
                 progress: Progress | None = None) -> dict:
    """Train one cell, store its test representations and projections, publish it atomically.

    One run of the store (``experiments.runs.obtain``), with the representations, the
    projections and ``cell.json`` added before it is sealed (the projections folder may grow
    later, so the seal leaves it out). Returns the cell's ``cell.json`` content. If another
    process finished the same cell first, its result is kept and nothing is trained.
    """
    root = Path(root)
    name = cell_name(beta, gamma)
    final = root / name
    projections = tuple(projections)
    cfg = spec.config(beta, gamma, device=device)
    epochs = cfg.train.epochs
    total = epochs + 2 + len(projections)                      # epochs, scores, extraction, projections
    report = progress or (lambda done, total, msg: None)
    with runstore.locked(final, on_wait=lambda msg: report(0, 1, msg)):   # one writer per cell
        if _cell_error(final) is None:
            return runstore.read_json(final / CELL_FILE)
        start = time.perf_counter()
        info = {}
        report(0, total, "preparing data")
        data = spec.make_data()
        fingerprint = _check_fingerprint(root, data)
        trainer = Trainer(cfg, data, on_epoch=lambda entry: report(
            entry["epoch"], total, f"trained epoch {entry['epoch']}/{epochs}"))
        report(0, total, f"training (epoch 1/{epochs})")

        def finish(tmp: Path, trainer, metrics: dict) -> None:
            report(epochs + 1, total, "representations")
            for i, method in enumerate(projections):
                report(epochs + 2 + i, total, f"{method} projection")
                project_into(tmp, spec, method)
            info.update({"beta": float(beta), "gamma": float(gamma), "name": name,
                         "seconds": time.perf_counter() - start,
                         "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
                         "train_seconds": metrics.get("train_seconds"), "data_fingerprint": fingerprint,
                         "fdmer_lite": __version__})
            runstore.write_json(tmp / CELL_FILE, info)

        obtain(cfg, data, final, retrain=True, representations=True, trainer=trainer, lock=False,
               finish=finish, record={"kind": "sweep-cell", "cell": name}, exclude=(PROJECTIONS,))
        report(total, total, "done")
        return info


def _cell_error(cell_dir: Path) -> str | None:
    """Why the cell in ``cell_dir`` is not finished and intact; None when it is."""
    try:
        runstore.read_finished(cell_dir)
        runstore.read_json(cell_dir / CELL_FILE)
    except (OSError, runstore.RunCorrupt) as err:
        return str(err)
    return None


def _is_cell(cell_dir: Path) -> bool:
    """Whether ``cell.json`` and the completion record are there (not checked against the files)."""
    return (cell_dir / CELL_FILE).is_file() and (cell_dir / runstore.RECORD).is_file()


def _projection_index(cell_dir: Path) -> dict:
    f = cell_dir / PROJECTIONS / "index.json"
    return json.loads(f.read_text()) if f.is_file() else {}


def project_into(cell_dir: Path, spec: SweepSpec, method: str) -> None:
    """Compute one 2-D projection of the cell's saved representations and record it.

    The projection is computed from the representations *as read back from disk*, so the
    explorer's later call of the same builder finds it in the cache. It is written into a temp
    folder first and moved in, so an interrupted UMAP never leaves a half-written file.
    """
    reps = load_representations(cell_dir / REPS_FILE)
    proj = cell_dir / PROJECTIONS
    proj.mkdir(exist_ok=True)
    tmp = proj / f".tmp-{method}-{os.getpid()}-{secrets.token_hex(3)}"
    tmp.mkdir()
    try:
        viz.representation_embedding(reps, method=method, max_points=spec.max_points,
                                     seed=spec.projection_seed, cache=tmp)
        for f in tmp.iterdir():
            os.replace(f, proj / f.name)
        index = _projection_index(cell_dir)
        index[method] = {"max_points": spec.max_points, "seed": spec.projection_seed}
        runstore.write_json(proj / "index.json", index)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _cell_task(args: tuple) -> tuple[dict | None, str | None]:
    """One cell on a worker of ``experiments.pool``: ``(cell.json content, None)`` or ``(None, error)``."""
    root, spec_dict, beta, gamma, projections, device = args
    try:
        return compute_cell(root, SweepSpec.from_dict(spec_dict), beta, gamma,
                            projections=projections, device=device), None
    except Exception as err:                                       # reported, the sweep goes on
        return None, f"{type(err).__name__}: {err}"


# ---------------------------------------------------------------- the cache


class SpecMismatch(ValueError):
    """The cache folder was made for another spec."""


class SweepCache:
    """A folder of finished cells for one :class:`SweepSpec` (layout: module docstring)."""

    def __init__(self, root: str | os.PathLike, spec: SweepSpec | None = None, *, memory: int = 16):
        self.root = Path(root)
        spec_file = self.root / SPEC_FILE
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
        self._memory: "OrderedDict[str, CellResult]" = OrderedDict()
        self._memory_size = memory

    # -- lookup ---------------------------------------------------------------------------------
    def cell_dir(self, beta: float, gamma: float) -> Path:
        return self.root / cell_name(beta, gamma)

    def has(self, beta: float, gamma: float) -> bool:
        """Whether the cell is finished: ``cell.json`` and its completion record are there
        (:meth:`fill` also checks every file against that record)."""
        return _is_cell(self.cell_dir(beta, gamma))

    def finished(self) -> list[tuple[float, float]]:
        """Every finished cell, sorted by (beta, gamma)."""
        return sorted(parse_cell_name(d.name) for d in self.root.iterdir()
                      if parse_cell_name(d.name) is not None and _is_cell(d))

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
        d = self.root / name
        if not self.has(beta, gamma):
            raise KeyError(f"{d}: no finished cell for beta={format_value(beta)}, gamma={format_value(gamma)}")
        runstore.read_finished(d, hashes=False)                  # sizes as recorded, or RunCorrupt
        read = lambda f: runstore.read_json(d / f)               # noqa: E731
        cell = CellResult(beta=float(beta), gamma=float(gamma), path=d, metrics=read("metrics.json"),
                          history=read("history.json"), config=read("config.json"), info=read(CELL_FILE),
                          reps=load_representations(d / REPS_FILE))
        self._memory[name] = cell
        while len(self._memory) > self._memory_size:
            self._memory.popitem(last=False)
        return cell

    def has_projection(self, beta: float, gamma: float, method: str) -> bool:
        entry = _projection_index(self.cell_dir(beta, gamma)).get(method)
        return entry == {"max_points": self.spec.max_points, "seed": self.spec.projection_seed}

    def projection_dir(self, beta: float, gamma: float) -> Path:
        return self.cell_dir(beta, gamma) / PROJECTIONS

    def ensure_projection(self, beta: float, gamma: float, method: str) -> None:
        """Compute a projection a finished cell lacks (e.g. UMAP after a t-SNE-only sweep)."""
        if not self.has_projection(beta, gamma, method):
            project_into(self.cell_dir(beta, gamma), self.spec, method)

    # -- computing ------------------------------------------------------------------------------
    def clean_partials(self) -> list[Path]:
        """Delete folders of interrupted cells (their process is gone); return what was removed."""
        finals = {d.name[1:].split(".partial-")[0] for d in self.root.glob(".*.partial-*")}
        return [d for name in sorted(finals) for d in runstore.clean_stale(self.root / name)]

    def compute(self, beta: float, gamma: float, *, projections: Iterable[str] = ("tsne",),
                device: str = "auto", progress: Progress | None = None) -> CellResult:
        """Train one missing cell here, in this process (the explorer's Train button)."""
        compute_cell(self.root, self.spec, beta, gamma, projections=projections, device=device,
                     progress=progress)
        return self.load(beta, gamma)

    def fill(self, cells: Iterable[tuple[float, float]], *, workers: int = 1,
             projections: Iterable[str] = ("tsne",), device: str = "auto",
             log: Callable[[str], None] | None = print) -> dict:
        """Compute every missing cell of ``cells``; finished cells are skipped (resumable).

        Returns ``{"computed": [...], "skipped": [...], "failed": {(beta, gamma): message}}``.
        A projection listed in ``projections`` that a finished cell lacks is added to it.
        """
        log = log or (lambda msg: None)
        cells = [(float(b), float(g)) for b, g in cells]
        removed = self.clean_partials()
        if removed:
            log(f"removed {len(removed)} interrupted cell(s): {', '.join(p.name for p in removed)}")
        for b, g in dict.fromkeys(cells):                     # finished, but intact?
            d = self.cell_dir(b, g)
            error = _cell_error(d) if self.has(b, g) else None
            if error is not None:
                log(f"{d.name}: {error}; computing it again")
                self._memory.pop(d.name, None)
                (d / runstore.RECORD).unlink(missing_ok=True)   # no longer finished
        todo = self.missing(cells)
        todo_names = {cell_name(b, g) for b, g in todo}
        skipped = [c for c in dict.fromkeys(cells) if cell_name(*c) not in todo_names]
        projections = tuple(projections)
        for b, g in skipped:                                   # a sweep may add e.g. UMAP later
            for method in projections:
                if not self.has_projection(b, g, method):
                    log(f"{cell_name(b, g)}: adding the {method} projection")
                    self.ensure_projection(b, g, method)
        log(f"{len(skipped)} cell(s) already finished, {len(todo)} to compute in {self.root}")
        tasks = [(str(self.root), self.spec.to_dict(), b, g, projections, device) for b, g in todo]
        computed, failed = [], {}
        start = time.perf_counter()
        results = map_unordered(_cell_task, tasks, workers=0 if workers <= 1 else workers)
        for i, (k, result, lost) in enumerate(results, start=1):      # lost: the worker process died
            (b, g), (info, error) = tasks[k][2:4], (result if lost is None else (None, lost))
            if error is None:
                computed.append((b, g))
                log(f"[{i}/{len(todo)}] {cell_name(b, g)}: {info['seconds']:.1f} s, "
                    f"test MAE {_value(self.root / cell_name(b, g), 'mae')}")
            else:
                failed[(b, g)] = error
                log(f"[{i}/{len(todo)}] {cell_name(b, g)}: FAILED: {error}")
        if todo:
            log(f"done in {time.perf_counter() - start:.1f} s")
        return {"computed": computed, "skipped": skipped, "failed": failed}

    def table(self, cells: Iterable[tuple[float, float]] | None = None,
              keys: tuple[str, ...] = ("mae", "disc_prob_common", "common_modality_acc",
                                       "private_modality_acc", "common_factor_r2", "private_factor_r2")) -> str:
        """A markdown table of the finished cells' metrics (one row per cell)."""
        cells = self.finished() if cells is None else [c for c in cells if self.has(*c)]
        lines = ["| beta | gamma | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys)]
        for b, g in cells:
            vals = [_value(self.cell_dir(b, g), k) for k in keys]
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
            vals = [_value(self.cell_dir(b, g), key) if self.has(b, g) else "—" for g in gammas]
            lines.append(f"| {format_value(b)} | " + " | ".join(vals) + " |")
        return "\n".join(lines)


# The matrices `fdmer-lite sweep` prints after a grid (benchmarks/results/sweep-synthetic-emotion.md),
# each titled with its plain name (scores.SCORES).
MATRIX_KEYS = ("mae", "common_modality_acc", "common_factor_r2", "disc_prob_common", "private_factor_r2",
               "best_epoch")


def _value(cell_dir: Path, key: str) -> str:
    """One metric of a cell as table text ("—" when absent or unreadable), read from its
    metrics.json alone (not the history and representations ``SweepCache.load`` reads)."""
    try:
        value = json.loads((cell_dir / "metrics.json").read_text()).get(key)
    except (OSError, ValueError, AttributeError):             # AttributeError: not a JSON object
        value = None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return f"{value:.3f}" if isinstance(value, float) else "—"

