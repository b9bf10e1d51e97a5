"""``fdmer-lite data inspect PATH``: say what a data file or folder holds and whether it loads.

The raw structure first (format, splits, shapes, label statistics, NaN/inf counts, lengths),
without the loaders' checks, so a user sees *why* a file does not load; then the matching loader
runs and "loads: OK" or its message is printed. Formats: MMSA pickles, SDK ``.csd`` files or
folders, UR-FUNNY folders or pickles, the real CMU-MOSI text+audio folder, ``.npy`` arrays.
Pickles go through the allow-list unpickler, so a hostile file runs none of its code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import mmsa, sdk, urfunny
from . import mosi_text_audio as mta
from .base import SPLITS, DataError, overlap_warning
from .safe_pickle import safe_load
from .sdk import ComputationalSequence
from .safe_arrays import check_h5_dataset, load_npy, read_csv

LARGE_BYTES = 512 * 2 ** 20          # folders larger than this are described, not test-loaded


def _finite_counts(x: np.ndarray) -> str:
    if x.dtype.kind == "c":
        bad = int((~np.isfinite(x)).sum())
        return f"complex (not usable as features), {bad} non-finite"
    if x.dtype.kind not in "fc":
        return "all finite"
    nan, ninf, pinf = int(np.isnan(x).sum()), int(np.isneginf(x).sum()), int(np.isposinf(x).sum())
    if nan + ninf + pinf == 0:
        return "all finite"
    return f"NaN {nan}, -inf {ninf}, +inf {pinf}"


def _label_stats(y: np.ndarray) -> str:
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    fin = y[np.isfinite(y)]
    if fin.size == 0:
        return f"{y.size} labels, none finite"
    text = (f"mean {fin.mean():.3f}, std {fin.std():.3f}, min {fin.min():.3f}, max {fin.max():.3f}, "
            f"frac >= 0 {np.mean(fin >= 0):.3f}, frac == 0 {np.mean(fin == 0):.3f}")
    if fin.size != y.size:
        text += f", {y.size - fin.size} NaN/inf"
    return text


def _describe_array(name: str, value, indent: str = "    ") -> str:
    try:
        x = np.asarray(value)
    except Exception as err:                               # noqa: BLE001 - report anything
        return f"{indent}{name}: {type(value).__name__} (not an array: {err})"
    if x.dtype.kind in "fciub":
        return f"{indent}{name}: shape {x.shape}, dtype {x.dtype}, {_finite_counts(x)}"
    return f"{indent}{name}: shape {x.shape}, dtype {x.dtype}"


def _try(loader, path) -> str:
    try:
        data = loader(path)
    except (DataError, FileNotFoundError) as err:
        return f"loads: NO -- {err}"
    lines = ["loads: OK"]
    lines += ["  " + s for s in data.summary().splitlines()]
    shared = overlap_warning(data)
    if shared:
        lines.append(f"  WARNING: {shared}")
    for key in ("dataset", "nonfinite_replaced", "zero_lengths_set_to_1", "nonzero_padding", "truncated_segments",
                "truncated_utterances", "truncated_samples", "dropped", "videos_dropped", "segments_without_words",
                "words_without_frames", "oov_tokens", "oov_rate", "folds"):
        if key in data.info and data.info[key] not in ({}, None, [], 0):
            lines.append(f"  {key}: {data.info[key]}")
    return "\n".join(lines)


def _describe_key(key: str, v) -> list[str]:
    """The report's line(s) for one entry of an MMSA split."""
    if key in ("id", "raw_text"):
        return [f"    {key}: {len(v)} entries, e.g. {str(v[0])[:40]!r}" if len(v) else f"    {key}: empty"]
    if key.endswith("_lengths"):
        ln = np.asarray(v)
        return [f"    {key}: min {ln.min()}, max {ln.max()}, zeros {int((ln == 0).sum())}"
                if ln.size else f"    {key}: empty"]
    if key.endswith("labels"):
        return [_describe_array(key, v), f"      {_label_stats(v)}"]
    return [_describe_array(key, v)]


def _inspect_mmsa(path: Path, raw: dict) -> list[str]:
    lines = [f"format: MMSA pickle ({'unaligned' if 'audio_lengths' in raw.get('train', {}) else 'aligned'})"]
    for s in [k for k in raw if isinstance(raw[k], dict)]:
        part = raw[s]
        n = len(part.get("regression_labels", []))
        lines.append(f"  split {s!r}: {n} samples")
        for key in sorted(part):
            try:
                lines += _describe_key(key, part[key])
            except Exception as err:                       # noqa: BLE001 - a report, not a loader
                lines.append(f"    {key}: unreadable ({type(err).__name__}: {str(err)[:80]})")
    try:
        widths = {m: int(np.asarray(raw["train"][k]).shape[-1]) for m, k in mmsa.STREAMS.items()
                  if isinstance(raw.get("train"), dict) and k in raw["train"] and np.asarray(raw["train"][k]).ndim == 3}
    except Exception:                                      # noqa: BLE001 - described above
        widths = {}
    if widths:
        lines.append(f"  widths (train): {widths}")
        known = [name for name, k in mmsa.KNOWN.items() if all(k['widths'].get(m) == w for m, w in widths.items()
                                                                if m != 't')]
        lines.append(f"  matches the widths of: {', '.join(known) or 'none of MOSI/MOSEI/SIMS'}")
    missing = [s for s in SPLITS if s not in raw]
    if missing:
        lines.append(f"  missing splits: {missing}")
    lines.append(_try(lambda p: mmsa.load(p), path))
    return lines


