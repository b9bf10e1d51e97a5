"""Regenerate the runs that ship inside the package (``fdmer_lite/shipped_runs/``).

    python benchmarks/ship_runs.py                      # trains each contrast run (full size)
    python benchmarks/ship_runs.py --from benchmarks/out/readings   # reuse finished runs there

Each shipped run is the demo's configuration with one change (``fdmer_lite.shipped.CONTRASTS``),
trained on the demo's data. Only ``config.json`` and ``metrics.json`` are copied into the
package: the demo reads their metrics, and only while config and data fingerprint match.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import torch

from fdmer_lite.config import get_preset
from fdmer_lite.data.synthetic import make_benchmark
from fdmer_lite.shipped import CONTRASTS, SHIPPED_DIR, contrast_config, load_contrast
from fdmer_lite.experiments.runs import data_fingerprint, obtain


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="source", default=None,
                    help="a folder holding <name>/seed0/ runs to reuse when they match")
    ap.add_argument("--names", nargs="+", default=list(CONTRASTS), choices=list(CONTRASTS))
    args = ap.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("FDMER_LITE_THREADS", "1")))
    data = make_benchmark("emotion")
    fingerprint = data_fingerprint(data)
    base = get_preset("synthetic")
    for name in args.names:
        cfg = contrast_config(base, name)
        found = Path(args.source) / name / "seed0" if args.source else None
        if found is not None and load_contrast("seed0", cfg, fingerprint, folder=found.parent) is not None:
            run_dir = found
            print(f"{name}: reusing {run_dir}")
        else:
            run_dir = Path(tempfile.mkdtemp()) / name
            print(f"{name}: training into {run_dir}", flush=True)
            obtain(cfg.replace(train={"device": "cpu"}), data, run_dir, retrain=True).metrics
        target = SHIPPED_DIR / name
        target.mkdir(parents=True, exist_ok=True)
        for f in ("config.json", "metrics.json"):
            shutil.copyfile(run_dir / f, target / f)
        assert load_contrast(name, cfg, fingerprint) is not None
        m = json.loads((target / "metrics.json").read_text())
        print(f"{name}: shipped (test MAE {m['mae']:.3f}) into {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
