"""Regenerate the runs bundled inside the package (``fdmer_lite/shipped_runs/``).

    python tools/ship_runs.py                       # train every lesson run that is stale (full size)
    python tools/ship_runs.py --from runs/lessons/full   # reuse finished runs found there
    python tools/ship_runs.py --names emotion-paper --workers 2
    python tools/ship_runs.py --sweep --sweep-from runs/sweep/synthetic-emotion-seed0
    python tools/ship_runs.py --grid --grid-from runs/lessons/synthetic-emotion --workers 2
    python tools/ship_runs.py --grid --grid-from runs/lessons/synthetic-emotion --no-train
    python tools/ship_runs.py --projections          # notebook 7's Figure-2 projections
    python tools/ship_runs.py --all --workers 2      # all four, in that order (many hours)

The bundled runs are a read-only second root of the run store: ``experiments.runs.find`` looks
there after the user's folder, and uses a run only while its configuration and data
fingerprint are those the current code would train. Every part below is trained, where it must
be, by the one grid runner (``experiments.runs.run_grid``, ``--workers`` processes).

Each lesson run is one of ``lessons.LESSON_RUNS``: the ``synthetic`` preset with one change,
trained on the lessons' full-size benchmark, exactly as a notebook in full mode would train it
(``lessons.lesson_run``). A run already bundled and still matching the code is kept; a stale one
is retrained (or taken from ``--from`` when a finished run there matches). The whole sealed run
folder is copied: weights, history, metrics and its completion record. The demo's contrast
reads two of them.

``--sweep`` bundles notebook 9's explorer cells and ``--grid`` notebook 10's Table-4 grid, both as
slim copies (:func:`bundle_copy`: no weights; the cells' C and P as float16, their projections
computed again from what is bundled). A grid of 34 full-size runs takes hours: ``--grid-from``
keeps its runs in a folder you name, so an interrupted grid resumes there, and ``--no-train``
bundles only the runs already finished in it (the notebook trains the rest). ``--projections``
bundles the t-SNE and UMAP projections notebook 7 draws of two bundled lesson runs
(``FIGURE2``: keep it equal to the notebook's cells), computed here exactly as the notebook
computes them. At the end the script writes ``benchmarks/results/shipped-runs.md``, the size of
everything bundled (budget: 20 MB). Every bundled history (``history.json``) is stored without
indentation (each invocation but ``--check`` compacts one bundled before that was the rule).
``--all`` regenerates whatever is stale of the four parts in one invocation: the lesson runs
first, because the projections are drawn from them; ``--sweep-from`` and ``--grid-from`` apply as
above.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from fdmer_lite import sweep
from fdmer_lite.ablations import LESSON_GRID, VARIANTS, benchmark_setup, grid_bundle, plan, run_ablation, select_variants
from fdmer_lite.config import Config
from fdmer_lite.experiments import runstore
from fdmer_lite.experiments.runs import (BUNDLED, REPS_FILE, RUN_FILE, DataSpec, ProjectionCache, RunSpec, find,
                                         run_grid)
from fdmer_lite.lessons import BUNDLED_LESSONS, BUNDLED_PROJECTIONS, LESSON_RUNS, SPREAD_RUNS, lesson_run_config
from fdmer_lite.train import CHECKPOINT

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "benchmarks" / "results" / "shipped-runs.md"
PROJECTIONS = ("tsne", "umap", "pca")

#: notebook 7's Figure 2: the runs it projects, the points per set and the methods
FIGURE2 = {"runs": ("emotion-beta0-gamma0", "emotion-paper"), "max_points": 300, "methods": ("tsne", "umap")}


def _full(kind: str) -> DataSpec:
    """The lessons' full-size benchmark of ``kind`` (``lessons.lesson_data`` in full mode)."""
    os.environ.pop("FDMER_LITE_FAST", None)             # full size, whatever the caller's shell says
    return DataSpec("synthetic", options={"kind": kind})


# ------------------------------------------------------------------ copies for the bundle

#: the fields of a completion record that describe the copy itself (rewritten when re-sealed)
_RECORD_OWN = ("format", "status", "written", "pid", "files")


