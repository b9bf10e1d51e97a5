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
# # 7. What was learned
#
# The paper argues for its subspaces with pictures: t-SNE of the common and private
# representations (Figure 2), the discriminator's probabilities (Figure 4a) and the fusion
# weights (Figure 4b). We redraw each for our trained models, and because the known-factor
# benchmark knows its latents, we also *measure* the disentanglement (`analysis.disentanglement_scores`):
#
# | score | what it asks | ideal |
# |---|---|---|
# | `common_modality_acc` | can a fresh linear probe tell the modality from `C_m`? | 1/3 (chance) |
# | `private_modality_acc` | ... from `P_m`? | 1.0 |
# | `common_factor_r2` | ridge R² of the shared latent `s` from `C_m` | near 1 |
# | `private_factor_r2` | ridge R² of `z_m` from `P_m` | near 1 |
# | `disc_prob_common` | the discriminator's mean p(true modality) on `C_m` | ~0.33 in the paper |
#
# This notebook reuses the runs of notebook 6 (`runs/lessons/`) and trains what is missing.

# %%
import numpy as np

from fdmer_lite import lessons, verdicts, viz
from fdmer_lite.analysis import extract_representations

fast = lessons.setup()

# %% [markdown]
# ## 7.1 The runs
#
# Three runs of the same model: the paper's losses (`beta = gamma = 0.02`, gradient reversal),
# none of them (`beta = gamma = 0`), and the paper's losses on the *humor-like* benchmark (same
# features, label mostly shared). `lesson_run` loads the run of notebook 6 if you trained it,
# and at full size the runs that ship with the package (when their configuration and data
# fingerprint match these cells'); it trains only what is missing.

# %%
emotion, humor = lessons.lesson_data("emotion"), lessons.lesson_data("humor")
config = lessons.lesson_config()
runs = {
    "paper (grl)": lessons.lesson_run("emotion-paper", config, emotion),
    "beta = gamma = 0": lessons.lesson_run(
        "emotion-beta0-gamma0", config.replace(loss={"beta": 0.0, "gamma": 0.0}), emotion),
    "humor-like (grl)": lessons.lesson_run("humor-paper", config, humor),
}

# %% [markdown]
# Representations of the test split: `C_m`, `P_m`, the discriminator's probabilities and ψ.

# %%
reps = {name: extract_representations(run.model, humor if name.startswith("humor") else emotion,
                                      "test", device=run.trainer.device)
        for name, run in runs.items()}
r = reps["paper (grl)"]
print({m: r.common[m].shape for m in r.modalities}, r.psi.shape, r.psi_names)

# %% [markdown]
# ## 7.2 Figure 2: common and private representations
#
# One joint t-SNE per model of all six sets (`C_t, C_a, C_v` light, `P_t, P_a, P_v` dark).
# The paper's claim: with its losses the light clouds of the three modalities are "blended
# together", without them they are not. What you may see: light clouds that mix (the claim);
# light clouds in three separate islands (each modality keeps its own region of `C`); or
# islands that sit closer with the losses than without (part of the way). Dark clouds apart:
# each private space keeps its modality, as Eq. 11 asks; mixed: it does not. Projections are
# cached in `runs/lessons/.../projections`, so re-running the cell is instant; those of the shipped runs come with the package, and are used only when
# your representations are exactly the shipped run's.

# %%
n_points = 100 if fast else 300
viz.embedding_comparison({"beta = gamma = 0": reps["beta = gamma = 0"], "paper's beta, gamma": r},
                         method="tsne", max_points=n_points, cache=lessons.projection_cache())

# %% [markdown]
# t-SNE keeps neighbourhoods but distorts distances. UMAP is the usual second opinion; its first
# run in a process compiles code with numba (tens of seconds), so FAST mode skips it.

# %%
if fast:
    print("FAST mode: UMAP skipped (numba compilation takes ~40 s). Unset FDMER_LITE_FAST to draw it.")
else:
    fig = viz.embedding_comparison({"beta = gamma = 0": reps["beta = gamma = 0"], "paper's beta, gamma": r},
                                   method="umap", max_points=n_points, cache=lessons.projection_cache())
    fig.show()

# %% [markdown]
# Pictures can mislead: the scores say what a probe can read. Side by side:

# %%
score_keys = ["mae", "common_modality_acc", "private_modality_acc", "common_factor_r2",
              "private_factor_r2", "disc_prob_common", "disc_prob_private"]
ideal = {"mae": f"{emotion.info['bayes_mae']:.3f} (Bayes)", "common_modality_acc": "1/3",
         "private_modality_acc": "1", "common_factor_r2": "near 1", "private_factor_r2": "near 1",
         "disc_prob_common": "1/3 (paper)", "disc_prob_private": "1"}
