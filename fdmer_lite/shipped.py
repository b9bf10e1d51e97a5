"""Runs that ship with the package, so the demo and the notebooks show comparisons without
training them.

**The lessons' runs.** At full size the notebooks compare several trained runs (beta = gamma = 0,
the confusion adversary, the humor-like benchmark ...); each takes minutes on two cores. Those
listed in :data:`LESSON_RUNS` ship as whole, sealed run folders (weights, history, metrics) in
``fdmer_lite/shipped_runs/lessons/<name>/``; :func:`find_lesson_run` loads one only when its
configuration and data fingerprint are those the current code would train (the run store's own
match, ``experiments.runs.find``). Notebook 6's main run is not used from here: the student
watches it train.

**The explorer's cells.** Notebook 9's beta/gamma explorer needs one trained cell per setting
of its cross (nine at full size). The cells of the full-size sweep spec ship in
``fdmer_lite/shipped_runs/sweep/<spec slug>/``; :func:`seed_sweep` copies into a sweep cache the
shipped cells that match the cache's spec, today's configuration and the data's fingerprint.

**The ablation grid.** Notebook 10's Table-4 grid at full size is 17 variants x 2 seeds, hours on
two cores. Its finished runs ship in ``fdmer_lite/shipped_runs/grid/<label>/<run id>/`` as their
configuration and metrics only (the table reads nothing else);
:func:`seed_grid` copies into the notebook's grid folder each one whose run id, configuration and
data fingerprint match, and the grid then trains only what is still missing.

Shipped sweep cells and grid runs are *slim copies* (:func:`slim_copy`): without the weights
(``model.pt``), which the explorer and the table never read, and, for the cells, with the
representations C and P stored as float16 (``analysis.load_representations`` reads them back as
float32). Every shipped history (``history.json``) is stored without indentation. That keeps
everything inside the 20 MB the package allows itself.

**Figure 2's projections.** Notebook 7 projects the test-split C and P of two lesson runs with
t-SNE and UMAP (about a minute on two cores). The projections of the shipped runs ship in
``fdmer_lite/shipped_runs/projections/``, named like the lessons' own cache (a hash of the
projected array, the method and the seed); :class:`ProjectionCache` reads them after the
student's folder, so a projection is reused only when the array is bit for bit the same.

**The demo's contrast.** The paper's Figure 2 contrasts the common representations learnt with
and without its losses (beta = gamma = 0). The measures that show that contrast on the
known-factor benchmark are the shared factor's R^2 in C (``common_factor_r2``), the
discriminator's probability of the true modality on C_m (``disc_prob_common``) and a fresh
linear probe (``common_modality_acc``), the last most clearly at gamma = 0, where gradient
reversal acts without the constraints. The demo trains on the lessons' full-size benchmark, so
:func:`load_contrast` reads those measures from two of the lesson runs above.

Every shipped run is used only while its configuration and data fingerprint are those the
current code would train; otherwise the caller is told there is none. ``python
benchmarks/ship_runs.py`` regenerates them all, and a test fails when one no longer matches.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from . import ablations, sweep
from .config import Config, get_preset
from .data.base import MultimodalData
from .experiments import runstore
from .experiments.runs import REPS_FILE, Run, find, finished_run_of, plain_fingerprint, same_run
from .experiments.specs import DataSpec
from .progress import heartbeat
from .scores import SCORES
from .train import CHECKPOINT

SHIPPED_DIR = Path(__file__).resolve().parent / "shipped_runs"
LESSONS_DIR = SHIPPED_DIR / "lessons"
SWEEP_DIR = SHIPPED_DIR / "sweep"
GRID_DIR = SHIPPED_DIR / "grid"
PROJECTIONS_DIR = SHIPPED_DIR / "projections"

#: lesson run name -> (benchmark kind, change to the ``synthetic`` preset): the full-size runs the
#: notebooks compare (``lessons.lesson_run`` finds them here under the same names)
LESSON_RUNS: dict[str, tuple[str, dict]] = {
    "emotion-paper": ("emotion", {}),
    "emotion-beta0-gamma0": ("emotion", {"loss": {"beta": 0.0, "gamma": 0.0}}),
    "emotion-beta0.5": ("emotion", {"loss": {"beta": 0.5}}),
    "emotion-gamma0": ("emotion", {"loss": {"gamma": 0.0}}),
    "emotion-grl-constant": ("emotion", {"train": {"grl_schedule": "constant"}}),
    "emotion-confusion": ("emotion", {"loss": {"adversary": "confusion"}}),
    "emotion-centring": ("emotion", {"model": {"common_centring": True}}),
    "emotion-confusion-align-mean": ("emotion", {"loss": {"adversary": "confusion", "align_weight": 10.0,
                                                          "align_form": "mean"}}),
    "humor-paper": ("humor", {}),
    "humor-beta0-gamma0": ("humor", {"loss": {"beta": 0.0, "gamma": 0.0}}),
}


def lesson_run_config(name: str) -> Config:
    """The configuration of shipped lesson run ``name``, as the notebooks build it in full mode."""
    _, change = LESSON_RUNS[name]
    base = get_preset("synthetic")
    return base.replace(**change) if change else base


def find_lesson_run(name: str, config: Config, data: MultimodalData, folder: Path | None = None) -> Run | None:
    """The shipped run ``name``, loaded, if it was trained with ``config`` on ``data``; else None."""
    if name not in LESSON_RUNS:
        return None
    return find(config, data, (folder or LESSONS_DIR) / name)


#: name -> (the lesson run that holds it, what it is in words)
CONTRASTS: dict[str, tuple[str, str]] = {
    "losses_off": ("emotion-beta0-gamma0", "beta = gamma = 0 (no paper losses)"),
    "gamma0": ("emotion-gamma0", "gamma = 0 (adversary, no constraints)"),
}

#: the scores the contrast compares (names: scores.SCORES; what each should show: contrast_verdict)
CONTRAST_KEYS = ("common_factor_r2", "disc_prob_common", "common_modality_acc")


def shipped_cells(spec: sweep.SweepSpec, data: MultimodalData | None = None,
                  folder: Path | None = None) -> dict[str, Path]:
    """The shipped sweep cells of ``spec`` that match today's code: cell name -> folder. Each is
    finished and intact, and was trained with the configuration ``spec`` gives its setting today
    on data with ``data``'s fingerprint (generated from ``spec`` when not given)."""
    root = (folder or SWEEP_DIR) / spec.slug
    try:
        saved = runstore.read_json(root / sweep.SPEC_FILE)
    except (FileNotFoundError, runstore.RunCorrupt):
        return {}
    if saved.get("spec") != spec.to_dict():
        return {}
    if data is None:
        with heartbeat("generating the sweep's data to check the shipped cells"):
            data = spec.make_data()
    if saved.get("data_fingerprint") != data.fingerprint():
        return {}
    fingerprint, cells = plain_fingerprint(data), {}
    for cell in sorted(p for p in root.iterdir() if p.is_dir()):
        setting = sweep.parse_cell_name(cell.name)
        if setting is None:
            continue
        if finished_run_of(cell, spec.config(*setting), fingerprint):
            cells[cell.name] = cell
    return cells


