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
# # 4. The adversarial modality discriminator (Eq. 8-11)
#
# The consistency and disparity losses of notebook 3 shape the subspaces from the *inside*.
# FDMER adds a judge from the *outside*: a **modality discriminator** that looks at one
# representation and guesses which modality it came from.
#
# * On the private `P_m` it should succeed: private spaces must stay modality-specific (Eq. 11).
# * On the common `C_m` the encoders should make it fail: common spaces should hide the
#   modality (Eq. 10). The paper does this with a **gradient reversal layer**.
#
# Its classifier uses an **additive angular margin** (Eq. 9, as in ArcFace) instead of plain
# softmax cross-entropy. We rebuild each piece, look at the decision geometry on the unit circle,
# and finish with a question the paper does not ask: what does "fooling" the discriminator
# actually reward?

# %%
import math

import torch
import torch.nn.functional as F

from fdmer_lite import lessons, losses, viz
from fdmer_lite.data import make_loader
from fdmer_lite.model import ModalityDiscriminator, build_model, grad_reverse

fast = lessons.setup()

# %% [markdown]
# ## 4.1 Gradient reversal
#
# Identity in the forward pass; the gradient times -1 in the backward pass (Ganin & Lempitsky,
# 2015). Placed between the common encoder and the discriminator, one optimiser step makes the
# discriminator *better* at telling modalities apart and the encoder *better at fooling it*.

# %%
class GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return -grad


# %% [markdown]
# **Probe.** For `y = sum(w * f(x))` the gradient is `w` without reversal and `-w` with it.

# %%
w = torch.tensor([1.0, -2.0, 3.0])
x1 = torch.zeros(3, requires_grad=True)
x2 = torch.zeros(3, requires_grad=True)
(w * GradReverse.apply(x1)).sum().backward()
(w * grad_reverse(x2)).sum().backward()
print(x1.grad, x2.grad)
torch.testing.assert_close(x1.grad, -w)
torch.testing.assert_close(x2.grad, -w)

# %% [markdown]
# ## 4.2 The discriminator's cosines (Eq. 8)
#
# **In words (Eq. 8-11).** A small classifier, the modality discriminator, is shown one
# representation and guesses which modality it came from. On the private views it should win
# (Eq. 11: they ought to differ). On the common views the encoders play against it (Eq. 10,
# through gradient reversal): if even a trained classifier cannot tell `C_t` from `C_a`, the common
# views carry no trace of their modality. The angular margin of Eq. 9 makes the classifier's task
# harder so that it learns sharper boundaries.
#
# `F(h) = W_F h + b_F` maps a `d_k`-vector to `d` dimensions; the classifier has one weight
# column per modality, `W_D` (d x 3). Both are L2-normalised, so the logits are cosines
# `cos(theta_m)` in [-1, 1]: the classifier only looks at **angles**.

# %%
d_k, d = 16, 8
disc = ModalityDiscriminator(d_k, d, n_modalities=3)
h = torch.randn(5, d_k)
f = F.normalize(h @ disc.project.weight.T + disc.project.bias, dim=1)    # (5, d)
cos = f @ F.normalize(disc.class_weights, dim=0)                         # (5, 3)
torch.testing.assert_close(cos, disc(h))
print(cos.detach().numpy().round(3))

# %% [markdown]
# ## 4.3 The additive angular margin (Eq. 9)
#
# With `theta_y` the angle to the true class weight, scale `alpha` and margin `tau`:
#
# $$\mathcal L_{am} = -\log \frac{e^{\alpha \cos(\theta_y + \tau)}}{e^{\alpha \cos(\theta_y + \tau)} + \sum_{m \ne y} e^{\alpha \cos \theta_m}} \qquad \text{(Eq. 9)}$$
#
# The true class must win *even after its angle is enlarged by tau*. The paper uses
# `alpha = 72`, `tau = 0.5` rad. From scratch, with `arccos`:

# %%
def angular_margin(cos, y, alpha=72.0, tau=0.5):
    theta_y = torch.arccos(cos.gather(1, y[:, None]))                   # (n, 1)
    logits = cos.scatter(1, y[:, None], torch.cos(theta_y + tau))       # target gets the margin
    return F.cross_entropy(alpha * logits, y)


