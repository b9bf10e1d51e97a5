"""Run many independent training runs: on local worker processes, or on a Ray cluster.

An ablation (``fdmer_lite.ablations``) or a sweep over beta, gamma, seeds and data sets is a list of
runs that never talk to each other. This module hands such a list to an existing engine instead of
a home-made pool:

* ``workers=0``: in this process, one after the other (notebooks, tests, debugging);
* ``workers=N`` (default: one per CPU core): ``concurrent.futures.ProcessPoolExecutor`` with N
  worker processes (started with ``spawn``: safe with PyTorch's thread pools), each running
  ``threads`` torch threads;
* ``ray_address=...``: Ray (the optional ``ray`` extra). ``"local"`` starts a Ray instance on this
  machine; ``"auto"`` or ``"ray://host:10001"`` joins a running cluster. Every node needs
  ``fdmer_lite`` installed and, for data read from files, the data at the same path. The run's
  files are sent back to this process and written here, so the nodes need no shared disk.

Each run is a :class:`RunSpec`: a full configuration, a :class:`DataSpec` (how to load the data,
not the arrays themselves) and a deterministic directory ``<root>/<name>-<hash>``, where the hash
covers the configuration and the data spec. The same run therefore always lands in the same
place, and a changed configuration never overwrites an old result.

Resuming. ``train.run_experiment`` writes a run into a partial folder and publishes it in one
rename with its completion record ``complete.json`` (``fdmer_lite.runstore``), so a directory whose
files match that record is a finished run and is never redone. Anything else (a failed run's
``error.txt``, a truncated ``metrics.json`` or ``model.pt``) is wiped and the run starts again.
Each run holds a lock on its folder while it trains: two commands on one folder never train the
same run twice (the second waits, then reuses the first one's result). Local worker processes
die with the process that started them (``PR_SET_PDEATHSIG`` on Linux, and a watchdog thread).

The engines give the same numbers: every run seeds itself from its configuration and sets its
own torch thread count (part of the spec), whatever process or machine it lands on.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import hashlib
import json
import multiprocessing
import os
import shutil
import socket
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from . import runstore
from .config import Config

COMPLETE_MARKER = runstore.RECORD       # written last, by runstore.seal, before the publishing rename
SPEC_FILE = "run.json"
ERROR_FILE = "error.txt"

# --------------------------------------------------------------------------------------- specs


@dataclass
class DataSpec:
    """How to load a data set in any process: ``synthetic`` (the known-factor benchmark, options
    passed to ``make_benchmark``) or any name of ``fdmer_lite.data.load_dataset`` with a path."""

    name: str
    path: str | None = None
    options: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, "path": self.path, "options": dict(self.options)}

    @classmethod
    def from_dict(cls, d: dict) -> "DataSpec":
        return cls(d["name"], d.get("path"), dict(d.get("options", {})))

    def key(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, default=str)

    def load(self):
        """The :class:`~fdmer_lite.data.base.MultimodalData` (cached per process: a worker that
        runs several variants on the same data builds it once)."""
        key = self.key()
        if key not in _DATA_CACHE:
            _DATA_CACHE.clear()                          # keep one data set in memory per worker
            if self.name == "synthetic":
                from .data.synthetic import make_benchmark
                _DATA_CACHE[key] = make_benchmark(**self.options)
            else:
                from .data import load_dataset
                _DATA_CACHE[key] = load_dataset(self.name, self.path, **self.options)
        return _DATA_CACHE[key]


_DATA_CACHE: dict = {}


def config_hash(config: dict, data: DataSpec, length: int = 10) -> str:
    """A short hash of everything that decides a run's result (progress bars excluded)."""
    cfg = json.loads(json.dumps(config))
    cfg.get("train", {}).pop("progress", None)
    blob = json.dumps({"config": cfg, "data": data.to_dict()}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:length]


@dataclass
class RunSpec:
    run_id: str                          # "<name>-<hash>", also the directory name
    config: dict                         # Config.to_dict()
    data: DataSpec
    out_dir: str                         # the run's own directory
    meta: dict = field(default_factory=dict)   # e.g. {"variant": "wo_con", "seed": 2}
    threads: int = 1                     # torch threads inside the run

    @classmethod
    def create(cls, config: Config, data: DataSpec, root: str | Path, name: str,
               meta: dict | None = None, threads: int = 1) -> "RunSpec":
        cfg = config.replace(train={"progress": False}).to_dict()
        run_id = f"{name}-{config_hash(cfg, data)}"
        return cls(run_id, cfg, data, str(Path(root) / run_id), dict(meta or {}), threads)

    @property
    def path(self) -> Path:
        return Path(self.out_dir)

    def is_complete(self) -> bool:
        """A finished run whose files match their record (``runstore.read_finished``)."""
        return runstore.is_finished(self.path)

    def metrics(self) -> dict:
        """The finished run's ``metrics.json``; ``RunCorrupt`` naming the file otherwise."""
        runstore.read_finished(self.path)
        return runstore.read_json(self.path / "metrics.json")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["data"] = self.data.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunSpec":
        d = dict(d)
        d["data"] = DataSpec.from_dict(d["data"])
        return cls(**d)


@dataclass
class RunReport:
    """What a call to :func:`run_all` did. ``ran`` and ``skipped`` hold run ids."""

    engine: str
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)     # finished before: never redone
    failed: dict[str, str] = field(default_factory=dict)  # run id -> error text
    seconds: float = 0.0

    def summary(self) -> str:
        s = (f"{len(self.ran)} run(s) done, {len(self.skipped)} already finished (skipped), "
             f"{len(self.failed)} failed; {self.seconds:.1f} s on {self.engine}")
        return s


# ----------------------------------------------------------------------------- one run


