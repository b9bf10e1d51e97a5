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
# # 5. Cross-modal attention fusion, CMAF (Eq. 12-17)
#
# After the encoders, each sample has four tokens of width `d_k`: the summed common
# representation `C = C_t + C_a + C_v` and the three private ones `P_t, P_a, P_v`. CMAF fuses
# them in two phases:
#
# 1. **Phase 1** (Eq. 12-14): every token (a *target*) attends over all four (the *source*) and
#    is refined by a residual feed-forward block.
# 2. **Phase 2** (Eq. 15-17): a score per target, a softmax over the four targets gives the
#    weights **ψ**, and the fused vector is the ψ-weighted sum. ψ is what the paper's Figure 4b
#    plots: how much the prediction relies on the common versus each private representation.
#
# We rebuild both phases with the library module's own weights and compare.

# %%
import torch

from fdmer_lite import lessons, viz
from fdmer_lite.data import make_loader
from fdmer_lite.model import CMAF, build_model

fast = lessons.setup()

# %% [markdown]
# ## 5.1 The four tokens
#
# An untrained model on one batch; the tokens exactly as the model builds them.

# %%
data = lessons.lesson_data("emotion")
model = build_model(lessons.lesson_config(), data.widths, data.output_dim).eval()
batch = next(iter(make_loader(data, "train", batch_size=16)))
with torch.no_grad():
    out = model(batch.features, batch.masks)
C = out.common["t"] + out.common["a"] + out.common["v"]                     # (B, d_k)
tokens = torch.stack([C, out.private["t"], out.private["a"], out.private["v"]], dim=1)
print(out.psi_names, tuple(tokens.shape))                                  # (B, T=4, d_k)

# %% [markdown]
# ## 5.2 Phase 1: cross-modal attention (Eq. 12-14)
#
# **In words (Eq. 12-14).** The four tokens, the summed common view `C` and the three private
# views, are fused in two steps. In the first, each token (a *target*) looks at all four together
# (the *source*) and takes from them what it lacks, so that every token is rewritten in the light
# of the others.

# %% [markdown]
# The source `F_so = [C, P_t, P_a, P_v]` is flattened into one `4 d_k` vector,
# layer-normalised as that one vector and projected twice, by `W_Q` and `W_U` (each `4 d_k x
# 4 d_k` in the paper). Each target `F_ta` is layer-normalised and has its own `W_G`:
# `G_ta = LN(F_ta) W_G`. In Eq. 12 the target's `G_ta` asks (the query), `Q_so` answers (despite
# its letter, the *keys*) and `U_so` is what is mixed (the values). The paper does not say how a
# `d_k`-wide query meets a `4 d_k`-wide key; **our reading** cuts each projected `4 d_k` vector
# into four tokens of width `d_k`, one per source, so each target attends over the four. Then
#
# $$F_{so \to ta} = \mathrm{softmax}\!\Big(\frac{G_{ta} Q_{so}^\top}{\sqrt{d_k}}\Big) U_{so} \quad \text{(Eq. 12)}, \qquad
# Y_{ta} = \mathrm{LN}(F_{ta}) + F_{so \to ta} \quad \text{(Eq. 13)}, \qquad
# Y_{ta} \leftarrow f_\delta(\mathrm{LN}(Y_{ta})) + Y_{ta} \quad \text{(Eq. 14)}$$

# %% [markdown]
# The paper's Eq. 12 has no `1/sqrt(d_k)`; we scale (`attn_scale=True`) because at `d_k = 256`
# the unscaled softmax saturates (the literal presets leave it out). `LN(F_ta)` of Eq. 12 and of
# Eq. 13 is one LayerNorm per target. `f_δ` is one feed-forward block shared by the targets.

