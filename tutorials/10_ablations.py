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
# # 10. Ablations: does every part earn its place?
#
# The paper's Table 4 is its argument. Each row removes or replaces one part of FDMER (a
# modality, a loss term, the common or the private representation, the disentanglement
# itself, a phase of the fusion, the whole fusion) and reports that the full model is best.
#
# Two things make such a table hard to read. One run per row hides how much a row moves when
# only the seed changes; and on real data nobody knows what the common and private
# representations *should* contain. Here every row is trained with several seeds (mean ± standard
# deviation), and the known-factor benchmark lets us also measure the representations.
#
# A variant is just a function from one configuration to another. Everything else stays equal:
# same data, same preset, same seeds.

# %%
import plotly.graph_objects as go
from IPython.display import Markdown, display

from fdmer_lite import lessons, verdicts
from fdmer_lite.ablations import (BY_KEY, LESSON_GRID, VARIANTS, benchmark_setup, claims_markdown, paper_claims,
                                  run_ablation)
from fdmer_lite.experiments.runs import DataSpec

fast = lessons.setup()

# %% [markdown]
# ## 10.1 The variants
#
# `fdmer_lite.ablations.VARIANTS` holds the paper's rows, each with what it changes.

# %%
for v in VARIANTS:
    print(f"{v.key:17s} {v.name:27s} {v.change}")

# %% [markdown]
# From scratch: "w/o L_con" keeps every part of the model and drops one term from Eq. 18. In
# terms of the configuration that is one field. Build it by hand and compare with the library's.

# %%
cfg = lessons.lesson_config()
mine = cfg.replace(loss={"aux_losses": "ami+ams+dis"})
library = BY_KEY["wo_con"].apply(cfg)
assert mine.to_dict()["loss"] == library.to_dict()["loss"]
assert mine.to_dict()["model"] == library.to_dict()["model"]
print("w/o L_con by hand == library; gamma still weighs L_dis:", library.loss.gamma, library.loss.uses("dis"))

# %% [markdown]
# Two rows need care. "w/o Common" and "w/o Private" keep the representation *learning* (the
# common encoder still gets L_ami and L_con) and only leave C, or P_t, P_a, P_v, out of the
# fusion. "Non-Disentangled" removes the common and private encoders altogether and fuses the
# transformer features h_m directly, so none of the four extra losses exists.

# %%
for key in ("wo_common", "wo_private", "non_disentangled"):
    m = BY_KEY[key].apply(cfg).model
    print(f"{key:17s} fusion_targets={m.fusion_targets!r:6s} disentangle={m.disentangle}")

# %% [markdown]
# ## 10.2 Running the grid
#
# Every (variant, seed) pair is one independent run with its own folder, named by the variant,
# the seed and a hash of the configuration. `run_ablation` hands the list of runs to the one grid
# runner, which trains them on an engine (this process, local worker processes, or Ray) and skips
# every run already finished with the same configuration on the same data: stop it, start it
# again, and only the missing runs train.

# %% [markdown]
# In FAST mode we run a small grid on tiny data, which says little about FDMER. The full grid is
# the full model and its 16 variants, two seeds each, of the CPU-sized preset: 34 runs of several
# minutes each, hours on a laptop. So its finished runs ship with the package (`fdmer_lite/shipped_runs/grid/`, their
# configuration and metrics: what the table reads). The runner looks for each run there too,
# after your grid folder, and uses it when its configuration and data fingerprint match the
# ones this notebook asks for; it trains only what is still missing, with a bar that counts the
# runs. To train the whole grid yourself, from a terminal at the root of the checkout (two
# worker processes):
#
# ```
# python tools/ship_runs.py --grid --grid-from runs/lessons/synthetic-emotion --workers 2
# ```

# %%
if fast:
    base = lessons.lesson_config(train={"epochs": 2, "device": "cpu"})
    data = DataSpec("synthetic", options={"kind": "emotion", "seed": 0, "n_train": 128,
                                          "n_valid": 32, "n_test": 64, "seq_len": 20})
    label, variants, seeds = "synthetic-emotion-tiny", "wo_ami_ams,wo_common,wo_private", (1, 2)
else:
    base, data, label = benchmark_setup("emotion")
    variants, seeds = LESSON_GRID["variants"], LESSON_GRID["seeds"]

result = run_ablation(base, data, variants=variants, seeds=seeds, out_dir=lessons.runs_dir() / label,
                      workers=0, progress=not fast, dataset_label=label)

