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
# ### The paper's symbols and the course's names (1 of 3: representations)
#
# Keep this map open: the notebooks use the paper's symbols in equations and these names in code.
#
# | paper | meaning | in the course |
# |---|---|---|
# | $X_m$, $m \in \{t, a, v\}$ | the input sequence of modality m | `data.splits["train"].features[m]`, `(N, L, d_m)` |
# | $Z_m$ (Eq. 1) | the transformer's summary of $X_m$, width $d_k$ | `out.features[m]`, called `h_m` (notebook 2) |
# | $\mathcal I$, $\mathcal S_m$ (Eq. 2-3) | the common encoder; the private encoder of m | `model.common_encoder`, `model.private_encoders[m]` |
# | $C_m$, $P_m$ | common and private representation of m | `out.common[m]`, `out.private[m]` |
# | $S_m$ (Eq. 4) | the batch similarity matrix of $C_m$ (not the encoder $\mathcal S_m$) | `losses.similarity_matrix` |

# %% [markdown]
# ### The paper's symbols and the course's names (2 of 3: losses)
#
# | paper | meaning | in the course |
# |---|---|---|
# | $\mathcal L_{con}$, $\mathcal L_{dis}$ (Eq. 5, 7) | consistency, disparity (HSIC, Eq. 6) | `"con"`, `"dis"` in `run.history` |
# | $\mathcal D$, $W_{\mathcal D}$, $\mathcal F$ (Eq. 8) | the modality discriminator | `model.discriminator` |
# | $\alpha$, $\tau$ (Eq. 9) | scale and angular margin | `LossConfig.scale`, `.margin` |
# | $\mathcal L_{ami}$, $\mathcal L_{ams}$ (Eq. 10-11) | the discriminator's loss on $C_m$ (reversed), on $P_m$ | `"ami"`, `"ams"` |
# | $\beta$, $\gamma$, $\mathcal L_{task}$ (Eq. 18) | the weights of the adversarial and of the constraint losses; the task loss | `LossConfig.beta`, `.gamma`; `"task"`, `"all"` |

# %% [markdown]
# ### The paper's symbols and the course's names (3 of 3: fusion)
#
# | paper | meaning | in the course |
# |---|---|---|
# | $C = \sum_m C_m$ | the one common token of the fusion | slot `"C"` of `out.psi_names` |
# | $F_{so} = [C, P_t, P_a, P_v]$ | the source: the four tokens as one $4 d_k$ vector | `fusion.norm_source`, `fusion.to_q`, `fusion.to_u` |
# | $F_{ta}$ | a target: one of the four tokens | `fusion.norm_in`, `fusion.to_g` |
# | $Q_{so}$, $\mathcal U_{so}$, $\mathcal G_{ta}$ (Eq. 12) | the source's two projections, the target's | `to_q`, `to_u`, `to_g` |
# | $Y_{ta}$ (Eq. 13-14) | a target after cross-modal attention | inside `CMAF.forward` |
# | $\mu_{ta}$, $\psi_{ta}$ (Eq. 15-16) | a target's score and its softmax weight | `out.psi`, shape `(B, 4)` |
# | $Y_{fin}$ (Eq. 17) | the weighted sum of the $Y_{ta}$ the head predicts from | `model.head`'s input |
# | $d_k$, $d$ | hidden width (256 in the paper), discriminator width (128) | `ModelConfig.d_k`, `.d_disc` |

# %% [markdown]
# ### Terms used in the series
#
# * **Known-factor benchmark**, **Bayes floor**: our generated data and the MAE of an oracle that knows
#   its hidden factors (section 1.2).
# * **Acc7, Acc5, Acc2**: accuracy after clipping to [-3, 3] and rounding (7 classes), clipping to [-2, 2]
#   (5 classes), or by sign (2 classes, section 1.3).
# * **MMSA**: the Multimodal Sentiment Analysis toolkit whose feature files and metrics most CMU-MOSI
#   papers use.
# * **DANN**: the domain-adversarial network of Ganin and Lempitsky (2015), where gradient reversal comes
#   from; its schedule ramps the reversal from 0 to full strength (notebook 4).
# * **LEACE**: Belrose et al. (2023): once each class has the same mean, no linear classifier beats chance.
# * **`common_gap`**: how far one sample's `C_t, C_a, C_v` lie apart, relative to how much `C_m` varies
#   over samples: 0 when they coincide, 1 or more when as far apart as unrelated samples.
# * **Fingerprint**: a hash of a data set's numbers; a saved run is reused only for the same
#   configuration and fingerprint.

# %% [markdown]
# * **Bundled run**: a finished run shipped in `fdmer_lite/shipped_runs/`.
# * **Literal preset**: `mosi_literal` and its siblings, the paper's text as written, none of our readings.

