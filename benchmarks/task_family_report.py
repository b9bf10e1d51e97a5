"""Write ``benchmarks/results/task-family.md`` from the stored runs of ``benchmarks/family_runs.py``.

For every task of the family and every stored seed: ridge on time-averaged features, the
training mean, the plain baseline, and each FDMER variant (test MAE of the best-on-validation
epoch), with the ratio of the variant's mean over seeds to the baseline's mean over the same
seeds. ``--train`` first trains the runs of ``PLAN`` that are missing.

    python benchmarks/task_family_report.py [--train]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import family_runs  # noqa: E402
from task_family import TASKS, make_task, ridge_mae  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "task-family.md"
MODELS = ("baseline", "synthetic_before", "synthetic_final_ln", "synthetic", "synthetic_before_nd",
          "synthetic_final_ln_nd", "synthetic_nd", "scaled_mlpdrop0", "full_mae_long", "synthetic_stride1")
NAMES = {"baseline": "plain baseline (from scratch)",
         "synthetic_before": "`synthetic` preset before the recipe",
         "synthetic_final_ln": "the recipe, with a LayerNorm after each transformer stack (the preset until `final_norm`)",
         "synthetic": "**`synthetic` preset today** (the recipe, no final LayerNorm)",
         "synthetic_before_nd": "Non-Disentangled, the preset before the recipe",
         "synthetic_final_ln_nd": "Non-Disentangled, the recipe with the final LayerNorm",
         "synthetic_nd": "Non-Disentangled, today's preset",
         "scaled_mlpdrop0": "before + `mlp_init` \"scaled\", `mlp_dropout` 0 (only the MLP readings)",
         "full_mae_long": "before + stop on the validation MAE, 60 epochs, patience 20 (only the recipe)",
         "synthetic_stride1": "today's preset with every time step (`time_stride` 1)"}
# The training-recipe rows (issue 17): (variant, what it changes), on mosi_aligned only.
RECIPE = (
    ("synthetic_before_nd", "Non-Disentangled before the recipe (batch 64, constant lr 1e-3, stop on the validation task loss)"),
    ("nd_batch32", "ND, batch 32 (the baseline's)"),
    ("nd_stop_mae", "ND, stop on the validation MAE (the baseline's)"),
    ("nd_recipe", "ND, batch 32 + stop on MAE (the baseline's whole recipe)"),
    ("nd_mae_long", "ND, stop on MAE, 60 epochs, patience 20"),
    ("nd_mae_lr2e3", "ND, stop on MAE, lr 2e-3"),
    ("nd_mae_lr5e4", "ND, stop on MAE, lr 5e-4"),
    ("nd_mae_wd", "ND, stop on MAE, weight decay 1e-3"),
    ("nd_mae_noclip", "ND, stop on MAE, no gradient clipping"),
    ("nd_warmcos", "ND, 2-epoch warm-up + cosine, stop on the task loss"),
    ("nd_mae_warmcos", "ND, 2-epoch warm-up + cosine, stop on MAE"),
    ("nd_mae_warmcos_long", "ND, warm-up + cosine over 60 epochs, patience 20, stop on MAE"),
    ("nd_mae_basesizes", "not a recipe: ND at the baseline's encoder sizes (width 64, 2 layers, 4 heads, "
                         "`time_stride` 1), stop on MAE"),
    ("synthetic_before", "full model before the recipe"),
    ("full_stop_mae", "full, stop on MAE"),
    ("full_mae_warmcos", "full, 2-epoch warm-up + cosine, stop on MAE"),
    ("full_mae_warmcos_long", "full, warm-up + cosine over 60 epochs, patience 20, stop on MAE"),
    ("full_mae_long", "full, stop on MAE, 60 epochs, patience 20"),
    ("full_mae_long_b0g0", "full, the same recipe, beta = gamma = 0 (no extra losses)"),
    ("full_mae_long_scaled", "full, the same recipe + the MLP readings (`mlp_init` \"scaled\", `mlp_dropout` 0)"),
    ("recipe_steps", "full, the MLP readings + stop on MAE + `min_steps` 1260 (30 epochs, patience 10, "
                     "stretched to 60 and 20 on this split)"),
    ("recipe_steps_drop", "full, as `recipe_steps` but the MLPs keep the common dropout (only `mlp_init` \"scaled\")"),
    ("synthetic_final_ln", "`full_mae_long_scaled`, with `early_stop` \"auto\" (the MAE here): the preset until `final_norm`"),
    ("synthetic", "**today's `synthetic` preset**: the same without the LayerNorm after each transformer stack"),
)
# The demo's benchmark (make_benchmark("emotion"), 10,000 training samples, seed 0): each variant's
# test MAE against the Bayes floor (family_runs.py --demo).
DEMO = ("synthetic_before", "synthetic_final_ln", "synthetic", "full_mae_long", "scaled_mlpdrop0", "recipe_steps", "recipe_steps_drop", "full_mae_long_scaled")
RECIPE_TEXT = """\
What differs between the two recipes. The plain baseline (`task_family.train_baseline`) and the
`synthetic` preset share Adam at a constant 1e-3, gradient clipping at 1.0, no weight decay, 30
epochs and a patience of 10. They differ in two knobs only: the baseline uses batches of 32 (the
preset 64) and stops on the validation **MAE** (the preset on the validation task loss, the MSE).
Everything else that differs (width 64 against 32, two layers against one, four heads against two,
every time step against `time_stride` 2) is the model, not the recipe, and was left alone but for one reference row.
To stop on the MAE, `TrainConfig.early_stop` gained the value `"mae"` (default `"task_loss"`, the
behaviour of every preset, unchanged).