def _rounded(value):
    """``value`` with every float kept to 6 significant digits (a curve's and a game record's
    precision in every figure and verdict), nested lists and dicts alike."""
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _compacted(folder: Path) -> str | None:
    """``folder``'s history as JSON without indentation, its floats to 6 significant digits
    (less than half the size), or None when there is none or it already is."""
    path = folder / "history.json"
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    compact = runstore.dumps(_rounded(json.loads(text)), indent=None)
    return None if compact == text else compact


def _halve(path: Path) -> None:
    """Store the representations C_* and P_* of ``path`` (an ``.npz``) as float16, compressed."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k].astype(np.float16) if k[:2] in ("C_", "P_") else z[k] for k in z.files}
    with open(path, "wb") as f:                         # a file object: numpy adds no suffix
        np.savez_compressed(f, **arrays)


def bundle_copy(src: str | Path, final: str | Path, *, weights: bool = True, half: bool = False,
                leave_out: tuple[str, ...] = (), folders: bool = False) -> Path:
    """Publish a copy of the finished run ``src`` as ``final`` (which may be ``src`` itself): its
    top-level files but ``leave_out`` and, without ``weights``, ``model.pt``; its sub-folders (a
    cell's projections) only with ``folders``; its history stored without indentation; ``half``:
    the representations' C and P as float16 (``analysis.load_representations`` reads them back as
    float32). The copy is made beside ``final``, sealed again with the source record's own fields
    (the run's kind ...) plus ``"slim"`` saying what was left out, and renamed into place: an
    interruption leaves the old run whole."""
    src, final = Path(src), Path(final)
    record = runstore.read_finished(src)                # intact, or this raises naming the file
    left = (*((CHECKPOINT,) if not weights else ()), *leave_out)
    tmp = runstore.partial_dir(final)
    try:
        for f in src.iterdir():
            if f.is_file() and f.name not in (runstore.RECORD, *left):
                shutil.copy2(f, tmp / f.name)
            elif f.is_dir() and folders:
                shutil.copytree(f, tmp / f.name)
        if half and (tmp / REPS_FILE).is_file():
            _halve(tmp / REPS_FILE)
        if (compact := _compacted(tmp)) is not None:
            runstore.write_text(tmp / "history.json", compact)
        info = {k: v for k, v in record.items() if k not in _RECORD_OWN}
        if not weights or half:
            info["slim"] = ", ".join(f"no {n}" for n in left) + ("; C and P as float16" if half else "")
        runstore.seal(tmp, info)
        return runstore.publish(tmp, final)
    finally:
        runstore.discard(tmp)


def compact_bundled(folder: str | Path) -> bool:
    """Store the bundled run ``folder``'s history without indentation (:func:`bundle_copy` in its
    place, everything kept). False, and nothing written, when it already is compact."""
    folder = Path(folder)
    runstore.read_finished(folder)                      # intact, or this raises naming the file
    if _compacted(folder) is None:
        return False
    bundle_copy(folder, folder, folders=True)
    return True


def compact_all() -> int:
    """Store every bundled history compactly (runs bundled before histories were): the number
    of runs rewritten."""
    folders = [*BUNDLED_LESSONS.glob("*/"), *sweep.BUNDLED_SWEEPS.glob("*/*/")]
    return sum(compact_bundled(f) for f in folders if (f / runstore.RECORD).is_file())


def size_of(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def write_report() -> None:
    """``benchmarks/results/shipped-runs.md``: what is bundled, how much of it, and its size."""
    lessons_n = len([p for p in BUNDLED_LESSONS.iterdir() if p.is_dir()]) if BUNDLED_LESSONS.is_dir() else 0
    spec = sweep.default_spec(fast=False)
    cells = sweep.BUNDLED_SWEEPS / spec.slug
    values = sweep.default_values(fast=False)
    want_cells = len(sweep.cross(values, values, center=sweep.PAPER_SETTING))
    have_cells = len([p for p in cells.iterdir() if p.is_dir()]) if cells.is_dir() else 0
    _, _, label = benchmark_setup(LESSON_GRID["kind"])
    grid = grid_bundle(label)
    have_grid = len([p for p in grid.iterdir() if p.is_dir()]) if grid.is_dir() else 0
    want_grid = len(VARIANTS) * len(LESSON_GRID["seeds"])
    rows = [("lesson runs (notebooks 06, 07, 11; the demo's contrast)", BUNDLED_LESSONS,
             f"{lessons_n} of {len(LESSON_RUNS)}", "whole runs with their weights"),
            ("explorer cells (notebook 09)", cells, f"{have_cells} of {want_cells}",
             "no weights; C and P as float16"),
            (f"Table-4 grid (notebook 10), {label}", grid, f"{have_grid} of {want_grid} runs",
             "configuration and metrics only"),
            ("Figure-2 projections (notebook 07)", BUNDLED_PROJECTIONS,
             f"{len(list(BUNDLED_PROJECTIONS.glob('*.npy'))) if BUNDLED_PROJECTIONS.is_dir() else 0} of "
             f"{len(FIGURE2['runs']) * len(FIGURE2['methods'])}", "t-SNE and UMAP of two lesson runs")]
    lines = ["# The runs that ship with the package", "",
             "Written by `python tools/ship_runs.py` (every invocation). Sizes of "
             "`fdmer_lite/shipped_runs/`; the budget is 20 MB in all.", "",
             "| part | shipped | size | what a run keeps |", "|---|---|---:|---|"]
    for name, folder, count, keeps in rows:
        size = size_of(folder) if folder.is_dir() else 0
        lines.append(f"| {name} | {count} | {size / 1e6:.2f} MB | {keeps} |")
    lines += ["", f"In all: {size_of(BUNDLED) / 1e6:.2f} MB.", ""]
    REPORT.write_text("\n".join(lines))


# ------------------------------------------------------------------ the four parts


def ship_lessons(names: list[str], source: str | None, workers: int, check: bool) -> int:
    """Bundle every stale lesson run of ``names``: taken from ``source`` when a finished run there
    matches, trained otherwise. With ``check``, only say which are stale (status 1 if any)."""
    stale = []
    for name in names:
        cfg, data = lesson_run_config(name), _full(LESSON_RUNS[name][0]).load()
        if find(cfg, data, BUNDLED_LESSONS / name, weights=name not in SPREAD_RUNS) is not None:
            print(f"{name}: bundled and current")
            continue
        found = find(cfg, data, Path(source) / name) if source else None
        if found is not None and not check:
            bundle_copy(found.path, BUNDLED_LESSONS / name, weights=name not in SPREAD_RUNS,
                        leave_out=(RUN_FILE,))
            print(f"{name}: bundled from {found.path} (test MAE {found.metrics['mae']:.3f})")
            continue
        stale.append(name)
        print(f"{name}: stale or missing", flush=True)
    if check:
        return 1 if stale else 0
    scratch = Path(tempfile.mkdtemp(prefix="ship-runs-"))
    specs = [RunSpec(name, lesson_run_config(name).to_dict(),
                     _full(LESSON_RUNS[name][0]), str(scratch)) for name in stale]
    report = run_grid(specs, workers=workers)
    for name in report.computed:
        bundle_copy(scratch / name, BUNDLED_LESSONS / name, weights=name not in SPREAD_RUNS,
                    leave_out=(RUN_FILE,))   # checks it is intact
    shutil.rmtree(scratch, ignore_errors=True)
    if report.failed:
        print(f"not bundled: {', '.join(report.failed)}", file=sys.stderr)
        return 1
    for name in names:
        cfg, data = lesson_run_config(name), _full(LESSON_RUNS[name][0]).load()
        assert find(cfg, data, BUNDLED_LESSONS / name, weights=name not in SPREAD_RUNS) is not None, name
    return 0


def ship_sweep(source: str | None, workers: int) -> int:
    """Bundle the explorer's full-size cells (taken from ``source`` where they match, else trained)."""
    os.environ.pop("FDMER_LITE_FAST", None)
    spec = sweep.default_spec(fast=False)
    values = sweep.default_values(fast=False)
    cells = sweep.cross(values, values, center=sweep.PAPER_SETTING)
    names = [sweep.cell_name(b, g) for b, g in cells]
    target = sweep.BUNDLED_SWEEPS / spec.slug
    if set(names) <= bundled_cells(spec):
        print(f"sweep: all {len(names)} cells bundled and current")
        return 0
    work = Path(source) if source else Path(tempfile.mkdtemp(prefix="ship-sweep-")) / spec.slug
    result = sweep.SweepCache(work, spec, bundled=None).fill(cells, workers=workers, projections=PROJECTIONS)
    if result.failed:
        print(f"sweep: cells failed: {sorted(result.failed)}", file=sys.stderr)
        return 1
    tmp = runstore.partial_dir(target)
    shutil.copy(work / sweep.SWEEP_FILE, tmp / sweep.SWEEP_FILE)
    for name in names:                                  # slim: no weights, C and P as float16
        bundle_copy(work / name, tmp / name, weights=False, half=True, leave_out=(RUN_FILE,))
        sweep.add_projections(tmp / name, methods=PROJECTIONS, max_points=spec.max_points,
                              seed=spec.projection_seed)   # of the float16 representations, as bundled
    stale = target.with_name(f".{target.name}.stale")  # the old cells (none current): all replaced,
    if target.exists():                                 # deleted only once the new ones are in place
        target.rename(stale)
    runstore.publish(tmp, target)
    if stale.exists():
        shutil.rmtree(stale)
    assert set(names) <= bundled_cells(spec), "a bundled cell does not match"
    print(f"sweep: {len(names)} cells bundled into {target} ({size_of(target) / 1e6:.1f} MB)")
    return 0


