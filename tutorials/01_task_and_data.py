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
# # 1. The task and the data
#
# **FDMER** (Feature-Disentangled Multimodal Emotion Recognition, Yang et al., ACM MM 2022)
# reads a short video clip as three sequences, one per modality: the words (**t**ext), the
# voice (**a**udio) and the face (**v**isual), and predicts the speaker's sentiment. Its idea:
# split what each modality says into a **common** part `C_m`, shared by all three, and a
# **private** part `P_m`, only that modality's, then fuse them with attention.
#
# This first notebook needs no model. It shows
# 1. what one sample looks like (three sequences and a label in [-3, 3]);
# 2. the *known-factor benchmark* that the series trains on, and why its ground truth matters;
# 3. the metrics of the field (Acc7, Acc2 in two readings, F1, MAE, Corr), worked by hand.
#
# Every notebook starts the same way. `setup()` reads the one switch, `FDMER_LITE_FAST`: set to
# 1 (as the tests do) everything runs on tiny data in seconds; unset, the lessons run for real.

# %%
import numpy as np

from fdmer_lite import lessons, viz
from fdmer_lite.metrics import regression_metrics

fast = lessons.setup()

# %% [markdown]
# ## 1.1 A multimodal sample
#
# CMU-MOSI, the benchmark of the paper, has 2,199 opinion clips. In the usual feature files each
# clip is three sequences of length L = 50: GloVe word vectors (width 300), COVAREP acoustic
# features (74) and Facet facial features (47: CMU-MOSI's FACET 4.1 features in the
# CMU-MultimodalSDK, which hold face-box, emotion and action-unit measures; the paper's "35
# facial action units" is the width of CMU-MOSEI's FACET 4.2 features). The label is the mean of five annotators'
# sentiment scores, from -3 (very negative) to +3 (very positive).
#
# Our data has exactly these shapes. `lesson_data()` generates it (at FAST or full size).

# %%
data = lessons.lesson_data("emotion")
print(data.summary())

# %% [markdown]
# Features are stored per split and per modality as arrays `(N, L, d_m)`; the modality keys are
# always `t`, `a`, `v`. The shapes are deterministic, so the cell checks them itself.

# %%
train = data.splits["train"]
for m in "tav":
    print(m, train.features[m].shape)
assert data.widths == {"t": 300, "a": 74, "v": 47}
assert data.seq_lengths == {"t": 50, "a": 50, "v": 50}

# %% [markdown]
# One sample, drawn as three heatmaps (time across, features down). The black box marks the
# time window in which the modality "expresses" the hidden factors; outside it, the frames only
# carry nuisance and noise. Hover to read values.

# %%
i = 0
windows = {m: train.extras[f"window_{m}"][i] for m in "tav"}
viz.sample_sequences({m: train.features[m][i] for m in "tav"}, windows,
                     title=f"sample {train.ids[i]}, label {train.labels[i]:+.2f}")

# %% [markdown]
# ## 1.2 The known-factor benchmark: why generate the data?
#
# FDMER claims to separate what the modalities *share* from what is *private* to each. On real
# clips nobody knows what those factors are, so the claim can only be judged indirectly. Here we
# choose them (`fdmer_lite/data/synthetic.py`):
#
# * every sample has a shared latent `s` and one private latent `z_m` per modality;
# * each modality shows `[s; z_m]` through its own random nonlinear map during a random time
#   window, plus nuisance, noise, and a modality-specific offset and scale (the "distribution
#   gap" that the common space has to close);
# * the label mixes a function of `s` and functions of each `z_m`, plus noise, clipped to [-3, 3].
#
# The ground truth comes with the data, in each split's `extras`:

# %%
print(sorted(train.extras))
print("s", train.extras["s"].shape, "| z_t", train.extras["z_t"].shape)

# %% [markdown]
# The noise-free label `clean` is the sum of its parts, one from `s` and one from each `z_m`.
# For the `emotion` kind most of the label variance is private; for `humor` most is shared.

# %%
parts = sum(train.extras[f"clean_{k}"] for k in ("s", "t", "a", "v"))
np.testing.assert_allclose(parts, train.extras["clean"], rtol=1e-5, atol=1e-5)
print({k: round(v, 3) for k, v in data.info["label_shares"].items()})