# %% [markdown]
# ## 10.3 The table
#
# One row per variant: the mean ± the sample standard deviation over seeds, the change of the
# test MAE against the full model, and the disentanglement scores (`disentanglement_scores` in
# `fdmer_lite/analysis.py` defines each; notebook 7 shows them). The same table is in `table.md` and, with every metric, `table.csv`.

# %%
display(Markdown(result.markdown))

# %% [markdown]
# The paper's own Table-4 numbers (`fdmer_lite.ablations.PAPER_TABLE4`, every row for MOSI,
# MOSEI and UR_FUNNY) go beside ours when the data has the standard folds of one of its data
# sets. On the generated benchmark there is nothing of the paper's to compare with; the Bayes
# floor is the reference instead.
#
# ## 10.4 Error bars first
#
# A difference between two rows means something only if it is larger than the spread between
# seeds. The bars show each row's change of MAE against the full model, with the standard error
# of that difference.

# %%
full = next(r for r in result.rows if r["variant"] == "full")
others = [r for r in result.rows if r["variant"] != "full" and "mae_mean" in r]
delta = [r["mae_mean"] - full["mae_mean"] for r in others]
se = [((r["mae_std"] ** 2) / r["n"] + (full["mae_std"] ** 2) / full["n"]) ** 0.5 for r in others]
fig = go.Figure(go.Bar(x=[r["name"] for r in others], y=delta, error_y={"type": "data", "array": se}))
fig.update_layout(title="Test MAE minus the full model's (above 0: the part helped)",
                  yaxis_title="Δ MAE", height=380)
fig

# %% [markdown]
# And what the adversarial losses do to the common representations: the linear probe's accuracy
# at telling the modality from C_m (chance is 1/3), with and without L_ami + L_ams.

# %%
rows = [r for r in result.rows if "common_modality_acc_mean" in r]
fig = go.Figure(go.Bar(x=[r["name"] for r in rows], y=[r["common_modality_acc_mean"] for r in rows],
                       error_y={"type": "data", "array": [r["common_modality_acc_std"] for r in rows]}))
fig.add_hline(y=1 / 3, line_dash="dot", annotation_text="chance")
fig.update_layout(title="Modality read from C by a fresh linear probe", yaxis_range=[0, 1.05], height=380)
fig

# %% [markdown]
# The paper's Figure-2 claim, read from the full model's row (means over seeds) beside the row
# without the adversary. Possible outcomes: the probe near chance (the claim holds for a linear
# reader); the probe high but the modalities closer than without `L_ami + L_ams` (the losses
# move the common space towards the claim without reaching it); or neither.

# %%
wo_adv = next((r for r in result.rows if r["variant"] == "wo_ami_ams" and "common_gap_mean" in r), None)
print(verdicts.figure2(full["common_modality_acc_mean"], full["common_gap_mean"], epochs=base.train.epochs,
                       probe_acc_without=wo_adv and wo_adv["common_modality_acc_mean"],
                       gap_without=wo_adv and wo_adv["common_gap_mean"], without="without L_ami + L_ams"))

# %% [markdown]
# ## 10.5 Which of the paper's claims does the benchmark support?
#
# `paper_claims` turns the orderings the paper argues for into checks: is each variant worse
# than the full model? Does removing the adversarial losses make the modality easier to read
# from C? On the emotion-like benchmark, where 80 % of the label comes from the private
# latents, does dropping the private part hurt more than dropping the common part? "Clear"
# means the difference is larger than two standard errors.

# %%
display(Markdown(claims_markdown(paper_claims(result.rows, kind="emotion"))))

# %% [markdown]
# Read the verdicts with the error bars in mind. In FAST mode (two epochs on 128 samples) almost
# everything is noise, and that is a finding too: a one-seed ablation table of a small model can
# show any ordering.

# %% [markdown]
# ## 10.6 A real-data column: CMU-MOSI text + audio
#
# The benchmark tells us what the parts do to the representations; real data tells us whether
# the paper's orderings survive outside it. The modality and regularisation rows were run on the
# real CMU-MOSI text + audio set (all-MiniLM-L6-v2 token states for the text, the
# `mosi_text_audio_minilm` preset, three seeds), too long for a notebook, by
#
# `python benchmarks/ablation_grid.py --dataset mosi-text-audio --text-features minilm ...`
#
# and the table ships in the repository. The cell reads it, if present, with the paper's MOSI
# rows beside ours. Not like for like: the paper's model also sees the face, and its "w/o
# Visual" row is our full model. Compare each row's change against the full model with its
# spread over seeds before reading an ordering into it.

# %%
from pathlib import Path

