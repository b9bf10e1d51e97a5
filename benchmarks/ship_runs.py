"""Regenerate the runs that ship inside the package (``fdmer_lite/shipped_runs/``).

    python benchmarks/ship_runs.py                       # train every run that is stale (full size)
    python benchmarks/ship_runs.py --from runs/lessons/full   # reuse finished runs found there
    python benchmarks/ship_runs.py --names emotion-paper --workers 2
    python benchmarks/ship_runs.py --sweep --sweep-from runs/sweep/synthetic-emotion-seed0
    python benchmarks/ship_runs.py --grid --grid-from runs/lessons/synthetic-emotion --workers 2
    python benchmarks/ship_runs.py --grid --grid-from runs/lessons/synthetic-emotion --no-train
    python benchmarks/ship_runs.py --projections          # notebook 7's Figure-2 projections
    python benchmarks/ship_runs.py --all --workers 2      # all four, in that order (many hours)

Each shipped run is one of ``fdmer_lite.shipped.LESSON_RUNS``: the ``synthetic`` preset with one
change, trained on the lessons' full-size benchmark, exactly as a notebook in full mode would
train it (``lessons.lesson_run``). A run already shipped and still matching the code is kept; a
stale one is retrained (or taken from ``--from`` when a finished run there matches). The whole
sealed run folder is copied: weights, history, metrics and its completion record. The demo's
contrast reads two of them.

``--sweep`` ships notebook 9's explorer cells and ``--grid`` notebook 10's Table-4 grid, both as
slim copies (``shipped.slim_copy``: no weights; the cells' C and P as float16, their projections
computed again from what ships). A grid of 34 full-size runs takes hours: ``--grid-from`` keeps
its runs in a folder you name, so an interrupted grid resumes there, and ``--no-train`` ships only
the runs already finished in it (the notebook trains the rest). ``--projections`` ships the
t-SNE and UMAP projections notebook 7 draws of two shipped lesson runs (``FIGURE2``: keep it
equal to the notebook's cells), computed here exactly as the notebook computes them. At the end
the script prints the size of everything shipped (budget: 20 MB). Every shipped history
(``history.json``) is stored without indentation (``shipped.compact_shipped``; each invocation
but ``--check`` compacts one shipped before that was the rule). ``--all`` regenerates whatever is
stale of the four parts in one invocation: the lesson runs first, because the projections are
drawn from them; ``--sweep-from`` and ``--grid-from`` apply as above.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from fdmer_lite import lessons, sweep
from fdmer_lite.ablations import VARIANTS, benchmark_setup, run_ablation
from fdmer_lite.experiments import runstore
from fdmer_lite.experiments.pool import map_unordered
from fdmer_lite.experiments.runs import find, obtain
from fdmer_lite.experiments.specs import SPEC_FILE
from fdmer_lite.shipped import (GRID, GRID_DIR, LESSON_RUNS, LESSONS_DIR, PROJECTIONS_DIR, SHIPPED_DIR, SWEEP_DIR,
                                ProjectionCache, compact_copy, compact_shipped, find_lesson_run, grid_runs,
                                lesson_run_config, shipped_cells, shipped_grid, slim_copy)

PROJECTIONS = ("tsne", "umap", "pca")


def _full_data(kind: str):
    os.environ.pop("FDMER_LITE_FAST", None)             # full size, whatever the caller's shell says
    return lessons.lesson_data(kind)


def _train(args: tuple) -> tuple[str, str, float]:
    """Train run ``name`` into ``scratch/name`` (one worker process, one thread)."""
    name, scratch = args
    kind, _ = LESSON_RUNS[name]
    start = time.perf_counter()
    run = obtain(lesson_run_config(name).replace(train={"progress": False}), _full_data(kind),
                 Path(scratch) / name, retrain=True)
    return name, str(run.path), time.perf_counter() - start


def _ship(name: str, run_dir: Path) -> None:
    compact_copy(run_dir, LESSONS_DIR / name)          # checks the run is intact first


def compact_all() -> int:
    """Store every shipped history compactly (runs shipped before histories were): the number
    of runs rewritten."""
    folders = [*LESSONS_DIR.glob("*/"), *SWEEP_DIR.glob("*/*/")]
    return sum(compact_shipped(f) for f in folders if (f / runstore.RECORD).is_file())


def size_of(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


REPORT = Path(__file__).resolve().parent / "results" / "shipped-runs.md"


def write_report() -> None:
    """``benchmarks/results/shipped-runs.md``: what ships, how much of it, and its size."""
    lessons_n = len([p for p in LESSONS_DIR.iterdir() if p.is_dir()]) if LESSONS_DIR.is_dir() else 0
    spec = sweep.default_spec(fast=False)
    cells = SWEEP_DIR / spec.slug
    values = sweep.default_values(fast=False)
    want_cells = len(sweep.cross(values, values, center=sweep.PAPER_SETTING))
    have_cells = len([p for p in cells.iterdir() if p.is_dir()]) if cells.is_dir() else 0
    _, _, label = benchmark_setup(GRID["kind"])
    grid = GRID_DIR / label
    have_grid = len([p for p in grid.iterdir() if p.is_dir()]) if grid.is_dir() else 0
    want_grid = len(VARIANTS) * len(GRID["seeds"])
    rows = [("lesson runs (notebooks 06, 07, 11; the demo's contrast)", LESSONS_DIR, f"{lessons_n} of {len(LESSON_RUNS)}",
             "whole runs with their weights"),
            ("explorer cells (notebook 09)", cells, f"{have_cells} of {want_cells}",
             "no weights; C and P as float16"),
            (f"Table-4 grid (notebook 10), {label}", grid, f"{have_grid} of {want_grid} runs",
             "configuration and metrics only"),
            ("Figure-2 projections (notebook 07)", PROJECTIONS_DIR,
             f"{len(list(PROJECTIONS_DIR.glob('*.npy'))) if PROJECTIONS_DIR.is_dir() else 0} of "
             f"{len(FIGURE2['runs']) * len(FIGURE2['methods'])}", "t-SNE and UMAP of two lesson runs")]
    lines = ["# The runs that ship with the package", "",
             "Written by `python benchmarks/ship_runs.py` (every invocation). Sizes of "
             "`fdmer_lite/shipped_runs/`; the budget is 20 MB in all.", "",
             "| part | shipped | size | what a run keeps |", "|---|---|---:|---|"]
    for name, folder, count, keeps in rows:
        size = size_of(folder) if folder.is_dir() else 0
        lines.append(f"| {name} | {count} | {size / 1e6:.2f} MB | {keeps} |")
    lines += ["", f"In all: {size_of(SHIPPED_DIR) / 1e6:.2f} MB.", ""]
    REPORT.write_text("\n".join(lines))


def ship_sweep(source: str | None, workers: int) -> int:
    """Ship the explorer's full-size cells (copied from ``source`` where they match, else trained)."""
    os.environ.pop("FDMER_LITE_FAST", None)
    spec = sweep.default_spec(fast=False)
    values = sweep.default_values(fast=False)
    cells = sweep.cross(values, values, center=sweep.PAPER_SETTING)
    data = spec.make_data()
    target = SWEEP_DIR / spec.slug
    current = shipped_cells(spec, data)
    names = [sweep.cell_name(b, g) for b, g in cells]
    if all(n in current for n in names):
        print(f"sweep: all {len(names)} cells shipped and current")
        return 0
    work = Path(source) if source else Path(tempfile.mkdtemp(prefix="ship-sweep-")) / spec.slug
    cache = sweep.SweepCache(work, spec)
    result = cache.fill(cells, workers=workers, projections=PROJECTIONS)
    if result["failed"]:
        print(f"sweep: cells failed: {result['failed']}", file=sys.stderr)
        return 1
    tmp = runstore.partial_dir(target)
    shutil.copy(work / sweep.SPEC_FILE, tmp / sweep.SPEC_FILE)
    for name in names:                                  # slim: no weights, C and P as float16
        slim_copy(work / name, tmp / name, half=True)
        for method in PROJECTIONS:                      # of the float16 representations, as shipped
            sweep.project_into(tmp / name, spec, method)
    stale = target.with_name(f".{target.name}.stale")  # the old cells (none current): all replaced,
    if target.exists():                                 # deleted only once the new ones are in place
        target.rename(stale)
    runstore.publish(tmp, target)
    if stale.exists():
        shutil.rmtree(stale)
    assert set(names) <= set(shipped_cells(spec, data)), "a shipped cell does not match"
    print(f"sweep: {len(names)} cells shipped into {target} ({size_of(target) / 1e6:.1f} MB)")
    return 0


