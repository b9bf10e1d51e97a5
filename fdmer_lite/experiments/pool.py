"""Where independent work runs: in this process, on local worker processes, or on Ray.

One pool for every batch of independent runs (the ablation grid, the beta/gamma sweep):
:func:`map_unordered` calls a module-level function on every item and yields the results as
they finish.

* ``workers=0``: in this process, one after the other (notebooks, tests, debugging);
* ``workers=N``: a ``concurrent.futures.ProcessPoolExecutor`` of N spawned processes (fresh
  interpreters: safe with PyTorch's thread pools) that die with the process that started them;
* ``ray_address=...``: Ray tasks (the optional ``ray`` extra). ``"local"`` starts a Ray instance
  on this machine; ``"auto"`` or ``"ray://host:10001"`` joins a running cluster.
"""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def engine_name(workers: int | None, ray_address: str | None) -> str:
    if ray_address:
        return f"ray ({ray_address})"
    if workers == 0:
        return "this process"
    return f"{workers or default_workers()} local worker process(es)"


def map_unordered(fn, items: list, *, workers: int | None = None, ray_address: str | None = None,
                  num_cpus: int | list[int] = 1):
    """Call ``fn(item)`` for every item on an engine; yield ``(index, result, error)`` as each
    finishes. ``error`` is a traceback string when the engine lost the call (a worker process or
    Ray node died), else None. ``fn`` must be importable (a module-level function).

    Engines: ``workers=0`` this process; ``workers=N`` a spawned ``ProcessPoolExecutor``;
    ``ray_address`` Ray tasks, each reserving ``num_cpus`` CPUs (one value, or one per item).
    This is the one place that decides where work runs; ``run_all`` and the beta/gamma sweep
    both go through it.
    """
    if not items:
        return
    cpus = num_cpus if isinstance(num_cpus, list) else [num_cpus] * len(items)
    if ray_address:
        yield from _map_ray(fn, items, ray_address, cpus)
    elif workers == 0:
        for i, item in enumerate(items):
            yield i, fn(item), None
    else:
        yield from _map_processes(fn, items, min(workers or default_workers(), len(items)))


def die_with_parent(parent_pid: int, poll_seconds: float = 1.0) -> None:
    """Make this (worker) process end when ``parent_pid`` does, even after a ``kill -9`` of the
    parent: ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` on Linux, and everywhere a daemon thread that
    polls ``os.getppid()`` and exits when the worker has been re-parented. A worker that dies
    this way leaves only a partial folder, which the next command deletes."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)    # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:                          # the parent died before prctl
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)            # Ctrl-C is the parent's to handle

    def watch():
        while True:
            time.sleep(poll_seconds)
            if os.getppid() != parent_pid:
                os._exit(1)
    threading.Thread(target=watch, name="fdmer-parent-watchdog", daemon=True).start()


def worker_pool(workers: int) -> cf.ProcessPoolExecutor:
    """A spawned process pool whose workers die with this process (:func:`die_with_parent`)."""
    ctx = multiprocessing.get_context("spawn")         # fresh interpreters: safe with torch threads
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=die_with_parent,
                                  initargs=(os.getpid(),))


def submit_all(pool: cf.ProcessPoolExecutor, fn, items: list) -> list:
    """``pool.submit(fn, item)`` for every item, with Ctrl-C ignored while the workers start: a
    spawned worker inherits that across ``exec``, so a Ctrl-C is the parent's alone (one line,
    then :func:`stop_pool`), never a traceback from a worker half-way through its imports."""
    main = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        return [pool.submit(fn, item) for item in items]
    finally:
        if main:
            signal.signal(signal.SIGINT, before)


def stop_pool(pool: cf.ProcessPoolExecutor) -> None:
    """Cancel what has not started and kill the workers (Ctrl-C, an error, the caller stopping
    early): their unfinished runs are partial folders, deleted by the next command."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        try:
            p.kill()
        except (OSError, AttributeError):
            pass


def _map_processes(fn, items: list, workers: int):
    with worker_pool(workers) as pool:
        futures = {fut: i for i, fut in enumerate(submit_all(pool, fn, items))}
        try:
            for fut in cf.as_completed(futures):
                try:
                    yield futures[fut], fut.result(), None
                except Exception:                       # the worker process itself died
                    yield futures[fut], None, traceback.format_exc()
        except BaseException:                           # Ctrl-C or the caller stopped early
            stop_pool(pool)
            raise


def _map_ray(fn, items: list, address: str, cpus: list[int]):
    try:
        import ray                                      # lazy: an optional extra, slow to import
    except ImportError:
        raise RuntimeError("a Ray address needs Ray: pip install 'fdmer_lite[ray]' "
                           "(or pip install 'ray>=2.9')") from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    try:
        task = ray.remote(max_retries=0)(fn)
        index = {task.options(num_cpus=c).remote(item): i for i, (item, c) in enumerate(zip(items, cpus))}
        pending = list(index)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    try:
                        yield index[ref], ray.get(ref), None
                    except Exception:                   # the task or its node died
                        yield index[ref], None, traceback.format_exc()
        finally:                                        # Ctrl-C or an error here: stop the rest
            for ref in pending:
                try:
                    ray.cancel(ref, force=True)
                except Exception:                       # already finished or gone
                    pass
    finally:
        if started_here:
            ray.shutdown()