def seed_sweep(cache: sweep.SweepCache, data: MultimodalData | None = None, folder: Path | None = None) -> list[str]:
    """Copy into ``cache`` every matching shipped cell it does not hold yet (:func:`shipped_cells`);
    returns the names copied. Cells already in the cache are never replaced."""
    cells = {name: path for name, path in shipped_cells(cache.spec, data, folder).items()
             if not cache.has(*sweep.parse_cell_name(name))}
    if not cells:
        return []
    spec_file = cache.root / sweep.SPEC_FILE
    content = runstore.read_json(spec_file)
    shipped_fp = runstore.read_json((folder or SWEEP_DIR) / cache.spec.slug / sweep.SPEC_FILE)["data_fingerprint"]
    if content.get("data_fingerprint", shipped_fp) != shipped_fp:
        return []                                      # the cache's cells were trained on other data
    if "data_fingerprint" not in content:
        runstore.write_json(spec_file, {**content, "data_fingerprint": shipped_fp})
    for name, path in cells.items():
        runstore.publish_copy(path, cache.root / name)
    return sorted(cells)


class ProjectionCache:
    """A cache for ``viz.project(..., cache=...)``: ``folder`` (read and written), then the
    projections shipped with the package (read only). Keys are ``viz.project``'s: a hash of the
    array, the method and the seed, so a shipped projection is used only for the same array."""

    def __init__(self, folder: str | Path, shipped: Path | None = None):
        self.folder, self.shipped = Path(folder), Path(shipped or PROJECTIONS_DIR)

    def _file(self, key: str) -> Path | None:
        return next((f for f in (self.folder / f"{key}.npy", self.shipped / f"{key}.npy") if f.is_file()), None)

    def __contains__(self, key: str) -> bool:
        return self._file(key) is not None

    def __getitem__(self, key: str) -> np.ndarray:
        f = self._file(key)
        if f is None:
            raise KeyError(key)
        return np.load(f, allow_pickle=False)

    def __setitem__(self, key: str, value: np.ndarray) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{key}.{os.getpid()}.tmp.npy"
        np.save(tmp, np.asarray(value))
        os.replace(tmp, self.folder / f"{key}.npy")      # never a half-written projection