#: notebook 7's Figure 2: the runs it projects, the points per set and the methods
FIGURE2 = {"runs": ("emotion-beta0-gamma0", "emotion-paper"), "max_points": 300, "methods": ("tsne", "umap")}


def figure2_reps() -> dict:
    """The test-split representations of FIGURE2's shipped runs, as notebook 7 extracts them."""
    from fdmer_lite.analysis import extract_representations
    from fdmer_lite.experiments.runs import set_threads

    set_threads()                                       # the notebooks' thread count (lessons.setup)
    data, reps = _full_data("emotion"), {}
    for name in FIGURE2["runs"]:
        run = find_lesson_run(name, lesson_run_config(name), data)
        if run is None:
            raise SystemExit(f"{name}: the shipped lesson run is stale; run python benchmarks/ship_runs.py first")
        reps[name] = extract_representations(run.model, data, "test", device=run.trainer.device)
    return reps


def ship_projections() -> int:
    """Ship notebook 7's projections of FIGURE2's runs (replacing what shipped before)."""
    from fdmer_lite import viz

    reps = figure2_reps()
    work = Path(tempfile.mkdtemp(prefix="ship-projections-"))
    cache = ProjectionCache(work / "new", shipped=work / "none")    # compute everything afresh
    for method in FIGURE2["methods"]:
        viz.embedding_comparison(reps, method=method, max_points=FIGURE2["max_points"], cache=cache)
    # which weights they were made from: a test fails when a lesson run changes without them
    weights = {name: runstore.read_finished(LESSONS_DIR / name)["files"]["model.pt"]["sha256"]
               for name in FIGURE2["runs"]}
    runstore.write_json(work / "new" / "index.json", {**FIGURE2, "model_sha256": weights})
    shutil.rmtree(PROJECTIONS_DIR, ignore_errors=True)
    shutil.copytree(work / "new", PROJECTIONS_DIR)
    shutil.rmtree(work, ignore_errors=True)
    files = sorted(PROJECTIONS_DIR.glob("*.npy"))
    print(f"projections: {len(files)} shipped into {PROJECTIONS_DIR} ({size_of(PROJECTIONS_DIR) / 1e6:.2f} MB)")
    return 0


