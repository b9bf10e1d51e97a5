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
# # 3. Common and private subspaces (Eq. 2-7)
#
# After Eq. 1 each modality is one vector `h_m`. FDMER sends it through two encoders:
#
# $$C_m = E_c(h_m; \theta_c) \quad \text{(Eq. 2)}, \qquad P_m = E_p^m(h_m; \theta_p^m) \quad \text{(Eq. 3)}$$
#
# **one** common encoder `E_c` shared by all modalities, and one private encoder per modality;
# each a two-layer MLP with GELU, `d_k -> d_k`. Two losses give the subspaces their meaning:
#
# * **consistency** (Eq. 4-5): the common representations of the three modalities should relate
#   the samples of a batch to each other in the same way;
# * **disparity** (Eq. 6-7): the private representations of different modalities should be
#   statistically independent, measured by HSIC.
#
# We rebuild each in a few lines and check it against `fdmer_lite.losses`.

# %%
import torch
import torch.nn.functional as F

from fdmer_lite import lessons, losses
from fdmer_lite.data import make_loader
from fdmer_lite.model import build_model

fast = lessons.setup()

# %% [markdown]
# ## 3.1 The encoders
#
# An untrained model on one batch. `forward` returns an `FDMEROutput` that holds everything:
# the features `h_m`, the common `C_m`, the private `P_m`, and more we meet later.

# %%
data = lessons.lesson_data("emotion")
config = lessons.lesson_config()
model = build_model(config, data.widths, data.output_dim).eval()
batch = next(iter(make_loader(data, "train", batch_size=16)))
with torch.no_grad():
    out = model(batch.features, batch.masks)
print({m: tuple(out.common[m].shape) for m in "tav"}, {m: tuple(out.private[m].shape) for m in "tav"})

# %% [markdown]
# The common encoder is a single module applied to every modality; the private ones are three.

# %%
print(model.common_encoder)
print("private encoders:", list(model.private_encoders))
with torch.no_grad():
    for m in "tav":
        torch.testing.assert_close(model.common_encoder(out.features[m]), out.common[m])
        torch.testing.assert_close(model.private_encoders[m](out.features[m]), out.private[m])

# %% [markdown]
# ## 3.2 Consistency (Eq. 4-5)
#
# For modality m, the batch similarity matrix of the common representations:
#
# $$S_m = \hat C_m \hat C_m^\top, \quad \hat C_m = C_m \text{ with rows L2-normalised} \qquad \text{(Eq. 4)}$$
#
# so `S_m[i, j]` is the cosine between samples i and j. The loss asks the three matrices to agree:
#
# $$\mathcal L_{con} = \tfrac13 \sum_{(m_1, m_2)} \lVert S_{m_1} - S_{m_2} \rVert_F^2 \qquad \text{(Eq. 5)}$$
#
# over the pairs (t, a), (t, v), (a, v). From scratch:

# %%
def similarity(c):
    z = c / c.norm(dim=1, keepdim=True)              # rows of unit length
    return z @ z.T                                   # (B, B) cosines


def consistency(c_t, c_a, c_v):
    S = [similarity(c) for c in (c_t, c_a, c_v)]
    pairs = [(0, 1), (0, 2), (1, 2)]
    return sum(((S[i] - S[j]) ** 2).sum() for i, j in pairs) / 3


def consistency_2(c_1, c_2):                         # the same with two modalities (one pair)
    return ((similarity(c_1) - similarity(c_2)) ** 2).sum()


# %%
C = [out.common[m] for m in "tav"]
torch.testing.assert_close(similarity(C[0]), losses.similarity_matrix(C[0]))
torch.testing.assert_close(consistency(*C), losses.consistency_loss(*C))
print(f"L_con of the untrained model: {losses.consistency_loss(*C).item():.3f}")

# %% [markdown]
# **The picture.** The three matrices side by side, for the first 12 samples of the batch. Red
# cells are pairs of samples the modality's common representation finds alike, blue ones
# opposite. `L_con` is small when the three pictures look the same. What to look for in an
# untrained model: the matrices differ, because nothing has aligned the modalities yet;
# notebook 6 trains the model, and you can redraw them then.

# %%
from fdmer_lite import viz

viz.similarity_matrices({f"S_{m}": losses.similarity_matrix(c[:12]).numpy() for m, c in zip("tav", C)})

# %% [markdown]
# **Probe.** The loss only looks at *relations between samples*, not at the vectors
# themselves. Rotate and rescale `C_t` and the loss against the original is zero:

# %%
c = torch.randn(5, 4)
Q, _ = torch.linalg.qr(torch.randn(4, 4))            # a random rotation
print(losses.consistency_loss(c, 3.0 * c @ Q).item())                 # ~0
print(losses.consistency_loss(c, torch.randn(5, 4)).item())           # > 0