# %%
def phase1(fusion, tokens):
    B, T, D = tokens.shape
    source = fusion.norm_source(tokens.reshape(B, T * D))                      # LN(F_so) (B, T*d_k)
    Q = fusion.to_q(source).reshape(B, T, D)                                   # Q_so: the keys
    U = fusion.to_u(source).reshape(B, T, D)                                   # U_so
    target = torch.stack([fusion.norm_in[j](tokens[:, j]) for j in range(T)], dim=1)   # LN(F_ta)
    G = torch.stack([target[:, j] @ fusion.to_g[j] for j in range(T)], dim=1)  # G_ta (B, T, d_k)
    attn = (G @ Q.transpose(1, 2) / D ** 0.5).softmax(dim=-1)                  # (B, T_target, T_source)
    cross = attn @ U                                                           # F_so->ta (B, T, d_k)
    Y = []
    for j in range(T):
        y = target[:, j] + cross[:, j]                                         # Eq. 13
        Y.append(fusion.f_delta(fusion.norm_mid[j](y)) + y)                    # Eq. 14
    return torch.stack(Y, dim=1), attn


# %%
fusion = model.fusion
with torch.no_grad():
    Y, attn = phase1(fusion, tokens)
    Y_lib, attn_lib = fusion.cross_attention(tokens)
torch.testing.assert_close(Y, Y_lib, rtol=1e-4, atol=1e-5)
torch.testing.assert_close(attn, attn_lib)
print("phase 1 from scratch == library:", tuple(Y.shape))

# %% [markdown]
# **Probe.** A CMAF with `d_k = 2` and four hand-made tokens: each row of the attention says
# where one target looks among the four sources.

# %%
torch.manual_seed(0)
tiny = CMAF(d_k=2, n_tokens=4).eval()
probe = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]]])  # (B=1, T=4, d_k=2)
with torch.no_grad():
    _, tiny_attn = tiny.cross_attention(probe)
print(tiny_attn[0].numpy().round(3))
torch.testing.assert_close(tiny_attn.sum(-1), torch.ones(1, 4))

# %%
names = list(out.psi_names)
viz.attention_heatmap(tiny_attn[0], rows=names, cols=names,
                      title="Phase-1 attention of the tiny probe (target x source)")

# %% [markdown]
# ## 5.3 Phase 2: attention over targets (Eq. 15-17)
#
# **In words.** The second step decides how much each rewritten token counts: one learned scoring
# vector gives every token a score, a softmax turns the four scores into weights ψ that sum to 1,
# and the prediction is read from the weighted sum. ψ is what the paper's Figure 4b plots.
#
# One shared vector `q` and a per-target `W_ta, b_ta`:
#
# $$\mu_{ta} = q^\top \tanh(W_{ta} Y_{ta} + b_{ta}) \quad \text{(Eq. 15)}, \qquad
# \psi = \mathrm{softmax}_{ta}(\mu) \quad \text{(Eq. 16)}, \qquad
# Y_{fin} = \textstyle\sum_{ta} \psi_{ta} Y_{ta} \quad \text{(Eq. 17)}$$

# %%
def phase2(fusion, Y):
    mu = torch.stack([torch.tanh(fusion.to_score[j](Y[:, j])) @ fusion.q for j in range(Y.shape[1])],
                     dim=1)                                                    # (B, T)
    psi = mu.softmax(dim=1)                                                    # (B, T)
    return (psi[:, :, None] * Y).sum(dim=1), psi                              # Y_fin (B, d_k)


# %%
with torch.no_grad():
    fused, psi = phase2(fusion, Y)
    fused_lib, psi_lib = fusion(tokens)
torch.testing.assert_close(fused, fused_lib, rtol=1e-4, atol=1e-5)
torch.testing.assert_close(psi, out.psi, rtol=1e-4, atol=1e-6)
print("psi of the first three samples:\n", psi[:3].numpy().round(3))

# %% [markdown]
# **Probe.** `q` sets how sharp ψ is. With `q = 0` every score is 0 and ψ is exactly uniform;
# scaling `q` up makes ψ pick one target.

