"""A transformer encoder layer written out in full (Eq. 1), pre- or post-norm.

Why not ``nn.TransformerEncoderLayer``? Eq. 1 of the paper is "a transformer encoder". Written
out, the layer is twenty lines a learner can read: multi-head self-attention with a padding mask,
then a feed-forward block, each inside a residual. The paper's Section 3.2 puts the LayerNorm
after each residual ("residual connections are adopted, followed by layer normalization";
post-norm, as in Vaswani et al. 2017). Our default reading puts it first (pre-norm, Xiong et al.
2020, "On Layer Normalization in the Transformer Architecture"), which trains without a warm-up;
the literal presets use post-norm. The feed-forward block uses GELU (Hendrycks & Gimpel 2016),
where Vaswani et al. used ReLU.

The dropout and the attention kernel come from :mod:`fdmer_lite.model.cpu_speed`, which holds the
package's CPU speed devices; they compute what ``nn.Dropout`` and the written-out
:func:`~fdmer_lite.model.cpu_speed.attention_reference` compute.
"""

from __future__ import annotations

import torch
from torch import nn

from . import cpu_speed
from .cpu_speed import PackedDropout, attention_reference  # noqa: F401  (re-exported)

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
        self.ff = nn.Sequential(nn.Linear(dim, ff_dim), nn.GELU(), PackedDropout(dropout), nn.Linear(ff_dim, dim))
        self.drop1, self.drop2 = PackedDropout(dropout), PackedDropout(dropout)
        self.drop_attn = PackedDropout(dropout if attn_dropout is None else attn_dropout)   # on the weights

    def attention(self, x: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
        B, L, D = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)  # (B, H, L, D/H) each
        keep = None
        if pad is not None:                  # a sequence with no valid step attends to all of it
            keep = (~pad | pad.all(dim=1, keepdim=True))[:, None, None, :]  # (B, 1, 1, L)
        mixed = cpu_speed.attention(q, k, v, keep, self.drop_attn)                   # (B, H, L, D/H)
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
