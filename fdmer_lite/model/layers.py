"""Building blocks written out in full: dropout and a transformer encoder layer (pre- or post-norm).

Why not ``nn.Dropout`` and ``nn.TransformerEncoderLayer``? Two reasons.

* **Teaching.** Eq. 1 of the paper is "a transformer encoder". Written out, the layer is twenty
  lines a learner can read: multi-head self-attention with a padding mask, then a feed-forward
  block, each inside a residual. The paper's Section 3.2 puts the LayerNorm after each residual
  ("residual connections are adopted, followed by layer normalization"; post-norm, as in
  Vaswani et al. 2017). Our default reading puts it first (pre-norm, Xiong et al. 2020, "On
  Layer Normalization in the Transformer Architecture"), which trains without a warm-up; the
  literal presets use post-norm. The feed-forward block uses GELU (Hendrycks & Gimpel 2016),
  where Vaswani et al. used ReLU.
* **Speed on a CPU.** PyTorch's CPU dropout draws one random number per element on one thread
  (``bernoulli_``); at the paper's MOSI preset that costs more of a step than the feed-forward
  matrix products it follows (``benchmarks/throughput.py``; figures in
  ``benchmarks/results/code-notes.md``).
  :class:`Dropout` here draws 64 random bits at a time and cuts them into four 15-bit numbers,
  one per element, so it asks the generator for a quarter as many draws. On CUDA it calls
  ``F.dropout``, whose generator is already fast.

The CPU mask drops an element with probability ``round(p * 2**15) / 2**15`` (0.100006 for
p = 0.1) and scales the kept ones by the inverse of the exact keep probability, so the layer is
unbiased in expectation, like ``nn.Dropout``. It uses torch's default generator, so
``torch.manual_seed`` makes it reproducible.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_LEVELS = 1 << 15                                  # 15 random bits per element


def dropout_mask(shape: torch.Size | tuple[int, ...], p: float, device=None) -> torch.Tensor:
    """A float mask of ``shape``: 0 with probability ``round(p * 2**15) / 2**15``, else
    ``1 / keep_probability``. Draws ``ceil(numel / 4)`` 64-bit integers from torch's generator."""
    numel = math.prod(shape)
    words = torch.empty((numel + 3) // 4, dtype=torch.int64, device=device).random_()  # bits 0..62
    chunks = words.view(torch.int16)[:numel].view(shape)                 # four 16-bit slices a word
    threshold = round(p * _LEVELS)
    keep = (chunks & (_LEVELS - 1)) >= threshold                        # 15 bits: uniform in [0, 2^15)
    return keep.to(torch.float32) * (_LEVELS / (_LEVELS - threshold))


class Dropout(nn.Module):
    """Drop-in for ``nn.Dropout`` (inverted dropout) with a cheaper random mask on the CPU."""

    def __init__(self, p: float = 0.1):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p!r}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, training=True)
        return x * dropout_mask(x.shape, self.p, x.device).to(x.dtype)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, keep: torch.Tensor | None,
                        dropout: nn.Module | None = None) -> torch.Tensor:
    """Scaled dot-product attention written out: softmax(q k^T / sqrt(d), over the kept keys) v.

    q, k, v (B, H, L, d); ``keep`` (B, 1, 1, L) is False at padded keys, whose scores become -inf
    (every row must keep at least one key). ``dropout`` is applied to the attention weights.
    ``F.scaled_dot_product_attention`` computes the same in one fused kernel;
    :class:`TransformerLayer` uses it wherever it is faster.
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])               # (B, H, L, L)
    if keep is not None:
        scores = scores.masked_fill(~keep, float("-inf"))
    weights = scores.softmax(dim=-1)                                       # (B, H, L, L)
    if dropout is not None:
        weights = dropout(weights)
    return weights @ v                                                     # (B, H, L, d)


class TransformerLayer(nn.Module):
    """One transformer encoder layer with GELU, pre-norm (``norm_first=True``, our reading):

        z = z + Dropout(SelfAttention(LN(z)))
        z = z + Dropout(W2 Dropout(GELU(W1 LN(z))))

    or post-norm (``norm_first=False``, the paper's Section 3.2 as written):

        z = LN(z + Dropout(SelfAttention(z)))
        z = LN(z + Dropout(W2 Dropout(GELU(W1 z))))

    Self-attention over ``heads`` heads of width D / heads, scores scaled by 1/sqrt(D / heads);
    ``pad`` (B, L) is True at padded steps, which no query may attend to.
    """

    def __init__(self, dim: int, heads: int, ff_dim: int, dropout: float = 0.1,
                 attn_dropout: float | None = None, norm_first: bool = True):
        super().__init__()
        if dim % heads:
            raise ValueError(f"model width {dim} is not divisible by heads={heads}")
        self.heads, self.norm_first = heads, norm_first
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)                                  # W_Q, W_K, W_V at once
        self.out = nn.Linear(dim, dim)                                      # W_O
        self.ff = nn.Sequential(nn.Linear(dim, ff_dim), nn.GELU(), Dropout(dropout), nn.Linear(ff_dim, dim))
        self.drop1, self.drop2 = Dropout(dropout), Dropout(dropout)
        self.drop_attn = Dropout(dropout if attn_dropout is None else attn_dropout)   # on the weights

    def attention(self, x: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
        B, L, D = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)  # (B, H, L, D/H) each
        keep = None
        if pad is not None:                  # a sequence with no valid step attends to all of it
            keep = (~pad | pad.all(dim=1, keepdim=True))[:, None, None, :]  # (B, 1, 1, L)
        drop = self.drop_attn.p if self.training else 0.0
        if drop > 0.0 and x.device.type == "cpu":    # the fused kernel's CPU dropout is slower
            mixed = attention_reference(q, k, v, keep, self.drop_attn)
        else:                                        # the same sum in one fused kernel
            mixed = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, dropout_p=drop)
        return self.out(mixed.transpose(1, 2).reshape(B, L, D))            # (B, L, D)

    def forward(self, z: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        if self.norm_first:
            z = z + self.drop1(self.attention(self.norm1(z), pad))
            return z + self.drop2(self.ff(self.norm2(z)))
        z = self.norm1(z + self.drop1(self.attention(z, pad)))
        return self.norm2(z + self.drop2(self.ff(z)))


class TransformerEncoder(nn.Module):
    """``layers`` transformer layers. A pre-norm stack ends with a LayerNorm of its own when
    ``final_norm`` (as in GPT-2 and Xiong et al.); without it, like ``nn.TransformerEncoder``'s
    default, the residual stream leaves the stack unnormalised, so each time step keeps its own
    size. A post-norm stack's last layer always ends with a LayerNorm (``final_norm`` is moot)."""

    def __init__(self, dim: int, heads: int, ff_dim: int, layers: int, dropout: float = 0.1,
                 attn_dropout: float | None = None, norm_first: bool = True, final_norm: bool = True):
        super().__init__()
        self.layers = nn.ModuleList([TransformerLayer(dim, heads, ff_dim, dropout, attn_dropout, norm_first)
                                     for _ in range(layers)])
        self.norm = nn.LayerNorm(dim) if norm_first and final_norm else nn.Identity()

    def forward(self, z: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self.layers:
            z = layer(z, pad)
        return self.norm(z)