scores = {name: run.metrics for name, run in runs.items() if not name.startswith("humor")}
viz.compare_table(scores, keys=score_keys, ideal=ideal, title="Disentanglement scores (test split)")

# %%
for name, s in scores.items():
    print(f"{name:18s} common_modality_acc {s['common_modality_acc']:.2f}  "
          f"disc_prob_common {s['disc_prob_common']:.3f}  MAE {s['mae']:.3f}")

# %% [markdown]
# The Figure-2 verdict reads the same numbers: a fresh probe near chance means the clouds are
# blended for a linear reader; `common_gap` (0: one sample's `C_t, C_a, C_v` coincide; about 1:
# no closer than unrelated samples; far above 1: separate clouds) says how far apart they are,
# with and without the losses. The Figure-3 verdict reads the training history, as in notebook 6.

# %%
paper, off = scores["paper (grl)"], scores["beta = gamma = 0"]
n_epochs = len(runs["paper (grl)"].history)
print(verdicts.figure2(paper["common_modality_acc"], paper["common_gap"], epochs=n_epochs,
                       probe_acc_without=off["common_modality_acc"], gap_without=off["common_gap"]))
history = runs["paper (grl)"].history
print(verdicts.figure3([e["train"]["all"] for e in history],
                       [e["train"]["con"] + e["train"]["dis"] for e in history], best_epoch=paper["best_epoch"]))

# %% [markdown]
# A caution about `beta = gamma = 0`: there the discriminator receives no gradient at all
# (its losses are weighted by zero), so its "probabilities" are those of random weights. A value
# near 1/3 can mean a fooled discriminator or an untrained one.
#
# ## 7.3 Figure 4a: does the discriminator get fooled?
#
# The paper shows the discriminator's probability of the true modality near 0.33 on `C_m` and
# near 1 on `P_m`. Our run with gradient reversal (the paper's reading of Eq. 10):

# %%
viz.discriminator_probabilities(r, title="Gradient reversal: p(true modality)")

# %% [markdown]
# Where does the probability go? The mean probability the discriminator gives each modality,
# for common representations of each true modality (row: the true modality). Three pictures
# are possible: mass on the diagonal, D is not fooled; about 1/3 in every cell, D is confused;
# mass off the diagonal, D is confidently wrong (a relabelling). Rows can also differ.

# %%
def confusion_matrix(rep):
    return np.stack([rep.disc_prob_common[m].mean(axis=0) for m in rep.modalities])   # (M, M)


names = [f"C_{m}" for m in r.modalities]
viz.attention_heatmap(confusion_matrix(r), rows=names, cols=list(r.modalities),
                      title="Gradient reversal: mean discriminator probabilities on C_m")

# %% [markdown]
# **The possible outcomes, per modality.** *Fooled*: the box of p(true modality | `C_m`) sits
# around 1/3, as in the paper's Figure 4a. *Confidently wrong*: it sits near 0; under gradient
# reversal the encoders gain from making the discriminator *wrong*, and its loss has no upper
# bound (notebook 4, section 4.6), so a consistent relabelling pays. *Not fooled*: near 1, the
# discriminator won the game. *Mixed*: a wide box whose samples sit at both ends. A mean over
# the modalities can hide boxes at 0 and 1, so the verdict reads each modality's box:

# %%
p_true = verdicts.p_true_by_modality(r.disc_prob_common, r.modalities)
print(verdicts.figure4a(p_true, epochs=n_epochs))

# %% [markdown]
# Whether a fooled discriminator also means a hidden modality, what a fresh probe reads in
# `C_m`, and what the confusion form of the adversary changes, is the story of notebook 11.
#
# ## 7.4 Figure 4b: fusion weights, emotion-like versus humor-like
#
# The two benchmarks share features and latents; only the label differs: in the emotion-like
# one 80 % of the label variance is private, in the humor-like one 80 % is shared. Does CMAF's
# ψ move towards `C` when the label is mostly shared? Three outcomes: up (what the paper's
# Figure 4b argues: more weight where the label's information is), flat, or down.

# %%
viz.fusion_weights({"emotion-like": r, "humor-like": reps["humor-like (grl)"]},
                   title="Fusion weights ψ on the test split")

# %%
mean_psi = {name: reps[name].psi.mean(axis=0) for name in ("paper (grl)", "humor-like (grl)")}
for name, psi in mean_psi.items():
    print(f"{name:18s} mean psi " + "  ".join(f"{t} {p:.3f}" for t, p in zip(r.psi_names, psi)))
on_c = {name: float(psi[list(r.psi_names).index("C")]) for name, psi in mean_psi.items()}
short = min(len(runs[name].history) for name in on_c)
print(verdicts.figure4b(on_c["paper (grl)"], on_c["humor-like (grl)"], epochs=short))

