"""Run folders that never lie: written aside, published by one rename, checked on every read.

* the files are written into a *partial* folder, ``<parent>/.<name>.partial-<pid>-<random>``;
* :func:`seal` writes ``complete.json`` last: size and sha256 of every top-level file, each
  fsync'ed first (sub-folders are caches that may grow later and are left out);
* :func:`publish` renames it to its final name (an older run there is moved aside, then deleted);
* :func:`read_finished` is the only way to trust a folder; anything amiss raises
  :class:`RunCorrupt`, naming the file and the field.

A failed run never reaches the final name; one worth keeping (the best checkpoint) is published
as ``<name>.failed`` with ``failed.json``: inspectable, never loaded. :func:`locked` takes an
exclusive ``fcntl.flock`` on ``<parent>/.locks/<name>.lock``, so two processes never write one
run. All JSON written here is strict: a non-finite float is written as ``null``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import secrets
import shutil
import time
from pathlib import Path

from ..errors import DataError

RECORD = "complete.json"
FAILED_RECORD = "failed.json"
LOCKS = ".locks"
FORMAT = 1


class RunCorrupt(DataError):
    """A run folder whose record is missing, unreadable, or does not match its files."""


# ------------------------------------------------------------------------------- strict JSON
def plain(obj):
    """``obj`` with every non-finite float replaced by ``None`` (JSON has no NaN), numpy scalars
    made Python numbers, tuples made lists."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    try:                                                    # numpy scalars, 0-d arrays
        return plain(obj.item())
    except AttributeError:
        return plain(float(obj))


def dumps(obj, indent: int | None = 2) -> str:
    """Strict JSON: never a bare ``NaN`` or ``Infinity``."""
    return json.dumps(plain(obj), indent=indent, allow_nan=False)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):                     # not every file system allows it
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_json(path: str | os.PathLike, obj) -> None:
    """Write strict JSON to ``path`` (:func:`write_text`)."""
    write_text(path, dumps(obj))


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a unique temporary file and ``os.replace`` (never half a
    file); a symlink at ``path`` is replaced, never followed."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(3)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


# ------------------------------------------------------------------------------- folders
def partial_dir(final: str | os.PathLike) -> Path:
    """A fresh, empty folder beside ``final`` to write a run into."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.partial-{os.getpid()}-{secrets.token_hex(3)}"
    tmp.mkdir()
    return tmp


def failed_dir(final: str | os.PathLike) -> Path:
    """Where a failed run of ``final`` is kept: ``<final>.failed``."""
    final = Path(final)
    return final.parent / f"{final.name}.failed"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _files(folder: Path) -> list[Path]:
    out = []
    for p in sorted(folder.iterdir()):
        if p.is_symlink():
            raise RunCorrupt(str(p), "<file>", "a plain file (no symlinks in a run folder)", "a symlink")
        if p.is_file() and p.name not in (RECORD, FAILED_RECORD) and not p.name.endswith(".tmp"):
            out.append(p)
    return out


def seal(folder: str | os.PathLike, info: dict | None = None, *, status: str = "finished") -> dict:
    """fsync every file at the top level of ``folder`` and write its record last:
    ``complete.json`` (``status`` finished) or ``failed.json``. Returns the record."""
    folder = Path(folder)
    files = {}
    for p in _files(folder):
        _fsync_file(p)
        files[p.name] = {"bytes": p.stat().st_size, "sha256": _sha256(p)}
    record = {"format": FORMAT, "status": status, "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "pid": os.getpid(), "files": files, **(info or {})}
    write_json(folder / (RECORD if status == "finished" else FAILED_RECORD), record)
    _fsync_dir(folder)
    return record


# names a run folder of this package may hold: anything else in an existing --out is the user's
RUN_NAMES = {"config.json", "history.json", "metrics.json", "model.pt", "run.json", "error.txt",
             "report.html", "reps.npz", "projections", "cell.json", "distributed.json", RECORD,
             FAILED_RECORD}


def replaceable(final: Path) -> bool:
    """Whether publishing may replace what is at ``final``: nothing, an empty folder, or a folder
    holding only run files (a finished, failed or older run)."""
    if not final.exists() and not final.is_symlink():
        return True
    if final.is_symlink() or not final.is_dir():
        return False
    return all(p.name in RUN_NAMES or p.name.endswith(".tmp") for p in final.iterdir())


def check_target(final: str | os.PathLike, option: str = "--out") -> Path:
    """Refuse, before any work, an output folder that cannot take a run: a file, a symlink, a
    folder of someone else's files, a parent that is a file or not writable."""
    final = Path(final)
    if final.is_symlink():
        raise DataError(f"{option} {final}", "path", "a folder (symlinks are never followed for writing)",
                        f"a symlink to {os.readlink(final)}")
    if final.exists() and not final.is_dir():
        raise DataError(f"{option} {final}", "path", "a folder or a new name", "an existing file")
    if not replaceable(final):
        others = sorted(p.name for p in final.iterdir() if p.name not in RUN_NAMES)[:3]
        raise DataError(f"{option} {final}", "path",
                        "a new or empty folder, or a previous run's folder (it is replaced)",
                        f"a folder holding other files ({', '.join(others)}, ...)")
    probe_writable(final.parent, f"{option} {final}")
    return final