def _write_json(path: Path, obj) -> None:
    runstore.write_json(path, obj)


def execute(spec: RunSpec | dict, ship: bool = False) -> dict:
    """Train one run. Runs in a worker process, a Ray task, or this process.

    ``ship=False`` publishes straight into ``spec.out_dir`` (same machine), holding the folder's
    lock: a run another process finished meanwhile is reused, not redone (``"reused": True``).
    ``ship=True`` trains in a temporary folder and returns the files' bytes, for the caller to
    verify and publish (Ray nodes). Never raises: a failure comes back as ``{"error": traceback}``.
    """
    import torch

    from .train import run_experiment

    spec = RunSpec.from_dict(spec) if isinstance(spec, dict) else spec
    threads_before = torch.get_num_threads()
    tmp = None
    try:
        torch.set_num_threads(spec.threads)
        record = {**spec.to_dict(), "host": socket.gethostname(), "pid": os.getpid()}
        start = time.perf_counter()
        if ship:
            tmp = Path(tempfile.mkdtemp(prefix="fdmer-run-"))
            target = tmp / "run"
            metrics = run_experiment(Config.from_dict(spec.config), spec.data.load(), target,
                                     extra={SPEC_FILE: record})
        else:
            target = spec.path
            with runstore.locked(target):
                if runstore.is_finished(target):            # another command finished it first
                    return {"run_id": spec.run_id, "metrics": spec.metrics(), "seconds": 0.0,
                            "host": socket.gethostname(), "reused": True}
                metrics = run_experiment(Config.from_dict(spec.config), spec.data.load(), target,
                                         extra={SPEC_FILE: record}, lock=False)
        result = {"run_id": spec.run_id, "metrics": metrics, "seconds": time.perf_counter() - start,
                  "host": socket.gethostname()}
        if ship:
            result["files"] = {p.relative_to(target).as_posix(): p.read_bytes()
                               for p in target.rglob("*") if p.is_file()}
        return result
    except Exception:                                     # reported, never raised across processes
        return {"run_id": spec.run_id, "error": traceback.format_exc()}
    finally:
        torch.set_num_threads(threads_before)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _write_shipped(spec: RunSpec, files: dict[str, bytes]) -> None:
    """Publish a run that came back from another machine: written aside, checked against its own
    completion record, then renamed into place."""
    with runstore.locked(spec.path):
        tmp = runstore.partial_dir(spec.path)
        try:
            for name, blob in files.items():
                path = tmp / name
                if ".." in Path(name).parts or Path(name).is_absolute():
                    raise runstore.RunCorrupt(spec.run_id, name, "a file name inside the run", name)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(blob)
            runstore.read_finished(tmp)                     # every file as recorded
            runstore.publish(tmp, spec.path)
        finally:
            runstore.discard(tmp)


def prepare(spec: RunSpec) -> bool:
    """True if the run must be done. A finished, intact run is kept; anything else there (a
    failed run, an interrupted one, files that no longer match their record) is wiped."""
    if spec.is_complete():
        return False
    try:
        with runstore.locked(spec.path, wait=False):
            runstore.clean_stale(spec.path)
            if spec.is_complete():                         # finished while we looked
                return False
            if spec.path.exists() and runstore.replaceable(spec.path):
                shutil.rmtree(spec.path)
    except BlockingIOError:                                # another command is training it:
        pass                                               # execute() waits for it, then reuses
    return True


# ---------------------------------------------------------------------------- engines


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def _progress(total: int, initial: int, enabled: bool, desc: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, desc=desc, unit="run")


def run_all(specs: list[RunSpec], *, workers: int | None = None, ray_address: str | None = None,
            progress: bool = True, desc: str = "runs") -> RunReport:
    """Run every spec that has not finished yet; return what happened.

    ``workers``: 0 = in this process; N >= 1 = N worker processes (default: one per core).
    ``ray_address``: use Ray instead ("local", "auto", "ray://host:port"). Each run uses
    ``spec.threads`` torch threads. Runs that fail are reported (and their error written to
    ``error.txt`` in their directory); the others go on.
    """
    unique = {s.run_id: s for s in specs}              # two variants may be the very same run
    todo = [s for s in unique.values() if prepare(s)]
    done_before = {s.run_id for s in unique.values()} - {s.run_id for s in todo}
    if not ray_address and workers != 0:
        workers = min(workers or default_workers(), max(1, len(todo)))
    report = RunReport(engine=engine_name(workers, ray_address),
                       skipped=[r for r in unique if r in done_before])
    bar = _progress(len(unique), len(report.skipped), progress, desc)
    start = time.perf_counter()
    fn = execute_and_ship if ray_address else execute
    try:
        results = map_unordered(fn, [s.to_dict() for s in todo], workers=workers,
                                ray_address=ray_address, num_cpus=[s.threads for s in todo])
        for i, result, error in results:
            spec = todo[i]
            if error is not None or "error" in result:
                report.failed[spec.run_id] = error or result["error"]
                if not spec.is_complete():                 # never mark a finished run failed
                    spec.path.mkdir(parents=True, exist_ok=True)
                    (spec.path / ERROR_FILE).write_text(report.failed[spec.run_id])
            else:
                if "files" in result:
                    _write_shipped(spec, result["files"])
                (report.skipped if result.get("reused") else report.ran).append(spec.run_id)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(failed=len(report.failed))
    finally:
        if bar is not None:
            bar.close()
    report.seconds = time.perf_counter() - start
    return report


def execute_and_ship(spec: dict) -> dict:
    """:func:`execute` for a machine that may not share our disk: the files come back as bytes."""
    return execute(spec, ship=True)


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
    import signal
    import sys
    import threading
    if sys.platform.startswith("linux"):
        try:
            import ctypes
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
    import signal
    import threading
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
        import ray
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