# %% [markdown]
# The library computes `cos(theta + tau)` through the cos/sin identity instead (`arccos` has an
# infinite slope at +-1) and continues linearly past `theta = pi - tau`. Where both apply they agree:

# %%
g = torch.Generator().manual_seed(0)
cos = torch.empty(64, 3).uniform_(-0.5, 1.0, generator=g)              # theta_y + tau < pi
y = torch.randint(0, 3, (64,), generator=g)
torch.testing.assert_close(angular_margin(cos, y), losses.angular_margin_loss(cos, y, 72.0, 0.5))
print(f"L_am = {losses.angular_margin_loss(cos, y).item():.3f}")

# %% [markdown]
# With `tau = 0` it is plain softmax cross-entropy on scaled cosines (the `margin_loss="ce"`
# option of `LossConfig`):

# %%
torch.testing.assert_close(losses.angular_margin_loss(cos, y, 72.0, 0.0), F.cross_entropy(72.0 * cos, y))

# %% [markdown]
# ## 4.4 Decision geometry on the hypersphere
#
# With `d = 2` the hypersphere is the unit circle, and we can draw everything. We train a
# discriminator on toy "modalities" (three offset Gaussian clouds in 4-d) with plain
# cross-entropy and with the margin, same scale `alpha = 72`.

# %%
def toy_modalities(n=256, seed=0):
    gen = torch.Generator().manual_seed(seed)
    shared = 0.5 * torch.randn(n, 1, 4, generator=gen)                  # the same for all three
    return shared + 3.0 * torch.eye(3, 4) + 0.3 * torch.randn(n, 3, 4, generator=gen)  # (n, M, 4)


def train_discriminator(x, tau, steps=400, alpha=72.0):
    torch.manual_seed(0)
    D = ModalityDiscriminator(4, 2, n_modalities=3)                     # d = 2: the unit circle
    opt = torch.optim.Adam(D.parameters(), lr=0.02)
    for _ in range(steps):
        loss = losses.modality_loss(D(x), alpha, tau)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return D


# %%
x_toy = toy_modalities()
D_ce, D_am = train_discriminator(x_toy, tau=0.0), train_discriminator(x_toy, tau=0.5)

# %% [markdown]
# How far, in degrees, does each feature sit from its own class weight? The margin pulls each
# class tighter around its weight. In the figures, the inner ring shows the plain decision
# regions and the outer ring where a feature would satisfy the margin; the gaps in the outer
# ring (an angle `tau` around every boundary) are where no class does.

# %%
def mean_angle_to_own_class(D, x):
    with torch.no_grad():
        cos = D(x)                                                       # (n, M, M)
        own = torch.diagonal(cos, dim1=1, dim2=2)                        # (n, M)
    return math.degrees(torch.arccos(own.clamp(-1, 1)).mean().item())


for name, D in (("cross-entropy", D_ce), ("angular margin", D_am)):
    print(f"{name:15s} mean angle to own class weight: {mean_angle_to_own_class(D, x_toy):5.1f} deg")

# %%
def circle_figure(D, x, tau, title):
    with torch.no_grad():
        feats = D.project(x.reshape(-1, 4))                              # (n*M, 2)
    labels = torch.arange(3).repeat(x.shape[0])
    return viz.angular_geometry(D.class_weights.detach(), tau, feats, labels, title=title)


circle_figure(D_ce, x_toy, 0.5, "plain cross-entropy (tau = 0 in training)")

# %%
circle_figure(D_am, x_toy, 0.5, "angular margin, tau = 0.5")

# %% [markdown]
# ## 4.5 In the model: L_ami and L_ams (Eq. 10-11)
#
# One discriminator judges both kinds of representation. For every sample and every modality,
# the model returns the discriminator's logits in `disc_logits_common` / `disc_logits_private`,
# shape (B, M, M): the cosines cos(theta_j) of Eq. 8-9 (raw logits only in Table 4's CE row).
# Row i is the representation of modality i, and its true class is i.
#
# $$\mathcal L_{ami} = \frac1B \sum_b \sum_m \mathcal L_{am}(C_m^b, m) \;\; \text{(Eq. 10, behind gradient reversal)}, \qquad \mathcal L_{ams} = \text{the same on } P_m \;\; \text{(Eq. 11)}$$

