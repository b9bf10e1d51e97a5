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
# # 9. Exploring β and γ
#
# FDMER trains with one objective (Eq. 18):
#
# $$L_{all} = L_{task} + \beta\,(L_{ami} + L_{ams}) + \gamma\,(L_{con} + L_{dis})$$
#
# * **β** weighs the two discriminator losses: `L_ami` (Eq. 10) asks the common encoders to fool
#   the modality discriminator (through gradient reversal), `L_ams` (Eq. 11) asks the private
#   encoders to be recognisable by it.
# * **γ** weighs the two constraints: `L_con` (Eq. 5) makes the batch similarity matrices of
#   `C_t`, `C_a`, `C_v` agree; `L_dis` (Eq. 7, HSIC) makes the private spaces independent.
#
# The paper uses β = γ = 0.02 on CMU-MOSI (Sec. 4.2) and does not show what happens elsewhere.
# Here you can look. Every (β, γ) setting is one small model, trained once and **cached on
# disk**: moving a slider to a cached setting redraws everything at once; an uncached one is
# trained in the background when you press *Train this setting*.

# %%
from fdmer_lite import lessons, sweep
from fdmer_lite.sweep import BetaGammaExplorer

fast = lessons.setup()

# %% [markdown]
# ## 9.1 The cache
#
# A *sweep spec* fixes everything the settings share: the preset (`fast` in FAST mode,
# `synthetic` otherwise), the data (the known-factor benchmark, emotion-like labels) and the
# seeds. The cache is a folder with one sub-folder per setting, e.g. `beta=0.02_gamma=0.02/`,
# holding the run's `metrics.json`, `history.json`, `config.json`, `model.pt`, the test-split
# representations and their 2-D projections.
#
# Before a class, fill the whole grid from a terminal at the root of the checkout (it skips
# what is already done, so it can be stopped and started again):
#
# ```
# fdmer-lite sweep --dataset synthetic --beta 0 0.002 0.02 0.2 2 --gamma 0 0.002 0.02 0.2 2
# ```

# %% [markdown]
# Here we compute only a "+" through the paper's setting: every setting that changes one of
# the two weights. From the reference, one step of either slider always lands on a cached cell.
# `fill` looks for each cell in your cache, then among the cells that ship with the package
# (read where they are, when their spec, configuration and data fingerprint match today's code;
# the cell prints how many), and trains what is still missing, several minutes a cell at full
# size. Shipped cells leave the weights (`model.pt`) out and store C and P at half precision,
# which keeps the package small; the explorer reads neither the weights nor more digits than that.

# %%
spec = sweep.default_spec()
values = sweep.default_values()
cache = sweep.SweepCache(sweep.default_cache_dir(spec), spec)
cells = sweep.cross(values, values, center=sweep.PAPER_SETTING)
print("slider values:", [sweep.format_value(v) for v in values])
print("settings to have:", [sweep.cell_name(b, g) for b, g in cells])
result = cache.fill(cells)
assert not result.failed and all(cache.has(b, g) for b, g in cells)

# %% [markdown]
# ## 9.2 The explorer
#
# Left: the setting of the sliders. Right: the pinned reference (the paper's β = γ = 0.02 to
# start with; *Pin as reference* pins the current one). Top to bottom: the metrics and
# disentanglement scores, the common (light) and private (dark) representations projected to
# 2-D, the discriminator's probability of the true modality (paper Fig. 4a), and the fusion
# weights ψ over the targets C, P_t, P_a, P_v (Fig. 4b).

# %%
explorer = BetaGammaExplorer(cache, values, values, reference=sweep.PAPER_SETTING)
explorer

# %% [markdown]
# ## 9.3 A guided tour
#
# Move the sliders yourself; the cells below do the same from code and print the numbers, so
# the tour also works where widgets are not drawn. Read each table against the reference
# column, and the test MAE against `mean_mae`, the MAE of always predicting the training mean.

# %%
from fdmer_lite import viz

TOUR = ("mae", "mean_mae", "disc_prob_common", "disc_prob_private", "common_modality_acc",
        "common_factor_r2", "private_factor_r2")


def beside_reference(setting, title):
    """The tour's table: the paper's setting and ``setting``, one column each."""
    return viz.compare_table({f"β = {sweep.format_value(b)}, γ = {sweep.format_value(g)}": cache.load(b, g).metrics
                              for b, g in (sweep.PAPER_SETTING, setting)}, keys=TOUR, title=title)

# %% [markdown]
# ### β = 0: an idle discriminator
#
# With β = 0 neither `L_ami` nor `L_ams` sends a gradient to the discriminator: it keeps its
# random initial weights. You might expect it to answer 1/3 everywhere. Look at the box plot:
# because Eq. 9 multiplies the cosines by α = 72, even a random discriminator is *confident*,
# and each box sits near 0 or near 1. The mean over the three modalities (the table's
# `disc_prob_common`) can still come out near 1/3, by accident. So the paper's Figure 4a
# reading, "≈ 1/3 on the common representations", is not evidence on its own: read it together
# with the private boxes (a trained discriminator recognises `P_m`, near 1) and with the fresh
# linear probe `modality from C_m`.
#
# Now look at the reference on the right the same way: are its boxes per modality near 1/3,
# or near 0 and 1 with a mean that only averages to 1/3? The table below shows both settings.

# %%
explorer.select(beta=0.0, gamma=sweep.PAPER_SETTING[1])
beside_reference(explorer.setting, "β = 0 beside the paper's setting")