def _inspect_pickle(path: Path) -> list[str]:
    raw = safe_load(path)          # an unsafe pickle raises UnsafePickleError here (exit status 2)
    if isinstance(raw, dict) and any(s in raw for s in SPLITS) and any(isinstance(v, dict) for v in raw.values()) \
            and not (set(raw) <= {"train", "dev", "test"} and all(isinstance(v, list) for v in raw.values())):
        return _inspect_mmsa(path, raw)
    lines = [f"format: pickle of {type(raw).__name__}"]
    if isinstance(raw, dict):
        lines.append(f"  {len(raw)} keys, e.g. {[str(k) for k in list(raw)[:3]]}")
        if set(raw) & {"train", "dev", "test"}:
            lines.append("  looks like UR-FUNNY data_folds.pkl: " + ", ".join(
                f"{k} {len(v)} ids" for k, v in raw.items() if isinstance(v, (list, tuple))))
        first = next(iter(raw.values()), None)
        if isinstance(first, dict):
            lines.append("  first entry:")
            for k, v in first.items():
                if isinstance(v, list) and v and isinstance(v[0], (list, np.ndarray)) and np.asarray(v[0]).ndim == 2:
                    lines.append(f"    {k}: list of {len(v)} arrays, first {np.asarray(v[0]).shape}")
                else:
                    lines.append(_describe_array(k, v) if not isinstance(v, str) else f"    {k}: {v[:60]!r}")
            totals = {}
            for k in first:
                try:
                    arrs = [np.asarray(e[k], dtype=np.float64) for e in raw.values() if isinstance(e, dict) and k in e]
                    if arrs and all(a.ndim == 2 for a in arrs):
                        widths = sorted({a.shape[1] for a in arrs if a.size})
                        bad = sum(int((~np.isfinite(a)).sum()) for a in arrs)
                        totals[k] = f"widths {widths}, rows {sum(len(a) for a in arrs)}, NaN/inf {bad}"
                except (TypeError, ValueError):
                    continue
            for k, t in totals.items():
                lines.append(f"  all entries, {k}: {t}")
        elif first is not None and all(np.isscalar(v) or np.ndim(v) == 0 for v in raw.values()):
            vals = np.asarray([np.asarray(v).item() for v in raw.values()])
            if vals.dtype.kind in "iufb":
                lines.append(f"  values: {_label_stats(vals)}")
    elif isinstance(raw, (list, tuple)):
        lines.append(f"  {len(raw)} items")
        try:
            arr = np.asarray(raw, dtype=np.float64)
            lines.append(f"  as an array: shape {arr.shape}, {_finite_counts(arr)}")
        except (TypeError, ValueError):
            pass
    elif isinstance(raw, np.ndarray):
        lines.append(_describe_array("array", raw, "  "))
    return lines


def _inspect_csd(path: Path) -> list[str]:
    cs = ComputationalSequence(path)
    try:
        vids = cs.videos()
        lines = [f"{path.name}: computational sequence {cs.root!r}, {len(vids)} videos"]
        widths, rows, bad, dur, unsorted = set(), 0, 0, [], 0
        dtypes = set()
        for vid in vids:
            g = cs.data[vid]
            if not hasattr(g, "keys") or "features" not in g or "intervals" not in g:
                raise DataError(str(path), f"{cs.root}/data/{vid}", "a group holding 'features' and 'intervals'",
                                type(g).__name__)
            f = g["features"]
            check_h5_dataset(f, str(path), f"{cs.root}/data/{vid}/features")
            check_h5_dataset(g["intervals"], str(path), f"{cs.root}/data/{vid}/intervals")
            dtypes.add(str(f.dtype))
            widths.add(f.shape[1] if len(f.shape) == 2 else f.shape)
            rows += f.shape[0]
            if f.dtype.kind == "f":
                x = f[()]
                bad += int((~np.isfinite(x)).sum())
            iv = g["intervals"][()]
            if iv.size:
                dur.append(float(iv[:, 1].max() - iv[:, 0].min()))
                unsorted += int(np.any(np.diff(iv[:, 0]) < 0))
        lines.append(f"  features: widths {sorted(widths, key=str)}, dtype {sorted(dtypes)}, {rows} rows in all, "
                     f"NaN/inf {bad}")
        if dur:
            lines.append(f"  rows per second about {rows / max(sum(dur), 1e-9):.2f}; videos span "
                         f"{min(dur):.1f}-{max(dur):.1f} s; videos with unsorted intervals {unsorted}")
        for k, v in cs.metadata.items():
            lines.append(f"  metadata {k}: {str(v)[:100]}")
        return lines
    finally:
        cs.close()


