"""Run every tutorial notebook with nbclient and print its wall time.

    python benchmarks/notebooks_time.py                 # FAST mode (FDMER_LITE_FAST=1), all notebooks
    python benchmarks/notebooks_time.py --mode full     # the real thing (trains for minutes)
    python benchmarks/notebooks_time.py --mode both 06 07

Each notebook runs in a fresh kernel with the working directory ``notebooks/`` (as nbval runs
them), one after the other, so later notebooks load the runs the earlier ones trained, as in
``python -m pytest``. Runs go to a fresh temporary folder (``FDMER_LITE_RUNS_DIR``) unless
``--keep-runs`` is given, so a measurement never profits from an older cache (only from the runs
that ship with the package, which the notebooks load when they match the code). Times include
kernel start-up and imports. Beside the wall time, the kernel's CPU time (user + system) and the
load average are printed: on a shared machine a wall time taken under load says little, and the
CPU time of a one-thread kernel is close to what an idle machine would take.

Targets (issue 4): FAST series under 6 minutes, no notebook over 90 s; full mode, each training
notebook under 10 minutes on CPU. Results are also written to ``benchmarks/out/``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
FAST_TARGET_EACH, FAST_TARGET_TOTAL, FULL_TARGET_EACH = 90.0, 360.0, 600.0


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_notebook(path: Path, env: dict, timeout: int) -> tuple[float, float, str | None]:
    """Wall time and the kernel's CPU time (user + system, counted once the kernel has exited:
    on a busy machine the CPU time is the better guide to what an idle one would take)."""
    nb = nbformat.read(path, as_version=4)
    old = dict(os.environ)
    os.environ.update(env)                     # the kernel inherits this process's environment
    try:
        start, cpu = time.perf_counter(), children_cpu()
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}})
        error = None
        try:
            client.execute()
        except Exception as err:               # report and go on with the next notebook
            error = f"{type(err).__name__}: {str(err).strip().splitlines()[-1][:200]}"
        return time.perf_counter() - start, children_cpu() - cpu, error
    finally:
        os.environ.clear()
        os.environ.update(old)


def run_series(mode: str, names: list[str], timeout: int, keep_runs: bool, threads: int | None) -> dict:
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    if names:
        paths = [p for p in paths if any(p.name.startswith(n) or n in p.stem for n in names)]
    env = {"FDMER_LITE_FAST": "1" if mode == "fast" else "0"}
    if threads:
        env["FDMER_LITE_THREADS"] = str(threads)
    tmp = None
    if not keep_runs:
        tmp = tempfile.TemporaryDirectory(prefix="fdmer-lite-runs-")
        env["FDMER_LITE_RUNS_DIR"] = tmp.name
        env["FDMER_LITE_SWEEP_CACHE"] = str(Path(tmp.name) / "sweep")    # notebook 9's cells too
    print(f"\n== {mode} mode: {len(paths)} notebooks, torch threads {threads or 'default'}; {load()}",
          flush=True)
    results, start = [], time.perf_counter()
    for path in paths:
        seconds, cpu, error = run_notebook(path, env, timeout)
        limit = FAST_TARGET_EACH if mode == "fast" else FULL_TARGET_EACH
        flag = "FAILED " + error if error else ("over target" if seconds > limit else "ok")
        print(f"{path.name:45s} {seconds:7.1f} s wall {cpu:7.1f} s cpu  {flag}   [{load()}]", flush=True)
        results.append({"notebook": path.name, "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
                        "error": error, "load_after": os.getloadavg()})
    total = time.perf_counter() - start
    cpu_total = sum(r["cpu_seconds"] for r in results)
    print(f"{'total':45s} {total:7.1f} s wall {cpu_total:7.1f} s cpu"
          + (f"  (target {FAST_TARGET_TOTAL:.0f} s)" if mode == "fast" else ""))
    if tmp is not None:
        tmp.cleanup()
    return {"mode": mode, "threads": threads, "total_seconds": round(total, 2), "notebooks": results,
            "cpus": os.cpu_count(), "load_at_end": os.getloadavg()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="notebook name prefixes (default: all)")
    parser.add_argument("--mode", choices=["fast", "full", "both"], default="fast")
    parser.add_argument("--timeout", type=int, default=3600, help="per-cell timeout in seconds")
    parser.add_argument("--keep-runs", action="store_true",
                        help="use the normal runs/lessons cache instead of a fresh temporary one")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads in the kernels (FDMER_LITE_THREADS; default: the package's, "
                             "config.default_thread_count)")
    args = parser.parse_args(argv)
    modes = ["fast", "full"] if args.mode == "both" else [args.mode]
    report = [run_series(m, args.names, args.timeout, args.keep_runs, args.threads) for m in modes]
    out = ROOT / "benchmarks" / "out"
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"notebooks_time-{stamp}.json").write_text(json.dumps(report, indent=2))
    failed = any(r["error"] for s in report for r in s["notebooks"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