# %% [markdown]
# ### Large β: the adversary in charge
#
# With gradient reversal (Eq. 8), a large β makes the common encoders work hard against the
# discriminator on `C_m`. Watch `disc_prob_common`, the discriminator's probability of the true
# modality: near 1/3 means it is confused, near 0 means it is wrong with confidence, near 1
# means it still recognises the modality. And what does the task pay? Notebook 11 follows this
# question further.

# %%
explorer.select(beta=values[-1], gamma=sweep.PAPER_SETTING[1])
big, ref = cache.load(*explorer.setting).metrics, cache.load(*sweep.PAPER_SETTING).metrics
p = big["disc_prob_common"]
state = ("confused" if abs(p - 1 / 3) < 0.1 else "wrong with confidence" if p < 1 / 3
         else "still recognising the modality")
print(("FAST mode: three epochs are too short to tell. " if fast else "")
      + f"At β = {sweep.format_value(explorer.setting[0])} the discriminator is {state}: "
      f"p(true modality | C_m) {p:.2f} (1/3 is chance); test MAE {big['mae']:.3f} against "
      f"{ref['mae']:.3f} at the paper's setting.")
beside_reference(explorer.setting, "Large β beside the paper's setting")

# %% [markdown]
# ### Large γ: similarity, not location
#
# A large γ makes the common representations of the three modalities agree in their *pairwise
# similarities* (Eq. 5) and the private ones independent (Eq. 7). Neither removes a constant
# modality offset (centring each `C_m`, an extension off in every preset, would), so look at the embedding: do the light (common) clouds of text, audio and visual move
# together? Then the probes: is the shared latent `s` still readable from `C_m`
# (`common_factor_r2`), and can a fresh probe still tell the modality (`common_modality_acc`)?
# Compare the two columns of the table below: the probe on `C_m` and the shared factor's R² in C.

# %%
explorer.select(beta=sweep.PAPER_SETTING[0], gamma=values[-1])
beside_reference(explorer.setting, "Large γ beside the paper's setting")

# %% [markdown]
# Back to the reference, so the explorer above starts where the tour started:

# %%
explorer.select(*sweep.PAPER_SETTING)
assert explorer.setting == sweep.PAPER_SETTING and explorer.train_calls == 0   # the tour trained nothing
print(explorer.setting, "|", sweep.cell_name(*explorer.setting), "cached:", cache.has(*explorer.setting))

# %% [markdown]
# In FAST mode (the tests) the models train for three epochs on 256 clips, so the numbers only
# show that everything is wired up; run this notebook without `FDMER_LITE_FAST`, or fill the
# cache with `fdmer-lite sweep`, to read them as results.

# %% [markdown]
# ## Summary
#
# * β weighs the discriminator losses (Eq. 10-11), γ the consistency and disparity constraints
#   (Eq. 5, 7). Each setting is one model; a sweep caches them on disk, one folder per setting,
#   and `fdmer-lite sweep` fills the cache ahead of time, skipping finished settings.
# * At β = 0 the discriminator is idle, and with α = 72 an idle one is confidently arbitrary;
#   a mean probability of 1/3 on C_m means nothing without the private boxes and a fresh probe.
# * With gradient reversal, a large β does not make the discriminator confused on C_m; it can
#   break training and cost most of the task (β = 2: best epoch the first).
# * A mean probability near 1/3 can hide boxes at 0 and 1: look at distributions, per modality.
# * γ aligns similarity structure, not location. Without it, gradient reversal can push the
#   common clouds apart, and a fresh probe reads the modality: compare γ = 0 with the reference.

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
# ### Exercise 9.1: what the discriminator weight moves
#
# Compare β = 0 with the paper's β = 0.02 (γ at the paper's value) from the cache: which of the
# tour's scores change by more than a tenth of their value, and which stay? **You learn** which
# scores the adversarial losses act on, read from runs instead of the sliders.
#
# *Hint:* `cache.load(beta, gamma).metrics[key]` for `key in TOUR`.

# %% jupyter={"source_hidden": true} tags=["solution"]
# Solution 9.1
off, paper = cache.load(0.0, sweep.PAPER_SETTING[1]).metrics, cache.load(*sweep.PAPER_SETTING).metrics
for key in TOUR:
    a, b = off.get(key), paper.get(key)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        moved = abs(b - a) > 0.1 * max(abs(a), abs(b), 1e-12)
        print(f"{key:22s} beta 0: {a:8.3f}  beta 0.02: {b:8.3f}  {'moved' if moved else 'stayed'}")

# %% [markdown]
# ### Exercise 9.2: confused or lying at large β?
#
# At the largest β of the sliders, compute the discriminator's mean probability of the true
# modality on each `C_m` from the cached representations. **You learn** to read the paper's
# "≈ 1/3" claim per modality: near 1/3 on each is confusion, near 0 is a confident lie, and a
# mix of 0 and 1 only *averages* to 1/3.
#
# *Hint:* `rep = cache.load(values[-1], gamma).reps`; `rep.disc_prob_common[m][:, k].mean()`.

# %% jupyter={"source_hidden": true} tags=["solution"]
# Solution 9.2
rep92 = cache.load(values[-1], sweep.PAPER_SETTING[1]).reps
p_true = {m: float(rep92.disc_prob_common[m][:, k].mean()) for k, m in enumerate(rep92.modalities)}
print({m: round(p, 3) for m, p in p_true.items()}, "| chance is 1/3")
if max(p_true.values()) < 0.1:
    print("confidently wrong on every modality: a relabelling, not confusion")
elif all(abs(p - 1 / 3) < 0.1 for p in p_true.values()):
    print("near 1/3 on every modality: confused")
else:
    print("mixed: their mean can sit near 1/3 without any modality being confused")