# %% [markdown]
# **A loophole, and the reading we chose.** Cosines have a blind spot: add one large vector to
# every sample of every modality and every cosine goes to 1, so every `S_m` becomes the matrix
# of ones and `L_con` vanishes, however unrelated the modalities are. An encoder can take that
# exit, putting almost all of `C_m`'s energy into one constant vector per modality, with the
# variation that carries the label a thin layer on top. Our reading therefore builds `S_m` from the
# batch-centred `C_m` (`LossConfig.con_centre = True` in every preset but the literal ones;
# `S_m[i, j]` is then the Pearson correlation between samples i and j). The constant no longer
# hides anything:

# %%
big = 1e3 * torch.randn(4)                           # one vector shared by every sample
c_t, c_a = torch.randn(6, 4), torch.randn(6, 4)      # unrelated "modalities"
print("raw cosines:", losses.consistency_loss(c_t + big, c_a + big).item())                   # ~0
print("centred    :", losses.consistency_loss(c_t + big, c_a + big, centre=True).item())      # > 0
torch.testing.assert_close(losses.consistency_loss(c_t + big, c_a + big, centre=True),
                           consistency_2(c_t - c_t.mean(0), c_a - c_a.mean(0)), rtol=1e-3, atol=1e-3)

# %% [markdown]
# ## 3.3 Disparity with HSIC (Eq. 6-7)
#
# The Hilbert-Schmidt Independence Criterion measures dependence between two sets of paired
# samples. With inner-product kernels `K_X = X X^T` and the centring matrix
# `U = I - (1/n) e e^T`:
#
# $$\mathrm{HSIC}(X, Y) = (n-1)^{-2}\, \mathrm{tr}(U K_X U K_Y) \qquad \text{(Eq. 6)}$$
#
# For this kernel there is a second, independent way to compute it: centre the columns, and
# HSIC is the squared Frobenius norm of the cross-covariance, `|| X_c^T Y_c ||_F^2 / (n-1)^2`.

# %%
def hsic_trace(x, y):
    n = x.shape[0]
    U = torch.eye(n) - torch.ones(n, n) / n
    return torch.trace(U @ x @ x.T @ U @ y @ y.T) / (n - 1) ** 2


def hsic_cov(x, y):
    xc, yc = x - x.mean(0), y - y.mean(0)            # centred columns
    return (xc.T @ yc).pow(2).sum() / (x.shape[0] - 1) ** 2


# %%
P = [out.private[m] for m in "tav"]
torch.testing.assert_close(hsic_trace(P[0], P[1]), losses.hsic(P[0], P[1]), rtol=1e-4, atol=1e-6)
torch.testing.assert_close(hsic_cov(P[0], P[1]), losses.hsic(P[0], P[1]), rtol=1e-4, atol=1e-6)
print(f"HSIC(P_t, P_a) = {losses.hsic(P[0], P[1]).item():.3e}")

# %% [markdown]
# **Probe.** Independent samples give a small HSIC; a linear function of `x` gives a large one.

# %%
g = torch.Generator().manual_seed(0)
x = torch.randn(200, 3, generator=g)
independent = losses.hsic(x, torch.randn(200, 3, generator=g))
dependent = losses.hsic(x, x @ torch.randn(3, 3, generator=g))
print(f"independent {independent.item():.4f}   dependent {dependent.item():.4f}")
assert dependent > 10 * independent

# %% [markdown]
# **The picture.** A known dependence of adjustable strength: `y = a x + noise`. At `a = 0` the
# two are independent and HSIC is only the noise of a finite sample; as `a` grows HSIC should
# rise steadily. The second curve, `y = a x^2 + noise`, is a dependence HSIC with an
# inner-product kernel cannot see: look for a curve that stays flat.

# %%
strengths = [0.0, 0.1, 0.2, 0.5, 1.0, 2.0]
noise = torch.randn(200, 3, generator=g)
linear = [losses.hsic(x, a * x + noise).item() for a in strengths]
square = [losses.hsic(x, a * x ** 2 + noise).item() for a in strengths]
print(f"HSIC rises with a linear dependence: {all(b > a for a, b in zip(linear, linear[1:]))}; "
      f"with a square one it grows {square[-1] / square[0]:.1f}x from a = 0 to 2, the linear one {linear[-1] / linear[0]:.0f}x")
viz.dependence_curve(strengths, {"y = a x + noise": linear, "y = a x^2 + noise": square},
                     xlabel="strength a", ylabel="HSIC(x, y)", title="HSIC against a known dependence",
                     log_y=True)