def ship_grid(source: str | None, workers: int, train: bool) -> int:
    """Ship notebook 10's full-size grid (slim copies of its finished runs)."""
    os.environ.pop("FDMER_LITE_FAST", None)
    base, data, label = benchmark_setup(GRID["kind"])
    work = Path(source) if source else Path(tempfile.mkdtemp(prefix="ship-grid-")) / label
    dataset = data.load()
    runs = grid_runs(base, data, GRID["variants"], GRID["seeds"], work, dataset)
    ids = {r.spec.run_id for r in runs if r.spec is not None}
    current = shipped_grid(runs, dataset, label)
    if ids <= set(current):
        print(f"grid: all {len(ids)} runs shipped and current")
        return 0
    if train:
        result = run_ablation(base, data, variants=GRID["variants"], seeds=GRID["seeds"], out_dir=work,
                              workers=workers, dataset_label=label)
        if result.report.failed:
            print(f"grid: runs failed: {sorted(result.report.failed)}", file=sys.stderr)
    target = GRID_DIR / label
    target.mkdir(parents=True, exist_ok=True)
    shipped = 0
    for r in runs:
        if r.spec is not None and r.spec.run_id not in current and r.spec.is_complete():
            slim_copy(r.spec.path, target / r.spec.run_id, leave_out=(SPEC_FILE, "history.json"))
            current[r.spec.run_id] = target / r.spec.run_id
            shipped += 1
    for old in target.iterdir():                        # stale runs the grid no longer plans
        if old.name not in ids:
            shutil.rmtree(old)
    matching = shipped_grid(runs, dataset, label)
    assert set(current) == set(matching), "a shipped grid run does not match"
    print(f"grid: {shipped} runs shipped now, {len(matching)} of {len(ids)} in {target} "
          f"({size_of(target) / 1e6:.2f} MB)")
    return 0 if ids <= set(matching) else 1


