"""CMU-MultimodalSDK computational sequences (``.csd``, HDF5) -> word-aligned segments.

One feature stream per ``.csd``: ``<root>/data/<video>/features`` (T, d) and ``.../intervals``
(T, 2) [start, end) in seconds, ``<root>/metadata/<key>``. FDMER (Yang et al., ACM MM 2022,
Sec. 4.1) uses word-aligned MOSI/MOSEI features. :func:`align` does the SDK's hours-long
``align`` vectorised per video: words (the text stream, the pivot) are ordered by interval
midpoint; another stream's frames, sorted by start, overlap a word [s, e) in one contiguous
range, averaged through one float64 cumulative sum (a word with no frame gets zeros, counted in
``info["words_without_frames"]``); a labelled segment holds the words whose midpoint lies in it
(one without words is dropped, ``info["segments_without_words"]``). Sequences are padded at the
end (``Split.lengths``) to the longest segment, or cut to ``seq_len`` first words
(``info["truncated_segments"]``).

``folds``: a dict ``{"train": [...], "valid": [...], "test": [...]}``, a JSON file of it, the
SDK's ``*_std_folds.py`` (read as literals with ``ast``, never run), or ``"mosi"`` (the standard
folds from the real CMU-MOSI folder, ``FDMER_LITE_MOSI_DIR``). ``None`` searches the folder for
``folds.json`` / ``*std_folds.py``, then uses the MOSI folds if every labelled video is in them.
Nothing is downloaded. Videos missing anywhere are dropped (``info["videos_dropped"]``);
non-finite values follow ``nonfinite`` (:func:`fdmer_lite.data.mmsa.treat_nonfinite`).
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import numpy as np

from .base import SPLITS, DataError, MultimodalData, Split
from .safe_arrays import check_h5_dataset, read_csv
from .mmsa import check_labels, check_widths, treat_nonfinite

# file-name keywords that say which modality a .csd holds
KEYWORDS = {
    "labels": ("label",),
    "t": ("wordvector", "word_vector", "glove", "bert", "text", "language", "word"),
    "a": ("covarep", "audio", "acoustic", "opensmile", "wav2vec", "librosa"),
    "v": ("facet", "openface", "visual", "vision", "video", "face"),
}
FOLD_ALIASES = {"train": "train", "valid": "valid", "dev": "valid", "val": "valid", "test": "test"}


class ComputationalSequence:
    """One ``.csd`` file, opened read-only; features are read per video on demand."""

    def __init__(self, path: str | Path):
        import h5py
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such file")
        try:
            self.h5 = h5py.File(self.path, "r")
        except OSError as err:
            raise DataError(str(self.path), "<file>", "an HDF5 computational sequence (.csd)", str(err)) from None
        roots = [k for k in self.h5.keys() if isinstance(self.h5[k], h5py.Group) and "data" in self.h5[k]
                 and isinstance(self.h5[k]["data"], h5py.Group)]
        if len(roots) != 1:
            raise DataError(str(self.path), "<root>", "exactly one top-level group holding a group 'data'",
                            f"top-level keys {list(self.h5.keys())}")
        self.root = roots[0]
        self.data = self.h5[self.root]["data"]
        self.metadata = read_metadata(self.h5[self.root].get("metadata"))

    def videos(self) -> list[str]:
        return list(self.data.keys())

    def field(self, vid: str, name: str) -> str:
        """The HDF5 path of one video's dataset, as error messages name it."""
        return f"{self.root}/data/{vid}/{name}"

    def _read(self, vid: str, name: str) -> np.ndarray:
        import h5py
        src, field = str(self.path), self.field(vid, name)
        if not isinstance(self.data.get(vid), h5py.Group):
            raise DataError(src, f"{self.root}/data/{vid}", "a group (features, intervals)",
                            type(self.data.get(vid)).__name__)
        try:
            ds = self.h5[field]
        except KeyError:
            raise DataError(src, field, f"a dataset {name!r}",
                            f"keys {list(self.data[vid].keys())}") from None
        if not isinstance(ds, h5py.Dataset):
            raise DataError(src, field, "a dataset", f"a {type(ds).__name__}")
        check_h5_dataset(ds, src, field)                   # before allocating the declared shape
        try:
            return ds[()]
        except (OSError, ValueError, TypeError) as err:
            raise DataError(src, field, "a readable dataset", f"{type(err).__name__}: {err}") from None

    def intervals(self, vid: str) -> np.ndarray:
        """(T, 2) float64 [start, end] pairs, finite, end >= start."""
        iv = np.asarray(self._read(vid, "intervals"), dtype=np.float64)
        if iv.ndim != 2 or iv.shape[1] != 2:
            raise DataError(str(self.path), self.field(vid, "intervals"), "shape (T, 2)", str(iv.shape))
        if not np.all(np.isfinite(iv)) or np.any(iv[:, 1] < iv[:, 0]):
            raise DataError(str(self.path), self.field(vid, "intervals"),
                            "finite [start, end] pairs with end >= start", "NaN/inf or end < start")
        return iv

    def features(self, vid: str) -> np.ndarray:
        """(T, d) float32."""
        raw, f = self._read(vid, "features"), self.field(vid, "features")
        if raw.dtype.kind not in "fiub":
            raise DataError(str(self.path), f, "numeric features", f"dtype {raw.dtype} (e.g. words as strings)")
        x = np.asarray(raw, dtype=np.float32)
        if x.ndim != 2:
            raise DataError(str(self.path), f, "shape (T, d)", str(x.shape))
        return x

    def close(self) -> None:
        self.h5.close()