def _inspect_sdk_folder(folder: Path) -> list[str]:
    lines = ["format: folder of CMU-MultimodalSDK .csd files"]
    for f in sorted(folder.glob("*.csd")):
        lines += ["  " + s for s in _inspect_csd(f)]
    try:
        streams, labels, ignored = sdk.find_streams(folder)
        lines.append(f"  streams: { {m: p.name for m, p in streams.items()} }, labels: {labels.name}"
                     + (f", ignored: {ignored}" if ignored else ""))
    except DataError as err:
        lines.append(f"  streams: cannot tell ({err})")
    try:
        folds, desc = sdk.load_folds(None, folder)
        lines.append(f"  folds {desc}: " + ", ".join(f"{s} {len(v)} videos" for s, v in folds.items()))
    except (DataError, FileNotFoundError) as err:
        lines.append(f"  folds: {err}")
    size = sum(f.stat().st_size for f in folder.glob("*.csd"))
    if size > LARGE_BYTES:
        lines.append(f"  ({size / 2**20:.0f} MB: not test-loaded here; `fdmer-lite train --dataset sdk` aligns it)")
    else:
        lines.append(_try(lambda p: sdk.load(p, progress=False), folder))
    return lines


def _inspect_mosi_folder(folder: Path) -> list[str]:
    lines = ["format: real CMU-MOSI text+audio folder"]
    _, rows = read_csv(folder / mta.CSV_NAME)
    lines.append(f"  {mta.CSV_NAME}: {len(rows)} rows, columns {list(rows[0]) if rows else []}")
    for s in sorted({r.get('split', '?') for r in rows}):
        sel = [r for r in rows if r.get("split") == s]
        try:
            y = np.array([float(r["label"]) for r in sel])
            stats = _label_stats(y)
        except (KeyError, ValueError):
            stats = "labels unreadable"
        nw = np.array([len(r.get("transcript", "").split()) for r in sel])
        lines.append(f"    split {s!r}: {len(sel)} utterances, {len({r.get('video_id') for r in sel})} videos; "
                     f"words per transcript median {np.median(nw):.0f}, max {nw.max()}; {stats}")
    audio_path = folder / mta.AUDIO_NAME
    if audio_path.is_file():
        try:
            a = load_npy(audio_path)
            lines.append(f"  {mta.AUDIO_NAME}: shape {a.shape}, dtype {a.dtype}, {_finite_counts(a)}, "
                         f"range [{a.min():.2f}, {a.max():.2f}]")
        except DataError as err:
            lines.append(f"  {mta.AUDIO_NAME}: unreadable ({err})")
    else:
        lines.append(f"  {mta.AUDIO_NAME}: missing")
    lines.append(_try(lambda p: mta.load(p), folder))
    return lines


def _inspect_urfunny_folder(folder: Path) -> list[str]:
    lines = ["format: UR-FUNNY feature folder"]
    for name in urfunny.FILES.values():
        p = folder / name
        if p.is_file():
            lines.append(f"  {name}:")
            lines += ["    " + s for s in _inspect_pickle(p)]
    lines.append(_try(lambda p: urfunny.load(p), folder))
    return lines


def inspect_path(path) -> str:
    """A plain-text report of what ``path`` holds and whether it loads (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    lines = [f"{path}"]
    if path.is_dir():
        if (path / "utterances.csv").is_file():
            lines += _inspect_mosi_folder(path)
        elif (path / "data_folds.pkl").is_file():
            lines += _inspect_urfunny_folder(path)
        elif any(path.glob("*.csd")):
            lines += _inspect_sdk_folder(path)
        else:
            raise DataError(str(path), "<folder>", "an MMSA/UR-FUNNY/SDK/MOSI data folder",
                            f"files {[p.name for p in sorted(path.iterdir())][:10]}")
    else:
        suffix = path.suffix.lower()
        if suffix in (".pkl", ".pickle", ".pk"):
            lines += _inspect_pickle(path)
        elif suffix in (".csd", ".h5", ".hdf5"):
            lines.append("format: CMU-MultimodalSDK computational sequence (HDF5)")
            lines += ["  " + s for s in _inspect_csd(path)]
        elif suffix == ".npy":
            a = load_npy(path, mmap_mode="r")
            lines.append("format: numpy array")
            lines.append(_describe_array("array", np.asarray(a), "  "))
        elif path.name == "utterances.csv":
            lines += _inspect_mosi_folder(path.parent)
        else:
            raise DataError(str(path), "<file>", "a .pkl, .csd/.h5, .npy file or a data folder", f"suffix {suffix!r}")
    return "\n".join(lines)


__all__ = ["inspect_path"]