What the runs say (seed 0 first; only the promising rows were run on seeds 1 and 2):

* **The stopping criterion is the lever.** On this task the validation MSE is dominated by the
  samples whose sign the model gets wrong (an error of twice the amplitude) and stays flat and
  noisy (about 2.0-2.9 on seed 1) while the validation MAE falls from 1.25 to 0.87, so early
  stopping on the MSE keeps an early epoch or stops too soon. Stopping on the MAE alone takes
  Non-Disentangled from 1.31x to 1.22x the baseline (seed 2 unchanged); with 60 epochs and a
  patience of 20 to **1.19x** (1.23x / 1.17x / 1.16x per seed). Warm-up + cosine with the MSE
  criterion still keeps epoch 7 (1.034 on seed 0): the criterion, not the schedule, matters.
* **The baseline's batch size does not transfer.** Batch 32 made Non-Disentangled worse on seed
  0, with either criterion (1.009 against 0.938; 1.058 against 0.858 with the MAE).
* **Rate, decay, schedule, clipping: nothing beyond noise.** With the MAE criterion on seed 0:
  lr 2e-3 0.982, lr 5e-4 0.884, weight decay 1e-3 0.919, no clipping 0.964, against 0.858. A
  2-epoch warm-up + cosine decay was 0.848 on seed 0 but 0.975 and 0.986 on seeds 1 and 2
  (1.25x over three seeds), no better than the constant rate. The validation MAE (229 samples)
  moves by up to 0.1 between successive epochs, so one-seed differences below about 0.05 are
  noise.
* **The full model needs the patience too.** Stopping on the MAE alone gives 1.46x, and seed 1
  still falls back to ridge level: it sits there for more than the 10 epochs of patience. With 60
  epochs and a patience of 20 the full model reaches 0.942 / 1.059 / 1.009 (**1.34x**) and is
  off ridge level on every seed (the shipped preset: at ridge level on all three); its best
  epochs are 57, 22 and 37, so on seed 0 it was still improving. Warm-up + cosine over 30 epochs
  keeps epoch 4, at ridge level (seed 0), and over 60 is no better than the constant rate (1.012).

