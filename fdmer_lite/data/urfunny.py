"""UR-FUNNY (Hasan et al., EMNLP 2019) v1 and v2 feature pickles: binary humour detection.

FDMER (Yang et al., ACM MM 2022, Sec. 4.1) reports accuracy on UR-FUNNY. A folder of pickles
(see :data:`FILES`), read through :mod:`~fdmer_lite.data.safe_pickle`, keyed by segment id:
``data_folds.pkl`` {"train"|"dev"|"test": [ids]} (``dev`` becomes ``valid``); the 300-d GloVe
``word_embedding_list.pkl``; per segment the ``punchline_embedding_indexes`` and
``context_embedding_indexes`` into it (v1 ``word_embedding_indexes_sdk.pkl``, v2
``language_sdk.pkl``), word-aligned COVAREP (81-d) and OpenFace (75-d v1, 371-d v2)
``punchline_features`` / ``context_features``, and a 0/1 label.

The sample is the punchline (``context=True`` prepends the context sentences); sequences are
padded at the end to the longest (``Split.lengths``); ``max_words=K`` keeps the *last* K words.
Streams that disagree on a segment's word count are an error naming the id; a segment missing
from one pickle or with an empty punchline is dropped and counted (``info["dropped"]``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import SPLITS, DataError, MultimodalData, Split
from .mmsa import check_widths, float32_array, treat_nonfinite, why_not_numeric
from .safe_pickle import safe_load

FILES = {
    "folds": "data_folds.pkl",
    "embeddings": "word_embedding_list.pkl",
    "text_v1": "word_embedding_indexes_sdk.pkl",
    "text_v2": "language_sdk.pkl",
    "a": "covarep_features_sdk.pkl",
    "v": "openface_features_sdk.pkl",
    "labels": "humor_label_sdk.pkl",
}
WIDTHS = {1: {"t": 300, "a": 81, "v": 75}, 2: {"t": 300, "a": 81, "v": 371}}
FOLD_KEYS = {"train": ("train",), "valid": ("dev", "valid", "val"), "test": ("test",)}


def detect_version(folder: Path) -> int:
    """2 or 1, from which text pickle the folder holds."""
    if (folder / FILES["text_v2"]).is_file():
        return 2
    if (folder / FILES["text_v1"]).is_file():
        return 1
    raise FileNotFoundError(f"{folder}: neither {FILES['text_v2']} (UR-FUNNY v2) nor {FILES['text_v1']} (v1) found")


def _load_dict(path: Path, what: str) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing ({what})")
    obj = safe_load(path)
    if not isinstance(obj, dict):
        raise DataError(str(path), "<top level>", f"a dict ({what})", type(obj).__name__)
    return obj


def _matrix(value, source: str, field: str, width: int | None = None) -> np.ndarray:
    if isinstance(value, np.ndarray) and value.dtype.kind == "c":
        raise DataError(source, field, "a real (n_words, width) array",
                        f"complex dtype {value.dtype} (the imaginary part would be lost)")
    x = float32_array(value, source, field, "a numeric (n_words, width) array")
    if x.ndim == 1 and x.size == 0:
        x = x.reshape(0, width or 0)
    if x.ndim != 2:
        raise DataError(source, field, "a 2-d (n_words, width) array", f"shape {x.shape}")
    if width is not None and x.shape[0] and x.shape[1] != width:
        raise DataError(source, field, f"width {width}", str(x.shape[1]))
    return x


def load(path, *, version: int | None = None, context: bool = False, max_words: int | None = None,
         nonfinite: str = "zero", widths: dict[str, int] | None = None) -> MultimodalData:
    """Load a UR-FUNNY v1/v2 feature folder as a :class:`MultimodalData` (binary classification;
    ``nonfinite`` as in :func:`fdmer_lite.data.mmsa.treat_nonfinite`)."""
    if path is None:
        raise DataError("<command line>", "--data", "the UR-FUNNY feature folder (data_folds.pkl, ...)", "none")
    folder = Path(path)
    if folder.is_file():
        folder = folder.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    version = version or detect_version(folder)
    if version not in WIDTHS:
        raise DataError("<arguments>", "version", "1 or 2", repr(version))
    expected = WIDTHS[version]
    text_file = folder / FILES[f"text_v{version}"]

    folds_raw = _load_dict(folder / FILES["folds"], "the train/dev/test id lists")
    folds = {}
    for s, keys in FOLD_KEYS.items():
        key = next((k for k in keys if k in folds_raw), None)
        if key is None:
            raise DataError(str(folder / FILES["folds"]), "<top level>", "keys 'train', 'dev', 'test'",
                            str(sorted(map(str, folds_raw))))
        if not isinstance(folds_raw[key], (list, tuple, np.ndarray)):
            raise DataError(str(folder / FILES["folds"]), key, "a list of sample ids",
                            type(folds_raw[key]).__name__)
        folds[s] = list(folds_raw[key])

    emb_path = folder / FILES["embeddings"]
    if not emb_path.is_file():
        raise FileNotFoundError(f"{emb_path}: missing (the word vectors the text indexes point into)")
    emb = _matrix(safe_load(emb_path), str(emb_path), "<list of word vectors>", expected["t"])
    emb, emb_bad = treat_nonfinite(emb, nonfinite, str(emb_path), "<list of word vectors>")
    text = _load_dict(text_file, "word indexes per segment")
    streams = {"a": _load_dict(folder / FILES["a"], "COVAREP per word"),
               "v": _load_dict(folder / FILES["v"], "OpenFace per word")}
    labels = _load_dict(folder / FILES["labels"], "humour labels")

    replaced = {"t": emb_bad, "a": 0, "v": 0}
    dropped = {"missing_text": [], "missing_a": [], "missing_v": [], "missing_label": [], "empty_punchline": []}
    truncated = 0
    per_split: dict[str, dict] = {}
    for s in SPLITS:
        seqs = {"t": [], "a": [], "v": []}
        ys, ids = [], []
        for sid in folds[s]:
            missing = [name for name, d in (("text", text), ("a", streams["a"]), ("v", streams["v"]),
                                            ("label", labels)) if sid not in d]
            if missing:
                dropped[f"missing_{missing[0]}"].append(sid)
                continue
            parts = {"t": [], "a": [], "v": []}
            entry = text[sid]
            idx_key = "punchline_embedding_indexes"
            if not isinstance(entry, dict) or idx_key not in entry:
                raise DataError(str(text_file), f"{sid}", f"a dict with {idx_key!r}",
                                f"keys {sorted(map(str, entry)) if isinstance(entry, dict) else type(entry).__name__}")
            sentences = [entry[idx_key]]
            if context:
                sentences = list(entry.get("context_embedding_indexes", [])) + sentences
            for sent in sentences:
                try:
                    idx = np.asarray(sent, dtype=np.int64).reshape(-1)
                except (TypeError, ValueError, RecursionError) as err:
                    raise DataError(str(text_file), f"{sid}.{idx_key}", "a list of integer word indexes",
                                    why_not_numeric(sent) or f"{type(sent).__name__} ({err})") from None
                if idx.size and (idx.min() < 0 or idx.max() >= len(emb)):
                    raise DataError(str(text_file), f"{sid}.{idx_key}", f"word indexes in [0, {len(emb)})",
                                    f"range [{idx.min()}, {idx.max()}]")
                parts["t"].append(emb[idx])
            for m in ("a", "v"):
                src = str(folder / FILES[m])
                e = streams[m][sid]
                if not isinstance(e, dict) or "punchline_features" not in e:
                    raise DataError(src, f"{sid}", "a dict with 'punchline_features'", type(e).__name__)
                chunks = ([*e.get("context_features", [])] if context else []) + [e["punchline_features"]]
                for j, c in enumerate(chunks):
                    x = _matrix(c, src, f"{sid}.{'punchline' if j == len(chunks) - 1 else 'context'}_features",
                                expected[m])
                    x, n_bad = treat_nonfinite(x, nonfinite, src, f"{sid}.features")
                    replaced[m] += n_bad
                    parts[m].append(x)
            seq = {m: np.concatenate(p, axis=0) if p else np.zeros((0, expected[m]), np.float32)
                   for m, p in parts.items()}
            n_words = {m: len(x) for m, x in seq.items()}
            if len(set(n_words.values())) != 1:
                raise DataError(str(folder), f"{sid} word counts",
                                "the same number of words in text, COVAREP and OpenFace", str(n_words))
            if n_words["t"] == 0 or len(parts["t"][-1]) == 0:
                dropped["empty_punchline"].append(sid)
                continue
            y = labels[sid]
            try:
                y = np.asarray(y).reshape(-1)
            except (TypeError, ValueError, RecursionError):
                y = np.zeros(0)                          # refused just below, with the value shown
            if y.size != 1 or y[0] not in (0, 1):
                raise DataError(str(folder / FILES["labels"]), f"{sid}", "a humour label 0 or 1",
                                repr(labels[sid])[:80])
            for m in seqs:
                seqs[m].append(seq[m])
            ys.append(int(y[0]))
            ids.append(str(sid))
        if not ys:
            raise DataError(str(folder / FILES["folds"]), s, "at least one usable segment", "none")
        per_split[s] = {"seqs": seqs, "y": ys, "ids": ids}

    longest = max(len(x) for d in per_split.values() for x in d["seqs"]["t"])
    if max_words is not None and max_words < 1:
        raise DataError("<arguments>", "max_words", "a positive number of words or None", repr(max_words))
    L = longest if max_words is None else int(max_words)
    splits = {}
    for s, d in per_split.items():
        n = len(d["y"])
        lengths = np.zeros(n, np.int64)
        feats = {m: np.zeros((n, L, expected[m]), np.float32) for m in ("t", "a", "v")}   # (N, L, d_m)
        for i in range(n):
            k = len(d["seqs"]["t"][i])
            if k > L:
                truncated += 1
            keep = min(k, L)
            for m in feats:
                feats[m][i, :keep] = d["seqs"][m][i][k - keep:]        # keep the last words
            lengths[i] = keep
        splits[s] = Split(features=feats, labels=np.array(d["y"], np.int64), ids=d["ids"],
                          lengths={m: lengths for m in feats})
    source = str(folder)
    data = MultimodalData("urfunny", "classification", splits, n_classes=2, source=source)
    check_widths(data.widths, widths, source)
    data.info.update({
        "format": f"UR-FUNNY v{version} pickles",
        "version": version,
        "context": context,
        "seq_len": L,
        "seq_len_rule": "longest sample (no truncation)" if max_words is None
                        else f"max_words={max_words} (explicit truncation, last words kept)",
        "truncated_samples": truncated,
        "dropped": {k: {"count": len(v), "examples": v[:5]} for k, v in dropped.items() if v},
        "nonfinite_policy": nonfinite,
        "nonfinite_replaced": {m: v for m, v in replaced.items() if v},
        "sizes": {s: len(splits[s]) for s in SPLITS},
        "humour_rate": {s: float(np.mean(splits[s].labels)) for s in SPLITS},
        "folds": "data_folds.pkl (speaker-independent; 'dev' used as valid)",
    })
    return data


__all__ = ["load", "detect_version", "FILES", "WIDTHS"]
