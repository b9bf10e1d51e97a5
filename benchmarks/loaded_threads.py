"""Training steps on a busy host: torch thread counts, quiet and under a load this script starts.

    python benchmarks/loaded_threads.py [--path cli|lessons|both] [--steps 40] [--repeats 3]

The demo configuration (``synthetic`` preset on the known-factor benchmark, ``make_benchmark``)
is trained for a fixed number of steps, exactly as ``Trainer.fit`` takes them, with the thread
count set the way each entry point sets it:

* ``cli``: ``fdmer_lite.experiments.runs.set_threads`` (what every ``fdmer-lite`` command and
  every run calls);
* ``lessons``: ``fdmer_lite.lessons.setup`` in full mode (what every notebook calls first).

Variants: ``$FDMER_LITE_THREADS`` = 1 and 2, unset (the package's default,
``config.default_thread_count``), and 2 with ``OMP_WAIT_POLICY=PASSIVE`` in the environment
(OpenMP's idle threads sleep at once; the package itself sets no OpenMP variable). Each variant is one worker process that times a block of steps
whenever asked; blocks alternate quiet / loaded and the variants take turns, ``--repeats``
times, so a change in the machine's other work spreads over all of them. "Loaded" means two
CPU-bound busy-loop processes started by this script (killed after each block, and on any
error or interrupt). The load average before each block is recorded, since "quiet" is only as
quiet as the machine's other users leave it.

A block that would run past ``--max-block-seconds`` stops early; ms a step is over the steps it
took. Raw blocks go to ``benchmarks/results/loaded-threads.json`` (one entry per path, so the
paths may be run in separate invocations); ``benchmarks/results/loaded-threads.md`` is
rewritten from it each time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent
VARIANTS = {                       # name: ($FDMER_LITE_THREADS or None, $OMP_WAIT_POLICY or None)
    "1 thread": ("1", None),
    "2 threads": ("2", None),
    "default": (None, None),
    "2 threads, PASSIVE wait": ("2", "PASSIVE"),
}
BUSY_LOOP = ("import os\nparent = os.getppid()\nn = 0\n"
             "while True:\n    n += 1\n    if n % 1000000 == 0 and os.getppid() != parent:\n        break\n")


# -- worker: one process, one thread setting, blocks of steps on request ------------------------
def worker(path: str, warmup: int) -> None:
    if path == "cli":
        from fdmer_lite.experiments.runs import set_threads
        set_threads()
    else:
        from fdmer_lite import lessons
        lessons.setup(verbose=False)
    import torch

    from fdmer_lite.config import get_preset
    from fdmer_lite.data.synthetic import make_benchmark
    from fdmer_lite.train import Trainer, clip_gradients, make_optimizer, reversal_coefficient

    cfg = get_preset("synthetic")
    t = cfg.train
    data = make_benchmark("emotion", n_train=16 * t.batch_size, n_valid=t.batch_size, n_test=t.batch_size)
    trainer = Trainer(cfg, data)
    opt = make_optimizer(trainer.model.parameters(), t, trainer.device)
    batches = list(trainer.loader("train", shuffle=True))
    trainer.model.train()
    done = 0

    def step():                                      # Trainer.fit's inner loop, on a CPU
        nonlocal done
        _, terms, _ = trainer._forward(batches[done % len(batches)], reversal_coefficient(t.grl_schedule, 0.5))
        opt.zero_grad(set_to_none=True)
        terms["all"].backward()
        if t.grad_clip:
            clip_gradients(trainer.model.parameters(), t.grad_clip, trainer.device)
        opt.step()
        done += 1

    for _ in range(warmup):
        step()
    info = {"threads": torch.get_num_threads(), "wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "batch_size": t.batch_size}
    print(json.dumps({"ready": info}), flush=True)
    for line in sys.stdin:                           # "steps max_seconds"
        steps, max_seconds = int(line.split()[0]), float(line.split()[1])
        step()
        step()                                       # untimed: caches after the idle wait
        start, n = time.perf_counter(), 0
        while n < steps and (n == 0 or time.perf_counter() - start < max_seconds):
            step()
            n += 1
        print(json.dumps({"seconds": time.perf_counter() - start, "steps": n}), flush=True)


# -- parent -------------------------------------------------------------------------------------
@contextlib.contextmanager
def cpu_load(processes: int = 2):
    """``processes`` CPU-bound busy loops, killed on leaving (also on error or interrupt); each
    also stops by itself if this process dies."""
    procs = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(processes)]
    try:
        time.sleep(0.5)                              # let the scheduler see them
        yield procs
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


class Worker:
    def __init__(self, path: str, variant: str, warmup: int):
        threads, wait_policy = VARIANTS[variant]
        env = {k: v for k, v in os.environ.items()
               if k not in ("FDMER_LITE_THREADS", "FDMER_LITE_FAST", "OMP_WAIT_POLICY", "OMP_NUM_THREADS",
                            "MKL_NUM_THREADS")}
        if threads is not None:
            env["FDMER_LITE_THREADS"] = threads
        if wait_policy is not None:
            env["OMP_WAIT_POLICY"] = wait_policy
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
        cmd = [sys.executable, __file__, "--worker", path, "--warmup", str(warmup)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.info = self._read()["ready"]

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker exited (status {self.proc.wait()})")
        return json.loads(line)

    def block(self, steps: int, max_seconds: float) -> dict:
        self.proc.stdin.write(f"{steps} {max_seconds}\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def measure(path: str, steps: int, repeats: int, max_seconds: float, warmup: int) -> dict:
    workers: dict[str, Worker] = {}
    blocks = []
    finished = False
    try:
        for variant in VARIANTS:
            workers[variant] = Worker(path, variant, warmup)
        names = list(VARIANTS)
        for rep in range(repeats):
            order = names[rep % len(names):] + names[:rep % len(names)]   # rotate who goes first
            for variant in order:
                for loaded in (False, True):
                    load_avg = os.getloadavg()[0]
                    with cpu_load() if loaded else contextlib.nullcontext():
                        out = workers[variant].block(steps, max_seconds)
                    blocks.append({"variant": variant, "loaded": loaded, "repeat": rep, "load_avg_1min": load_avg,
                                   "ms_per_step": 1000 * out["seconds"] / out["steps"], "steps": out["steps"]})
                    print(f"{path:8s} rep {rep}  {variant:26s} {'loaded' if loaded else 'quiet ':6s} "
                          f"{blocks[-1]['ms_per_step']:8.1f} ms/step over {out['steps']:3d} steps "
                          f"(load average {load_avg:.2f})", flush=True)
        finished = True
    finally:
        for w in workers.values():
            w.close() if finished else w.proc.kill()
    return {"path": path, "steps": steps, "repeats": repeats, "max_block_seconds": max_seconds,
            "workers": {v: w.info for v, w in workers.items()}, "blocks": blocks,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "host": f"{cpu_model()}, {os.cpu_count()} CPU(s)",
            "torch": __import__("torch").__version__}


def summarise(entry: dict) -> list[dict]:
    rows = []
    for variant, info in entry["workers"].items():
        mine = [b for b in entry["blocks"] if b["variant"] == variant]
        quiet = [b["ms_per_step"] for b in mine if not b["loaded"]]
        loaded = [b["ms_per_step"] for b in mine if b["loaded"]]
        paired = [lo["ms_per_step"] / q["ms_per_step"] for q in mine if not q["loaded"]
                  for lo in mine if lo["loaded"] and lo["repeat"] == q["repeat"]]
        rows.append({"variant": variant, "threads": info["threads"], "policy": info["wait_policy"] or "OpenMP's own",
                     "quiet_min": min(quiet), "quiet_med": statistics.median(quiet),
                     "loaded_min": min(loaded), "loaded_med": statistics.median(loaded),
                     "ratio_min": min(loaded) / min(quiet), "ratio_paired_med": statistics.median(paired)})
    return rows


def write_markdown(entries: dict, out: Path) -> None:
    lines = ["# Training steps on a loaded host: torch threads", "",
             "Written by `python benchmarks/loaded_threads.py` (see its docstring for the method). The demo",
             "configuration (`synthetic` preset, known-factor benchmark), a fixed number of training steps",
             "a block, taken as `Trainer.fit` takes them. *Loaded*: two CPU-bound busy-loop processes",
             "started by the script for the block. *Ratio*: loaded / quiet ms a step, min over min, and",
             "the median of each repeat's adjacent quiet/loaded pair. The target is a ratio of at most 2;",
             "the last column sets the loaded time against the fastest variant's quiet time instead.",
             "*default* is `$FDMER_LITE_THREADS` unset, i.e. `config.default_thread_count`; the last",
             "variant sets `OMP_WAIT_POLICY=PASSIVE` (OpenMP's idle threads sleep at once).", ""]
    for path, entry in entries.items():
        quiet_loads = [b["load_avg_1min"] for b in entry["blocks"] if not b["loaded"]]
        lines += [f"## Path `{path}` ({'fdmer_lite.experiments.runs.set_threads' if path == 'cli' else 'fdmer_lite.lessons.setup'})",
                  "",
                  f"{entry['date']}; {entry['host']}; torch {entry['torch']}; {entry['steps']} steps a block "
                  f"(at most {entry['max_block_seconds']:.0f} s), {entry['repeats']} repeats, batch "
                  f"{next(iter(entry['workers'].values()))['batch_size']}. One-minute load average before "
                  f"the quiet blocks (other users of the machine): min {min(quiet_loads):.2f}, median "
                  f"{statistics.median(quiet_loads):.2f}, max {max(quiet_loads):.2f}.", "",
                  "| variant | threads | wait policy | quiet ms/step (min / median) | loaded ms/step (min / median) "
                  "| ratio min/min | ratio, median of pairs | loaded median / fastest quiet median |",
                  "|---|---|---|---|---|---|---|---|"]
        best_quiet = min(r["quiet_med"] for r in summarise(entry))
        for r in summarise(entry):
            lines.append(f"| {r['variant']} | {r['threads']} | {r['policy']} | {r['quiet_min']:.1f} / {r['quiet_med']:.1f} "
                         f"| {r['loaded_min']:.1f} / {r['loaded_med']:.1f} | {r['ratio_min']:.2f} "
                         f"| {r['ratio_paired_med']:.2f} | {r['loaded_med'] / best_quiet:.2f} |")
        rows = summarise(entry)
        meets = [r["variant"] for r in rows if r["ratio_paired_med"] <= 2]
        fastest = min(rows, key=lambda r: r["loaded_med"])
        lines += ["", f"Loaded at most twice quiet (median of pairs): {', '.join(meets) or 'none'}. "
                  f"Fastest under load (median): {fastest['variant']}."]
        short = [b for b in entry["blocks"] if b["steps"] < entry["steps"]]
        if short:
            lines += ["", f"{len(short)} block(s) stopped at the time limit before {entry['steps']} steps: "
                      + ", ".join(sorted({f"{b['variant']} ({'loaded' if b['loaded'] else 'quiet'})" for b in short}))
                      + "."]
        lines.append("")
    out.write_text("\n".join(lines))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--path", choices=["cli", "lessons", "both"], default="both")
    ap.add_argument("--steps", type=int, default=40, help="timed training steps a block")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-block-seconds", type=float, default=20.0)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--rewrite", action="store_true", help="only rewrite the .md from the stored .json")
    ap.add_argument("--worker", choices=["cli", "lessons"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker, args.warmup)
        return 0
    if args.steps < 1 or args.repeats < 1 or args.warmup < 0 or args.max_block_seconds <= 0:
        print("loaded_threads.py: error: --steps, --repeats: expected >= 1; --warmup >= 0; "
              "--max-block-seconds > 0", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))    # so the busy loops are killed
    store = RESULTS / "loaded-threads.json"
    entries = json.loads(store.read_text()) if store.exists() else {}
    if args.rewrite:
        write_markdown(entries, RESULTS / "loaded-threads.md")
        return 0
    for path in (["cli", "lessons"] if args.path == "both" else [args.path]):
        entries[path] = measure(path, args.steps, args.repeats, args.max_block_seconds, args.warmup)
        RESULTS.mkdir(exist_ok=True)
        store.write_text(json.dumps(entries, indent=1) + "\n")
        write_markdown(entries, RESULTS / "loaded-threads.md")
    print(f"wrote {RESULTS / 'loaded-threads.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
