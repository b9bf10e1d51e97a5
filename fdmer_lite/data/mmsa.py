"""MMSA toolkit pickles: ``aligned_50.pkl`` and ``unaligned_50.pkl`` (CMU-MOSI, CMU-MOSEI, CH-SIMS).

The features FDMER (Yang et al., ACM MM 2022, Sec. 4.1) is usually run on. One pickled dict::

    {"train" | "valid" | "test": {
        "text": (N, 50, 768) BERT (or 300: GloVe) -> t,  "text_bert": (N, 3, 50) ids, mask, segments
        "audio": (N, L_a, d_a) -> a,  "vision": (N, L_v, d_v) -> v,  "regression_labels": (N,)
        "id", "raw_text": (N,) str,  "audio_lengths", "vision_lengths": (N,) (unaligned only)}}

Widths (t/a/v): MOSI 768/5/20, MOSEI 768/74/35, SIMS 768/33/709. The file is read through
:mod:`~fdmer_lite.data.safe_pickle`. ``*_lengths`` become ``Split.lengths`` (padding at the end;
non-zero padded steps counted in ``info["nonzero_padding"]``; a length 0 becomes 1, counted in
``info["zero_lengths_set_to_1"]``); the text mask is row 1 of ``text_bert`` when it is a prefix
of ones. ``nonfinite="zero"`` sets NaN/inf features to 0 and counts them
(``info["nonfinite_replaced"]``), ``"error"`` refuses them; non-finite labels are always an
error. Nothing is truncated or padded: shapes, lengths, labels ([-3, 3]), widths (``widths=``),
magnitudes (``base.FEATURE_LIMIT``) and split sizes (``base.MIN_SAMPLES``) are checked.
"""

from __future__ import annotations

import numpy as np

from .base import SPLITS, DataError, MultimodalData, Split, check_magnitude, check_split_size
from .safe_pickle import safe_load

STREAMS = {"t": "text", "a": "audio", "v": "vision"}
LENGTH_KEYS = {"a": "audio_lengths", "v": "vision_lengths"}
LABEL_KEY = "regression_labels"
NONFINITE_POLICIES = ("zero", "error")

KNOWN = {   # the MMSA releases: widths (t, a, v) and split sizes (train, valid, test)
    "MOSI": {"widths": {"t": 768, "a": 5, "v": 20}, "sizes": (1284, 229, 686)},
    "MOSEI": {"widths": {"t": 768, "a": 74, "v": 35}, "sizes": (16326, 1871, 4659)},
    "SIMS": {"widths": {"t": 768, "a": 33, "v": 709}, "sizes": (1368, 456, 457)},
}


def treat_nonfinite(x: np.ndarray, policy: str, source: str, field: str) -> tuple[np.ndarray, int]:
    """``(x, count changed)``: ``"zero"`` sets NaN, +inf and -inf to 0 (in place), ``"error"``
    refuses them; a stream with no finite value, or beyond ``FEATURE_LIMIT``, is a DataError."""
    if policy not in NONFINITE_POLICIES:
        raise DataError("<arguments>", "nonfinite", f"one of {NONFINITE_POLICIES}", repr(policy))
    bad = ~np.isfinite(x)
    n = int(bad.sum())
    if n and n == x.size:
        raise DataError(source, field, "a stream with some finite values",
                        f"all {n} entries NaN/inf (it would be all zeros; drop the modality with --modalities)")
    if n and policy == "error":
        raise DataError(source, field, "finite values (nonfinite='error')",
                        f"{n} NaN/inf entries ({int(np.isnan(x).sum())} NaN, "
                        f"{int(np.isneginf(x).sum())} -inf, {int(np.isposinf(x).sum())} +inf)")
    if n:
        if not x.flags.writeable:
            x = x.copy()
        x[bad] = 0                      # the arrays are ours (freshly unpickled or read)
    check_magnitude(x, source, field)
    return x, n


def _is_sequence(x) -> bool:
    return isinstance(x, (list, tuple)) or (isinstance(x, np.ndarray) and x.ndim > 0)


