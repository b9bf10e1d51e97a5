"""The demo's training step rate by torch thread count and usable cores, quiet and loaded.

    python benchmarks/threads.py [--threads 1,2,4] [--cores 1,2,4,8] [--steps 60] [--preset synthetic]

Each measurement runs in a fresh process restricted to the first C cores of this machine
(``os.sched_setaffinity``; counts above the machine's are skipped and named), with T torch threads
and OpenMP's own wait policy unless ``OMP_WAIT_POLICY`` is set outside. It trains the preset's
model on batches shaped like the demo's data (MOSI shapes, the preset's batch size) for
``--steps`` optimiser steps after a warm-up, exactly as ``Trainer.fit`` steps (the objective,
backward, clipping, Adam), and prints batches per second and the process's CPU use in cores.
"Loaded" runs the same with one busy process per usable core beside it (a tight arithmetic loop
in Python, pinned to the same cores): a laptop whose other programs are busy.

The default thread count (``fdmer_lite.config.default_thread_count``) is chosen from these figures;
they are recorded in ``benchmarks/results/threads.md``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time

WIDTHS = {"t": 300, "a": 74, "v": 47}
LENGTH = 50


def _burn(cores: list[int], stop) -> None:            # one busy process, pinned to ``cores``
    os.sched_setaffinity(0, cores)
    x = 0
    while not stop.is_set():
        for i in range(10000):
            x = (x * 31 + i) % 1000003


def measure(preset: str, threads: int, steps: int) -> dict:
    """Batches/s of ``steps`` training steps in this process, and the CPU it used (cores)."""
    import torch
    from fdmer_lite.config import get_preset
    from fdmer_lite.losses import fdmer_objective
    from fdmer_lite.model import build_model
    from fdmer_lite.train import clip_gradients, make_optimizer

    torch.set_num_threads(threads)
    cfg = get_preset(preset)
    B, device = cfg.train.batch_size, torch.device("cpu")
    torch.manual_seed(0)
    model = build_model(cfg, WIDTHS, 1, max_len=LENGTH)
    x = {m: torch.randn(B, LENGTH, d) for m, d in WIDTHS.items()}
    y = torch.randn(B).clamp(-3, 3)
    opt = make_optimizer(model.parameters(), cfg.train, device)

    def step():
        loss = fdmer_objective(model(x), y, cfg.loss)["all"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        clip_gradients(model.parameters(), cfg.train.grad_clip or 1.0, device)
        opt.step()

    for _ in range(5):
        step()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(steps):
        step()
    wall = time.perf_counter() - wall0
    return {"batches_per_s": steps / wall, "cpu_cores": (time.process_time() - cpu0) / wall}


def run_one(preset: str, threads: int, cores: int, steps: int, loaded: bool) -> dict:
    """One measurement in a fresh process on the first ``cores`` cores, optionally loaded."""
    use = sorted(os.sched_getaffinity(0))[:cores]
    stop = mp.Event()
    burners = [mp.Process(target=_burn, args=([c], stop), daemon=True) for c in use] if loaded else []
    for b in burners:
        b.start()
    try:
        code = ("import json, os, sys; sys.path.insert(0, {root!r}); os.sched_setaffinity(0, {use!r}); "
                "from benchmarks.threads import measure; "
                "print(json.dumps(measure({preset!r}, {threads}, {steps})))").format(
            root=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), use=use, preset=preset,
            threads=threads, steps=steps)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        stop.set()
        for b in burners:
            b.join(timeout=5)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", default="1,2,4")
    p.add_argument("--cores", default="1,2,4,8")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--preset", default="synthetic")
    args = p.parse_args(argv)
    available = len(os.sched_getaffinity(0))
    threads = [int(t) for t in args.threads.split(",")]
    cores = [int(c) for c in args.cores.split(",")]
    skipped = [c for c in cores if c > available]
    print(f"preset {args.preset}, {args.steps} steps a measurement, {available} usable cores "
          f"(OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')})")
    if skipped:
        print(f"not measured: {skipped} usable cores (this machine has {available})")
    print("| usable cores | load | threads | batches/s | CPU used (cores) | vs 1 thread |")
    print("|---|---|---|---|---|---|")
    for c in [c for c in cores if c <= available]:
        for loaded in (False, True):
            base = None
            for t in threads:
                r = run_one(args.preset, t, c, args.steps, loaded)
                base = base or r["batches_per_s"]
                print(f"| {c} | {'loaded' if loaded else 'quiet'} | {t} | {r['batches_per_s']:.1f} | "
                      f"{r['cpu_cores']:.2f} | {r['batches_per_s'] / base:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
