"""Word alignment of CMU-MultimodalSDK ``.csd`` files at CMU-MOSEI size: how long does it take?

The SDK's own ``align`` is known to take hours to days on MOSEI. ``fdmer_lite.data.sdk`` aligns
with sorted intervals, ``searchsorted`` and cumulative sums, one video at a time. This script
writes a generated MOSEI-sized set of computational sequences in the SDK's HDF5 layout and times
``fdmer_lite.data.sdk.load`` on it (read + align + cut segments + split), the same call
``fdmer-lite train --dataset sdk`` makes.

Generated set (defaults; MOSEI has 3,228 videos and about 23,500 labelled segments):

* 3,200 videos, 23,000 labelled segments of 3-12 s with 0.5-3 s between them;
* words: about 2.6 a second, 0.15-0.6 s long, 300-d vectors (GloVe width);
* audio: 20 Hz, 74-d (COVAREP width), with -inf entries as COVAREP writes for silence;
* visual: 15 Hz, 35-d (FACET 4.2 width);
* labels: 7 columns (sentiment in [-3, 3] and six emotions), as MOSEI's "All Labels";
* folds: 70 / 10 / 20 % of the videos, in ``folds.json``.

Usage::

    python benchmarks/alignment.py [--out DIR] [--videos 3200] [--segments 23000] [--keep]

It prints the sizes and the times. The files (about 2.4 GiB) are deleted afterwards unless
``--keep`` is given.

The figures measured so far are in ``benchmarks/results/alignment.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WORD_DIM, AUDIO_DIM, VISUAL_DIM = 300, 74, 35
AUDIO_HZ, VISUAL_HZ, WORDS_PER_SECOND = 20.0, 15.0, 2.6


def write_group(data, vid, features, intervals):
    g = data.create_group(vid)
    g.create_dataset("features", data=features)
    g.create_dataset("intervals", data=intervals)


def add_metadata(h5, root, description):
    import h5py
    meta = h5[root].create_group("metadata")
    for key, value in {"root name": root, "computational sequence description": description,
                       "dimension names": None, "computational sequence version": "1.0"}.items():
        ds = meta.create_dataset(key, (1,), dtype=h5py.special_dtype(vlen=str))
        ds[0] = json.dumps(value)


def generate(folder: Path, n_videos: int, n_segments: int, seed: int = 0) -> dict:
    """Write words / COVAREP / FACET / labels .csd files and folds.json into ``folder``."""
    import h5py
    from tqdm.auto import tqdm
    rng = np.random.default_rng(seed)
    # segments per video: a multinomial split of n_segments, at least one each
    per_video = 1 + rng.multinomial(n_segments - n_videos, np.ones(n_videos) / n_videos)
    names = {"words": ("glove_vectors", "word vectors"), "audio": ("COVAREP", "COVAREP acoustic features"),
             "visual": ("FACET 4.2", "Facet facial action units"), "labels": ("All Labels", "sentiment + emotions")}
    files = {k: h5py.File(folder / f"CMU_MOSEI_{v[0].replace(' ', '')}.csd", "w") for k, v in names.items()}
    groups = {k: files[k].create_group(names[k][0]).create_group("data") for k in files}
    totals = {"seconds": 0.0, "words": 0, "audio_frames": 0, "visual_frames": 0}
    for i in tqdm(range(n_videos), desc="writing videos", unit="video"):
        vid = f"video{i:05d}"
        k = per_video[i]
        dur = rng.uniform(3, 12, k)
        gaps = rng.uniform(0.5, 3, k)
        starts = np.cumsum(gaps + np.concatenate([[0.0], dur[:-1]]))
        seg = np.stack([starts, starts + dur], 1)
        T = float(seg[-1, 1] + rng.uniform(0.5, 2))
        n_w = rng.poisson(WORDS_PER_SECOND * T)
        ws = np.sort(rng.uniform(0, T - 0.6, n_w))
        wiv = np.stack([ws, ws + rng.uniform(0.15, 0.6, n_w)], 1)
        write_group(groups["words"], vid, rng.standard_normal((n_w, WORD_DIM), dtype=np.float32), wiv)
        ta = np.arange(0, T, 1 / AUDIO_HZ)
        audio = rng.standard_normal((len(ta), AUDIO_DIM), dtype=np.float32)
        audio[rng.random(len(ta)) < 0.02, 0] = -np.inf
        write_group(groups["audio"], vid, audio, np.stack([ta, ta + 1 / AUDIO_HZ], 1))
        tv = np.arange(0, T, 1 / VISUAL_HZ)
        write_group(groups["visual"], vid, rng.standard_normal((len(tv), VISUAL_DIM), dtype=np.float32),
                    np.stack([tv, tv + 1 / VISUAL_HZ], 1))
        labels = np.concatenate([rng.uniform(-3, 3, (k, 1)), rng.uniform(0, 3, (k, 6))], 1)
        write_group(groups["labels"], vid, labels, seg)
        totals["seconds"] += T
        totals["words"] += n_w
        totals["audio_frames"] += len(ta)
        totals["visual_frames"] += len(tv)
    for k, f in files.items():
        add_metadata(f, names[k][0], names[k][1])
        f.close()
    order = rng.permutation(n_videos)
    vids = [f"video{i:05d}" for i in order]
    a, b = int(0.7 * n_videos), int(0.8 * n_videos)
    (folder / "folds.json").write_text(json.dumps({"train": vids[:a], "valid": vids[a:b], "test": vids[b:]}))
    totals["segments"] = int(per_video.sum())
    totals["bytes"] = sum(p.stat().st_size for p in folder.glob("*.csd"))
    return totals


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=None, help="folder for the generated files (default: a temporary folder)")
    p.add_argument("--videos", type=int, default=3200)
    p.add_argument("--segments", type=int, default=23000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep", action="store_true", help="keep the generated files")
    args = p.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from fdmer_lite.data.sdk import load

    folder = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="fdmer_csd_"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        sizes = generate(folder, args.videos, args.segments, args.seed)
        t_gen = time.perf_counter() - t0
        print(f"generated {args.videos} videos, {sizes['segments']} segments, {sizes['seconds'] / 3600:.1f} h, "
              f"{sizes['words']} words, {sizes['audio_frames']} audio frames (20 Hz, 74-d), "
              f"{sizes['visual_frames']} visual frames (15 Hz, 35-d), {sizes['bytes'] / 2**30:.2f} GiB "
              f"in {t_gen:.1f} s")
        t0 = time.perf_counter()
        data = load(folder, progress=True)
        t_align = time.perf_counter() - t0
        info = data.info
        print(data.summary())
        print(f"segments kept {info['segments']}, without words {info['segments_without_words']}, "
              f"truncated {info['truncated_segments']}, sequence length {info['seq_len']} (longest segment)")
        print(f"non-finite values set to 0: {info['nonfinite_replaced']}; words no frame overlaps: "
              f"{info['words_without_frames']}")
        print(f"\nalignment (read + align + cut + split, fdmer_lite.data.sdk.load): {t_align:.1f} s "
              f"on {os.cpu_count()} cores (target: under 120 s)")
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