def why_not_numeric(value, budget: int = 1_000_000) -> str | None:
    """In words, why ``value`` cannot become a numeric array, level by level (an entry that
    contains itself, a non-number, numbers beside sequences, uneven lengths), e.g. ``"sequences
    of uneven lengths: [0] holds 1 entries, [1] holds 2"``; None if nothing is found within
    ``budget`` entries."""
    if not _is_sequence(value):
        return None if isinstance(value, (bool, int, float, np.bool_, np.number)) else type(value).__name__
    level = [("", value, frozenset())]                   # (where, a sequence, its ancestors' ids)
    # children: (where, the entry if it is a sequence to look into, its length or None, ancestors)
    while level and budget > 0:
        children = []
        for where, x, above in level:
            if isinstance(x, np.ndarray) and x.dtype != object:
                if x.dtype.kind not in "biuf":
                    return f"an array of dtype {x.dtype} at {where or 'the top'}"
                children += [(f"{where}[{i}]", None, len(x[i]) if x.ndim > 1 else None, None) for i in range(len(x))]
                continue
            inside = above | {id(x)}
            for i, e in enumerate(x):                    # along the first axis
                here = f"{where}[{i}]"
                if id(e) in inside:
                    kind = "an object array" if isinstance(e, np.ndarray) else f"a {type(e).__name__}"
                    return f"{kind} that contains itself (at {here})"
                if _is_sequence(e):
                    children.append((here, e, len(e), inside))
                elif isinstance(e, (bool, int, float, np.bool_, np.number)):
                    children.append((here, None, None, None))
                else:
                    return f"a {type(e).__name__} at {here}, not a number"
            budget -= len(x)
        seqs = [c for c in children if c[2] is not None]
        if seqs and len(seqs) != len(children):
            num = next(c for c in children if c[2] is None)
            return f"numbers beside sequences: {num[0]} is a number, {seqs[0][0]} a sequence of {seqs[0][2]}"
        uneven = [c for c in seqs if c[2] != seqs[0][2]]
        if uneven:
            return (f"sequences of uneven lengths: {seqs[0][0]} holds {seqs[0][2]} entries, "
                    f"{uneven[0][0]} holds {uneven[0][2]}")
        level = [(here, e, inside) for here, e, _, inside in seqs if e is not None]
    return None


def float32_array(value, source: str, field: str, expected: str) -> np.ndarray:
    """``np.asarray(value, dtype=np.float32)``, or a DataError naming the field: not numbers
    (:func:`why_not_numeric`), or beyond float32's range (the cast would make them inf)."""
    try:
        with np.errstate(over="raise"):
            return np.asarray(value, dtype=np.float32)
    except FloatingPointError:
        big = np.abs(np.asarray(value, dtype=np.float64))
        limit = float(np.finfo(np.float32).max)
        raise DataError(source, field, f"numbers within float32's range (magnitude at most {limit:.3g})",
                        f"{int(np.count_nonzero(big > limit))} value(s) beyond it, the largest of magnitude "
                        f"{float(np.max(big)):.3g}") from None
    except (TypeError, ValueError, RecursionError) as err:
        raise DataError(source, field, expected, why_not_numeric(value) or f"{type(value).__name__} ({err})") from None


def as_float_array(value, source: str, field: str, ndim: int | tuple[int, ...]) -> np.ndarray:
    """A float32 array of the given rank (or one of the given ranks), or a DataError naming the field."""
    ranks = ndim if isinstance(ndim, tuple) else (ndim,)
    ndim = ranks[0]
    raw = value if isinstance(value, np.ndarray) else None
    if raw is not None and raw.dtype.kind == "c":
        raise DataError(source, field, f"a real {ndim}-d array", f"complex dtype {raw.dtype} (the imaginary "
                        "part would be lost)")
    if raw is not None and raw.dtype.kind in "USO" and raw.dtype != object:
        raise DataError(source, field, f"a numeric {ndim}-d array", f"strings (dtype {raw.dtype})")
    x = float32_array(value, source, field, f"a numeric {ndim}-d array")
    if x.ndim not in ranks:
        raise DataError(source, field, f"a {ndim}-d array", f"shape {x.shape}")
    return x


def check_widths(widths: dict[str, int], expected: dict[str, int] | None, source: str) -> None:
    """Compare the data's input widths with the ones the model was configured for."""
    for m, w in (expected or {}).items():
        if m in widths and widths[m] != w:
            raise DataError(source, f"{STREAMS.get(m, m)} width", f"{w} (as configured)", str(widths[m]))