# %%
data = lessons.lesson_data("emotion")
config = lessons.lesson_config()
model = build_model(config, data.widths, data.output_dim).eval()        # eval: no dropout
batch = next(iter(make_loader(data, "train", batch_size=16)))
out = model(batch.features, batch.masks)
print(tuple(out.disc_logits_common.shape), tuple(out.disc_logits_private.shape))

# %%
def modality_loss_by_hand(cos, alpha, tau):
    B, M, _ = cos.shape
    per_modality = [angular_margin(cos[:, m], torch.full((B,), m), alpha, tau) for m in range(M)]
    return sum(per_modality)                       # mean over samples, sum over modalities


torch.testing.assert_close(modality_loss_by_hand(out.disc_logits_common, losses.ALPHA, losses.TAU),
                           losses.modality_loss(out.disc_logits_common, losses.ALPHA, losses.TAU))

# %% [markdown]
# The reversal is inside the model. Check it on the common encoder's weights: the gradient of
# `L_ami` through the model equals minus the gradient of the same loss computed on the same
# `C_m` *without* reversal.

# %%
weight = model.common_encoder.net[0].weight
l_ami = losses.modality_loss(out.disc_logits_common, losses.ALPHA, losses.TAU)
g_reversed, = torch.autograd.grad(l_ami, weight, retain_graph=True)
C = torch.stack([out.common[m] for m in "tav"], dim=1)                 # (B, M, d_k)
g_plain, = torch.autograd.grad(losses.modality_loss(model.discriminator(C), losses.ALPHA, losses.TAU), weight)
torch.testing.assert_close(g_reversed, -g_plain)
print("gradient reversal on the common branch: checked")

# %% [markdown]
# ## 4.6 What does fooling the discriminator reward?
#
# Gradient reversal makes the encoders *maximise* the discriminator's loss. For one sample,
# compare two ways of "fooling" it: a confused discriminator (uniform probabilities, what the
# paper's Figure 4a shows, about 0.33) and a *confidently wrong* one.

# %%
probs = {"confused": torch.tensor([1 / 3, 1 / 3, 1 / 3]),
         "confidently wrong": torch.tensor([0.01, 0.98, 0.01])}
for name, p in probs.items():
    ce = -p[0].log()                               # true class 0
    uniform_ce = -(p.log()).mean()                 # the "confusion" objective
    print(f"{name:18s} loss the reversed encoder maximises {ce:.2f} | confusion loss {uniform_ce:.2f}")

# %% [markdown]
# The reversed objective is *unbounded*: it prefers a discriminator that is sure of the wrong
# modality (a relabelling of the modalities) over a confused one. A **confusion** adversary
# instead lets the discriminator learn on detached `C_m` and trains the encoders to bring its
# output towards uniform, whose loss is smallest at exactly 1/3 each. `fdmer_lite` has both:
# `LossConfig(adversary="grl")` (the paper) and `adversary="confusion"`. Notebook 7 measures
# what each does to a trained FDMER.
#
# **The ramp.** Ganin & Lempitsky, who introduced gradient reversal, did not reverse at full
# strength from the first step: they scaled the reversed gradient by
# `lambda(p) = 2 / (1 + exp(-10 p)) - 1`, rising from 0 to 1 as training progress `p` goes from
# 0 to 1, so the discriminator has learnt something before the encoders start to fight it. The
# paper says nothing of a schedule; we use this ramp by default
# (`TrainConfig.grl_schedule = "dann"`; `"constant"` reverses at full strength throughout).
# The literal presets reverse at full strength; what the ramp buys is measured in
# `benchmarks/results/readings-synthetic.md` (row `constant_grl`).

# %%
from fdmer_lite.train import reversal_coefficient

for p in (0.0, 0.05, 0.1, 0.2, 0.5, 1.0):
    print(f"progress {p:4.2f}: reversal x {reversal_coefficient('dann', p):.3f}")
assert reversal_coefficient("dann", 0.0) == 0.0 and reversal_coefficient("dann", 1.0) > 0.9999

