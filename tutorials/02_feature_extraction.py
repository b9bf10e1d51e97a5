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
# # 2. Feature extraction: one transformer per modality (Eq. 1)
#
# FDMER first turns each modality's sequence `U_m` (L x d_m) into one vector `h_m`:
#
# $$h_m = \mathrm{Transformer}_m(U_m; \theta_m), \qquad m \in \{t, a, v\} \qquad \text{(Eq. 1)}$$
#
# with n_t = 5, n_a = n_v = 4 encoder layers in the paper. The paper leaves open how a sequence
# becomes a vector and at what width its transformers run; its MOSI features are 300-d GloVe
# text, 74-d COVAREP audio and 35-d Facet visual (our benchmark's visual stream is 47-d, a width
# with no sensible head count; 35 has few). Our choices, written down in `fdmer_lite/model/encoders.py`: project each modality
# to `model_dim` first, add sinusoidal positions, pre-norm layers with GELU, a masked **mean**
# over time, then a linear map to `d_k`.
#
# We start with the heart of a transformer, self-attention, on a probe small enough to check by
# hand; then rebuild the whole encoder and compare it with the library's.

# %%
import torch
import torch.nn.functional as F

from fdmer_lite import lessons, viz
from fdmer_lite.data import make_loader
from fdmer_lite.model.encoders import ModalityEncoder, masked_mean, sinusoidal_positions

fast = lessons.setup()

# %% [markdown]
# ## 2.1 A tiny probe of self-attention
#
# Three tokens of two dimensions. With identity projections (queries = keys = values = X),
# scaled dot-product attention is `softmax(X X^T / sqrt(2)) X`: each token's output is a
# weighted average of all tokens, weighted by similarity.

# %%
X = torch.tensor([[1.0, 0.0],      # token 0
                  [0.0, 1.0],      # token 1
                  [1.0, 1.0]])     # token 2: a bit like both
scores = X @ X.T / 2 ** 0.5        # (3, 3)
attn = scores.softmax(dim=-1)      # each row sums to one
print(attn.numpy().round(3))

# %% [markdown]
# Token 2 is equally similar to tokens 0 and 1, and most similar to itself. PyTorch's fused
# kernel gives the same output:

# %%
out = attn @ X                                                    # (3, 2)
ref = F.scaled_dot_product_attention(X[None], X[None], X[None])[0]
torch.testing.assert_close(out, ref)
print(out.numpy().round(3))

# %%
viz.attention_heatmap(attn, rows=["token 0", "token 1", "token 2"],
                      cols=["token 0", "token 1", "token 2"],
                      title="Self-attention of the 3-token probe")

# %% [markdown]
# ## 2.2 Positions and pooling
#
# Attention ignores order, so each step gets a fixed sinusoidal position vector
# (Vaswani et al., 2017): `PE[p, 2i] = sin(p / 10000^(2i/D))`, `PE[p, 2i+1] = cos(...)`.

# %%
D = 8
pe = sinusoidal_positions(50, D)                                  # (L, D)
p, i = 7, 1
torch.testing.assert_close(pe[p, 2 * i], torch.tensor(p / 10000 ** (2 * i / D)).sin())
torch.testing.assert_close(pe[p, 2 * i + 1], torch.tensor(p / 10000 ** (2 * i / D)).cos())
print(pe.shape)

# %% [markdown]
# Sequence -> vector: the mean over the *valid* steps. Real files pad short sequences at the
# end; the mask is True on valid steps. From scratch, then the library:

# %%
z = torch.arange(12.0).reshape(2, 3, 2)                           # (B=2, L=3, D=2)
mask = torch.tensor([[True, True, True], [True, False, False]])   # sample 1 has one valid step
by_hand = torch.stack([z[0].mean(0), z[1, :1].mean(0)])
torch.testing.assert_close(masked_mean(z, mask), by_hand)
print(by_hand)

# %% [markdown]
# ## 2.3 The encoder from scratch, then the library's
#
# **In words (Eq. 1).** The three modalities arrive at different widths and speeds: a word every
# half second, audio frames, face measurements. Before they can be compared, each gets its own
# transformer, which lets every time step look at every other one (self-attention) and then
# summarises the whole sequence as one vector `h_m` (the paper's $Z_m$) of a width shared by all
# three. Everything after this notebook works on these three vectors.
#
# One `ModalityEncoder` per modality, sized by the lesson preset. We build the text encoder
# and run it on one batch of the benchmark.