here = Path.cwd().resolve()
root = next((p for p in (here, *here.parents) if (p / "benchmarks" / "results").is_dir()), None)
real = root / "benchmarks" / "results" / "ablation-mosi-text-audio-minilm.md" if root else None
if real is not None and real.is_file():
    section = real.read_text().split("## Beside the paper's Table 4 (MOSI)", 1)[-1].strip().splitlines()
    table = []
    for line in section:
        if line.startswith("|"):
            table.append(line)
        elif table:
            break                                   # the first table of the section only
    display(Markdown("\n".join(table)))
    print(f"From {real.relative_to(root)} (written by benchmarks/ablation_grid.py; not computed here).")
else:
    print("No shipped real-data table here (benchmarks/results/ablation-mosi-text-audio-minilm.md).")

# %% [markdown]
# ## Summary
#
# * Each row of Table 4 is a transformation of the configuration (`fdmer_lite.ablations`);
#   nothing else differs between the rows.
# * `run_ablation` / `fdmer-lite ablate` run variants x seeds through a resumable engine (local
#   processes or Ray) and report mean ± standard deviation per metric.
# * With error bars, some of the orderings of a single-run table do not survive; on the
#   known-factor benchmark we can also check what the parts do to the representations.

# %% [markdown]
# ## Exercises
#
# Each exercise says what you will learn and gives a hint. Write your answer in the empty
# "your turn" cell below it; `exercises.check("N.k", answer, ...)` prints ✓ or ✗, against a value
# it computes independently, and on ✗ a hint, never the answer. The solution is the collapsed
# cell after that: click the bar at the cell's left (or its `…`) to read it. It does not run
# unless you ask: run `exercises.show_solutions()` first (or start Jupyter with
# `FDMER_LITE_SOLUTIONS=1`, as the tests do), and running all cells runs the solutions too.

# %%
from fdmer_lite import exercises

# %% [markdown]
# ### Exercise 10.1: how many seeds?
#
# For the row "w/o L_ami + L_ams", how many seeds per row would make its difference from the full
# model *clear* (larger than two standard errors), if the means and spreads stayed as they are?
# **You learn** to size an ablation before running it: the standard error falls like 1/sqrt(n).
#
# *Hint:* with n seeds each, `se = sqrt((s_full^2 + s_row^2) / n)`; solve `|Δ| = 2 se` for n.
# *Check:* `exercises.check("10.1", n, full=full, row=row)`, with `row` the row of `result.rows`.
# *Time:* adding seeds trains only the new runs; a full-size run takes several minutes.

# %%
# Your turn 10.1: your code here, then exercises.check("10.1", ...)

# %% jupyter={"source_hidden": true} tags=["solution"]
%%solution
# Solution 10.1
import math

row101 = next(r for r in result.rows if r["variant"] == "wo_ami_ams")
d101 = abs(row101["mae_mean"] - full["mae_mean"])
var101 = row101["mae_std"] ** 2 + full["mae_std"] ** 2
need = math.ceil(4 * var101 / d101 ** 2) if d101 > 0 else math.inf
print(f"|delta MAE| {d101:.4f}, seeds per row for 2 standard errors: {need} (now {row101['n']})")
assert exercises.check("10.1", need, full=full, row=row101)

# %% [markdown]
# ### Exercise 10.2: does dropping the adversary show in the probe?
#
# The paper's argument for L_ami + L_ams is that they make `C` modality-free. Compare the linear
# probe's accuracy at telling the modality from `C` (`common_modality_acc_mean`) between the full
# model and "w/o L_ami + L_ams", with the standard error of the difference. **You learn** to test
# the *mechanism* of a claim, not only its effect on the MAE.
#
# *Hint:* the same standard error as in 10.4, with the `common_modality_acc_*` columns.
# *Check:* `exercises.check("10.2", (difference, standard_error), full=full, row=row)`.

# %%
# Your turn 10.2: your code here, then exercises.check("10.2", ...)

# %% jupyter={"source_hidden": true} tags=["solution"]
%%solution
# Solution 10.2
a102, b102 = full["common_modality_acc_mean"], row101["common_modality_acc_mean"]
se102 = math.sqrt(full["common_modality_acc_std"] ** 2 / full["n"] + row101["common_modality_acc_std"] ** 2 / row101["n"])
print(f"probe accuracy on C: full {a102:.3f}, w/o L_ami + L_ams {b102:.3f}, "
      f"difference {b102 - a102:+.3f} ± {se102:.3f} -> {'clear' if abs(b102 - a102) > 2 * se102 else 'not clear'}")
assert exercises.check("10.2", (b102 - a102, se102), full=full, row=row101)