def read_metadata(group) -> dict:
    """``<root>/metadata``: one (1,)-string dataset per key, JSON where it parses."""
    out = {}
    if group is None:
        return out
    for key in group.keys():
        try:
            value = group[key][()]
            value = value[0] if getattr(value, "shape", ()) else value
            value = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            try:
                value = json.loads(value)
            except (ValueError, TypeError):
                pass
        except (OSError, TypeError, ValueError, IndexError):
            value = "<unreadable>"
        out[key] = value
    return out


def _folds_from_dict(d: dict, source: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in d.items():
        split = FOLD_ALIASES.get(str(key).lower())
        if split is None:
            continue
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise DataError(source, f"folds.{key}", "a list of video ids (strings)", type(value).__name__)
        out[split] = list(value)
    missing = [s for s in SPLITS if s not in out]
    if missing:
        raise DataError(source, "folds", f"lists for {list(SPLITS)}", f"keys {sorted(map(str, d))}")
    seen: dict[str, str] = {}
    for s in SPLITS:
        for v in out[s]:
            if v in seen and seen[v] != s:
                raise DataError(source, "folds", "each video in one fold only", f"{v!r} in {seen[v]} and {s}")
            seen[v] = s
    return out


def _folds_from_python(path: Path) -> dict[str, list[str]]:
    """The SDK's ``*_std_folds.py``: literal lists assigned to names with train/valid/test in them."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as err:
        raise DataError(str(path), f"line {err.lineno}", "a Python file of literal fold lists",
                        f"a syntax error ({err.msg})") from None
    except (UnicodeDecodeError, ValueError) as err:
        raise DataError(str(path), "<encoding>", "UTF-8 Python source", str(err)[:120]) from None
    found: dict[str, list[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id.lower()
            split = next((FOLD_ALIASES[k] for k in ("train", "valid", "dev", "test") if k in name), None)
            if split is None:
                continue
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                continue
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                found[split] = value
    return _folds_from_dict(found, str(path))


def mosi_folds_from_csv(folder=None) -> dict[str, list[str]]:
    """The standard MOSI folds from the real CMU-MOSI folder's ``utterances.csv`` (video_id, split)."""
    folder = folder or os.environ.get("FDMER_LITE_MOSI_DIR")
    if not folder or not (Path(folder) / "utterances.csv").is_file():
        raise DataError("<arguments>", "folds", "the real CMU-MOSI folder (FDMER_LITE_MOSI_DIR) for folds='mosi'",
                        "not found")
    out: dict[str, set] = {s: set() for s in SPLITS}
    path = Path(folder) / "utterances.csv"
    for i, row in enumerate(read_csv(path)[1], start=2):
        if row.get("split") not in out or "video_id" not in row:
            raise DataError(str(path), f"line {i}", f"a split in {SPLITS} and a video_id", repr(row.get("split")))
        out[row["split"]].add(row["video_id"])
    return {s: sorted(v) for s, v in out.items()}


def load_folds(folds, search_dir: Path | None = None) -> tuple[dict[str, list[str]], str]:
    """Resolve ``folds`` (see the module docstring) to ``({split: [video ids]}, description)``."""
    if isinstance(folds, dict):
        return _folds_from_dict(folds, "<folds argument>"), "given as a dict"
    if isinstance(folds, str) and folds.lower() == "mosi":
        return mosi_folds_from_csv(), "standard MOSI folds from the real CMU-MOSI folder's split column"
    if folds is None and search_dir is not None:
        candidates = sorted(search_dir.glob("folds.json")) + sorted(search_dir.glob("*std_folds.py"))
        if not candidates:
            raise DataError(str(search_dir), "folds",
                            "folds: a folds.json ({\"train\": [...], \"valid\": [...], \"test\": [...]}) or "
                            "the SDK's *_std_folds.py beside the .csd files, or folds=... in Python", "none")
        folds = candidates[0]
    if folds is None:
        raise DataError("<arguments>", "folds", "a dict, a .json or *_std_folds.py path, or 'mosi'", "None")
    path = Path(folds)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such folds file")
    if path.suffix == ".py":
        return _folds_from_python(path), f"read as literals from {path.name}"
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise DataError(str(path), "<file>", "JSON", str(err)) from None
    if not isinstance(d, dict):
        raise DataError(str(path), "<top level>", "a dict of fold lists", type(d).__name__)
    return _folds_from_dict(d, str(path)), f"from {path.name}"


def average_over_intervals(frames: np.ndarray, frame_iv: np.ndarray, word_iv: np.ndarray,
                           source: str = "<stream>", field: str = "intervals") -> tuple[np.ndarray, int]:
    """Mean of the frames overlapping each word interval: ``(W, d)`` and the count of empty words.

    A frame [fs, fe) overlaps a word [ws, we) when ``fs < we`` and ``fe > ws`` (a zero-length word
    takes the frames containing its instant). Frames sorted by start must have non-decreasing
    ends, so each word's frames are one contiguous range.
    """
    order = np.argsort(frame_iv[:, 0], kind="stable")
    start, end = frame_iv[order, 0], frame_iv[order, 1]
    if np.any(np.diff(end) < 0):
        raise DataError(source, field, "frames whose end times increase with their start times "
                        "(a fixed-rate stream)", "frames nested inside other frames")
    lo = np.searchsorted(end, word_iv[:, 0], side="right")          # first frame ending after ws
    hi = np.searchsorted(start, word_iv[:, 1], side="left")         # frames starting before we
    zero_len = word_iv[:, 1] <= word_iv[:, 0]                       # instants: frames containing ws
    hi = np.where(zero_len, np.searchsorted(start, word_iv[:, 0], side="right"), hi)
    count = np.maximum(hi - lo, 0)                                  # (W,)
    cs = np.zeros((len(order) + 1, frames.shape[1]), np.float64)    # (T+1, d)
    np.cumsum(frames[order], axis=0, dtype=np.float64, out=cs[1:])
    total = cs[np.maximum(hi, lo)] - cs[lo]                         # (W, d)
    mean = total / np.maximum(count, 1)[:, None]
    return mean, int((count == 0).sum())


def _modality_of(name: str) -> str | None:
    low = name.lower().replace(" ", "").replace("-", "_")
    for key in ("labels", "a", "v", "t"):                           # text last: "word" is generic
        if any(k in low for k in KEYWORDS[key]):
            return key
    return None


def find_streams(folder: Path) -> tuple[dict[str, Path], Path, list[str]]:
    """Guess ``{modality: .csd}`` and the labels file in a folder from file and root names."""
    files = sorted(folder.glob("*.csd"))
    if not files:
        raise DataError(str(folder), "<folder>", "CMU-MultimodalSDK .csd files", "none")
    groups: dict[str, list[Path]] = {}
    ignored = []
    for f in files:
        key = _modality_of(f.stem)
        if key is None:
            ignored.append(f.name)
        else:
            groups.setdefault(key, []).append(f)
    if "t" in groups and len(groups["t"]) > 1:                      # e.g. Words and WordVectors
        vectors = [f for f in groups["t"] if any(k in f.stem.lower() for k in ("vector", "glove", "bert"))]
        if len(vectors) == 1:
            ignored += [f.name for f in groups["t"] if f != vectors[0]]
            groups["t"] = vectors
    for key, fs in groups.items():
        if len(fs) > 1:
            raise DataError(str(folder), f"{key} stream", "one .csd per modality (pass streams={...} to choose)",
                            ", ".join(f.name for f in fs))
    if "labels" not in groups:
        raise DataError(str(folder), "labels", "a labels .csd (a file name containing 'label')",
                        ", ".join(f.name for f in files))
    if "t" not in groups:
        raise DataError(str(folder), "text stream", "a word-level .csd (GloVe / BERT word vectors) to align to",
                        ", ".join(f.name for f in files))
    streams = {m: groups[m][0] for m in ("t", "a", "v") if m in groups}
    return streams, groups["labels"][0], ignored


def align(streams: dict[str, ComputationalSequence], labels: ComputationalSequence,
          folds: dict[str, list[str]], *, seq_len: int | None = None, nonfinite: str = "zero",
          label_column: int = 0, label_range: tuple[float, float] = (-3.0, 3.0),
          progress: bool = True) -> tuple[dict[str, Split], dict]:
    """Word-align every stream, cut the labelled segments, split by ``folds``: ``({split: Split},
    info)``. ``streams`` must hold ``"t"`` (the pivot)."""
    from tqdm.auto import tqdm
    if "t" not in streams:
        raise DataError("<arguments>", "streams", "a text stream 't' (the words everything is aligned to)",
                        str(sorted(streams)))
    fold_of = {v: s for s in SPLITS for v in folds[s]}
    have = {m: set(cs.videos()) for m, cs in streams.items()}
    have["labels"] = set(labels.videos())
    everywhere = set.intersection(*have.values())
    dropped = {m: sorted(v - everywhere) for m, v in have.items() if v - everywhere}
    not_in_folds = sorted(everywhere - set(fold_of))
    fold_missing = sorted(set(fold_of) - everywhere)
    videos = sorted(v for v in everywhere if v in fold_of)
    if not videos:
        raise DataError(str(labels.path), "videos", "videos present in every stream, the labels and the folds",
                        "none in common")

    # pass 1: words and segments (small), to size the output
    plan = []                                   # (vid, split, word order, sorted word intervals, segments)
    no_words, longest = 0, 0
    n_seg = dict.fromkeys(SPLITS, 0)
    for vid in videos:
        wiv = streams["t"].intervals(vid)
        mid = wiv.mean(axis=1)
        order = np.argsort(mid, kind="stable")
        mid = mid[order]
        siv = labels.intervals(vid)
        lab, f = labels.features(vid), labels.field(vid, "features")
        if lab.shape[0] != siv.shape[0] or not (0 <= label_column < lab.shape[1]):
            raise DataError(str(labels.path), f, f"one row per interval with column {label_column}",
                            f"shape {lab.shape}")
        y = lab[:, label_column].astype(np.float64)
        check_labels(y, str(labels.path), f"{f}[:, {label_column}]", *label_range)
        a = np.searchsorted(mid, siv[:, 0], side="left")        # words whose midpoint is in [s, e)
        b = np.searchsorted(mid, siv[:, 1], side="left")
        keep = b > a
        no_words += int((~keep).sum())
        segs = np.flatnonzero(keep)
        if len(segs):
            longest = max(longest, int((b - a)[segs].max()))
        plan.append((vid, fold_of[vid], order, wiv[order], segs, a[segs], b[segs], y[segs]))
        n_seg[fold_of[vid]] += len(segs)
    if sum(n_seg.values()) == 0:
        raise DataError(str(labels.path), "segments", "labelled segments that contain words", "none")
    for s in SPLITS:
        if n_seg[s] == 0:
            raise DataError(str(labels.path), f"{s} fold", f"at least one segment in the {s} fold",
                            "none (check the folds' video ids)")
    if seq_len is not None and seq_len < 1:
        raise DataError("<arguments>", "seq_len", "a positive number of words or None", repr(seq_len))
    L = longest if seq_len is None else int(seq_len)

    # pass 2: align each stream to the words that fall in a segment, scatter into the segments
    widths = {m: cs.features(videos[0]).shape[1] for m, cs in streams.items()}
    out = {s: {m: np.zeros((n_seg[s], L, widths[m]), np.float32) for m in streams}   # (S, L, d_m)
           for s in SPLITS}
    lengths = {s: np.zeros(n_seg[s], np.int64) for s in SPLITS}
    label = {s: np.zeros(n_seg[s], np.float32) for s in SPLITS}
    ids = {s: [] for s in SPLITS}
    fill = dict.fromkeys(SPLITS, 0)
    replaced = dict.fromkeys(streams, 0)
    empty_words = {m: 0 for m in streams if m != "t"}
    truncated = 0
    for vid, split, order, words_iv, segs, a, b, y in tqdm(plan, desc="aligning videos", unit="video",
                                                           disable=not progress):
        if len(segs) == 0:
            continue
        n = np.minimum(b - a, L)                                 # words kept per segment
        truncated += int((b - a > L).sum())
        row0 = fill[split]
        rows = np.repeat(np.arange(row0, row0 + len(segs)), n)   # destination segment of each word
        pos = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)  # position within the segment
        words = np.repeat(a, n) + pos                            # index into the sorted words
        for m, cs in streams.items():
            x, f = cs.features(vid), cs.field(vid, "features")
            if x.shape[1] != widths[m]:
                raise DataError(str(cs.path), f, f"width {widths[m]} (as in {videos[0]})", str(x.shape[1]))
            x, n_bad = treat_nonfinite(x, nonfinite, str(cs.path), f)
            replaced[m] += n_bad
            if m == "t":
                if x.shape[0] != len(order):
                    raise DataError(str(cs.path), f, f"{len(order)} rows (one per word interval)", str(x.shape[0]))
                values = x[order[words]]
            else:
                iv, fi = cs.intervals(vid), cs.field(vid, "intervals")
                if iv.shape[0] != x.shape[0]:
                    raise DataError(str(cs.path), fi, f"{x.shape[0]} rows (one per feature row)",
                                    str(iv.shape[0]))
                values, n_empty = average_over_intervals(x, iv, words_iv[words], str(cs.path), fi)
                empty_words[m] += n_empty
            out[split][m][rows, pos] = values
        sl = slice(row0, row0 + len(segs))
        lengths[split][sl], label[split][sl] = n, y
        ids[split] += [f"{vid}[{k}]" for k in segs]
        fill[split] += len(segs)

    splits = {s: Split(features=out[s], labels=label[s], ids=ids[s], lengths={m: lengths[s] for m in streams})
              for s in SPLITS}
    info = {
        "videos_used": len(videos),
        "videos_dropped": {m: {"count": len(v), "examples": v[:5]} for m, v in dropped.items()},
        "videos_not_in_folds": {"count": len(not_in_folds), "examples": not_in_folds[:5]},
        "fold_videos_missing": {"count": len(fold_missing), "examples": fold_missing[:5]},
        "segments": int(sum(n_seg.values())),
        "segments_without_words": no_words,
        "seq_len": L,
        "seq_len_rule": "longest segment (no truncation)" if seq_len is None
                        else f"seq_len={seq_len} (explicit truncation, first words kept)",
        "truncated_segments": truncated,
        "words_without_frames": empty_words,
        "nonfinite_policy": nonfinite,
        "nonfinite_replaced": {m: v for m, v in replaced.items() if v},
    }
    return splits, info


