"""How fast the beta/gamma explorer answers: cached updates and training a missing FAST setting.

    python benchmarks/widget_latency.py [--moves 20] [--keep DIR]

Measures, in one process, on a fresh FAST cache (``sweep.default_spec(fast=True)``: the ``fast``
preset on 256/64/128 clips):
  * the uncached training time of one FAST setting, as the Train button runs it (training, test
    metrics, baselines, disentanglement scores, representations, t-SNE), and its training part;
  * the cached-update latency: a slider move to a cached setting, from the value change to every
    figure and the metrics text being replaced in the widgets (kernel side). Without prefetching,
    the first visit of a setting reads it from disk and builds the figures; with it (the default)
    the figures were built in the background; a revisit re-sends memoised figures.
    Targets: cached update < 1 s, FAST uncached training < 30 s on two cores.
The browser's share of a cached update (drawing three plotly figures) is measured by
``tests/test_browser.py``, which writes ``test-artifacts/browser-timings.json``; it is printed
here when present. The machine's load average is printed with the figures: on a shared two-core
machine they are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from fdmer_lite import sweep as sw
from fdmer_lite.sweep import BetaGammaExplorer, setting_text

ROOT = Path(__file__).resolve().parents[1]


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--moves", type=int, default=20, help="slider moves between cached settings")
    parser.add_argument("--keep", default=None, help="use (and keep) this cache folder instead of a temp one")
    args = parser.parse_args()

    spec = sw.default_spec(fast=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep) if args.keep else Path(tmp) / "cache"
        cache = sw.SweepCache(root, spec)
        cells = sw.cross(sw.FAST_VALUES, sw.FAST_VALUES)               # 5 settings
        print(f"before: {load()}")

        # 1. Training missing FAST settings, one at a time, as the Train button does.
        uncached = []
        for beta, gamma in cells:
            if cache.has(beta, gamma):
                continue
            start = time.perf_counter()
            cell = cache.compute(beta, gamma)
            uncached.append((time.perf_counter() - start, cell.metrics["train_seconds"]))
            print(f"  trained {sw.cell_name(beta, gamma)}: {uncached[-1][0]:.1f} s "
                  f"(training {uncached[-1][1]:.1f} s)  [{load()}]")

        # 2. Cached updates, through the widget's own slider observers: without prefetching
        #    (a first visit reads the cell and builds its figures), then with it.
        first, again, prefetched = [], [], []
        for prefetch in (False, True):
            ex = BetaGammaExplorer(cache, sw.FAST_VALUES, sw.FAST_VALUES, prefetch=prefetch)
            if prefetch:
                ex._prefetcher.join()
            visited = {sw.cell_name(*ex.setting)}
            order = cells[1:] + cells[:1]
            for i in range(args.moves):
                beta, gamma = order[i % len(order)]
                name = sw.cell_name(beta, gamma)
                start = time.perf_counter()
                ex.select(beta, gamma)
                elapsed = time.perf_counter() - start
                assert setting_text(beta, gamma) in ex.current.metrics.value        # really shown
                if prefetch and name not in visited:
                    prefetched.append(elapsed)
                elif not prefetch:
                    (again if name in visited else first).append(elapsed)
                visited.add(name)
            cache._memory.clear()                                   # the second explorer starts cold too
        after = load()

    print()
    print(f"FAST uncached training (one setting, {len(uncached)} measured): "
          + (f"median {statistics.median(u[0] for u in uncached):.1f} s, max {max(u[0] for u in uncached):.1f} s; "
             f"of which training {statistics.median(u[1] for u in uncached):.1f} s (median)"
             if uncached else "all settings were cached"))
    if first:
        print(f"cached update, first visit (disk + figures): median {1000 * statistics.median(first):.0f} ms, "
              f"max {1000 * max(first):.0f} ms over {len(first)}")
    if prefetched:
        print(f"cached update, first visit after prefetch:    median {1000 * statistics.median(prefetched):.0f} ms, "
              f"max {1000 * max(prefetched):.0f} ms over {len(prefetched)}")
    if again:
        print(f"cached update, revisit (memoised figures):   median {1000 * statistics.median(again):.0f} ms, "
              f"max {1000 * max(again):.0f} ms over {len(again)}")
    print(f"after: {after}")
    timings = ROOT / "test-artifacts" / "browser-timings.json"
    if timings.is_file():
        t = {k: float("nan") for k in ("cached_update", "train_uncached", "total")}
        t.update(json.loads(timings.read_text()))
        print(f"browser (from the last tests/test_browser.py run): slider key press -> metrics and all "
              f"three figures redrawn {t['cached_update']:.2f} s; Train click -> trained setting shown "
              f"{t['train_uncached']:.1f} s; whole test {t['total']:.0f} s")


if __name__ == "__main__":
    main()