# %% [markdown]
# The disparity loss is the mean HSIC over the three private pairs:
#
# $$\mathcal L_{dis} = \tfrac13 \big(\mathrm{HSIC}(P_t, P_a) + \mathrm{HSIC}(P_t, P_v) + \mathrm{HSIC}(P_a, P_v)\big) \qquad \text{(Eq. 7)}$$

# %%
by_hand = (hsic_cov(P[0], P[1]) + hsic_cov(P[0], P[2]) + hsic_cov(P[1], P[2])) / 3
torch.testing.assert_close(by_hand, losses.disparity_loss(*P), rtol=1e-4, atol=1e-6)
print(f"L_dis of the untrained model: {by_hand.item():.3e}")

# %% [markdown]
# Note what HSIC with an inner-product kernel sees: *linear* dependence (cross-covariance). Two
# private spaces can still share nonlinear information and score zero.

# %% [markdown]
# ## Summary
#
# * Eq. 2-3: one shared MLP makes `C_m` for every modality, three MLPs make `P_m`.
# * Eq. 4-5: `L_con` compares the batch cosine-similarity matrices of `C_t`, `C_a`, `C_v`; it is
#   blind to rotations and scalings of a modality's common space.
# * Eq. 6-7: `L_dis` is the mean HSIC between private spaces; with `K = X X^T` it equals the
#   squared Frobenius norm of the cross-covariance.

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
# ### Exercise 3.1: L_con and the batch size
#
# `L_con` is a *sum* over the B x B entries of the similarity matrices. Compute it for random,
# unrelated `C_t, C_a, C_v` at B = 8, 16, 32, 64 and fit the exponent p in `L_con ∝ B^p`.
# **You learn** that γ and the batch size are tied: double the batch and the same γ pulls about
# four times harder.
#
# *Hint:* the slope of `log L_con` against `log B` (`np.polyfit`). *Check:* `lessons.check("3.1", p)`.

# %% jupyter={"source_hidden": true} tags=["solution"]
# Solution 3.1
import numpy as np

g31 = torch.Generator().manual_seed(0)
sizes = [8, 16, 32, 64]
l_con = [losses.consistency_loss(*torch.randn(3, B, 16, generator=g31)).item() for B in sizes]
p31 = np.polyfit(np.log(sizes), np.log(l_con), 1)[0]
print(dict(zip(sizes, np.round(l_con, 2))))
assert lessons.check("3.1", p31)

# %% [markdown]
# ### Exercise 3.2: a dependence HSIC cannot see
#
# Compute `losses.hsic(x, x ** 2)` for 2,000 samples of `x ~ N(0, 1)` (one column each). Then
# compute HSIC with Gaussian kernels, `K_ij = exp(-|x_i - x_j|^2 / 2)`, in the trace form of
# Eq. 6, against the same with `y` shuffled. **You learn** that the inner-product kernel only
# measures cross-covariance; a characteristic kernel sees every dependence.
#
# *Hint:* `Cov(x, x^2) = E[x^3] = 0`. Use 300 samples for the Gaussian version (an n x n matrix).
# *Check:* `lessons.check("3.2", value)`.

# %% jupyter={"source_hidden": true} tags=["solution"]
# Solution 3.2
g32 = torch.Generator().manual_seed(1)
x32 = torch.randn(2000, 1, generator=g32)
linear32 = losses.hsic(x32, x32 ** 2).item()


def hsic_gauss(x, y):
    n = x.shape[0]
    U = torch.eye(n) - torch.ones(n, n) / n
    K, L = (torch.exp(-torch.cdist(v, v) ** 2 / 2) for v in (x, y))
    return (torch.trace(U @ K @ U @ L) / (n - 1) ** 2).item()


xs, shuffled = x32[:300], x32[:300][torch.randperm(300, generator=g32)]
print(f"Gaussian HSIC: x vs x^2 {hsic_gauss(xs, xs ** 2):.4f}, shuffled {hsic_gauss(xs, shuffled ** 2):.4f}")
assert hsic_gauss(xs, xs ** 2) > 3 * hsic_gauss(xs, shuffled ** 2)
assert lessons.check("3.2", linear32)

# %% [markdown]
# ### Exercise 3.3: a private offset is free
#
# Add a constant vector to every row of `P_t` and compute how much `L_dis` changes. **You learn**
# that the disparity loss, like centred `L_con`, ignores where a private space sits: only how
# its samples vary together with the other modalities' counts.
#
# *Hint:* `losses.disparity_loss(P[0] + 5.0, P[1], P[2])`. *Check:* `lessons.check("3.3", change)`.

# %% jupyter={"source_hidden": true} tags=["solution"]
# Solution 3.3
change33 = (losses.disparity_loss(P[0] + 5.0, P[1], P[2]) - losses.disparity_loss(*P)).item()
assert lessons.check("3.3", change33)