# %% [markdown]
# ψ says how much each target is *weighted*, not how much information it carries: a target can
# get a small weight and a large norm. Treat Figure 4b as a hint, and the probes of notebook 11 as the test.

# %% [markdown]
# ## Summary
#
# * Figure 2 (t-SNE/UMAP) is a picture; on the known-factor benchmark we can also measure
#   whether `C_m` hides the modality and carries the shared latent, and whether `P_m` carries
#   `z_m`. Each figure gets a verdict computed from your run (`fdmer_lite.verdicts`).
# * Figure 4a asks whether the discriminator is fooled on `C_m`, per modality. With gradient
#   reversal a run can be fooled, confidently wrong (a relabelling), or not fooled at all
#   (notebook 11 follows this further).
# * ψ (Figure 4b) can be compared across label structures: emotion-like versus humor-like; the
#   verdict gives the direction and size of the change on `C`.

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
# ### Exercise 7.1: is the discriminator below chance?
#
# Under gradient reversal (`r`), compute the discriminator's accuracy on `C_m`: the share of test
# samples, over the three modalities, whose most probable modality is the true one. **You learn**
# to tell a confused discriminator (accuracy near chance, 1/3) from a relabelling one (far below).
#
# *Hint:* `r.disc_prob_common[m].argmax(axis=1) == k` for the k-th modality of `r.modalities`.
# *Check:* `exercises.check("7.1", accuracy, rep=r)`.

# %%
# Your turn 7.1: your code here, then exercises.check("7.1", ...)

# %% jupyter={"source_hidden": true} tags=["solution"]
%%solution
# Solution 7.1
hits71 = np.concatenate([r.disc_prob_common[m].argmax(axis=1) == k for k, m in enumerate(r.modalities)])
assert exercises.check("7.1", hits71.mean(), rep=r)

# %% [markdown]
# ### Exercise 7.2: which relabelling?
#
# Read the matrix of 7.3 row by row: for the common representation of each true modality, which
# modality does the discriminator name most? **You learn** what a *permutation* in that matrix
# means: the encoders moved each modality's `C_m` to where the discriminator expects another one.
#
# *Hint:* `confusion_matrix(r).argmax(axis=1)`; a permutation names every modality exactly once.
# *Check:* `exercises.check("7.2", {"t": ..., "a": ..., "v": ...}, rep=r)`.

# %%
# Your turn 7.2: your code here, then exercises.check("7.2", ...)

# %% jupyter={"source_hidden": true} tags=["solution"]
%%solution
# Solution 7.2
named = [r.modalities[j] for j in confusion_matrix(r).argmax(axis=1)]
mapping = ", ".join(f"C_{m} -> {n}" for m, n in zip(r.modalities, named))
kind = "a permutation" if len(set(named)) == len(named) else "not a permutation"
print(f"gradient reversal: {mapping} ({kind}; identity = not fooled)")
assert exercises.check("7.2", dict(zip(r.modalities, named)), rep=r)

# %% [markdown]
# ### Exercise 7.3: ψ without the losses
#
# Train the humor-like benchmark with `beta = gamma = 0` and compare its mean ψ with the run of
# 7.4. **You learn** whether the fusion's preference for `C` on humor-like data comes from the
# label (mostly shared) or from the paper's losses.
#
# *Hint:* `lessons.lesson_run("humor-beta0-gamma0", config.replace(loss={"beta": 0.0, "gamma": 0.0}), humor,
# shipped=False)` trains it, then `extract_representations(...).psi.mean(axis=0)`.
# *Check:* `exercises.check("7.3", change, with_losses=reps["humor-like (grl)"], without=rep73)`,
# with `change` the mean weight on `C` without the losses minus with them.
# *Time:* seconds in FAST mode; in full mode as long as a run of notebook 6 (once: later calls
# load your run).

# %%
# Your turn 7.3: your code here, then exercises.check("7.3", ...)

# %% jupyter={"source_hidden": true} tags=["solution"]
%%solution
# Solution 7.3
run73 = lessons.lesson_run("humor-beta0-gamma0", config.replace(loss={"beta": 0.0, "gamma": 0.0}), humor,
                           shipped=False)
rep73 = extract_representations(run73.model, humor, "test", device=run73.trainer.device)
for name, rep in (("paper's losses", reps["humor-like (grl)"]), ("beta = gamma = 0", rep73)):
    print(f"{name:18s} mean psi", {n: round(float(v), 3) for n, v in zip(rep.psi_names, rep.psi.mean(axis=0))})
on_c = [float(rep.psi.mean(axis=0)[list(rep.psi_names).index("C")]) for rep in (reps["humor-like (grl)"], rep73)]
assert exercises.check("7.3", on_c[1] - on_c[0], with_losses=reps["humor-like (grl)"], without=rep73)