# %%
saved_q = fusion.q.data.clone()
for factor in (0.0, 1.0, 30.0):
    fusion.q.data = factor * saved_q
    with torch.no_grad():
        print(f"q x {factor:4.0f}: psi of sample 0 = {fusion(tokens)[1][0].numpy().round(3)}")
fusion.q.data = saved_q

# %% [markdown]
# An untrained model already weighs the targets unevenly, by the accident of its random weights;
# training moves ψ. The box plot of ψ over a batch (Figure 4b of the paper; notebook 7 draws it
# for trained models):

# %%
viz.fusion_weights(out, title="ψ of the untrained model on one batch")

# %% [markdown]
# ## 5.4 Switching phases off
#
# The paper's ablation removes each phase. `ModelConfig(fusion="cmaf_wo_phase1")` feeds the raw
# tokens to phase 2; `"cmaf_wo_phase2"` replaces ψ by uniform weights `1/4`.

# %%
no_phase2 = CMAF(d_k=tokens.shape[-1], n_tokens=4, phase2=False).eval()
with torch.no_grad():
    print(no_phase2(tokens)[1][0])

# %% [markdown]
# ## Summary
#
# * Four tokens enter CMAF: `C = C_t + C_a + C_v`, `P_t`, `P_a`, `P_v`.
# * Phase 1 (Eq. 12-14): each target attends over the projected source tokens, then a residual
#   LayerNorm + feed-forward refines it.
# * Phase 2 (Eq. 15-17): a scalar score per target, ψ = softmax over targets, and the fused
#   vector is the ψ-weighted sum. ψ is Figure 4b.

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
# ### Exercise 5.1: what phase 1's flattened projections cost
#
# Phase 1 projects the *flattened* source (`4 d_k -> 4 d_k`, `fusion.to_q`). Count the
# parameters of one such projection at the paper's `d_k = 256`, and of a per-token projection
# (`d_k -> d_k`). **You learn** where CMAF's size comes from: every target sees every source, at
# sixteen times the cost of a per-token map.
#
# *Hint:* a `Linear(n, n)` has `n * n + n` parameters.
# *Check:* `exercises.check("5.1", (flattened, per_token))`.

# %%
# Your turn 5.1: your code here, then exercises.check("5.1", ...)

# %% jupyter={"source_hidden": true} tags=["solution"]
%%solution
# Solution 5.1
count = lambda module: sum(p.numel() for p in module.parameters())
flat51 = count(CMAF(d_k=256, n_tokens=4).to_q)
per_token51 = count(torch.nn.Linear(256, 256))
assert exercises.check("5.1", (flat51, per_token51))

# %% [markdown]
# ### Exercise 5.2: does a silent token lose its weight?
#
# Set the private text token to zeros in `tokens` and compare ψ with the original. **You learn**
# what ψ measures: Eq. 15 scores the *attended* target `Y_ta`, which mixes all four sources, so
# ψ says how the fusion weighs a slot, not how much information the token itself carries.
#
# *Hint:* `silent = tokens.clone(); silent[:, 1] = 0`, then `fusion(silent)[1]`.
# *Check:* `exercises.check("5.2", change, before=psi_before, after=psi_after)`, with `change` the
# mean weight of slot 1 (`P_t`) after minus before.

# %%
# Your turn 5.2: your code here, then exercises.check("5.2", ...)

# %% jupyter={"source_hidden": true} tags=["solution"]
%%solution
# Solution 5.2
silent = tokens.clone()
silent[:, 1] = 0.0
with torch.no_grad():
    psi_before, psi_after = fusion(tokens)[1], fusion(silent)[1]
for j, name in enumerate(names):
    print(f"{name:4s} mean psi {psi_before[:, j].mean():.3f} -> {psi_after[:, j].mean():.3f}")
change52 = psi_after[:, 1].mean() - psi_before[:, 1].mean()
print(f"P_t's weight {'went down' if change52 < 0 else 'did not go down'} ({change52:+.3f}); the other slots share the rest")
assert exercises.check("5.2", float(change52), before=psi_before.numpy(), after=psi_after.numpy())