def bundled_cells(spec: sweep.SweepSpec) -> set[str]:
    """The names of the cells of ``spec`` the package bundles that match today's code."""
    with tempfile.TemporaryDirectory() as tmp:
        cache = sweep.SweepCache(Path(tmp) / spec.slug, spec)
        if cache.bundled is None:
            return set()
        return {d.name for d in cache.bundled.iterdir() if (c := sweep.parse_cell_name(d.name)) is not None
                and cache.has(*c) and cache.run(*c).path == d}


def _in_bundle(spec: RunSpec):
    return find(Config.from_dict(spec.config), spec.data.load(), spec.bundled, weights=False)


def ship_grid(source: str | None, workers: int, train: bool) -> int:
    """Bundle notebook 10's full-size grid (slim copies of its finished runs)."""
    os.environ.pop("FDMER_LITE_FAST", None)
    base, data, label = benchmark_setup(LESSON_GRID["kind"])
    work = Path(source) if source else Path(tempfile.mkdtemp(prefix="ship-grid-")) / label
    dataset = data.load()
    runs = plan(base, data, dataset.modalities, select_variants(LESSON_GRID["variants"]), LESSON_GRID["seeds"],
                work, grid_bundle(label))
    specs = {r.spec.name: r.spec for r in runs if r.spec is not None}
    current = {name for name, spec in specs.items() if _in_bundle(spec) is not None}
    if set(specs) <= current:
        print(f"grid: all {len(specs)} runs bundled and current")
        return 0
    if train:                                           # trains what is neither bundled nor in work
        result = run_ablation(base, data, variants=LESSON_GRID["variants"], seeds=LESSON_GRID["seeds"],
                              out_dir=work, workers=workers, dataset_label=label)
        if result.report.failed:
            print(f"grid: runs failed: {sorted(result.report.failed)}", file=sys.stderr)
    target = grid_bundle(label)
    target.mkdir(parents=True, exist_ok=True)
    bundled = 0
    for name, spec in specs.items():
        if name not in current and find(Config.from_dict(spec.config), dataset, spec.path, weights=False):
            bundle_copy(spec.path, target / name, weights=False, leave_out=(RUN_FILE, "history.json"))
            bundled += 1
    for old in target.iterdir():                        # stale runs the grid no longer plans
        if old.name not in specs:
            shutil.rmtree(old)
    matching = {name for name, spec in specs.items() if _in_bundle(spec) is not None}
    print(f"grid: {bundled} runs bundled now, {len(matching)} of {len(specs)} in {target} "
          f"({size_of(target) / 1e6:.2f} MB)")
    return 0 if set(specs) <= matching else 1