**Recommendation.** No training-recipe change closes the gap: the best recipe measured (stop on
the validation MAE, 60 epochs, patience 20) brings Non-Disentangled to 1.19x the baseline, just
inside the 1.2x target, and the full model to 1.34x, never at ridge level but outside the
target. It is recommended for the regression presets (`early_stop="mae"`, with more epochs and
patience on MOSI-sized sets; it can double the longest run), not adopted here because the
presets stay fixed this session. On the demo (`make_benchmark("emotion")`, the `synthetic` preset,
seed 0; `python benchmarks/family_runs.py --demo --models synthetic full_mae_long`) it is not
worse: test MAE 0.515, 1.39x the Bayes floor (best epoch 56 of 60), against 0.534, 1.44x for the
preset as shipped (best epoch 30 of 30), one seed each; both were still learning at the end, so the gain there may be the longer budget rather than the criterion (not separated). The remaining gap is the model: between
the full model and Non-Disentangled (1.34x against 1.19x) the disentangled path (the MLP readings of
`disentangle-diagnosis.md`, to be measured together with this recipe), and between
Non-Disentangled and the baseline something this section did not find: at the baseline's encoder
sizes (width 64, two layers, four heads, every time step) Non-Disentangled stopping on the MAE
reaches 0.829 on seed 0 against 0.858 at the preset's sizes, within noise, so the sizes are not
it; what else differs (the fusion and head, the auxiliary losses, the batch of 64) is not
measured here."""
STEPS_TEXT = """\
**The MLP readings with the recipe (second session).** On `mosi_aligned` the `scaled` MLPs with no
MLP dropout, stopping on the MAE with 60 epochs and patience 20 (`full_mae_long_scaled`), bring
the full model to 0.823 / 0.928 / 0.917, **1.19x** the baseline, level with Non-Disentangled on
the same recipe (1.19x). Without the four extra losses (`full_mae_long_b0g0`) it is 1.40x, so the
paper's losses help here. `train.min_steps` = 1260 (`recipe_steps`) reproduces those runs exactly
on this split (21 steps an epoch: 60 epochs, patience 20; the same MAE and best epoch on all three
seeds) and leaves the demo's benchmark at 30 epochs, but there the readings at 30 epochs cost:
1.54x the Bayes floor against 1.44x as shipped. Keeping the MLP dropout (`recipe_steps_drop`)
keeps the demo (1.43x) and loses `mosi_aligned` (1.27x). The 60-epoch recipe on the demo
(`full_mae_long_scaled`, seed 0) reaches **1.23x** the floor, inside the 1.26x limit, but doubles
the budget of every full-size run, notebook 6's live run included. On `mosi_spread` the baseline
itself stays at ridge level (1.150); the recipe is at 1.210. On `mosi_bert` the baseline learns
(0.801) and every FDMER variant stays at ridge level, Non-Disentangled too (1.258), so that gap is
not the disentangled path. `mosei_aligned` and the paper presets were not run (CPU budget).
Not adopted that session: adopting `full_mae_long_scaled` as the `synthetic` preset makes every
shipped run stale.

**Adopted (third session).** `full_mae_long_scaled` is now the `synthetic` preset, with
`train.early_stop = "auto"` (the validation MAE on a regression task, the task loss on a
classification one, where there is no MAE) and `train.min_steps` left at 0: 60 epochs already
give a MOSI-sized split 1,260 steps. The `fast` preset stops on `"auto"` too, so FAST mode and
full mode teach the same criterion. The rows "before the recipe" (`synthetic_before`,
`family_runs.pre_recipe()`) are the preset as it was. Every shipped run was trained again with
it (`python benchmarks/ship_runs.py`, `--projections`, `--sweep`; sizes and the list in
`shipped-runs.md`).

**`mosei_aligned` with today's preset (third session).** 0.677 / 0.652 / 0.759 against the
baseline's 0.631 / 0.619 / 0.629: 1.11x, inside the 1.2x target, off ridge level on every seed.

**`mosi_spread` with today's preset (third session).** 1.07x the baseline over three seeds,
but at ridge level on all three; the baseline is off ridge level on seed 2 only (1.193 against
ridge 1.294), so on that seed the target's "never at ridge level where the baseline learns" is
missed, narrowly.

**`mosi_spread` seed 2, looked at again (seventh session).** The baseline's 1.193 is its epoch 5,
where its validation MAE is lowest (1.164); from there it memorises (training MSE 1.35 at epoch 5,
0.15 at epoch 15, validation MAE 1.21-1.28). On seeds 0 and 1 its best epochs are 2 and 3, at
ridge level. No FDMER change measured on seed 2 leaves ridge level (`family_runs.py --tasks
mosi_spread --seeds 2 --models ...`): today's preset 1.317 (best epoch 8), a patience of 40
1.317 (8), Non-Disentangled 1.250 (5), beta = gamma = 0 1.239 (5). So neither the disentangled
path nor the four extra losses hold the model there: at this size the task is at the edge of what
any of the models learns, and the baseline's margin (0.92 of the ridge MAE, against the 0.95 that
marks ridge level) comes from the few epochs before it overfits. The miss stands; the preset was
not changed for it.

