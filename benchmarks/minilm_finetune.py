"""Fine-tuning the top layers of all-MiniLM-L6-v2 with FDMER on real CMU-MOSI t + a: does it fit?

    FDMER_LITE_THREADS=1 python benchmarks/minilm_finetune.py [--data DIR] [--layers 1,2]
        [--seeds 0,1,2] [--train auto|yes|no] [--results benchmarks/results/real-mosi-text-audio.md]

Issue 18, item 4 ("optional fine-tuning of the encoder's top layers, if it fits two cores in
reasonable time; report it either way"). What is measured, at ``$FDMER_LITE_THREADS`` torch
threads (default 1), with the preset ``mosi_text_audio_minilm``:

1. The encoder's lower ``6 - N`` layers stay frozen, so their outputs are computed once (one pass
   of the packaged encoder over the 2,199 transcripts, ``output_hidden_states``) and kept in
   memory. The top ``N`` layers (``BertLayer`` modules of the same verified weights) run inside
   FDMER's forward pass and are trained with it (their own Adam group at ``--text-lr``); their
   output is standardised with the same per-dimension train-token mean and std as the frozen
   features, so at step 0 FDMER sees exactly its frozen input. Check printed and reported: the
   top layers applied to the cached lower states reproduce the cached last hidden states (largest
   absolute difference).
2. **Epoch time**: ``Trainer.fit`` for ``--timed-epochs`` epochs (training and the validation
   pass) for frozen features and for N = 1, 2; the median epoch, and its ratio to the frozen one.
3. **Fits?** an epoch under ``--max-ratio`` (3) times the frozen one and an estimated full run
   (the frozen runs' mean number of epochs, early stopping included, times the epoch) under
   ``--max-run-min`` (15) minutes. With ``--train auto`` the fitting N are trained for
   ``--seeds`` (frozen too, the same code path) and their test metrics reported beside frozen.

``--results FILE`` replaces (or appends) the section "Fine-tuning the encoder's top layers" of
FILE with what this run measured.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fdmer_lite.config import thread_count  # noqa: E402
from fdmer_lite.data import mosi_text_audio as mta  # noqa: E402
from fdmer_lite.data import text_minilm  # noqa: E402
from fdmer_lite.data.base import SPLITS, MultimodalData, Split  # noqa: E402
from fdmer_lite.model.fdmer import build_model  # noqa: E402
from fdmer_lite.train import Trainer, seed_everything  # noqa: E402

SECTION = "## Fine-tuning the encoder's top layers (issue 18, item 4)"
METRICS = ("mae", "corr", "acc7", "acc2_has0", "acc2_non0", "f1_has0", "f1_non0")


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


# -- the lower layers' outputs, once ---------------------------------------------------------

def lower_states(data: MultimodalData, rows: list[dict], depths: list[int]) -> tuple[dict, dict, nn.Module]:
    """{depth: {split: (N, L, 384) raw output of encoder layer ``depth``}} for each depth in
    ``depths`` (6 = the last hidden state), padded like ``data``'s text, and the encoder."""
    tokenizer, model = text_minilm.load_encoder()
    text_of = {r["id"]: r["transcript"] for r in rows}
    out = {d: {} for d in depths}
    start = time.perf_counter()
    for s in SPLITS:
        sp = data.splits[s]
        L = sp.features["t"].shape[1]
        ids, _ = text_minilm.tokenize([text_of[i] for i in sp.ids], tokenizer)
        lengths = np.array([len(i) for i in ids])
        if not np.array_equal(np.minimum(lengths, L), sp.lengths["t"]):
            raise SystemExit(f"{s}: word-piece lengths differ from the loader's")
        for d in depths:
            out[d][s] = np.zeros((len(ids), L, text_minilm.WIDTH), np.float32)
        order = np.argsort(-lengths, kind="stable")
        with torch.inference_mode():
            for b in range(0, len(ids), 32):
                sel = order[b:b + 32]
                x, mask = text_minilm.padded_batch(ids, lengths, sel)
                hs = model(input_ids=x, attention_mask=mask, token_type_ids=torch.zeros_like(x),
                           output_hidden_states=True).hidden_states
                for d in depths:
                    h = hs[d].float().numpy()
                    for j, i in enumerate(sel):
                        out[d][s][i, :lengths[i]] = h[j, :lengths[i]]
    return out, {"seconds": time.perf_counter() - start}, model