# %% [markdown]
# ## Summary
#
# * Gradient reversal: identity forward, `-grad` backward; one optimiser trains the
#   discriminator and, through the reversal, the encoders against it, at a strength that ramps
#   up from 0 (Ganin & Lempitsky's schedule) unless you ask for full strength throughout.
# * Eq. 8-9: the discriminator compares angles; the margin `tau` makes the true class win by an
#   angle, which pulls each class tighter on the hypersphere.
# * Eq. 10-11: the same discriminator scores `C_m` (reversed) and `P_m` (not reversed).
# * Maximising the discriminator's loss rewards a confidently *wrong* discriminator, not a
#   confused one; the confusion objective rewards confusion.

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
# ### Exercise 4.1: the gradient of cross-entropy
#
# For the logits `z = exercises.LOGITS_4_1 = (2, 0, -1)` and the true class 0, compute the
# gradient of `-log p_0` with respect to `z`, by hand and with autograd. **You learn** why the
# reversed objective of 4.6 never settles: the gradient `softmax(z) - onehot` vanishes only when
# `p_0 = 1`, so the encoders are pushed to make the discriminator ever more wrong.
#
# *Hint:* `d(-log p_y)/dz_k = p_k - [k = y]`. *Check:* `exercises.check("4.1", grad)`.

# %%
# Your turn 4.1: your code here, then exercises.check("4.1", ...)

# %% jupyter={"source_hidden": true} tags=["solution"]
%%solution
# Solution 4.1
z41 = torch.tensor(exercises.LOGITS_4_1, requires_grad=True)
(-z41.log_softmax(dim=0)[0]).backward()
torch.testing.assert_close(z41.grad, z41.detach().softmax(0) - torch.tensor([1.0, 0.0, 0.0]))
assert exercises.check("4.1", z41.grad)

# %% [markdown]
# ### Exercise 4.2: where the confusion loss is smallest
#
# Minimise the confusion loss `-(1/3) Σ_k log p_k` over the logits of three classes with a few
# hundred steps of gradient descent. Which `p` do you reach, and what is the loss there?
# **You learn** that, unlike the reversed cross-entropy, the confusion objective has a floor at
# exactly the paper's Figure 4a picture: 1/3 each.
#
# *Hint:* start from random logits; `torch.optim.SGD([z], lr=1.0)`.
# *Check:* `exercises.check("4.2", (p, loss))`.

# %%
# Your turn 4.2: your code here, then exercises.check("4.2", ...)

# %% jupyter={"source_hidden": true} tags=["solution"]
%%solution
# Solution 4.2
z42 = torch.randn(3, generator=torch.Generator().manual_seed(0)).requires_grad_()
opt42 = torch.optim.SGD([z42], lr=1.0)
for _ in range(300):
    opt42.zero_grad()
    loss42 = -z42.log_softmax(0).mean()
    loss42.backward()
    opt42.step()
assert exercises.check("4.2", (z42.detach().softmax(0), -z42.detach().log_softmax(0).mean().item()))

# %% [markdown]
# ### Exercise 4.3: why the gradient check of 4.5 used `model.eval()`
#
# Apply one `torch.nn.Dropout(0.5)` in training mode twice to the same input. **You learn** why a
# gradient comparison needs the model in eval mode: in training mode every forward pass draws a
# new dropout mask, so two passes are two different functions.
#
# *Hint:* compare the two outputs of `torch.ones(1000)` with `torch.equal`; then switch the module
# to `.eval()` and compare again. *Check:* `exercises.check("4.3", (equal_in_train, equal_in_eval))`.

# %%
# Your turn 4.3: your code here, then exercises.check("4.3", ...)

# %% jupyter={"source_hidden": true} tags=["solution"]
%%solution
# Solution 4.3
drop = torch.nn.Dropout(0.5).train()
ones = torch.ones(1000)
print("training mode, first 8:", drop(ones)[:8].tolist(), drop(ones)[:8].tolist())
same_train = torch.equal(drop(ones), drop(ones))
drop.eval()
same_eval = torch.equal(drop(ones), drop(ones))
print("this lesson preset's dropout is", config.model.dropout)
assert exercises.check("4.3", (same_train, same_eval))