**`mosi_bert` with today's preset (third session).** The signal is in the 768-wide text only.
The plain baseline learns it on every seed (0.801 / 0.743 / 0.708); today's preset stays at
ridge level on every seed (1.303 / 1.265 / 1.250, best epochs 3-4), so the 1.2x target is not
met here. One change at a time on seed 1 (`family_runs.py --tasks mosi_bert --seeds 1 --models
...`): Non-Disentangled 1.293, Non-Disentangled on the text alone 1.209 (best epoch 1),
`time_stride` 1 1.266, width 64 1.274, no dropout 1.254, patience 60 1.265, the baseline's
encoder sizes (width 64, two layers, four heads, every step) 1.300, and two layers per modality
1.116 (best epoch 41), the only change that left ridge level. It is not a fix: two layers give
1.297 and 1.178 on seeds 0 and 2, and on `mosi_aligned` 0.899 / 1.162 / 0.974, worse than
today's preset there (`--models layers2`). Since a text-only
Non-Disentangled model fails as well, the gap on this task is in the modality encoder and its
training (Eq. 1 and the head), not in the disentangled path; what it is, is not found yet."""
# The final LayerNorm (fifth session): on mosi_bert, seed 1, the plain baseline and FDMER with and
# without a LayerNorm after each transformer stack. (model, what it is)
FINAL_NORM = (
    ("baseline", "plain baseline (no LayerNorm after its stacks)"),
    ("baseline_final_ln", "plain baseline **with** a LayerNorm after each stack"),
    ("nd_text_only", "Non-Disentangled on the text alone, with the final LayerNorm (the preset until then)"),
    ("nd_text_no_final_norm", "Non-Disentangled on the text alone, **without** it"),
    ("synthetic_final_ln", "the full model with the final LayerNorm"),
    ("synthetic", "the full model without it (today's preset)"),
    ("synthetic_nd", "Non-Disentangled, today's preset (three modalities)"),
    ("nfn_patience40", "today's preset, patience 40"),
    ("nfn_b0g0", "today's preset, beta = gamma = 0 (no L_ami, L_ams, L_con, L_dis)"),
    ("nfn_text_only", "today's preset on the text alone (disentangled, one modality)"),
)
FINAL_NORM_TEXT = """\
**Why.** Eq. 1 ends in a pooling over time. A LayerNorm after the last pre-norm layer rescales
every time step to the same size first, so the steps of the window that carries the label count
no more than noise steps, and the label's amplitude, carried by the size of the signal, is lost
before the mean. The plain baseline had no such LayerNorm (`nn.TransformerEncoder` adds none
unless asked); given one, it learns this task much more slowly and less well. Without it,
FDMER's encoder learns the text alone as well as the baseline does. The paper is post-norm
(Section 3.2), whose last layer does end with a LayerNorm; the pre-norm reading of the presets
makes the final one a choice of ours, now `model.final_norm` (default True, so a run saved before
the switch keeps its meaning; every pre-norm preset but the two real-data ones, which were tuned
with it and are not measured without, sets False). Notebook 2 shows the effect on one loud step.

**Adopted (fifth session).** The `synthetic` preset without the final LayerNorm, over three
seeds (the tables above, rows "today" against "until `final_norm`"): `mosi_bert` from 1.70x to
1.20x the baseline, `mosi_aligned` from 1.19x to 1.05x, `mosi_spread` unchanged (1.06x, at ridge
level like the baseline but for its seed 2), `mosei_aligned` from 1.11x to 1.07x. The demo's
benchmark (seed 0): 0.466, 1.26x the Bayes floor, against 0.468 with the LayerNorm. On
`mosi_bert` seed 1 the full model still keeps an early epoch (10) and sits below ridge level only
by a little (1.176 against ridge 1.261), while Non-Disentangled on the text alone reaches the
baseline. What keeps seed 1 there is the four extra losses together with the two modalities
that carry only noise: without the losses (beta = gamma = 0) the full model reaches 0.702, and on
the text alone, disentangled, 0.663, better than the baseline; a longer patience changes nothing.
L_con (Eq. 4-5) and L_ami (Eq. 10) make the common vectors of the three modalities alike, and
here two of them have nothing to share: on this data that is a limit of the method, not a fault
of the encoder. Without the losses the other two seeds reach the same level (the line under the table).
Every shipped run was trained again (`shipped-runs.md`)."""
PAPER_TEXT = """**Why the paper's sizes struggle on a MOSI-sized set.** At the paper's sizes (width 256,
5/4/4 encoder layers, d_k 256) FDMER has 14.1 million weights on `mosi_aligned`'s widths (the
`synthetic` preset 0.27 million, the plain baseline 0.24 million) for 1,284 training samples.
Before its regularisation reading the `mosi` preset either memorised the training set (seed 0:
the training MSE fell to 0.11 while the best validation MAE of any epoch was 0.977, and stopping
on the validation task loss kept epoch 6) or never left the training mean (seed 1, at ridge
level). The sizes fail, not the disentangled path: the plain baseline, which learns this task at
width 64, reaches only 1.064 when it is built at the paper's encoder sizes (seed 0), 1.49x its
small self. Two changes learn at those sizes: a tenth of the learning rate (0.816; the paper
says 1e-3, so this is a diagnosis, not a reading) and the regularisation the real-data presets
already needed (dropout 0.3, weight decay 1e-3, stopping on the validation MAE). Neither a
warm-up to the paper's rate (1.318) nor the CPU preset's MLP readings (1.468: the training MSE
never fell below 3.16) helps. The three paper presets now carry that regularisation
(`fdmer_lite/config.py`; `docs/readings.md` lists it as a reading).