def ship_projections() -> int:
    """Bundle notebook 7's projections of FIGURE2's runs (replacing what was bundled before)."""
    from fdmer_lite import viz
    from fdmer_lite.analysis import extract_representations
    from fdmer_lite.experiments.runs import set_threads

    set_threads()                                       # as lessons.setup does
    data, reps = _full("emotion").load(), {}
    for name in FIGURE2["runs"]:
        run = find(lesson_run_config(name), data, BUNDLED_LESSONS / name)
        if run is None:
            raise SystemExit(f"{name}: the bundled lesson run is stale; run python tools/ship_runs.py first")
        reps[name] = extract_representations(run.model, data, "test", device=run.trainer.device)
    work = Path(tempfile.mkdtemp(prefix="ship-projections-"))
    cache = ProjectionCache(work / "new")               # compute everything afresh
    for method in FIGURE2["methods"]:
        viz.embedding_comparison(reps, method=method, max_points=FIGURE2["max_points"], cache=cache)
    # which weights they were made from: a test fails when a lesson run changes without them
    weights = {name: runstore.read_finished(BUNDLED_LESSONS / name)["files"][CHECKPOINT]["sha256"]
               for name in FIGURE2["runs"]}
    runstore.write_json(work / "new" / "index.json", {**FIGURE2, "model_sha256": weights})
    shutil.rmtree(BUNDLED_PROJECTIONS, ignore_errors=True)
    shutil.copytree(work / "new", BUNDLED_PROJECTIONS)
    shutil.rmtree(work, ignore_errors=True)
    files = sorted(BUNDLED_PROJECTIONS.glob("*.npy"))
    print(f"projections: {len(files)} bundled into {BUNDLED_PROJECTIONS} ({size_of(BUNDLED_PROJECTIONS) / 1e6:.2f} MB)")
    return 0


