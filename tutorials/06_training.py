# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 6. Training FDMER (Eq. 18)
#
# All the pieces are in place. The full objective adds the task loss and the four losses of
# notebooks 3-4 with two weights:
#
# $$\mathcal L_{all} = \mathcal L_{task} + \beta\,(\mathcal L_{ami} + \mathcal L_{ams}) + \gamma\,(\mathcal L_{con} + \mathcal L_{dis}) \qquad \text{(Eq. 18)}$$
#
# with MSE as `L_task` for regression (cross-entropy for classification). The paper uses
# `beta = gamma = 0.02` on CMU-MOSI. In this notebook we check Eq. 18 by hand, train FDMER on
# the known-factor benchmark (on CUDA when there is one), draw the loss curves (the paper's
# Figure 3) and read the result against the Bayes floor. We also train the same model with
# `beta = gamma = 0`, the contrast notebook 7 needs.

# %%
import torch
import torch.nn.functional as F

from fdmer_lite import lessons, losses, viz
from fdmer_lite.data import make_loader
from fdmer_lite.model import build_model
from fdmer_lite.train import select_device

fast = lessons.setup()

# %% [markdown]
# ## 6.1 Eq. 18 by hand
#
# `losses.fdmer_objective` returns every term. On one batch of an untrained model:

# %%
data = lessons.lesson_data("emotion")
config = lessons.lesson_config()
model = build_model(config, data.widths, data.output_dim).eval()
batch = next(iter(make_loader(data, "train", batch_size=32)))
out = model(batch.features, batch.masks)
terms = losses.fdmer_objective(out, batch.label, config.loss, data.task)
print({k: round(v.item(), 4) for k, v in terms.items()})

# %%
beta, gamma = config.loss.beta, config.loss.gamma
task = F.mse_loss(out.prediction, batch.label)
total = task + beta * (terms["ami"] + terms["ams"]) + gamma * (terms["con"] + terms["dis"])
torch.testing.assert_close(task, terms["task"])
torch.testing.assert_close(total, terms["all"])
print(f"beta = {beta}, gamma = {gamma}: L_all = {total.item():.4f}")

# %% [markdown]
# Note the sizes: `L_ami` and `L_ams` are sums over three modalities of a loss scaled by
# `alpha = 72`, so they start large; `beta` brings them to the scale of the task loss.
#
# ## 6.2 Device and precision
#
# `select_device("auto")` picks CUDA, then Apple's MPS, then the CPU. On CUDA the trainer also
# uses mixed precision (float16 autocast with a gradient scaler) and pinned host memory; on the
# CPU it trains in float32.

# %%
device = select_device("auto")
amp = config.train.amp and device.type == "cuda"
print(f"device: {device}; mixed precision: {amp}")
if device.type == "cuda":
    print(torch.cuda.get_device_name(device))

# %% [markdown]
# ## 6.3 Training
#
# The lesson preset (`fast` under `FDMER_LITE_FAST=1`, else `synthetic`): Adam, early stopping on
# the validation MAE (`train.early_stop = "auto"`: the MAE on a regression task, the task loss on
# a classification one), the best-on-validation weights kept. `lesson_run` asks the run store
# (`fdmer_lite.experiments.runs.obtain`): if this exact configuration was trained on these data
# before, it loads the checkpoint from `runs/lessons/` instead of retraining. This run you watch
# train (`shipped=False`): the bar counts batches and shows the time left.

# %%
print(config.name, config.model.d_k, config.train.epochs, config.train.batch_size, config.train.lr)
run = lessons.lesson_run("emotion-paper", config, data, shipped=False)

# %% [markdown]
# ### Loss curves (the paper's Figure 3)
#
# One panel per term, train (solid) and valid (dashed). `L_task` should fall, and `L_ams` too
# (the discriminator learns to tell the private spaces apart, and nothing works against it).
# `L_ami` is a tug of war: the discriminator lowers it while the common encoders, through
# gradient reversal, raise it; it stays far above `L_ams` and moves less cleanly.

# %%
viz.loss_curves(run.history, title="FDMER on the emotion-like benchmark: loss per term")

# %%
last = run.history[-1]
assert all(torch.isfinite(torch.tensor(v)) for v in last["train"].values())
print(f"{len(run.history)} epochs, best epoch {run.metrics['best_epoch']}")

# %% [markdown]
# ### The results beside the Bayes floor
#
# `metrics.json` holds the test metrics of the best-on-validation checkpoint, the reference
# predictors of notebook 1 and the disentanglement scores (notebook 7).

# %%
m = run.metrics
rows = {"FDMER (this run)": m["mae"], "Bayes floor": m["bayes_mae"],
        "ridge on time averages": m["ridge_mae"], "training mean": m["mean_mae"]}
for name, mae in rows.items():
    print(f"{name:24s} test MAE {mae:.3f}  ({mae / m['bayes_mae']:.2f} x floor)")