**The 40-epoch runs, and the preset itself.** The runs that chose the reading had a 40-epoch
budget (`mosi_reg`). The gradient reversal's ramp (`train.grl_schedule` "dann") follows the
fraction of the budget done, so with 40 epochs it reaches full strength three times as early as
with the preset's 120: those runs are the reading, not quite the preset. `mosi_cut40` is the
preset's own run stopped after 40 epochs (`Trainer`'s `on_epoch` returning True), `mosei_cut`
the `mosei` preset's stopped after 15.

**What the tables say.** On `mosi_aligned` the preset itself, stopped after 40 epochs, reaches
the baseline's level on seed 0 (0.710 against 0.712, best epoch 32) and beats it on seed 2 (0.691
against 0.806, best epoch 38); seed 1 was not run. The 40-epoch budget is 1.17x the baseline over
three seeds, inside the 1.2x target on the mean, but 1.35x on seed 2 alone (1.089). Up to epoch
40 the two runs of a seed differ only in the pace of the reversal ramp, so on this task the
preset's slower ramp is worth 0.06 MAE on seed 0 and 0.40 on seed 2. On `mosi_bert` seed 0 (the signal in the 768-wide text alone) the preset reaches
0.859, 1.07x (the CPU preset 0.819), best epoch 46 of 66. On `mosei_aligned` seed 0 the `mosei`
preset stopped after 15 of its 100 epochs reaches 0.692, 1.10x (the CPU preset 0.700); its best
epoch is the 13th, so a whole run may do better. On `mosi_spread` seed 0, where the baseline
too is at ridge level (1.150 against ridge 1.204), the preset never leaves the training mean
(training MSE 2.81 to 2.95 for all 40 epochs; test 1.332, the mean's 1.318): with dropout 0.3 and
weight decay the paper's sizes do not even memorise a task whose signal is spread thin over three
modalities.

**What was not run, and why.** A paper-sized epoch takes 43-55 s on one core for a MOSI-sized
set and about 220 s for the MOSEI-sized one (the tables' last figure in each cell); a `mosi` run
ends after 45-90 minutes, a whole `mosei` run (up to 100 epochs, patience 20) after several
hours. Both presets, three seeds, four tasks come to about a day of one core, more than was
available, so the paper presets are measured on the runs above: the 1.2x target over three
seeds is checked only with the 40-epoch budget on `mosi_aligned`, and the preset itself on two
of its seeds. Long runs on a CPU hide one more trap: after
about 28 epochs of a paper-sized run, denormal floats made a training step 5.5x slower, all of it
in the backward pass (`denormals.md`); `Trainer.fit` now flushes them to zero on the CPU."""
# What --train runs (task -> seeds).
RIDGE_LEVEL = 0.95   # "(r)": a test MAE at least this fraction of that seed's ridge MAE
PLAN = {"mosi_aligned": (0, 1, 2), "mosi_spread": (0, 1, 2), "mosi_bert": (0, 1, 2), "mosei_aligned": (0, 1, 2)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--train", action="store_true")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    if a.train:
        for task, seeds in PLAN.items():
            for seed in seeds:
                for model in MODELS:
                    family_runs.run(task, seed, model)
    store = family_runs.load_store()
    lines = ["# The task family: baseline, `synthetic` preset and Non-Disentangled",
             "",
             "Written by `python benchmarks/task_family_report.py` from the runs stored in "
             "`benchmarks/results/family-runs.json` (`benchmarks/family_runs.py`; tasks in "
             "`benchmarks/task_family.py`). Test MAE of the best-on-validation epoch, one thread "
             "per run on a shared 2-core host. The `synthetic` preset today is the recipe of the "
             "sections below (scale-preserving Eq. 2-3 MLPs without dropout, early stopping on the "
             "validation MAE, 60 epochs, patience 20) with no LayerNorm after each transformer stack "
             "(`model.final_norm`, the last section); \"before the recipe\" is the preset as it was "
             "(PyTorch's initialisation and the common dropout in the MLPs, the validation task loss, "
             "30 epochs, patience 10; `benchmarks/results/disentangle-diagnosis.md`). A blank cell was not run. The ratio is a model's mean over the seeds where both ran against the "
             "baseline's. \"(r)\" marks a run at ridge level (test MAE at least "
             f"{RIDGE_LEVEL:g} times that seed's ridge MAE). Each seed draws its own data set.",
             ""]
    for task in TASKS:
        seeds = sorted({r["seed"] for r in store.values() if r["task"] == task
                        and any(family_runs.find(store, task, r["seed"], m) for m in MODELS)})
        if not seeds:
            lines += [f"## `{task}`", "", "not run (CPU budget).", ""]
            continue
        lines += [f"## `{task}`", "",
                  "| model | " + " | ".join(f"seed {s}" for s in seeds) + " | mean / baseline |",
                  "|---|" + "---|" * (len(seeds) + 1)]
        ridge, mean = [], []
        for s in seeds:
            data = make_task(task, s)
            ridge.append(ridge_mae(data))
            mean.append(float(np.mean(np.abs(data.splits["test"].labels - data.splits["train"].labels.mean()))))
        lines.append("| ridge, time-averaged features | " + " | ".join(f"{v:.3f}" for v in ridge) + " | |")
        lines.append("| training mean | " + " | ".join(f"{v:.3f}" for v in mean) + " | |")
        base = {s: family_runs.find(store, task, s, "baseline") for s in seeds}
        for model in MODELS:
            runs = {s: family_runs.find(store, task, s, model) for s in seeds}
            if not any(runs.values()):
                continue
            cells = [(f"{r['test_mae']:.3f}" + (" (r)" if r["test_mae"] >= RIDGE_LEVEL * rg else ""))
                     if r else "" for r, rg in zip(runs.values(), ridge)]
            ratio = ratio_to_baseline(runs, base)
            lines.append(f"| {NAMES[model]} | " + " | ".join(cells) + f" | {ratio:.2f} |")
        lines.append("")
    lines += recipe_section(store)
    lines += demo_section(store) + [STEPS_TEXT, ""] + final_norm_section(store) + weights_section(store)
    lines += paper_section(store)
    OUT.write_text("\n".join(lines))
    print(OUT.read_text())


def ratio_to_baseline(runs: dict, base: dict) -> float:
    """A model's mean test MAE over the seeds where both it and the baseline ran, over the
    baseline's mean on those seeds (``runs`` and ``base``: seed -> stored run or None); NaN when
    there is no such seed."""
    both = [s for s in runs if runs[s] and base.get(s)]
    if not both:
        return float("nan")
    return float(np.mean([runs[s]["test_mae"] for s in both]) / np.mean([base[s]["test_mae"] for s in both]))


def recipe_section(store: dict, task: str = "mosi_aligned") -> list[str]:
    """The "Recipe" section: each RECIPE variant's test MAE per seed (best epoch in brackets)
    and its ratio to the baseline over the seeds where both ran."""
    seeds = (0, 1, 2)
    base = {s: family_runs.find(store, task, s, "baseline") for s in seeds}
    ridge = {s: (base[s] or {}).get("ridge_mae") for s in seeds}
    lines = ["## Recipe", "", f"Training-recipe changes on `{task}` (the model and Eq. 1-18 unchanged; "
             "`ND` = Non-Disentangled, `disentangle=False`). Test MAE (best epoch); the ratio is "
             "the mean over the seeds run against the baseline's mean over the same seeds.", "",
             "| variant | " + " | ".join(f"seed {s}" for s in seeds) + " | mean / baseline |",
             "|---|" + "---|" * (len(seeds) + 1),
             "| plain baseline | " + " | ".join(f"{base[s]['test_mae']:.3f} ({base[s]['best_epoch']})"
                                              if base[s] else "" for s in seeds) + " | 1.00 |"]
    for model, what in RECIPE:
        runs = {s: family_runs.find(store, task, s, model) for s in seeds}
        if not any(runs.values()):
            continue
        cells = [(f"{r['test_mae']:.3f} ({r['best_epoch']})"
                  + (" (r)" if ridge[s] and r["test_mae"] >= RIDGE_LEVEL * ridge[s] else "")) if r else ""
                 for s, r in runs.items()]
        ratio = ratio_to_baseline(runs, base)
        lines.append(f"| `{model}`: {what} | " + " | ".join(cells) + f" | {ratio:.2f} |")
    return lines + ["", RECIPE_TEXT, ""] if RECIPE_TEXT else lines + [""]


def final_norm_section(store: dict, task: str = "mosi_bert", seed: int = 1) -> list[str]:
    """The final LayerNorm: each FINAL_NORM model's test MAE and best epoch on (task, seed)."""
    lines = ["## The LayerNorm after each transformer stack", "",
             f"`{task}`, seed {seed} (the signal in 768-wide text only; ridge "
             f"{ridge_mae(make_task(task, seed)):.3f}). Test MAE (best epoch).", "",
             "| model | test MAE (best epoch) |", "|---|---|"]
    for model, what in FINAL_NORM:
        r = family_runs.find(store, task, seed, model)
        lines.append(f"| `{model}`: {what} | " + (f"{r['test_mae']:.3f} ({r['best_epoch']})" if r else "not run") + " |")
    per_seed = []
    for model in ("baseline", "synthetic", "nfn_b0g0"):
        runs = [family_runs.find(store, task, s, model) for s in (0, 1, 2)]
        per_seed.append(f"`{model}` " + " / ".join(f"{r['test_mae']:.3f}" if r else "not run" for r in runs))
    lines += ["", f"Over seeds 0 / 1 / 2 on `{task}`: " + "; ".join(per_seed) + "."]
    return lines + ["", FINAL_NORM_TEXT, ""]


WEIGHTS_TEXT = """Each row trains on the same data set (seed 2 draws it) with another seed for the
weights, dropout and batch order (`python benchmarks/family_runs.py --tasks mosi_spread --seeds 2
--inits 10 11 12 13 --models baseline synthetic`). The baseline's margin below ridge level is not
one lucky initialisation: it is there on most weight seeds, small on all of them. The preset
sits at or above the ridge MAE on every weight seed, and with every time step kept (`time_stride`
1, the row in the `mosi_spread` table) it is no better. So on this data set the miss is real and
consistent; it is also small, on a task where the baseline itself is at ridge level on seeds 0
and 1."""


def weights_section(store: dict, task: str = "mosi_spread", seed: int = 2,
                    models=("baseline", "synthetic")) -> list[str]:
    """One data set, several weight seeds: each model's test MAE per weight seed stored for
    (task, seed), and the ridge-level mark. No lines when no other weight seed ran."""
    inits = sorted({r["init_seed"] for r in store.values()
                    if r.get("task") == task and r.get("seed") == seed and "init_seed" in r})
    if not inits:
        return []
    ridge = ridge_mae(make_task(task, seed))
    weights = [seed, *inits]
    lines = [f"## `{task}` seed {seed}: other weight seeds", "",
             f"Test MAE (best epoch); the ridge MAE of this data set is {ridge:.3f}, so \"(r)\" is a "
             f"test MAE of at least {RIDGE_LEVEL * ridge:.3f}.", "",
             "| model | " + " | ".join(f"weights {w}" for w in weights) + " |",
             "|---|" + "---|" * len(weights)]
    for model in models:
        runs = [family_runs.find(store, task, seed, model, None if w == seed else w) for w in weights]
        cells = [(f"{r['test_mae']:.3f} ({r['best_epoch']})" + (" (r)" if r["test_mae"] >= RIDGE_LEVEL * ridge else ""))
                 if r else "" for r in runs]
        lines.append(f"| {NAMES.get(model, model)} | " + " | ".join(cells) + " |")
    return lines + ["", WEIGHTS_TEXT, ""]


#: the paper-sized presets (Section 4.2: width 256, 5/4/4 layers; `mosi` batch 64 and up to 120
#: epochs, `mosei` batch 16 and up to 100), as they are today and with two readings, per task
PAPER = (("mosi_before", "`mosi` preset before its regularisation reading (dropout 0.1, no weight decay, "
                         "stop on the validation task loss)"),
         ("mosi", "**`mosi` preset today** (dropout 0.3, weight decay 1e-3, stop on the validation MAE; "
                  "up to 120 epochs, patience 20)"),
         ("mosi_cut40", "`mosi` preset today, stopped after 40 epochs (the same run up to there)"),
         ("mosi_reg", "today's reading with a 40-epoch budget (the runs that chose it; the gradient "
                      "reversal's ramp 3x as fast)"),
         ("mosi_recipe", "before + the CPU recipe's readings (`mlp_init` \"scaled\", `mlp_dropout` 0, "
                         "stop on the validation MAE)"),
         ("mosi_auto", "before, stopping on the validation MAE, cut at 40 epochs (only that part of the reading)"),
         ("mosi_nd", "before, Non-Disentangled (`disentangle` False: no Eq. 2-11, CMAF on h_m)"),
         ("mosi_lr1e4", "before, at a tenth of the paper's learning rate (1e-4; a diagnosis, not a reading)"),
         ("mosi_warmup", "before, the paper's rate 1e-3 reached by a linear warm-up over 5 epochs"),
         ("baseline_paper", "plain baseline at the paper's sizes (width 256, 5/4/4 layers, 8 heads, "
                            "4x feed-forward), its own recipe"),
         ("mosei", "**`mosei` preset today** (batch 16; the same reading)"),
         ("mosei_cut", "`mosei` preset today, stopped after 15 epochs (the same run up to there)"))
PAPER_TASKS = ("mosi_aligned", "mosi_spread", "mosi_bert", "mosei_aligned")


def paper_table(store: dict, task: str, seeds=(0, 1, 2)) -> list[str]:
    """One task's table of the paper-sized section: test MAE (best epoch / epochs run) and
    seconds an epoch of each PAPER variant that ran on ``task``, beside the plain baseline of the
    same seeds; no lines when none ran."""
    runs = {m: {s: family_runs.find(store, task, s, m) for s in seeds} for m, _ in PAPER}
    seeds = [s for s in seeds if any(runs[m][s] for m, _ in PAPER)]
    if not seeds:
        return []
    base = {s: family_runs.find(store, task, s, "baseline") for s in seeds}
    lines = [f"### `{task}`", "",
             "| model | " + " | ".join(f"seed {s}" for s in seeds) + " | mean / baseline |",
             "|---|" + "---|" * (len(seeds) + 1),
             "| ridge, time-averaged features | " + " | ".join(
                 f"{base[s]['ridge_mae']:.3f}" if base[s] else "" for s in seeds) + " | |",
             "| plain baseline | " + " | ".join(
                 f"{base[s]['test_mae']:.3f} ({base[s]['best_epoch']})" if base[s] else "" for s in seeds) + " | 1.00 |"]
    for model, what in PAPER:
        if not any(runs[model].values()):
            continue
        cells = [(f"{r['test_mae']:.3f} ({r['best_epoch']} / {len(r['curve'])}, {r['seconds'] / len(r['curve']):.0f} s)"
                  + (" (r)" if r["test_mae"] >= RIDGE_LEVEL * r["ridge_mae"] else "")) if r else "not run"
                 for r in (runs[model][s] for s in seeds)]
        ratio = ratio_to_baseline(runs[model], base)
        lines.append(f"| {what} | " + " | ".join(cells) + f" | {ratio:.2f} |")
    return lines + [""]


def paper_section(store: dict) -> list[str]:
    """The paper-sized presets: a table for each task of PAPER_TASKS where one of them ran."""
    tables = [line for task in PAPER_TASKS for line in paper_table(store, task)]
    if not tables:
        return ["## The paper-sized preset", "", "not run (CPU budget).", ""]
    return ["## The paper-sized preset", "",
            "Test MAE (best epoch / epochs run), wall seconds an epoch (one thread, run at low priority "
            "beside other training on the 2-core host: an upper bound).", ""] + tables + [PAPER_TEXT, ""]


def demo_section(store: dict) -> list[str]:
    """The demo's benchmark: test MAE, its ratio to the Bayes floor and the best epoch of each
    DEMO variant that ran (seed 0)."""
    lines = ["## The demo's benchmark", "",
             "`python benchmarks/family_runs.py --demo --models NAME`: the `synthetic` preset with each "
             "change on `make_benchmark(\"emotion\")` (10,000 training samples, 157 steps an epoch), seed 0.",
             "", "| variant | test MAE | / Bayes floor | best epoch / epochs run |", "|---|---|---|---|"]
    for model in DEMO:
        r = store.get(f"demo|0|{model}")
        if r:
            lines.append(f"| `{model}` | {r['test_mae']:.3f} | {r['floor_ratio']:.2f}x | "
                         f"{r['best_epoch']} / {len(r['curve'])} |")
    return lines + [""]


if __name__ == "__main__":
    main()
