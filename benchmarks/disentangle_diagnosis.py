"""Why the disentangled path of the ``synthetic`` preset fails on the MOSI-sized generated task.

Measured on ``mosi_aligned`` (``benchmarks/task_family.py``), seed 0, and written to
``benchmarks/results/disentangle-diagnosis.md``:

1. At initialisation, on one batch of 256 training samples: for every stage (h_m of Eq. 1, C_m
   and P_m of Eq. 2-3, C = sum of C_m) how much it varies across samples (the part that can
   carry the label) against its constant part (the batch mean); with PyTorch's default
   initialisation of the Eq. 2-3 MLPs and with the ``scaled`` reading.
2. The dropout inside the MLPs: the change of C_m between training and evaluation mode, against
   C_m's spread across samples.
3. The three input distributions of the shared common MLP: the distance between the modality
   means of h_m against their spread.
4. The gradient of the task loss (MSE, one batch, at initialisation) reaching the fusion's
   input tokens (C and each P_m) and the encoders' outputs h_m through the common and through
   the private path.
5. Learning curves (train task MSE and valid MAE per epoch) and the test MAE of the
   best-on-validation epoch, of the stored runs in ``benchmarks/results/family-runs.json``
   (``benchmarks/family_runs.py`` trains the missing ones: pass ``--train``).

    python benchmarks/disentangle_diagnosis.py [--train]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import family_runs  # noqa: E402
from task_family import make_task, ridge_mae  # noqa: E402

from fdmer_lite.config import get_preset  # noqa: E402
from fdmer_lite.data.base import make_loader  # noqa: E402
from fdmer_lite.model import build_model  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "disentangle-diagnosis.md"
TASK, SEED = "mosi_aligned", 0
CURVES = ("baseline", "synthetic_before_nd", "synthetic_before", "init_scaled", "before_mlpdrop0",
          "scaled_mlpdrop0", "scaled_mlpdrop0_long", "before_batch32", "scaled_mlpdrop0_batch32", "before_dropout0",
          "before_warmup", "before_wd", "before_beta0", "synthetic", "synthetic_nd")


GRADS: dict[str, tuple[float, float]] = {}     # init -> gradient norm at h_t via (common, private)


def spread(x: torch.Tensor) -> tuple[float, float]:
    """(root-mean-square over features of the across-sample sd, rms of the batch mean)."""
    x = x.detach()
    return float(x.std(0).pow(2).mean().sqrt()), float(x.mean(0).pow(2).mean().sqrt())


def model_for(init: str, data, mlp_dropout: float | None = None):
    cfg = get_preset("synthetic").replace(model={"mlp_init": init, "mlp_dropout": mlp_dropout})
    torch.manual_seed(SEED)
    return cfg, build_model(cfg, data.widths, 1, max(data.seq_lengths.values()))


def scale_table(data, batch) -> list[str]:
    rows = ["| stage | init | across-sample sd | constant (batch-mean) rms | sd / constant | sd / sd of h_m |",
            "|---|---|---|---|---|---|"]
    for init in ("default", "scaled"):
        _, model = model_for(init, data)
        model.eval()
        with torch.no_grad():
            h = {m: model.encoders[m](batch.features[m]) for m in model.modalities}
            C = {m: model.common_encoder(h[m]) for m in model.modalities}
            P = {m: model.private_encoders[m](h[m]) for m in model.modalities}
        stages = [(f"h_{m}", h[m], h[m]) for m in model.modalities] \
            + [(f"C_{m}", C[m], h[m]) for m in model.modalities] \
            + [(f"P_{m}", P[m], h[m]) for m in model.modalities] \
            + [("C = sum C_m", sum(C.values()), h["t"])]
        for name, x, ref in stages:
            sd, const = spread(x)
            rows.append(f"| {name} | {init} | {sd:.4f} | {const:.4f} | {sd / const:.3f} | "
                        f"{sd / spread(ref)[0]:.2f} |")
    return rows


def dropout_and_inputs(data, batch) -> list[str]:
    rows = []
    for init in ("default", "scaled"):
        _, model = model_for(init, data)
        model.eval()
        with torch.no_grad():
            h = {m: model.encoders[m](batch.features[m]) for m in model.modalities}
            ev = model.common_encoder(h["t"])
            model.common_encoder.train()
            torch.manual_seed(1)
            tr = model.common_encoder(h["t"])
        noise = float((tr - ev).pow(2).mean().sqrt())
        rows.append(f"| {init} | {noise:.4f} | {spread(ev)[0]:.4f} | {noise / spread(ev)[0]:.2f} |")
    _, model = model_for("default", data)
    model.eval()
    with torch.no_grad():
        h = {m: model.encoders[m](batch.features[m]) for m in model.modalities}
    means = {m: h[m].mean(0) for m in h}
    sds = np.mean([spread(h[m])[0] for m in h])
    gaps = [float((means[a] - means[b]).pow(2).mean().sqrt()) for a, b in (("t", "a"), ("t", "v"), ("a", "v"))]
    return rows, gaps, float(sds)


def gradient_table(data, batch) -> list[str]:
    rows = ["| init | dL/dC (fusion input) | dL/dP_t | dL/dP_a | dL/dP_v | at h_t via common | at h_t via private |",
            "|---|---|---|---|---|---|---|"]
    for init, drop in (("default", None), ("scaled", 0.0)):
        cfg, model = model_for(init, data, drop)
        model.train()
        torch.manual_seed(2)
        h = {m: model.encoders[m](batch.features[m]) for m in model.modalities}
        hc = {m: h[m].detach().requires_grad_() for m in h}
        hp = {m: h[m].detach().requires_grad_() for m in h}
        C = torch.stack([model.common_encoder(hc[m]) for m in model.modalities], 1).sum(1, keepdim=True)
        P = torch.stack([model.private_encoders[m](hp[m]) for m in model.modalities], 1)
        C.retain_grad()
        P.retain_grad()
        fused, _ = model.fusion(torch.cat([C, P], 1))
        loss = torch.nn.functional.mse_loss(model.head(fused).squeeze(-1), batch.label)
        loss.backward()
        g = lambda t: float(t.norm())  # noqa: E731
        GRADS[init] = (g(hc["t"].grad), g(hp["t"].grad))
        rows.append(f"| {init}, MLP dropout {cfg.model.dropout if drop is None else drop:g} | {g(C.grad):.2e} | {g(P.grad[:, 0]):.2e} | {g(P.grad[:, 1]):.2e} | "
                    f"{g(P.grad[:, 2]):.2e} | {g(hc['t'].grad):.2e} | {g(hp['t'].grad):.2e} |")
    return rows


def curve_rows(store) -> list[str]:
    rows = ["| model | best epoch (valid MSE) | lowest valid MAE (epoch) | epochs run | test MAE | "
            "valid MAE by epoch | train task MSE by epoch |",
            "|---|---|---|---|---|---|---|"]
    for name in CURVES:
        r = store.get(family_runs.key(TASK, SEED, name))
        if r is None:
            continue
        v = " ".join(f"{e['valid_mae']:.2f}" for e in r["curve"])
        t = " ".join(f"{e['train_mse']:.2f}" for e in r["curve"])
        low = min(r["curve"], key=lambda e: e["valid_mae"])
        rows.append(f"| `{name}` | {r['best_epoch']} | {low['valid_mae']:.3f} ({low['epoch']}) | "
                    f"{len(r['curve'])} | {r['test_mae']:.3f} | {v} | {t} |")
    return rows


def findings(data, batch, drop_rows, store) -> list[str]:
    """The findings, each number computed here from the measurements above."""
    _, before = model_for("default", data)
    before.eval()
    with torch.no_grad():
        h = before.encoders["t"](batch.features["t"])
        shrink = spread(before.common_encoder(h))[0] / spread(h)[0]
    noise = float(drop_rows[0].split(" | ")[-1].strip(" |"))
    gc, gp = GRADS["default"]
    sc, sp = GRADS["scaled"]
    get = lambda name: store.get(family_runs.key(TASK, SEED, name))  # noqa: E731
    out = ["## Findings", "",
           f"* PyTorch's default initialisation makes each Eq. 2-3 MLP an attenuator: C_t varies "
           f"across samples {shrink:.2f} times as much as its input h_t, while the biases add a "
           "constant of comparable size (table 1). The `scaled` reading keeps most of the spread.",
           f"* The dropout between the two layers of the MLP changes C_t by {noise:.2f} times its "
           "across-sample spread (table 2): h_m is mostly a constant vector at initialisation (its "
           "batch mean is several times its spread), so dropping hidden units moves the output by "
           "more than the samples differ. With either initialisation the dropout noise is larger "
           "than the signal the fusion could read.",
           f"* At initialisation the task sends {gc / gp:.2f} times as much gradient into h_t "
           f"through the shared common MLP as through the private one with the default MLPs, "
           f"{sc / sp:.2f} times with the `scaled` ones and no MLP dropout (table 4).",
           "* The three inputs of the shared common MLP differ in their means by several times "
           "their spread (section 3); the shared MLP has to serve three distributions, but the "
           "`scaled` run below learns with it all the same, so this is not what blocks learning.",
           ]
    rows = [(n, get(n)) for n in ("synthetic_before", "init_scaled", "before_mlpdrop0", "scaled_mlpdrop0", "scaled_mlpdrop0_long",
                                  "synthetic_before_nd", "baseline", "before_batch32") if get(n)]
    if rows:
        out.append("* Test MAE on this task, seed 0: " + "; ".join(f"`{n}` {r['test_mae']:.3f}" for n, r in rows)
                   + ".")
        both, nd = get("scaled_mlpdrop0"), get("synthetic_before_nd")
        singles = [n for n in ("init_scaled", "before_mlpdrop0") if get(n)]
        if both and nd and singles:
            worse = [n for n in singles if get(n)["test_mae"] > both["test_mae"] + 0.05]
            out.append(f"* Both MLP changes together: {both['test_mae']:.3f} against "
                       f"Non-Disentangled {nd['test_mae']:.3f}; of the single changes measured ("
                       + ", ".join(f"`{n}`" for n in singles) + "), "
                       + (", ".join(f"`{n}`" for n in worse) + " stays more than 0.05 behind"
                          if worse else "none is more than 0.05 behind") + ".")
    late = [(n, r) for n, r in rows if r["curve"]
            and min(r["curve"], key=lambda e: e["valid_mae"])["epoch"] > r["best_epoch"]]
    if late:
        out.append("* Early stopping on the validation MSE keeps an earlier epoch than the one "
                   "with the lowest validation MAE in " + ", ".join(f"`{n}`" for n, _ in late)
                   + " (table 5): the models are still improving on MAE when patience runs out, and "
                   "this, shared with Non-Disentangled, is part of the remaining gap to the baseline.")
    for k, r in sorted(store.items()):
        if k.startswith("demo|"):
            last = r["best_epoch"] == len(r["curve"])
            out.append(f"* On the demo, `{r['model']}` (seed {r['seed']}) reaches {r['floor_ratio']:.2f}x the "
                       "Bayes floor" + (", its best epoch the last of the budget: it is still learning "
                                        "when the epochs run out" if last else "")
                       + "; compare the shipped preset's row in readings-synthetic.md before adopting it.")
    return out + [""]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--train", action="store_true", help="train the missing runs of the curves first")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    data = make_task(TASK, SEED)
    if a.train:
        for name in CURVES:
            family_runs.run(TASK, SEED, name)
    batch = next(iter(make_loader(data, "train", 256)))
    drop_rows, gaps, sd = dropout_and_inputs(data, batch)
    store = family_runs.load_store()
    labels = data.splits["test"].labels
    lines = [
        "# The disentangled path on the MOSI-sized task: a diagnosis",
        "",
        f"Written by `python benchmarks/disentangle_diagnosis.py` on task `{TASK}` "
        f"(`benchmarks/task_family.py`), seed {SEED}, the `synthetic` preset. Ridge on "
        f"time-averaged features: test MAE {ridge_mae(data):.3f}; the training mean: "
        f"{np.mean(np.abs(labels - data.splits['train'].labels.mean())):.3f}. `default` is "
        "PyTorch's initialisation of the Eq. 2-3 MLPs (the preset before issue 17), `scaled` the "
        "`mlp_init` reading (`fdmer_lite/model/encoders.py: scaled_init_`).",
        "",
        "## 1. Scale at initialisation (one batch of 256 training samples, eval mode)",
        "",
        *scale_table(data, batch),
        "",
        "## 2. Dropout inside the common MLP (h_t, train mode against eval mode)",
        "",
        "| init | rms change from dropout | across-sample sd of C_t | ratio |",
        "|---|---|---|---|",
        *drop_rows,
        "",
        "## 3. The shared common MLP's three input distributions (default init)",
        "",
        f"rms distance between the modality means of h_m: t-a {gaps[0]:.4f}, t-v {gaps[1]:.4f}, "
        f"a-v {gaps[2]:.4f}; mean across-sample sd of h_m {sd:.4f}.",
        "",
        "## 4. Gradient of the task loss at initialisation (norms over one batch)",
        "",
        *gradient_table(data, batch),
        "",
        "## 5. Learning curves (stored runs, `benchmarks/family_runs.py`)",
        "",
        "Variants of the preset before issue 17 (`mlp_init` default): `_nd` Non-Disentangled, "
        "`dropout0` dropout 0 everywhere, `beta0` beta = gamma = 0, `batch32` batch 32, "
        "`warmup` 2 warm-up epochs, `wd` weight decay 1e-3, `mlpdrop0` no dropout inside the "
        "Eq. 2-3 MLPs, `long` 40 epochs with patience 20; `init_scaled` / `scaled` the `scaled` MLP reading. Early stopping keeps the best-on-validation epoch.",
        "",
        *curve_rows(store),
        "",
    ]
    demo = [r for k, r in sorted(store.items()) if k.startswith("demo|")]
    lines += ["## 6. The demo (known-factor benchmark, 10,000 training samples) with the readings on", "",
              "| variant | seed | test MAE | x Bayes floor | best epoch of 30 |", "|---|---|---|---|---|",
              *[f"| `{r['model']}` | {r['seed']} | {r['test_mae']:.3f} | {r['floor_ratio']:.2f} | "
                f"{r['best_epoch']} |" for r in demo],
              "",
              "The shipped preset on the same run (seed 0, the readings off) is the `default` row of "
              "[readings-synthetic.md](readings-synthetic.md). `python benchmarks/family_runs.py "
              "--demo --models scaled_mlpdrop0` retrains this row; the stored one is the run of "
              "`fdmer-lite demo` with the two readings on, imported with `--import-demo`.", ""]
    lines += findings(data, batch, drop_rows, store)
    OUT.write_text("\n".join(lines))
    print(OUT.read_text())


if __name__ == "__main__":
    main()
