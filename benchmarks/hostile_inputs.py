"""Run the hostile-input corpus (tests/hostile_corpus.py) through the command line, one
subprocess per case, and print the counts and the peak memory of each refusal.

    FDMER_LITE_THREADS=1 python benchmarks/hostile_inputs.py [--limit-gib 4]

Each case runs as ``python -m fdmer_lite.cli ...`` under an address-space limit (RLIMIT_AS,
default 4 GiB), so a memory bomb that got through would end in a MemoryError instead of taking
the machine. Peak memory is the child's maximum resident set size (``os.wait4``); the baseline
is the same interpreter running ``fdmer-lite --help`` (the imports of numpy and torch).
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from hostile_corpus import build, classify  # noqa: E402


def run(argv: list[str], limit: int, env: dict) -> tuple[int, str, float, float]:
    """(exit status, stderr, peak RSS in MiB, seconds)."""
    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "fdmer_lite.cli", *argv], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=cap)
    err = proc.stderr.read().decode("utf-8", "replace")
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, err, usage.ru_maxrss / 1024, time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit-gib", type=float, default=4.0)
    args = ap.parse_args()
    limit = int(args.limit_gib * 2 ** 30)
    env = {**os.environ, "FDMER_LITE_FAST": "1", "PYTHONPATH": str(ROOT),
           "FDMER_LITE_THREADS": os.environ.get("FDMER_LITE_THREADS", "1"), "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        cases = build(tmp)
        _, _, base, _ = run(["--help"], limit, env)
        counts = collections.Counter()
        rows = []
        for case in cases:
            rc, err, peak, secs = run(case.argv, limit, {**env, **case.env})   # e.g. PYTHONIOENCODING=utf-8
            outcome = classify(case, rc, err)
            counts[outcome] += 1
            last = err.strip().splitlines()[-1] if err.strip() else ""
            rows.append((case.group, case.kind, outcome, rc, peak, secs, last.replace(tmp, "<tmp>")))
        payloads = sum(1 for c in cases if c.marker is not None and c.marker.exists())
    print(f"kinds tried: {len(cases)}; clear: {counts['clear']}; tracebacks: {counts['traceback']}; "
          f"silent accepts: {counts['silent']}; vague: {counts['vague']}; payloads run: {payloads}")
    bombs = [r for r in rows if r[0] == "bomb"]
    print(f"baseline peak RSS (fdmer-lite --help): {base:.0f} MiB; memory bombs: peak RSS "
          f"{min(r[4] for r in bombs):.0f}-{max(r[4] for r in bombs):.0f} MiB under a {args.limit_gib:g} GiB cap")
    print()
    print("| group | kind | outcome | exit | peak RSS MiB | s | message (last line of stderr) |")
    print("|---|---|---|---|---|---|---|")
    for g, k, o, rc, peak, secs, last in rows:
        print(f"| {g} | {k} | {o} | {rc} | {peak:.0f} | {secs:.1f} | {last[:160].replace('|', '/')} |")
    return 0 if counts["clear"] == len(cases) and not payloads else 1


if __name__ == "__main__":
    sys.exit(main())