# %%
cfg = lessons.lesson_config().model
data = lessons.lesson_data("emotion")
enc = ModalityEncoder(data.widths["t"], model_dim=cfg.model_dim, layers=cfg.n_layers("t"),
                      heads=cfg.heads, ff_mult=cfg.ff_mult, dropout=cfg.dropout,
                      d_k=cfg.d_k, pooling=cfg.pooling, final_norm=cfg.norm == "pre+final").eval()
batch = next(iter(make_loader(data, "train", batch_size=8)))
x = batch.features["t"]                                           # (B, L, d_t)
print("input", tuple(x.shape), "-> h_t", tuple(enc(x).shape))

# %% [markdown]
# One pre-norm encoder layer is `x + SelfAttention(LN(x))`, then `x + FeedForward(LN(x))`. With
# several heads, each head attends in its own slice of the width. The library's layer
# (`fdmer_lite/model/layers.py`, twenty lines) is written the same way; here it is again with the
# layer's own weights, dropout left out (the encoder is in eval mode):

# %%
def encoder_layer(layer, x):
    B, L, D = x.shape
    H = layer.heads
    q, k, v = F.linear(layer.norm1(x), layer.qkv.weight, layer.qkv.bias).chunk(3, dim=-1)  # 3 x (B, L, D)
    split = lambda t: t.reshape(B, L, H, D // H).transpose(1, 2)               # (B, H, L, D/H)
    att = (split(q) @ split(k).transpose(-1, -2) / (D // H) ** 0.5).softmax(-1)  # (B, H, L, L)
    heads = (att @ split(v)).transpose(1, 2).reshape(B, L, D)                  # (B, L, D)
    x = x + layer.out(heads)
    w1, w2 = layer.ff[0], layer.ff[3]                                          # the feed-forward block
    return x + w2(F.gelu(w1(layer.norm2(x))))


# %% [markdown]
# The whole of Eq. 1 as we implement it: project, add positions, the layers, masked mean, map
# to `d_k`. It must match the library's module exactly:

# %%
with torch.no_grad():
    z = enc.to_model(x) + enc.positions[: x.shape[1]]                 # (B, L, model_dim)
    for layer in enc.transformer.layers:
        z = encoder_layer(layer, z)
    h_scratch = enc.to_out(masked_mean(z, None))                       # (B, d_k)
    torch.testing.assert_close(h_scratch, enc(x), rtol=1e-4, atol=1e-5)
print("from scratch == library:", tuple(h_scratch.shape))

# %% [markdown]
# ## 2.4 No LayerNorm after the layers
#
# Many pre-norm transformers (GPT-2, for one) end with one more LayerNorm after the last layer.
# It gives every time step the same size. Here that would hurt: after the mean over time, a step
# that carries a strong signal would count no more than a step of noise, and how strong the
# signal was (for sentiment: how positive) would be lost. So the presets leave it out
# (`ModelConfig.final_norm = False`; `docs/readings.md` links the measurement). Below, one step
# of the batch is made five times louder. Look at how much larger it stays than a typical step,
# with and without that last LayerNorm.

# %%
loud = x.clone()
loud[:, 3] *= 5.0                                                   # step 3, five times louder
with torch.no_grad():
    z = enc.transformer(enc.to_model(loud) + enc.positions[: loud.shape[1]])   # (B, L, model_dim)
    normed = F.layer_norm(z, z.shape[-1:])                          # what a final LayerNorm does
for name, out in (("without a final LayerNorm", z), ("with one", normed)):
    size = out.norm(dim=-1)                                         # (B, L): each step's size
    print(f"{name:26s} step 3 is {(size[:, 3] / size.median(dim=1).values).mean():.1f} times a typical step")

# %% [markdown]
# ## 2.5 Where the parameters are
#
# The input projection is the only part whose size depends on the modality's width; the rest of
# each encoder has the same shape for t, a and v (only the layer counts differ in the paper).

# %%
for m in "tav":
    e = ModalityEncoder(data.widths[m], model_dim=cfg.model_dim, layers=cfg.n_layers(m),
                        heads=cfg.heads, ff_mult=cfg.ff_mult, dropout=cfg.dropout, d_k=cfg.d_k)
    n_in = sum(p.numel() for p in e.to_model.parameters())
    assert n_in == data.widths[m] * cfg.model_dim + cfg.model_dim
    print(f"{m}: {sum(p.numel() for p in e.parameters()):,} parameters, "
          f"{n_in:,} in the input projection ({data.widths[m]} -> {cfg.model_dim})")

# %% [markdown]
# ## 2.6 A shortcut of the CPU presets: fewer, averaged steps
#
# Self-attention costs grow with the square of the length, everything else in the layer with
# the length. The `synthetic` preset therefore averages each pair of neighbouring steps before
# Eq. 1 (`ModelConfig.time_stride = 2`, `fdmer_lite.model.encoders.temporal_pool`; padded steps
# do not count): 25 steps instead of 50. This is not in the paper, whose presets keep
# `time_stride = 1`: it is a speed device, labelled as one in `docs/readings.md`, which links
# to its measured cost and gain.

# %%
from fdmer_lite.model.encoders import temporal_pool

pooled, _ = temporal_pool(x, None, 2)
torch.testing.assert_close(pooled[:, 0], x[:, :2].mean(dim=1))      # step 0 = mean of steps 0 and 1
print(tuple(x.shape), "->", tuple(pooled.shape), "with time_stride", cfg.time_stride, "in the lesson preset")

# %% [markdown]
# ## Summary
#
# * Eq. 1 maps each modality's sequence to one vector `h_m` of width `d_k` with its own
#   transformer.
# * Self-attention is `softmax(Q K^T / sqrt(d)) V`: every step becomes a similarity-weighted
#   average of all steps; positions are added because attention itself ignores order.
# * Our encoder = input projection + positions + pre-norm layers + masked mean + linear map,
#   and a 10-line rebuild matches it to floating-point precision.
# * No LayerNorm after the layers: a step with a strong signal stays larger than the others
#   when the steps are averaged.

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
# ### Exercise 2.1: attention favours large tokens
#
# In the probe of 2.1, scale token 2 to `[3, 3]` (`exercises.PROBE_2_1`) and compute row 2 of
# the attention. **You learn** that dot-product attention rewards length as well as direction: a
# long token attends to itself, and draws the others' attention too.
#
# *Hint:* the same two lines as in 2.1, `softmax(X X^T / sqrt(2))`, then take row 2.
# *Check:* `exercises.check("2.1", row)`.

# %%
# Your turn 2.1: your code here, then exercises.check("2.1", ...)

# %% jupyter={"source_hidden": true} tags=["solution"]
%%solution
# Solution 2.1
X21 = torch.tensor(exercises.PROBE_2_1)
attn21 = (X21 @ X21.T / 2 ** 0.5).softmax(dim=-1)
print(attn21.numpy().round(3))
assert exercises.check("2.1", attn21[2])

# %% [markdown]
# ### Exercise 2.2: heads at the paper's widths
#
# Suppose the transformers ran at the raw widths of the features: the paper's MOSI features are
# 300, 74 and 35 wide, our benchmark's visual stream 47. Which head counts could a visual
# transformer of width 47 use? **You learn** why we project every modality to `model_dim`
# first: multi-head attention splits the width into equal slices.
#
# *Hint:* `D // H` must be a whole number, as in `encoder_layer`.
# *Check:* `exercises.check("2.2", list_of_head_counts)`.

# %%
# Your turn 2.2: your code here, then exercises.check("2.2", ...)

# %% jupyter={"source_hidden": true} tags=["solution"]
%%solution
# Solution 2.2
heads_47 = [h for h in range(1, 48) if 47 % h == 0]
print("visual:", heads_47, "| text:", [h for h in range(1, 301) if 300 % h == 0][:8], "...")
assert exercises.check("2.2", heads_47)

# %% [markdown]
# ### Exercise 2.3: why divide by sqrt(D/H)
#
# Draw 10,000 pairs of random vectors `q, k` of width 256 with N(0, 1) entries and measure the
# standard deviation of `q · k`. Then compare the largest softmax weight of a row of scores with
# and without the division. **You learn** what the scale in `encoder_layer` is for: without it,
# wide heads give nearly one-hot attention rows and vanishing gradients.
#
# *Hint:* `(q * k).sum(-1).std()`. *Check:* `exercises.check("2.3", std)`.

# %%
# Your turn 2.3: your code here, then exercises.check("2.3", ...)

# %% jupyter={"source_hidden": true} tags=["solution"]
%%solution
# Solution 2.3
g23 = torch.Generator().manual_seed(0)
q23, k23 = torch.randn(2, 10_000, 256, generator=g23)
scores23 = (q23 * k23).sum(-1)
print("largest weight of 8 scores: raw", scores23[:8].softmax(0).max().item(),
      "| divided by 16:", (scores23[:8] / 16).softmax(0).max().item())
assert exercises.check("2.3", scores23.std().item())