def check_labels(y: np.ndarray, source: str, field: str, low: float = -3.0, high: float = 3.0) -> None:
    if not np.all(np.isfinite(y)):
        raise DataError(source, field, "finite labels", f"{int((~np.isfinite(y)).sum())} NaN/inf")
    if y.size and (y.min() < low or y.max() > high):
        raise DataError(source, field, f"labels in [{low:g}, {high:g}]",
                        f"range [{float(y.min()):.3f}, {float(y.max()):.3f}]")


def _lengths(value, n: int, seq_len: int, source: str, field: str) -> tuple[np.ndarray, int]:
    try:
        ln = np.asarray(value)
    except (TypeError, ValueError, RecursionError) as err:
        raise DataError(source, field, f"{n} integer lengths (one per sample)",
                        why_not_numeric(value) or f"{type(value).__name__} ({err})") from None
    if ln.dtype.kind not in "iuf" or ln.shape != (n,) or (n and not np.all(np.equal(np.mod(ln, 1), 0))):
        raise DataError(source, field, f"{n} integer lengths (one per sample)", f"shape {ln.shape}, dtype {ln.dtype}")
    ln = ln.astype(np.int64)
    if n and (ln.min() < 0 or ln.max() > seq_len):
        raise DataError(source, field, f"lengths between 0 and the stored sequence length {seq_len}",
                        f"range [{ln.min()}, {ln.max()}] (the features would have to be truncated)")
    zeros = int((ln == 0).sum())
    return np.maximum(ln, 1), zeros


def _text_lengths(text_bert, n: int, seq_len: int) -> np.ndarray | None:
    """Row 1 of ``text_bert`` (the attention mask) as lengths, if it is a prefix of ones."""
    try:
        tb = np.asarray(text_bert, dtype=np.float64)
    except (TypeError, ValueError, RecursionError):      # not an array of numbers: no mask
        return None
    if tb.ndim != 3 or tb.shape[0] != n or tb.shape[1] < 2 or tb.shape[2] != seq_len:
        return None
    mask = tb[:, 1, :]
    ln = mask.sum(axis=1).astype(np.int64)
    prefix = np.arange(seq_len)[None, :] < ln[:, None]
    if not np.array_equal(mask.astype(bool), prefix) or (n and ln.min() < 1):
        return None
    return ln


def nonzero_padding(x: np.ndarray, lengths: np.ndarray) -> int:
    """How many padded steps (at or after each sample's length) hold non-zero values."""
    pad = np.arange(x.shape[1])[None, :] >= lengths[:, None]           # (N, L)
    return int((np.any(x != 0, axis=2) & pad).sum())


def guess_dataset(widths: dict[str, int], sizes: dict[str, int]) -> str | None:
    for name, k in KNOWN.items():
        if all(widths.get(m) in (w, 300 if m == "t" else w) for m, w in k["widths"].items() if m in widths):
            return name
    for name, k in KNOWN.items():
        if tuple(sizes[s] for s in SPLITS) == k["sizes"]:
            return name
    return None