# ------------------------------------------------------------------ slim copies and the grid

#: the fields of a completion record that describe the copy itself (rewritten when re-sealed)
_RECORD_OWN = ("format", "status", "written", "pid", "files")


def _halve(path: Path) -> None:
    """Store the representations C_* and P_* of ``path`` (an ``.npz``) as float16, compressed."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k].astype(np.float16) if k[:2] in ("C_", "P_") else z[k] for k in z.files}
    with open(path, "wb") as f:                         # a file object: numpy adds no suffix
        np.savez_compressed(f, **arrays)


HISTORY = "history.json"


def _compacted(folder: Path) -> str | None:
    """``folder``'s history as JSON without indentation (about a quarter smaller, the same
    values), or None when there is none or it already is."""
    path = folder / HISTORY
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    compact = runstore.dumps(json.loads(text), indent=None)
    return None if compact == text else compact


def _compact_history(folder: Path) -> None:
    """Rewrite ``folder``'s history without indentation (nothing to do when it already is)."""
    if (compact := _compacted(folder)) is not None:
        runstore.write_text(folder / HISTORY, compact)


def _kept_fields(record: dict) -> dict:
    """A completion record's own fields (the run's kind, a cell's name ...) for a copy's record."""
    return {k: v for k, v in record.items() if k not in _RECORD_OWN}


def compact_copy(src: str | Path, final: str | Path) -> Path:
    """Publish a whole copy of the finished run ``src`` as ``final`` (which may be ``src`` itself)
    with its history stored without indentation, sealed again with the same record fields. The
    copy is made beside ``final`` and renamed into place: an interruption leaves the old run whole."""
    src, final = Path(src), Path(final)
    record = runstore.read_finished(src)                # intact, or this raises naming the file
    tmp = runstore.partial_dir(final)
    try:
        shutil.copytree(src, tmp, dirs_exist_ok=True)
        _compact_history(tmp)
        unrecorded = tuple(p.name for p in tmp.iterdir() if p.is_dir())   # a cell's projections
        runstore.seal(tmp, _kept_fields(record), exclude=unrecorded)
        return runstore.publish(tmp, final)
    finally:
        runstore.discard(tmp)


