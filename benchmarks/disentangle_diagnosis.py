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
          "scaled_mlpdrop0", "before_batch32", "scaled_mlpdrop0_batch32", "before_dropout0",
          "before_warmup", "before_wd", "before_beta0", "synthetic", "synthetic_nd")


def spread(x: torch.Tensor) -> tuple[float, float]:
    """(root-mean-square over features of the across-sample sd, rms of the batch mean)."""
    x = x.detach()
    return float(x.std(0).pow(2).mean().sqrt()), float(x.mean(0).pow(2).mean().sqrt())


def model_for(init: str, data):
    cfg = get_preset("synthetic").replace(model={"mlp_init": init})
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
    for init in ("default", "scaled"):
        cfg, model = model_for(init, data)
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
        rows.append(f"| {init} | {g(C.grad):.2e} | {g(P.grad[:, 0]):.2e} | {g(P.grad[:, 1]):.2e} | "
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
        "Eq. 2-3 MLPs; `init_scaled` / `scaled` the `scaled` MLP reading. Early stopping keeps the best-on-validation epoch.",
        "",
        *curve_rows(store),
        "",
    ]
    OUT.write_text("\n".join(lines))
    print(OUT.read_text())


if __name__ == "__main__":
    main()