# %% [markdown]
# ### Three kinds of centring
#
# "Centring" subtracts a mean. The series uses it in three places, always with these names:
#
# * **Batch-centred `L_con`** (`LossConfig.con_centre`, our reading of Eq. 4-5, on in every preset
#   but the literal ones): each `C_m` minus its mean over the batch before the cosines of $S_m$.
#   It changes the loss, not the representation (notebook 3).
# * **In-model centring** (`ModelConfig.common_centring`, an extension, off in every preset): the
#   network itself subtracts each modality's mean from `C_m`, so the modalities' means are equal
#   by construction (notebook 11).
# * **Offset-removed probe** (`modality_probe_accuracy(..., centre=True)`): a probe, not training:
#   each modality's train-split mean is subtracted before the probe is fitted, to ask what it reads
#   besides the offset (notebook 11).

# %% [markdown]
# **Saving a notebook as a page.** Save the notebook, then run
# `fdmer-lite export notebooks/01_task_and_data.ipynb` (`--execute` runs it first): the
# page shows its figures and equations with no network. Plain `jupyter nbconvert --to html` loads
# MathJax from the internet, so offline its equations stay raw `$$...$$`.

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
# Each exercise says what you will learn and gives a hint. Write your answer in the empty
# "your turn" cell below it; `exercises.check("N.k", answer, ...)` prints ✓ or ✗, against a value
# it computes independently, and on ✗ a hint, never the answer. The solution is the collapsed
# cell after that: click the bar at the cell's left (or its `…`) to read it. It does not run
# unless you ask: run `exercises.show_solutions()` first (or start Jupyter with
# `FDMER_LITE_SOLUTIONS=1`, as the tests do), and running all cells runs the solutions too.

# %%
from fdmer_lite import exercises

# %% [markdown]
# ### Exercise 1.1: two readings of Acc2
#
# The labels are `exercises.LABELS_1_1 = (0, 0, 1, -1)`. Find four predictions for which Acc2
# *has0* and Acc2 *non0* differ by 50 points. **You learn** why a paper must say which Acc2 it
# reports: on data with many zero labels, the two can tell different stories.
#
# *Hint:* non0 drops the two zero labels; has0 counts a negative prediction on a zero label as wrong.
# *Check:* `exercises.check("1.1", your_predictions)`.

# %%
# Your turn 1.1: your code here, then exercises.check("1.1", ...)

# %% jupyter={"source_hidden": true} tags=["solution"]
%%solution
# Solution 1.1: right on the two non-zero labels, negative on both zeros.
pred_11 = np.array([-1.0, -1.0, 1.0, -1.0])
print(regression_metrics(pred_11, np.array(exercises.LABELS_1_1)))
assert exercises.check("1.1", pred_11)

# %% [markdown]
# ### Exercise 1.2: the Bayes floor is the label noise
#
# Generate the benchmark with `lessons.lesson_data("emotion", label_noise=...)` for the noise
# levels `0.25` and `1` and read `baselines(data)["bayes_mae"]` for each. **You learn** what the floor
# is made of: the ideal predictor's only error is the noise `eps ~ N(0, sigma^2)`, so its MAE is
# the mean of `|eps|`.
#
# *Hint:* for a normal variable, `E|eps| = sigma * sqrt(2 / pi)`; clipping at ±3 shaves a little off.
# *Check:* `exercises.check("1.2", {0.25: floor_a, 1.0: floor_b})`. A few seconds.

# %%
# Your turn 1.2: your code here, then exercises.check("1.2", ...)

# %% jupyter={"source_hidden": true} tags=["solution"]
%%solution
# Solution 1.2
floors = {noise: baselines(lessons.lesson_data("emotion", label_noise=noise))["bayes_mae"]
          for noise in (0.25, 1.0)}
print({noise: round(floor, 3) for noise, floor in floors.items()})
assert exercises.check("1.2", floors)

# %% [markdown]
# ### Exercise 1.3: why the ideal predictor misses Acc7
#
# The ideal predictor knows every latent, yet its Acc7 is below 1. Show that each of its Acc7
# misses is a sample whose noise pushed the label across a rounding boundary (a half-integer).
# **You learn** that Acc7 has a ceiling set by the label noise, like the MAE.
#
# *Hint:* compare `np.round` of the ideal predictions and of the labels, both clipped to [-3, 3].
# *Check:* `exercises.check("1.3", share_crossed, ideal=ideal, labels=test.labels)`.

# %%
# Your turn 1.3: your code here, then exercises.check("1.3", ...)

# %% jupyter={"source_hidden": true} tags=["solution"]
%%solution
# Solution 1.3
crossed = np.round(np.clip(ideal, -3, 3)) != np.round(np.clip(test.labels, -3, 3))
acc7_ideal = regression_metrics(ideal, test.labels)["acc7"]
print(f"{crossed.mean():.3f} of the test labels changed their rounded class; 1 - Acc7 = {1 - acc7_ideal:.3f}")
np.testing.assert_allclose(crossed.mean(), 1 - acc7_ideal)
assert exercises.check("1.3", crossed.mean(), ideal=ideal, labels=test.labels)