def compact_shipped(folder: str | Path) -> bool:
    """Store the shipped run ``folder``'s history without indentation (:func:`compact_copy` in its
    place). False, and nothing copied or written, when it already is compact."""
    folder = Path(folder)
    runstore.read_finished(folder)                      # intact, or this raises naming the file
    if _compacted(folder) is None:
        return False
    compact_copy(folder, folder)
    return True


def slim_copy(src: str | Path, final: str | Path, *, half: bool = False, leave_out: tuple[str, ...] = ()) -> Path:
    """Publish a copy of the finished run ``src`` as ``final`` holding its top-level files except
    the weights (``model.pt``) and with its history stored compactly (:func:`compact_shipped`);
    ``half``: the representations' C and P as float16. Sub-folders
    (a sweep cell's projections) are left out: they are computed again from the copy. The copy is
    sealed again, so its completion record lists what it holds; the source record's own fields
    (the cell's name, the run's kind) are kept, with ``"slim"`` saying what was left out.
    ``leave_out``: more top-level file names to leave out (a grid run's ``run.json``, which names
    the folder and host it was trained on)."""
    src, final = Path(src), Path(final)
    record = runstore.read_finished(src)                # intact, or this raises naming the file
    tmp = runstore.partial_dir(final)
    try:
        for f in src.iterdir():
            if f.is_file() and f.name not in (CHECKPOINT, runstore.RECORD, *leave_out):
                shutil.copy2(f, tmp / f.name)
        if half and (tmp / REPS_FILE).is_file():
            _halve(tmp / REPS_FILE)
        _compact_history(tmp)
        info = _kept_fields(record)
        info["slim"] = ", ".join(f"no {n}" for n in (CHECKPOINT, *leave_out)) + ("; C and P as float16" if half else "")
        runstore.seal(tmp, info)
        return runstore.publish(tmp, final)
    finally:
        runstore.discard(tmp)


#: the grid notebook 10 runs at full size (``ablations.benchmark_setup(GRID["kind"])``)
GRID = {"kind": "emotion", "variants": "all", "seeds": (1, 2)}


def grid_runs(base: Config, data: DataSpec, variants: str | Iterable[str], seeds: Sequence[int],
              out_dir: str | Path, dataset: MultimodalData | None = None) -> list[ablations.PlannedRun]:
    """The runs :func:`ablations.run_ablation` plans for these arguments (same ids, same folders)."""
    dataset = dataset if dataset is not None else data.load()
    return ablations.plan(base, data, dataset.modalities, ablations.select_variants(variants), seeds, out_dir)


def shipped_grid(runs: Sequence[ablations.PlannedRun], dataset: MultimodalData, label: str,
                 folder: Path | None = None) -> dict[str, Path]:
    """The shipped grid runs among ``runs`` that match today's code: run id -> folder. Each is
    finished and intact and was trained with the run's configuration on data with ``dataset``'s
    fingerprint."""
    root, fingerprint, found = (folder or GRID_DIR) / label, plain_fingerprint(dataset), {}
    for r in runs:
        if r.spec is None or r.spec.run_id in found:
            continue
        src = root / r.spec.run_id
        if finished_run_of(src, Config.from_dict(r.spec.config), fingerprint):
            found[r.spec.run_id] = src
    return found


def seed_grid(base: Config, data: DataSpec, variants: str | Iterable[str], seeds: Sequence[int],
              out_dir: str | Path, label: str, folder: Path | None = None) -> tuple[list[str], list[str]]:
    """Copy into ``out_dir`` each matching shipped grid run (:func:`shipped_grid`) it does not
    hold finished yet, so ``run_ablation`` with the same arguments trains only the rest. Returns
    (the run ids copied, the run ids still to train); a finished run already there is never
    replaced."""
    dataset = data.load()
    runs = grid_runs(base, data, variants, seeds, out_dir, dataset)
    specs = {r.spec.run_id: r.spec for r in runs if r.spec is not None}
    copied = []
    for run_id, src in shipped_grid(runs, dataset, label, folder).items():
        if not specs[run_id].is_complete():
            runstore.publish_copy(src, specs[run_id].path)
            copied.append(run_id)
    return sorted(copied), sorted(i for i, spec in specs.items() if not spec.is_complete())