def probe_writable(folder: Path, label: str) -> None:
    """Create ``folder`` and write and delete a small file in it: a read-only place, a parent
    that is a file or a full disk is reported before any work."""
    folder = Path(folder) if str(folder) else Path(".")
    for p in (folder, *folder.parents):                   # the nearest existing ancestor
        if p.exists() or p.is_symlink():
            if not p.is_dir():
                raise DataError(label, "path", "a parent folder", f"{p} is a file")
            break
    probe = folder / f".fdmer-write-probe-{os.getpid()}-{secrets.token_hex(3)}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(probe, "xb") as f:
            f.write(b"0" * 4096)
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        raise DataError(label, "path", "a writable place with free space",
                        f"{err.strerror or err} ({err.filename or folder})") from None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()


def publish(tmp: str | os.PathLike, final: str | os.PathLike) -> Path:
    """Rename the sealed folder ``tmp`` to ``final``. What was at ``final`` (a run) is moved aside
    first and deleted after, so ``final`` is always one whole run."""
    tmp, final = Path(tmp), Path(final)
    if not replaceable(final):
        raise DataError(str(final), "path", "a new folder or a previous run's folder",
                        "a folder holding other files (left untouched)")
    old = None
    if final.exists() or final.is_symlink():
        old = final.parent / f".{final.name}.old-{os.getpid()}-{secrets.token_hex(3)}"
        os.replace(final, old)
    os.replace(tmp, final)
    _fsync_dir(final.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final


def discard(tmp: str | os.PathLike | None) -> None:
    """Delete the folder ``tmp``, if any."""
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)


def is_finished(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds a finished run whose files match its record."""
    try:
        read_finished(folder)
        return True
    except (RunCorrupt, OSError):
        return False


def read_finished(folder: str | os.PathLike, *, hashes: bool = True) -> dict:
    """The record of a finished run, after checking every file against it; :class:`RunCorrupt`
    (naming the file and the field) otherwise. ``FileNotFoundError`` when there is no run."""
    folder = Path(folder)
    rec_path = folder / RECORD
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no run folder")
    if not rec_path.is_file():
        raise RunCorrupt(str(rec_path), "<file>", "the completion record of a finished run",
                         "none (the run never finished)")
    record = read_json(rec_path)
    status = record.get("status") if isinstance(record, dict) else record
    if not isinstance(record, dict) or status != "finished" or not isinstance(record.get("files"), dict):
        raise RunCorrupt(str(rec_path), "status", "'finished' with a 'files' table", repr(status)[:80])
    for name, want in record["files"].items():
        path = folder / name
        if path.is_symlink() or not path.is_file():
            raise RunCorrupt(str(path), "<file>", f"a file recorded in {RECORD}", "missing")
        size = path.stat().st_size
        if not isinstance(want, dict) or size != want.get("bytes"):
            raise RunCorrupt(str(path), "bytes", f"{want.get('bytes') if isinstance(want, dict) else '?'} "
                             f"bytes (as recorded in {RECORD})", f"{size} (truncated or changed)")
        if hashes and _sha256(path) != want.get("sha256"):
            raise RunCorrupt(str(path), "sha256", f"the hash recorded in {RECORD}", "another one (changed)")
    return record


def read_json(path: str | os.PathLike):
    """Parse a run's JSON file; :class:`RunCorrupt` naming it when it does not parse."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise RunCorrupt(str(path), "<file>", "strict JSON", f"{type(err).__name__}: {err}") from None


def clean_stale(final: str | os.PathLike) -> list[Path]:
    """Delete partial folders of ``final`` left by processes that are gone."""
    final = Path(final)
    removed = []
    for d in final.parent.glob(f".{final.name}.partial-*"):     # none when the parent is missing
        try:
            pid = int(d.name.rsplit("-", 2)[-2])
        except (ValueError, IndexError):
            pid = -1
        if pid != os.getpid() and not pid_alive(pid):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (one of another user counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


# ------------------------------------------------------------------------------- locks
@contextlib.contextmanager
def locked(final: str | os.PathLike, *, wait: bool = True, on_wait=None):
    """Hold an exclusive lock on the run folder ``final`` (``<parent>/.locks/<name>.lock``); it
    dies with its process. ``wait=False``: :class:`BlockingIOError` at once when another process
    holds it; ``on_wait(message)`` is called once before waiting."""
    import fcntl
    final = Path(final)
    (final.parent / LOCKS).mkdir(parents=True, exist_ok=True)
    path = final.parent / LOCKS / f"{final.name}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            if not wait:
                raise BlockingIOError(f"{final}: being written by {holder}") from None
            if on_wait is not None:
                on_wait(f"{final}: waiting for {holder}, which is writing it")
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {time.strftime('%H:%M:%S')}".encode(), 0)
        yield
    finally:
        os.close(fd)                                        # releases the lock