# %%
keys = ["mae", "corr", "acc7", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0"]
viz.metrics_table({k: m[k] for k in keys}, bayes={"mae": m["bayes_mae"]},
                  title="Test metrics (accuracies and F1 in %)")

# %% [markdown]
# In FAST mode (tiny data, three epochs) the model barely beats the training mean: that mode
# only checks that everything runs. Unset `FDMER_LITE_FAST` to train for real (10,000 training
# samples; the cell above prints the epoch budget, and the bar the time left).
#
# ## 6.4 The contrast run: beta = gamma = 0
#
# At full size this run, and the other comparison runs of the course, ship with the package
# (`fdmer_lite/shipped_runs/`): `lesson_run` loads one only when its configuration and the data's
# fingerprint are what today's code would train, and trains it otherwise. Pass `retrain=True` to
# train it yourself.
#
# Without the four auxiliary losses nothing asks `C_m` to be common or `P_m` to be private:
# the same architecture becomes a plain multimodal regressor. Notebook 7 compares what the two
# runs learned; here, the scores. Do not assume the auxiliary losses help the task: compare the
# two MAEs the cell below prints, and remember that one seed is one draw: a difference smaller
# than the spread between seeds says nothing (notebook 10 puts error bars on it).

# %%
config0 = config.replace(loss={"beta": 0.0, "gamma": 0.0})
run0 = lessons.lesson_run("emotion-beta0-gamma0", config0, data)

# %%
keys = ["mae", "corr", "acc2_has0", "common_modality_acc", "disc_prob_common", "common_factor_r2",
        "private_factor_r2"]
viz.compare_table({"beta = gamma = 0.02": run.metrics, "beta = gamma = 0": run0.metrics},
                  keys=keys, title="Same model, with and without the FDMER losses")

# %% [markdown]
# ## Summary
#
# * Eq. 18: `L_all = L_task + beta (L_ami + L_ams) + gamma (L_con + L_dis)`, checked by hand.
# * The trainer runs on CUDA with mixed precision when present, else on the CPU in float32; it
#   keeps the best-on-validation weights and writes `metrics.json`, `history.json`,
#   `config.json` and `model.pt`, so later notebooks load instead of retraining.
# * A result on the known-factor benchmark is read against the Bayes floor, ridge and the mean.

# %% [markdown]
# ## Exercises
#
# Each exercise says what you will learn and gives a hint. Where the answer is a number or an
# array, `lessons.check("N.k", answer)` prints ✓ or ✗ and why, against a value it computes
# independently. The solution is the collapsed code cell right after each exercise: click the
# bar at the cell's left (or its `…`) to show it. Running all cells runs the solutions too.

# %%
from fdmer_lite import lessons

# %% [markdown]
# ### Exercise 6.1: a heavy adversary
#
# Train with `beta = 0.5` (`config.replace(loss={"beta": 0.5})`) and compare the test MAE and the
# last epoch's `L_ami` with the run of 6.3. **You learn** what the weight β trades: a stronger
# push against the discriminator costs the task (notebook 4 shows what gradient reversal does).
#
# *Hint:* `lessons.lesson_run("emotion-beta0.5", ...)`; `run.history[-1]["train"]["ami"]`.
# *Time:* seconds in FAST mode; in full mode the run ships with the package and loads in seconds
# (with `retrain=True`, as long as the run of 6.3).

# %% jupyter={"source_hidden": true} tags=["solution"]
# Solution 6.1
run_b = lessons.lesson_run("emotion-beta0.5", config.replace(loss={"beta": 0.5}), data)
for name, r_ in (("beta = 0.02", run), ("beta = 0.5", run_b)):
    print(f"{name:12s} test MAE {r_.metrics['mae']:.3f}  last L_ami {r_.history[-1]['train']['ami']:.3f}")

# %% [markdown]
# ### Exercise 6.2: which epoch was kept?
#
# From `run.history` alone, find the epoch whose weights were kept (the lowest validation MAE).
# **You learn** how early stopping chooses the checkpoint that `metrics.json` reports. Then try
# `train={"patience": 2}` and see whether training stops earlier.
#
# *Hint:* each entry holds `entry["epoch"]` and `entry["valid_metrics"]["mae"]`.
# *Check:* `lessons.check("6.2", epoch, history=run.history, criterion="mae")`.

# %% jupyter={"source_hidden": true} tags=["solution"]
# Solution 6.2
best62 = min(run.history, key=lambda entry: entry["valid_metrics"]["mae"])["epoch"]
assert best62 == run.metrics["best_epoch"]
assert lessons.check("6.2", best62, history=run.history, criterion="mae")

# %% [markdown]
# ### Exercise 6.3: how long would the paper's MOSI run take here?
#
# The paper trains CMU-MOSI (1,284 training clips) for 120 epochs at batch 64. From the `seconds`
# field of the history (one epoch's time), estimate a lower bound for the `mosi` preset on this
# machine. **You learn** to budget a run before starting it. Why is it only a lower bound?
#
# *Hint:* scale by the number of samples and of epochs; the `mosi` preset's model is much larger.

# %% jupyter={"source_hidden": true} tags=["solution"]
# Solution 6.3
from fdmer_lite.config import get_preset

per_sample = sum(e["seconds"] for e in run.history) / len(run.history) / len(data.splits["train"])
print(f"at least {per_sample * 1284 * 120 / 60:.1f} minutes (same model size); the mosi preset's "
      f"d_k is {get_preset('mosi').model.d_k} against {config.model.d_k} here")