def load(path, *, text_key: str = "text", nonfinite: str = "zero", widths: dict[str, int] | None = None,
         expected_sizes: dict[str, int] | None = None, label_range: tuple[float, float] = (-3.0, 3.0)
         ) -> MultimodalData:
    """Load an MMSA ``aligned_50.pkl`` / ``unaligned_50.pkl`` as a :class:`MultimodalData`.

    ``text_key``: the text feature array (``text_bert`` holds token ids); ``widths``: the widths
    the model expects, e.g. ``{"t": 768, "a": 5}``; ``expected_sizes``: e.g. ``{"train": 1284, ...}``.
    """
    if path is None:
        raise DataError("<command line>", "--data", "the path of an MMSA aligned_50.pkl or unaligned_50.pkl", "none")
    if text_key == "text_bert":
        raise DataError(str(path), "text_key", "a feature array such as 'text'",
                        "'text_bert' (BERT token ids, attention mask and segment ids: not features)")
    if nonfinite not in NONFINITE_POLICIES:
        raise DataError("<arguments>", "nonfinite", f"one of {NONFINITE_POLICIES}", repr(nonfinite))
    source = str(path)
    raw = safe_load(path)
    if not isinstance(raw, dict):
        raise DataError(source, "<top level>", "a dict with keys 'train', 'valid', 'test'", type(raw).__name__)
    missing = [s for s in SPLITS if s not in raw]
    if missing:
        raise DataError(source, "<top level>", f"keys {list(SPLITS)}", f"keys {sorted(map(str, raw))}")
    keys = dict(STREAMS, t=text_key)
    splits, replaced, zero_len, padding, text_mask = {}, {}, {}, {}, {}
    for s in SPLITS:
        part = raw[s]
        if not isinstance(part, dict):
            raise DataError(source, s, "a dict of arrays", type(part).__name__)
        if LABEL_KEY not in part:
            raise DataError(source, f"{s}.{LABEL_KEY}", "the regression labels (N,)",
                            f"keys {sorted(map(str, part))}")
        y = as_float_array(part[LABEL_KEY], source, f"{s}.{LABEL_KEY}", (1, 2))
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise DataError(source, f"{s}.{LABEL_KEY}", "shape (N,)", f"shape {y.shape}")
        check_labels(y, source, f"{s}.{LABEL_KEY}", *label_range)
        n = y.shape[0]
        check_split_size(source, s, n, f"{s}.{LABEL_KEY}")
        feats, lengths = {}, {}
        for m, key in keys.items():
            if key not in part:
                continue
            f = f"{s}.{key}"
            x = as_float_array(part[key], source, f, 3)
            if x.shape[0] != n:
                raise DataError(source, f, f"{n} samples (as many as {LABEL_KEY})", str(x.shape[0]))
            x, count = treat_nonfinite(x, nonfinite, source, f)
            replaced[f] = count
            feats[m] = x
            if m in LENGTH_KEYS and LENGTH_KEYS[m] in part:
                lf = f"{s}.{LENGTH_KEYS[m]}"
                lengths[m], zero_len[lf] = _lengths(part[LENGTH_KEYS[m]], n, x.shape[1], source, lf)
                padding[f] = nonzero_padding(x, lengths[m])
            elif m == "t" and "text_bert" in part:
                ln = _text_lengths(part["text_bert"], n, x.shape[1])
                text_mask[s] = ln is not None
                if ln is not None:
                    lengths[m] = ln
        if not feats:
            raise DataError(source, s, f"at least one of {list(keys.values())}", f"keys {sorted(map(str, part))}")
        ids = part.get("id")
        ids = [str(i) for i in (ids if ids is not None else [f"{s}_{i}" for i in range(n)])]
        if len(ids) != n:
            raise DataError(source, f"{s}.id", f"{n} ids (one per label)", str(len(ids)))
        splits[s] = Split(features=feats, labels=y, ids=ids, lengths=lengths)
    # the text mask must be usable in every split, or in none
    if text_mask and not all(text_mask.values()):
        for sp in splits.values():
            sp.lengths.pop("t", None)
    sizes = {s: len(splits[s]) for s in SPLITS}
    if expected_sizes is not None and sizes != dict(expected_sizes):
        raise DataError(source, "split sizes", str(dict(expected_sizes)), str(sizes))
    data = MultimodalData("mmsa", "regression", splits, source=source)
    check_widths(data.widths, widths, source)
    aligned = not any(k in raw["train"] for k in LENGTH_KEYS.values())
    data.info.update({
        "format": "MMSA pickle (" + ("aligned" if aligned else "unaligned") + ")",
        "dataset": guess_dataset(data.widths, sizes),
        "sizes": sizes,
        "widths": data.widths,
        "seq_lengths": data.seq_lengths,
        "masked": sorted({m for sp in splits.values() for m in sp.lengths}),
        "nonfinite_policy": nonfinite,
        "nonfinite_replaced": {k: v for k, v in replaced.items() if v},
        "nonfinite_replaced_total": int(sum(replaced.values())),
        "zero_lengths_set_to_1": {k: v for k, v in zero_len.items() if v},
        "nonzero_padding": {k: v for k, v in padding.items() if v},
        "text_mask": "text_bert row 1" if text_mask and all(text_mask.values()) else "none",
    })
    return data


__all__ = ["load", "treat_nonfinite", "check_widths", "check_labels", "as_float_array", "float32_array",
           "why_not_numeric", "nonzero_padding", "KNOWN", "STREAMS"]
