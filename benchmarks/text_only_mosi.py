"""How far the text alone goes on real CMU-MOSI: FDMER's text encoder with frozen or fine-tuned GloVe.

    python benchmarks/text_only_mosi.py [--data DIR] [--seeds 0,1,2] [--mode frozen,finetuned]
                                        [--threads 1]

A diagnostic for issue 3, not part of FDMER. ``benchmarks/real_mosi.py`` finds FDMER (text +
audio) no better than a TF-IDF ridge on these inputs. This script asks how much of that is the
fixed 50-d word vectors: it trains a single text encoder of Eq. 1
(``fdmer_lite.model.encoders.ModalityEncoder`` with the ``mosi_text_audio`` preset's width,
layers, heads, dropout and attention pooling) plus one linear output, with the preset's Adam
settings, batch size, MSE loss and early stopping on the validation MSE, in two forms:

* **frozen**: the input is exactly the text FDMER gets from ``mosi_text_audio.load`` (GloVe 6B
  50-d, standardised over the training split's known tokens, unknown words 0);
* **finetuned**: the same vectors as the initial rows of a learned word-embedding table.
  Words seen at least ``--min-count`` times in the training transcripts get a row of their own;
  every other word shares one fixed zero row (the mean training word). During training, each
  word is replaced by that row with probability ``--word-dropout``, and the table learns at its own
  ``--embedding-lr``.

Fine-tuning gives the model what TF-IDF has and fixed GloVe lacks: the identity of each word
(GloVe 50-d puts "good" and "bad" close together). The paper uses fixed features, so a
fine-tuned FDMER would be an extension beyond it.

Prints one row per mode (mean ± std over the seeds, test split of 686 utterances) beside the
TF-IDF ridge of ``real_mosi.py``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def word_ids(data, folder: Path, min_count: int):
    """Token ids aligned with ``data``'s text features, and the initial embedding table.

    Row 0 is the padding/rare-word row (zeros, the mean training word after standardising).
    """
    from fdmer_lite.data.mosi_text_audio import load_glove, read_rows, tokenize

    vocab, vectors = load_glove()
    tokens = {r["id"]: tokenize(r["transcript"], vocab)[0] for r in read_rows(folder)}
    counts = Counter(w for i in data.splits["train"].ids for w in tokens[i])
    words = sorted(w for w, c in counts.items() if c >= min_count)
    index = {w: k + 1 for k, w in enumerate(words)}
    mean = np.asarray(data.info["text_train_mean"], np.float32)
    std = np.asarray(data.info["text_train_std"], np.float32)
    table = np.zeros((len(words) + 1, vectors.shape[1]), np.float32)
    for w, k in index.items():
        if w in vocab:
            table[k] = (vectors[vocab[w]] - mean) / std
    seq_len = data.info["seq_len"]
    ids = {}
    for name, split in data.splits.items():
        out = np.zeros((len(split.ids), seq_len), np.int64)
        for n, i in enumerate(split.ids):
            row = [index.get(w, 0) for w in tokens[i]]
            out[n, :len(row)] = row
        ids[name] = out
    return ids, table


def train_one(data, mode: str, seed: int, ids=None, table=None, *, word_dropout: float,
              embedding_lr: float) -> dict:
    import copy

    import torch
    from torch import nn

    from fdmer_lite.data.base import SplitDataset
    from fdmer_lite.data.mosi_text_audio import mosi_text_audio_config
    from fdmer_lite.metrics import regression_metrics
    from fdmer_lite.model.encoders import ModalityEncoder
    from fdmer_lite.train import improves

    cfg = mosi_text_audio_config()
    m, t = cfg.model, cfg.train
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = nn.ModuleDict({
        "encoder": ModalityEncoder(50, model_dim=m.model_dim, layers=m.layers_t, heads=m.heads,
                                   ff_mult=m.ff_mult, dropout=m.dropout, d_k=m.d_k, pooling=m.pooling,
                                   max_len=data.info["seq_len"], attn_dropout=m.attn_dropout),
        "head": nn.Linear(m.d_k, 1)})
    groups = [{"params": list(net.parameters())}]
    if mode == "finetuned":
        # padding_idx 0: row 0 (rare words, padding) gets no gradient and stays the zero vector
        net["embedding"] = nn.Embedding.from_pretrained(torch.from_numpy(table), freeze=False, padding_idx=0)
        groups.append({"params": [net["embedding"].weight], "lr": embedding_lr, "weight_decay": 0.0})
    opt = torch.optim.Adam(groups, lr=t.lr, weight_decay=t.weight_decay)
    splits = {s: SplitDataset(sp, data.task) for s, sp in data.splits.items()}

    def predict(split, rows):
        """(prediction, label) for the samples ``rows`` of ``split``; dropout as ``net`` is set."""
        batch = splits[split].collate(rows)
        x = batch.features["t"]                                              # (B, L, 50)
        if "embedding" in net:
            words = torch.from_numpy(ids[split][rows])                       # (B, L)
            if net.training and word_dropout > 0:
                words = words.masked_fill(torch.rand(words.shape) < word_dropout, 0)
            x = net["embedding"](words)
        return net["head"](net["encoder"](x, batch.masks["t"])).squeeze(-1), batch.label

    def evaluate(split):
        net.eval()
        with torch.no_grad():
            pred, label = predict(split, np.arange(len(data.splits[split])))
        return pred.numpy(), label.numpy()

    best, best_state, since, epoch = np.inf, None, 0, 0
    for epoch in range(1, t.epochs + 1):
        net.train()
        order = rng.permutation(len(data.splits["train"]))
        for b in range(0, len(order), t.batch_size):
            pred, label = predict("train", order[b:b + t.batch_size])
            loss = nn.functional.mse_loss(pred, label)
            opt.zero_grad()
            loss.backward()
            opt.step()
        pred, label = evaluate("valid")
        valid = float(np.mean((pred - label) ** 2))
        if improves(valid, best):            # the trainer's rule for early stopping
            best, since, best_state = valid, 0, copy.deepcopy(net.state_dict())
        else:
            since += 1
            if since >= t.patience:
                break
    net.load_state_dict(best_state)
    result = regression_metrics(*evaluate("test"))
    result["epochs_run"] = epoch
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=None, help="the CMU-MOSI folder (default: $FDMER_LITE_MOSI_DIR)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--mode", default="frozen,finetuned", help="frozen, finetuned or both (comma-separated)")
    p.add_argument("--min-count", type=int, default=2, help="training-split count for a word's own row")
    p.add_argument("--word-dropout", type=float, default=0.1)
    p.add_argument("--embedding-lr", type=float, default=3e-4)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)

    import torch
    torch.set_num_threads(a.threads)
    from fdmer_lite.data import DataError
    from fdmer_lite.data.mosi_text_audio import load, resolve_dir
    from real_mosi import fmt, tfidf_ridge

    modes = [s.strip() for s in a.mode.split(",")]
    if any(m not in ("frozen", "finetuned") for m in modes):
        p.error(f"--mode takes frozen and/or finetuned, got {a.mode!r}")
    try:
        seeds = [int(s) for s in a.seeds.split(",")]
    except ValueError:
        p.error(f"--seeds takes comma-separated integers, got {a.seeds!r}")
    try:
        folder = resolve_dir(a.data)
        data = load(folder)
    except (DataError, FileNotFoundError) as err:
        print(f"text_only_mosi: {err}", file=sys.stderr)
        return 2
    ids = table = None
    if "finetuned" in modes:
        ids, table = word_ids(data, folder, a.min_count)
        print(f"fine-tuned table: {table.shape[0] - 1} words seen >= {a.min_count} times in train "
              f"(+1 shared row), word dropout {a.word_dropout}, embedding lr {a.embedding_lr}")
    keys = ["mae", "corr", "acc7", "acc2_has0", "acc2_non0"]
    print("| text encoder alone (test, 686) | MAE | Corr | Acc7 | Acc2 has0 | Acc2 non0 | epochs | s a seed |")
    print("|---|---|---|---|---|---|---|---|")
    for mode in modes:
        runs, start = [], time.perf_counter()
        for seed in seeds:
            runs.append(train_one(data, mode, seed, ids, table, word_dropout=a.word_dropout,
                                  embedding_lr=a.embedding_lr))
        secs = (time.perf_counter() - start) / len(seeds)
        cells = [fmt([r[k] for r in runs], k.startswith("acc")) for k in keys]
        print(f"| {mode} GloVe 50-d ({len(seeds)} seeds) | " + " | ".join(cells)
              + f" | {', '.join(str(r['epochs_run']) for r in runs)} | {secs:.0f} |", flush=True)
    ridge, alpha = tfidf_ridge(folder)
    print(f"| TF-IDF 1-2-gram ridge (alpha {alpha:g}) | "
          + " | ".join(fmt([ridge[k]], k.startswith("acc")) for k in keys) + " | - | - |")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
