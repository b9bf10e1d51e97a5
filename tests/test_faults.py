"""Fault tests on the command line: kill -9 during ``ablate`` and ``sweep`` then resume (nothing
redone, nothing lost, no worker left), and two commands on one folder (nothing trained twice)."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "FDMER_LITE_FAST": "1", "FDMER_LITE_THREADS": "1", "OMP_NUM_THREADS": "1",
       "PYTHONPATH": str(ROOT)}


def _cli(*args):
    return [sys.executable, "-m", "fdmer_lite.cli", *args]


def _children(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc)."""
    parents = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parents[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    out, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - out
        out |= frontier
    return out


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_text()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _records(root: Path) -> dict[str, int]:
    """The sealed runs: a hidden ``.NAME.partial-*`` folder killed while it was being sealed may
    hold a ``complete.json`` too, but it is not a run (the next command clears it)."""
    return {p.parent.name: p.stat().st_mtime_ns for p in root.glob("*/complete.json")
            if not p.parent.name.startswith(".")}


def _kill_after_first(cmd, root: Path, timeout=240):
    proc = subprocess.Popen(cmd, env=ENV, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.time() + timeout
    workers = set()
    try:
        while time.time() < deadline and not _records(root):
            workers |= _children(proc.pid)
            time.sleep(0.1)
        assert _records(root), "no run finished in time"
        workers |= _children(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)                      # the parent only, not its group
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    gone_by = time.time() + 15
    while time.time() < gone_by and any(_alive(p) for p in workers):
        time.sleep(0.2)
    left = [p for p in workers if _alive(p)]
    for p in left:                                             # do not leak them into the suite
        os.kill(p, signal.SIGKILL)
    return workers, left


@pytest.mark.slow
def test_kill_9_during_ablate_then_resume(tmp_path):
    out = tmp_path / "ablate"
    cmd = _cli("ablate", "--dataset", "synthetic", "--preset", "fast", "--epochs", "1", "--variants", "wo_con",
               "--seeds", "1,2", "--workers", "2", "--out", str(out))
    workers, left = _kill_after_first(cmd, out)
    assert workers and not left, f"workers outlived their parent: {left}"
    before = _records(out)
    assert 1 <= len(before) < 4
    done = subprocess.run(cmd, env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    m = re.search(r"(\d+) computed, (\d+) skipped", done.stdout)
    assert m and int(m.group(2)) == len(before) and int(m.group(1)) == 4 - len(before), done.stdout
    after = _records(out)
    assert len(after) == 4 and all(after[k] == v for k, v in before.items())    # nothing redone
    assert not list(out.glob(".*.partial-*"))                                  # nothing half-done left


@pytest.mark.slow
def test_kill_9_during_sweep_then_resume(tmp_path):
    cache = tmp_path / "sweep"
    cmd = _cli("sweep", "--dataset", "synthetic", "--fast", "--beta", "0,0.02", "--gamma", "0,0.02",
               "--workers", "2", "--projections", "pca", "--cache", str(cache))
    workers, left = _kill_after_first(cmd, cache)
    assert workers and not left, f"workers outlived their parent: {left}"
    before = _records(cache)
    assert 1 <= len(before) < 4
    done = subprocess.run(cmd, env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"{len(before)} of 4 run(s) finished before, {4 - len(before)} to train" in done.stdout, done.stdout
    after = _records(cache)
    assert len(after) == 4 and all(after[k] == v for k, v in before.items())


@pytest.mark.slow
def test_two_ablations_on_one_folder_train_each_run_once(tmp_path):
    out = tmp_path / "ablate"
    cmd = _cli("ablate", "--dataset", "synthetic", "--preset", "fast", "--epochs", "1", "--variants", "wo_con",
               "--seeds", "1", "--workers", "0", "--out", str(out))
    a = subprocess.Popen(cmd, env=ENV, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    b = subprocess.Popen(cmd, env=ENV, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outs = [p.communicate(timeout=300) for p in (a, b)]
    assert a.returncode == 0 and b.returncode == 0, outs
    done = [re.search(r"(\d+) computed, (\d+) skipped", o).groups() for o, _ in outs]
    assert sum(int(d) for d, _ in done) == 2, outs                    # two runs, each trained once
    assert len(_records(out)) == 2


@pytest.mark.slow
def test_ctrl_c_during_ablate_is_one_line_and_stops_the_workers(tmp_path):
    out = tmp_path / "ablate"
    cmd = _cli("ablate", "--dataset", "synthetic", "--preset", "fast", "--epochs", "1", "--variants", "wo_con",
               "--seeds", "1,2", "--workers", "2", "--out", str(out))
    proc = subprocess.Popen(cmd, env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    workers, deadline = set(), time.time() + 120
    while time.time() < deadline and len(workers) < 2:
        workers |= {p for p in _children(proc.pid) if "spawn_main" in _cmdline(p)}
        time.sleep(0.2)
    time.sleep(2)
    os.killpg(proc.pid, signal.SIGINT)                         # what a terminal's Ctrl-C does
    err = proc.communicate(timeout=60)[1].decode()
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip() and "ablation runs" not in line]
    assert proc.returncode == 130 and len(lines) == 1 and "interrupted" in lines[0], err
    time.sleep(1)
    assert workers and not [p for p in workers if _alive(p)]