def load(path, *, streams: dict[str, str | Path] | None = None, labels: str | Path | None = None,
         folds=None, seq_len: int | None = None, nonfinite: str = "zero", label_column: int = 0,
         label_range: tuple[float, float] = (-3.0, 3.0), widths: dict[str, int] | None = None,
         progress: bool = True) -> MultimodalData:
    """Load ``.csd`` files as word-aligned segments (a :class:`MultimodalData`, regression).

    ``path``: a folder of ``.csd`` files (modalities guessed from the names, see
    :func:`find_streams`), or None when ``streams`` and ``labels`` are given.
    ``streams``: ``{"t": words.csd, "a": covarep.csd, "v": facet.csd}`` (any subset holding t).
    """
    folder = Path(path) if path is not None else None
    if folder is not None and folder.is_file():
        folder = folder.parent
    if streams is None or labels is None:
        if folder is None:
            raise DataError("<command line>", "--data", "a folder of .csd files", "none")
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such folder")
        found, found_labels, ignored = find_streams(folder)
        streams = streams or found
        labels = labels or found_labels
    else:
        ignored = []
    label_cs = ComputationalSequence(labels)
    try:
        fold_lists, fold_desc = load_folds(folds, folder)
    except DataError:
        # MOSI without a folds file: the real CMU-MOSI folder's folds, if every labelled video is in them
        try:
            fold_lists = mosi_folds_from_csv() if folds is None else None
        except DataError:
            fold_lists = None
        videos = set(label_cs.videos())
        if fold_lists is None or not videos or not videos <= set().union(*fold_lists.values()):
            label_cs.close()
            raise
        fold_desc = "standard MOSI folds from the real CMU-MOSI folder (no folds file beside the .csd files)"
    opened = {m: ComputationalSequence(p) for m, p in streams.items()}
    try:
        splits, info = align(opened, label_cs, fold_lists, seq_len=seq_len, nonfinite=nonfinite,
                             label_column=label_column, label_range=label_range, progress=progress)
        info.update({
            "format": "CMU-MultimodalSDK computational sequences (.csd)",
            "streams": {m: f"{cs.path.name} (root {cs.root!r})" for m, cs in opened.items()},
            "labels": f"{label_cs.path.name} (root {label_cs.root!r}), column {label_column}",
            "ignored_files": ignored,
            "folds": fold_desc,
            "metadata": {m: {k: (v if len(str(v)) < 200 else str(v)[:200] + "...")
                             for k, v in cs.metadata.items()} for m, cs in opened.items()},
        })
    finally:
        for cs in (*opened.values(), label_cs):
            cs.close()
    source = str(folder) if folder is not None else str(label_cs.path)
    data = MultimodalData("sdk", "regression", splits, info=info, source=source)
    check_widths(data.widths, widths, source)
    info["sizes"] = {s: len(splits[s]) for s in SPLITS}
    info["widths"] = data.widths
    return data


__all__ = ["ComputationalSequence", "read_metadata", "load_folds", "mosi_folds_from_csv",
           "average_over_intervals", "find_streams", "align", "load"]