# -- FDMER with the top N encoder layers inside --------------------------------------------

class TopLayersFDMER(nn.Module):
    """FDMER whose text input is the output of the encoder's top layers, run on the cached output
    of the layers below (``features["t"]``: raw states of layer 6 - N), then standardised with
    the frozen features' train-token mean and std, padding set to zero."""

    def __init__(self, fdmer: nn.Module, encoder: nn.Module, n_top: int, mean: np.ndarray, std: np.ndarray):
        super().__init__()
        import copy
        self.fdmer = fdmer
        self.discriminator = getattr(fdmer, "discriminator", None)
        self.top = nn.ModuleList(copy.deepcopy(encoder.encoder.layer[-n_top:]))
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))

    def text_states(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        width = int(mask.sum(1).max())                     # trim the batch to its longest text
        h, m = x[:, :width], mask[:, :width]
        additive = (1.0 - m[:, None, None, :].to(h.dtype)) * torch.finfo(h.dtype).min
        for layer in self.top:
            h = layer(h, attention_mask=additive)
            h = h[0] if isinstance(h, tuple) else h
        h = torch.where(m[..., None], (h - self.mean) / self.std, torch.zeros_like(h))
        return torch.cat([h, x.new_zeros(x.shape[0], x.shape[1] - width, x.shape[2])], dim=1)

    def forward(self, features, masks=None, grl_coeff: float = 1.0):
        features = dict(features)
        features["t"] = self.text_states(features["t"], masks["t"])
        return self.fdmer(features, masks, grl_coeff=grl_coeff)


def with_text_group(params, top: nn.Module, text_lr: float) -> list[dict]:
    """Adam parameter groups: ``params`` (parameters or groups, as the Trainer passes them) without
    the encoder layers, plus one group of the encoder layers at ``text_lr``."""
    params = list(params)
    groups = params if params and isinstance(params[0], dict) else [{"params": params}]
    mine = {id(p) for p in top.parameters()}
    groups = [{**g, "params": [p for p in g["params"] if id(p) not in mine]} for g in groups]
    return groups + [{"params": list(top.parameters()), "lr": text_lr}]


class TopLayersTrainer(Trainer):
    """The package's Trainer; the encoder layers get their own Adam group at ``text_lr`` (its
    optimiser factory, ``fdmer_lite.train.make_optimizer``, is wrapped during ``fit``)."""

    text_lr = 5e-5

    def fit(self, epochs=None):
        import fdmer_lite.train as train_module
        plain = train_module.make_optimizer
        train_module.make_optimizer = lambda params, t, device: plain(
            with_text_group(params, self.model.top, self.text_lr), t, device)
        try:
            return super().fit(epochs)
        finally:
            train_module.make_optimizer = plain


def with_text(data: MultimodalData, text: dict) -> MultimodalData:
    splits = {s: Split(features={"t": text[s], "a": data.splits[s].features["a"]},
                       labels=data.splits[s].labels, ids=data.splits[s].ids,
                       lengths=dict(data.splits[s].lengths)) for s in SPLITS}
    return MultimodalData(data.name, data.task, splits, info=dict(data.info), source=data.source)


def make_trainer(cfg, data, n_top, lower, encoder, mean, std, text_lr):
    if n_top == 0:
        return Trainer(cfg, data)
    ft_data = with_text(data, lower[6 - n_top])
    trainer_cls = type("T", (TopLayersTrainer,), {"text_lr": text_lr})
    seed_everything(cfg.train.seed)          # FDMER starts from the frozen run's initial weights
    fdmer = build_model(cfg, ft_data.widths, ft_data.output_dim, max_len=max(ft_data.seq_lengths.values()))
    return trainer_cls(cfg, ft_data, model=TopLayersFDMER(fdmer, encoder, n_top, mean, std))


# -- the report ------------------------------------------------------------------------------

def pm(vals, pct=False):
    k, d = (100.0, 1) if pct else (1.0, 3)
    if len(vals) < 2:
        return f"{vals[0] * k:.{d}f}"
    return f"{statistics.mean(vals) * k:.{d}f} ± {statistics.stdev(vals) * k:.{d}f}"


def write_section(path: Path, text: str) -> None:
    old = path.read_text() if path.exists() else ""
    if SECTION in old:
        head, rest = old.split(SECTION, 1)
        nxt = rest.find("\n## ")
        tail = rest[nxt:] if nxt >= 0 else ""
        new = head + text.rstrip() + "\n" + tail
    else:
        new = old.rstrip() + "\n\n\n" + text.rstrip() + "\n"
    path.write_text(new)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=None, help="mosi-text-audio folder (default: $FDMER_LITE_MOSI_DIR)")
    p.add_argument("--layers", default="1,2", help="numbers of top layers to train")
    p.add_argument("--timed-epochs", type=int, default=2)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--train", default="auto", choices=["auto", "yes", "no"],
                   help="train the seeds: only the N that fit (auto), every N (yes), none (no)")
    p.add_argument("--text-lr", type=float, default=5e-5, help="Adam learning rate of the encoder layers")
    p.add_argument("--max-ratio", type=float, default=3.0)
    p.add_argument("--max-run-min", type=float, default=15.0)
    p.add_argument("--results", default=None)
    p.add_argument("--frozen-runs", default=None,
                   help="glob of finished frozen runs of the same preset (e.g. the ablation grid's "
                        "full-model runs) to stand for the frozen seeds instead of training them")
    args = p.parse_args(argv)
    threads = thread_count()
    torch.set_num_threads(threads)
    layers = [int(x) for x in args.layers.split(",") if x.strip()]
    seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    env = " ".join(f"{k}={shlex.quote(os.environ[k])}" for k in ("FDMER_LITE_MOSI_DIR",)
                   if k in os.environ and not args.data)
    command = (env + " " if env else "") + f"FDMER_LITE_THREADS={threads} python benchmarks/minilm_finetune.py " \
        + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_before = load_average()
    print(f"{command}\n{date}; load average {load_before}", flush=True)

    cfg0 = mta.mosi_text_audio_config("minilm").replace(train={"device": "cpu", "progress": False})
    data = mta.load(args.data, text_features="minilm", progress=False)
    raw = mta.load(args.data, text_features="minilm", standardise_text=False, progress=False)
    rows = mta.read_rows(mta.resolve_dir(args.data))
    mean = np.asarray(data.info["text_train_mean"], np.float32)
    std = np.asarray(data.info["text_train_std"], np.float32)
    depths = sorted({6 - n for n in layers} | {6})
    lower, enc_info, encoder = lower_states(data, rows, depths)
    check = max(float(np.abs(lower[6][s] - raw.splits[s].features["t"]).max()) for s in SPLITS)
    print(f"lower-layer states of {sum(len(data.splits[s]) for s in SPLITS)} utterances in "
          f"{enc_info['seconds']:.0f} s; recomputed last states vs the cache: max |diff| {check:.2e}", flush=True)
    # the top N layers on the cached lower states give the cached last states
    topcheck = {}
    for n in layers:
        wrap = TopLayersFDMER(nn.Identity(), encoder, n, np.zeros(384, np.float32), np.ones(384, np.float32)).eval()
        x = torch.from_numpy(lower[6 - n]["test"][:64])
        m = torch.arange(x.shape[1])[None, :] < torch.from_numpy(data.splits["test"].lengths["t"][:64])[:, None]
        with torch.no_grad():
            y = wrap.text_states(x, m).numpy()
        topcheck[n] = float(np.abs(y - raw.splits["test"].features["t"][:64]).max())
        print(f"top {n} layer(s) on layer {6 - n}'s cached states vs the last states: max |diff| "
              f"{topcheck[n]:.2e}", flush=True)

    # -- epoch times
    epoch_secs, n_params = {}, {}
    for n in [0] + layers + [0]:                # frozen before and after: the load drifts
        cfg = cfg0.replace(train={"seed": 0, "patience": 10 ** 6})
        tr = make_trainer(cfg, data, n, lower, encoder, mean, std, args.text_lr)
        tr.fit(epochs=args.timed_epochs)
        secs = [h["seconds"] for h in tr.history]
        epoch_secs.setdefault(n, []).extend(secs)
        n_params[n] = sum(p.numel() for p in tr.model.parameters() if p.requires_grad)
        print(f"N = {n}: epoch {', '.join(f'{s:.1f}' for s in secs)} s; "
              f"{n_params[n]} trained parameters; load {load_average()}", flush=True)
        del tr
    timing = {n: statistics.median(v) for n, v in epoch_secs.items()}

    frozen_runs = []
    for d in sorted(Path().glob(args.frozen_runs)) if args.frozen_runs else []:
        if (d / "complete.json").is_file():
            hist = json.loads((d / "history.json").read_text())
            frozen_runs.append((d, json.loads((d / "metrics.json").read_text()), len(hist),
                                [h["seconds"] for h in hist]))

    # -- seeds
    results, epochs_run, run_secs = {}, {}, {}
    frozen_epochs = statistics.mean(r[2] for r in frozen_runs) if frozen_runs else None
    fits = {}
    for n in [0] + layers:
        if n > 0:
            ratio = timing[n] / timing[0]
            est = timing[n] * (frozen_epochs or cfg0.train.epochs) / 60
            fits[n] = ratio <= args.max_ratio and est <= args.max_run_min
            if args.train == "no" or (args.train == "auto" and not fits[n]):
                continue
        elif args.train == "no" or frozen_runs:
            continue
        for seed in seeds:
            t0 = time.perf_counter()
            tr = make_trainer(cfg0.replace(train={"seed": seed}), data, n, lower, encoder, mean, std, args.text_lr)
            tr.fit()
            m = tr.evaluate("test")["metrics"]
            run_secs.setdefault(n, []).append(time.perf_counter() - t0)
            epochs_run.setdefault(n, []).append(len(tr.history))
            results.setdefault(n, []).append(m)
            print(f"N = {n}, seed {seed}: test MAE {m['mae']:.3f}, Corr {m['corr']:.3f} "
                  f"(best epoch {tr.best_epoch} of {len(tr.history)}; {run_secs[n][-1]:.0f} s)", flush=True)
            del tr
        if n == 0:
            frozen_epochs = statistics.mean(epochs_run[0])
    if frozen_runs:                             # the grid's full-model runs stand for frozen
        results = {0: [r[1] for r in frozen_runs], **results}
        epochs_run[0] = [r[2] for r in frozen_runs]
        run_secs[0] = [r[1].get("train_seconds", math.nan) for r in frozen_runs]

    # -- report
    lines = [SECTION, "",
             f"Written by `{command}` on {date}; {os.cpu_count()} CPU cores, "
             f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
             f"torch {torch.__version__}, {threads} torch thread(s); load average (1, 5, 15 min) before "
             f"{load_before}, after {load_average()} (the machine is shared: times are upper bounds).",
             "",
             f"The encoder's lower layers are frozen and computed once ({enc_info['seconds']:.0f} s for "
             f"the 2,199 transcripts); the top N layers run inside FDMER's forward pass, trained at "
             f"lr {args.text_lr:g} (FDMER at its preset's {cfg0.train.lr:g}), their output standardised "
             f"as the frozen features are. Check: the recomputed last states equal the cached ones "
             f"(max |diff| {check:.1e}); the top layers on the cached lower states give them back "
             f"(max |diff| " + ", ".join(f"N = {n}: {v:.1e}" for n, v in topcheck.items()) + ").",
             "",
             "| text encoder | trained parameters | epochs timed (s) | median (s) | × frozen | "
             f"est. full run (min) | fits (≤ {args.max_ratio:g}×, ≤ {args.max_run_min:g} min)? |",
             "|---|---|---|---|---|---|---|"]
    for n in [0] + layers:
        est = timing[n] * (frozen_epochs or cfg0.train.epochs) / 60
        name = "frozen (cached features)" if n == 0 else f"top {n} layer(s) trained"
        lines.append(f"| {name} | {n_params[n]:,} | {', '.join(f'{x:.1f}' for x in epoch_secs[n])} | "
                     f"{timing[n]:.1f} | {timing[n] / timing[0]:.2f} | {est:.1f} | "
                     + ("" if n == 0 else ("yes" if fits[n] else "no")) + " |")
    lines += ["", "An epoch is one pass over the 1,284 training utterances and the validation pass; the "
              "frozen epoch was timed before and after the others (the load drifts). Full run "
              "estimate: the epoch times "
              + (f"the frozen runs' mean number of epochs ({frozen_epochs:.1f}, early stopping included"
                 + (f"; the runs {', '.join(str(r[0]) for r in frozen_runs)}" if frozen_runs else "") + ")."
                 if frozen_epochs else f"the preset's {cfg0.train.epochs} epochs (no frozen runs trained).")]
    misfits = [n for n in layers if not fits[n]]
    if misfits:
        lines += ["", "Does not fit: " + "; ".join(
            f"top {n} layer(s): an epoch is {timing[n] / timing[0]:.1f}x the frozen one (limit "
            f"{args.max_ratio:g}x), a full run about {timing[n] * (frozen_epochs or cfg0.train.epochs) / 60:.0f} min "
            f"(limit {args.max_run_min:g})" for n in misfits) + "."]
        if len(misfits) == len(layers):
            lines.append("No N fits, so the package has no `--finetune-text` option: the text "
                         "encoder stays frozen and its states are computed once and cached.")
    if results:
        lines += ["", "Test split, mean ± sample std over each row's n seeds (accuracies, F1 in %; the "
                  f"frozen row: {'the runs above' if frozen_runs else 'seeds ' + ', '.join(map(str, seeds))}):", "",
                  "| text encoder | n | MAE | Corr | Acc-7 | Acc-2 has0 | Acc-2 non0 | F1 has0 | F1 non0 | "
                  "test MAE per seed | epochs run | s per run |", "|---|" * 1 + "---|" * 11]
        for n, ms in results.items():
            name = "frozen (cached features)" if n == 0 else f"top {n} layer(s) trained"
            cells = [pm([m[k] for m in ms], k not in ("mae", "corr")) for k in METRICS]
            lines.append(f"| {name} | {len(ms)} | " + " | ".join(cells) + " | "
                         + " / ".join(f"{m['mae']:.3f}" for m in ms) + " | "
                         + " / ".join(map(str, epochs_run[n])) + " | "
                         + " / ".join(f"{s:.0f}" for s in run_secs[n]) + " |")
        if 0 in results:
            f_mae = statistics.mean(m["mae"] for m in results[0])
            f_sd = statistics.stdev(m["mae"] for m in results[0]) if len(results[0]) > 1 else math.nan
            for n in layers:
                if n in results:
                    a = [m["mae"] for m in results[n]]
                    se = math.sqrt((statistics.stdev(a) ** 2 + f_sd ** 2) / len(a)) if len(a) > 1 else math.nan
                    d = statistics.mean(a) - f_mae
                    verdict = ("better (MAE lower by more than 2 s.e.)" if d < -2 * se else
                               "worse (MAE higher by more than 2 s.e.)" if d > 2 * se else "no clear difference")
                    lines.append(f"\nTop {n} layer(s) against frozen: Δ MAE {d:+.3f} (± {se:.3f} s.e.): {verdict}.")
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    if args.results:
        write_section(Path(args.results), text)
        print(f"wrote the section to {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