# %% [markdown]
# ### The Bayes floor
#
# Because the latents are known, so is the best possible predictor: `clip(clean, -3, 3)`. Its
# test MAE, the **Bayes floor**, is what no model can beat on average. Two simple references sit
# above it: always predicting the training mean, and ridge regression on time-averaged features.
# A trained FDMER should land between ridge and the floor; how close to the floor is a real score.

# %%
from fdmer_lite.data.synthetic import baselines

refs = baselines(data)
for name, value in refs.items():
    print(f"{name:10s} {value:.3f}")
assert refs["bayes_mae"] < refs["ridge_mae"] < refs["mean_mae"]

# %% [markdown]
# ## 1.3 The metrics of the field, worked by hand
#
# Papers on CMU-MOSI/MOSEI report, as the MMSA toolkit computes them:
#
# | metric | definition |
# |---|---|
# | MAE | mean \|prediction - label\| |
# | Corr | Pearson correlation |
# | Acc7 | accuracy of `round(clip(x, -3, 3))`: 7 classes -3..3 |
# | Acc2 *has0* | negative `x < 0` vs non-negative `x >= 0`, over **all** samples |
# | Acc2 *non0* | negative `x < 0` vs positive `x > 0`, over samples whose **label is not 0** |
# | F1 | weighted F1 of the same binary split |
#
# Papers often print "Acc2" without saying which; the two can differ by a point or two. Six
# predictions are enough to see every rule at work:

# %%
label = np.array([-2.6, -0.4, 0.0, 0.0, 1.2, 2.8])
pred = np.array([-3.4, 0.3, -0.2, 0.6, 1.6, 2.4])

# %% [markdown]
# First by hand, with numpy only:

# %%
mae = np.abs(pred - label).mean()
acc7 = np.mean(np.round(np.clip(pred, -3, 3)) == np.round(np.clip(label, -3, 3)))
acc2_has0 = np.mean((pred >= 0) == (label >= 0))
keep = label != 0                                   # non0 drops the two zero labels
acc2_non0 = np.mean((pred[keep] > 0) == (label[keep] > 0))
print(f"MAE {mae:.3f}  Acc7 {acc7:.3f}  Acc2 has0 {acc2_has0:.3f}  Acc2 non0 {acc2_non0:.3f}")

# %% [markdown]
# Acc7 rounds -0.4 to -0 and 0.3 to 0, so that pair agrees on "0" although the signs differ;
# has0 counts the label 0 as non-negative, so `pred = -0.2` is wrong there but simply ignored
# by non0. Now the library's version, which must agree:

# %%
m = regression_metrics(pred, label)
print({k: round(v, 3) for k, v in m.items()})
np.testing.assert_allclose([m["mae"], m["acc7"], m["acc2_has0"], m["acc2_non0"]],
                           [mae, acc7, acc2_has0, acc2_non0])
np.testing.assert_allclose(m["corr"], np.corrcoef(pred, label)[0, 1])

# %% [markdown]
# The same metrics for the reference predictors on the benchmark's test split: the ideal
# predictor (it knows the latents) and the training mean.

# %%
test = data.splits["test"]
ideal = np.clip(test.extras["clean"], -3, 3)
mean_pred = np.full(len(test), train.labels.mean())
viz.compare_table({"ideal (Bayes)": regression_metrics(ideal, test.labels),
                   "training mean": regression_metrics(mean_pred, test.labels)},
                  percent=True, title="Test metrics of two reference predictors")

# %% [markdown]
# ## Summary
#
# * A sample is three sequences `(L, d_m)` for `t`, `a`, `v` and one sentiment label in [-3, 3].
# * The known-factor benchmark has MOSI's shapes and *known* shared (`s`) and private (`z_m`)
#   latents, so disentanglement can be measured and every score read against the Bayes floor.
# * Acc2 comes in two readings: *has0* (all samples, 0 counts as non-negative) and *non0*
#   (zero labels dropped). Always say which one you report.

# %% [markdown]
# ## Exercises
#
# 1. Generate `lessons.lesson_data("humor")`. Which label shares change? Are the features the
#    same as for `"emotion"` (compare `train.features["t"]`)? Why is that useful?
# 2. Change `label_noise` in `make_benchmark` (e.g. 0.2 and 1.0). How do the Bayes floor and
#    the ideal predictor's Acc7 move?
# 3. Find a set of 4 predictions for which Acc2 has0 and non0 differ by 50 points.
# 4. Why is Acc7 of the ideal predictor below 1 even though it knows every latent?
