"""Many independent runs, described by specs and handed to one pool (``experiments.pool``).

An ablation (``fdmer_lite.ablations``) or any grid of settings is a list of runs that never
talk to each other. Each run is a :class:`RunSpec`: a full configuration, a :class:`DataSpec`
(how to load the data, not the arrays themselves) and a deterministic directory
``<root>/<name>-<hash>``, where the hash covers the configuration and the data spec. The same run
therefore always lands in the same place, and a changed configuration never overwrites an old
result.

:func:`run_all` runs every spec that has not finished, on this process, local worker processes or
Ray (``experiments.pool``). Each run is ``experiments.runs.obtain`` on its folder: a finished run
(its files match the completion record) is never redone; anything else there (a failed run's
``error.txt``, a truncated ``metrics.json`` or ``model.pt``) is wiped and the run starts again.
Each run holds its folder's lock while it trains: two commands on one folder never train the same
run twice (the second waits, then reuses the first one's result). On Ray the run's files are sent
back to this process and published here, so the nodes need no shared disk.

The engines give the same numbers: every run seeds itself from its configuration and sets
torch's thread count by the package's one policy (``runs.set_threads``), whatever process or
machine it lands on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Config
from ..data import load_dataset
from ..data.synthetic import make_benchmark
from ..progress import bar as progress_bar
from . import runstore
from .pool import default_workers, engine_name, map_unordered
from ..config import thread_count
from .runs import obtain

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
                _DATA_CACHE[key] = make_benchmark(**self.options)
            else:
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

    @classmethod
    def create(cls, config: Config, data: DataSpec, root: str | Path, name: str,
               meta: dict | None = None) -> "RunSpec":
        cfg = config.replace(train={"progress": False}).to_dict()
        run_id = f"{name}-{config_hash(cfg, data)}"
        return cls(run_id, cfg, data, str(Path(root) / run_id), dict(meta or {}))

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


def execute(spec: RunSpec | dict, ship: bool = False) -> dict:
    """Train one run (``runs.obtain``). Runs in a worker process, a Ray task, or this process.

    ``ship=False`` publishes straight into ``spec.out_dir`` (same machine), holding the folder's
    lock: a run another process finished meanwhile is reused, not redone (``"reused": True``).
    ``ship=True`` trains in a temporary folder and returns the files' bytes, for the caller to
    verify and publish (Ray nodes). Never raises: a failure comes back as ``{"error": traceback}``.
    """
    spec = RunSpec.from_dict(spec) if isinstance(spec, dict) else spec
    tmp = None
    try:
        record = {**spec.to_dict(), "host": socket.gethostname(), "pid": os.getpid()}
        start = time.perf_counter()
        if ship:
            tmp = Path(tempfile.mkdtemp(prefix="fdmer-run-"))
            target = tmp / "run"
        else:
            target = spec.path
        with runstore.locked(target):
            if not ship and runstore.is_finished(target):  # another command finished it first
                return {"run_id": spec.run_id, "metrics": spec.metrics(), "seconds": 0.0,
                        "host": socket.gethostname(), "reused": True}
            run = obtain(Config.from_dict(spec.config), spec.data.load(), target, retrain=True,
                         extra={SPEC_FILE: record}, lock=False)
        result = {"run_id": spec.run_id, "metrics": run.metrics, "seconds": time.perf_counter() - start,
                  "host": socket.gethostname()}
        if ship:
            result["files"] = {p.relative_to(target).as_posix(): p.read_bytes()
                               for p in target.rglob("*") if p.is_file()}
        return result
    except Exception:                                     # reported, never raised across processes
        return {"run_id": spec.run_id, "error": traceback.format_exc()}
    finally:
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


def run_all(specs: list[RunSpec], *, workers: int | None = None, ray_address: str | None = None,
            progress: bool = True, desc: str = "runs") -> RunReport:
    """Run every spec that has not finished yet; return what happened.

    ``workers``: 0 = in this process; N >= 1 = N worker processes (default: one per core).
    ``ray_address``: use Ray instead ("local", "auto", "ray://host:port"). Each run uses
    ``config.thread_count()`` torch threads (and reserves as many CPUs on Ray). Runs that fail are reported (and their error written to
    ``error.txt`` in their directory); the others go on.
    """
    unique = {s.run_id: s for s in specs}              # two variants may be the very same run
    todo = [s for s in unique.values() if prepare(s)]
    done_before = {s.run_id for s in unique.values()} - {s.run_id for s in todo}
    if not ray_address and workers != 0:
        workers = min(workers or default_workers(), max(1, len(todo)))
    report = RunReport(engine=engine_name(workers, ray_address),
                       skipped=[r for r in unique if r in done_before])
    bar = progress_bar(progress, total=len(unique), initial=len(report.skipped), desc=desc, unit="run")
    start = time.perf_counter()
    fn = execute_and_ship if ray_address else execute
    try:
        results = map_unordered(fn, [s.to_dict() for s in todo], workers=workers,
                                ray_address=ray_address, num_cpus=thread_count())
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