def contrast_config(base: Config, name: str) -> Config:
    """The configuration of contrast ``name`` for a demo trained with ``base``."""
    _, change = LESSON_RUNS[CONTRASTS[name][0]]
    return base.replace(**change)


def load_contrast(name: str, config: Config, fingerprint: dict, folder: Path | None = None) -> dict | None:
    """The shipped metrics of contrast ``name`` if its run was trained with ``config`` on data with
    ``fingerprint`` (``experiments.runs.data_fingerprint``), else None. Reads only the run's
    JSON files (the demo needs no weights)."""
    folder = (folder or LESSONS_DIR) / CONTRASTS[name][0]
    try:
        record = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return metrics if same_run(record, config, fingerprint) else None


def contrast_rows(this_run: dict, contrasts: dict[str, dict | None]) -> list[tuple[str, dict | None]]:
    """Rows of the contrast table: this run first, then each contrast (None where no shipped
    run matches)."""
    return [("this run (beta, gamma of the preset)", this_run)] + \
        [(CONTRASTS[name][1], metrics) for name, metrics in contrasts.items()]


def contrast_markdown(rows: list[tuple[str, dict | None]]) -> str:
    head = "| run | " + " | ".join(SCORES[k].name for k in CONTRAST_KEYS) + " |"
    lines = [head, "|" + "---|" * (1 + len(CONTRAST_KEYS))]
    for name, m in rows:
        if m is None:
            cells = ["no shipped run matches this code"] + [""] * (len(CONTRAST_KEYS) - 1)
        else:
            cells = [f"{m[k]:.3f}" if m.get(k) is not None else "-" for k in CONTRAST_KEYS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def contrast_verdict(this_run: dict, contrasts: dict[str, dict | None]) -> list[str]:
    """One line per finding, each with its evidence, computed from the numbers."""
    lines = []
    off, g0 = contrasts.get("losses_off"), contrasts.get("gamma0")
    r2 = this_run.get("common_factor_r2")
    if off is not None and r2 is not None and off.get("common_factor_r2") is not None:
        more = r2 > off["common_factor_r2"]
        lines.append(f"With the paper's losses C holds {'more' if more else 'no more'} of the shared factor "
                     f"(R^2 {r2:.3f} against {off['common_factor_r2']:.3f} at beta = gamma = 0).")
    d = this_run.get("disc_prob_common")
    if g0 is not None and d is not None and g0.get("disc_prob_common") is not None:
        lines.append(f"Without gamma the discriminator's p(true modality | C_m) is {g0['disc_prob_common']:.3f} "
                     f"against {d:.3f} with both losses (1/3 is a confused discriminator, near 0 a "
                     f"confidently wrong one).")
    probe = this_run.get("common_modality_acc")
    if g0 is not None and probe is not None and g0.get("common_modality_acc") is not None:
        higher = g0["common_modality_acc"] > probe
        lines.append(f"Without gamma the linear probe reads the modality from C_m "
                     f"{'more' if higher else 'no more'} easily ({g0['common_modality_acc']:.3f} "
                     f"against {probe:.3f} with both losses; chance is 1/3).")
    if not lines:
        lines.append("No shipped comparison run matches this configuration and data, so there is "
                     "no contrast to show (regenerate with python benchmarks/ship_runs.py).")
    return lines


def demo_contrast(config: Config, fingerprint: dict, this_run: dict) -> str:
    """The contrast as text for the terminal and the report: the table and the verdicts."""
    contrasts = {name: load_contrast(name, contrast_config(config, name), fingerprint) for name in CONTRASTS}
    table = contrast_markdown(contrast_rows(this_run, contrasts))
    return table + "\n\n" + "\n".join(contrast_verdict(this_run, contrasts))