def ship_lessons(names: list[str], source: str | None, workers: int, check: bool) -> int:
    """Ship every stale lesson run of ``names``: taken from ``source`` when a finished run there
    matches, trained otherwise. With ``check``, only say which are stale (status 1 if any)."""
    stale = []
    for name in names:
        kind, _ = LESSON_RUNS[name]
        cfg, data = lesson_run_config(name), _full_data(kind)
        if find_lesson_run(name, cfg, data) is not None:
            print(f"{name}: shipped and current")
            continue
        found = find(cfg, data, Path(source) / name) if source else None
        if found is not None and not check:
            _ship(name, found.path)
            print(f"{name}: shipped from {found.path} (test MAE {found.metrics['mae']:.3f})")
            continue
        stale.append(name)
        print(f"{name}: stale or missing", flush=True)
    if check:
        return 1 if stale else 0
    scratch = Path(tempfile.mkdtemp(prefix="ship-runs-"))
    tasks = [(name, str(scratch)) for name in stale]
    failed = []
    for i, result, error in map_unordered(_train, tasks, workers=workers):
        if error is not None:
            print(f"{tasks[i][0]}: the worker was lost:\n{error}", file=sys.stderr)
            failed.append(tasks[i][0])
            continue
        name, path, seconds = result
        _ship(name, Path(path))
        print(f"{name}: trained in {seconds:.0f} s and shipped", flush=True)
    shutil.rmtree(scratch, ignore_errors=True)
    if failed:
        print(f"not shipped: {', '.join(failed)}", file=sys.stderr)
        return 1
    for name in names:
        kind, _ = LESSON_RUNS[name]
        assert find_lesson_run(name, lesson_run_config(name), _full_data(kind)) is not None, name
    return 0


def ship_all(args) -> int:
    """Every part that is stale, the lesson runs first: the projections are drawn from them, and
    are left as they are when a lesson run was not shipped (status 1)."""
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
    ap.add_argument("--workers", type=int, default=1, help="training processes (one thread each)")
    ap.add_argument("--check", action="store_true", help="only say which shipped runs are stale")
    ap.add_argument("--sweep", action="store_true", help="ship notebook 9's explorer cells instead")
    ap.add_argument("--sweep-from", default=None, help="a sweep cache folder to take matching cells from")
    ap.add_argument("--grid", action="store_true", help="ship notebook 10's Table-4 grid instead")
    ap.add_argument("--grid-from", default=None, help="the grid's working folder (kept; an interrupted grid resumes)")
    ap.add_argument("--no-train", action="store_true", help="with --grid: ship only the runs finished in --grid-from")
    ap.add_argument("--projections", action="store_true", help="ship notebook 7's Figure-2 projections instead")
    ap.add_argument("--all", action="store_true",
                    help="regenerate every stale part: lesson runs, explorer cells, grid, projections")
    args = ap.parse_args(argv)
    if args.all and (args.check or args.sweep or args.grid or args.projections or args.no_train):
        ap.error("--all regenerates every part; it takes no --check, --sweep, --grid, --projections or --no-train")
    if not args.check and (n := compact_all()):
        print(f"{n} shipped histories stored compactly")
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
        print(f"shipped runs: {size_of(SHIPPED_DIR) / 1e6:.1f} MB in all in {SHIPPED_DIR}")
        return status
    status = ship_lessons(args.names, args.source, args.workers, args.check)
    if args.check:
        return status
    write_report()
    total = size_of(SHIPPED_DIR)
    print(f"shipped runs: {len(list(LESSONS_DIR.iterdir()))} in {SHIPPED_DIR}, {total / 1e6:.1f} MB in all")
    return status


if __name__ == "__main__":
    sys.exit(main())