def ship_all(args) -> int:
    """Every part that is stale, the lesson runs first: the projections are drawn from them, and
    are left as they are when a lesson run was not bundled (status 1)."""
    lessons_ok = ship_lessons(args.names, args.source, args.workers, False) == 0
    status = max(ship_sweep(args.sweep_from, args.workers), ship_grid(args.grid_from, args.workers, True))
    if not lessons_ok:
        print("projections not drawn again: a lesson run was not shipped", file=sys.stderr)
        return 1
    return max(status, ship_projections())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="source", default=None,
                    help="a folder holding <name>/ lesson runs to reuse when they match")
    ap.add_argument("--names", nargs="+", default=list(LESSON_RUNS), choices=list(LESSON_RUNS))
    ap.add_argument("--workers", type=int, default=1, help="training processes (1: this process)")
    ap.add_argument("--check", action="store_true", help="only say which bundled lesson runs are stale")
    ap.add_argument("--sweep", action="store_true", help="bundle notebook 9's explorer cells instead")
    ap.add_argument("--sweep-from", default=None, help="a sweep cache folder to take matching cells from")
    ap.add_argument("--grid", action="store_true", help="bundle notebook 10's Table-4 grid instead")
    ap.add_argument("--grid-from", default=None, help="the grid's working folder (kept; an interrupted grid resumes)")
    ap.add_argument("--no-train", action="store_true", help="with --grid: bundle only the runs finished in --grid-from")
    ap.add_argument("--projections", action="store_true", help="bundle notebook 7's Figure-2 projections instead")
    ap.add_argument("--all", action="store_true",
                    help="regenerate every stale part: lesson runs, explorer cells, grid, projections")
    args = ap.parse_args(argv)
    if args.all and (args.check or args.sweep or args.grid or args.projections or args.no_train):
        ap.error("--all regenerates every part; it takes no --check, --sweep, --grid, --projections or --no-train")
    if not args.check and (n := compact_all()):
        print(f"{n} bundled histories stored compactly")
    if args.projections:
        status = ship_projections()
        write_report()
        return status
    if args.no_train and not (args.grid and args.grid_from):
        ap.error("--no-train needs --grid and --grid-from")
    if args.all or args.sweep or args.grid:
        status = (ship_all(args) if args.all else ship_sweep(args.sweep_from, args.workers) if args.sweep
                  else ship_grid(args.grid_from, args.workers, not args.no_train))
        write_report()
        print(f"bundled runs: {size_of(BUNDLED) / 1e6:.1f} MB in all in {BUNDLED}")
        return status
    status = ship_lessons(args.names, args.source, args.workers, args.check)
    if args.check:
        return status
    write_report()
    print(f"bundled runs: {len(list(BUNDLED_LESSONS.iterdir()))} lesson runs, {size_of(BUNDLED) / 1e6:.1f} MB "
          f"in all in {BUNDLED}")
    return status


if __name__ == "__main__":
    sys.exit(main())
