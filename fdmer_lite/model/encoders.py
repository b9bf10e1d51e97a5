"""Feature extraction and the common / private encoders (FDMER Section 3.2, Eq. 1-3).

Eq. 1: each modality's sequence U_m (L_m x d_m) passes through its own transformer encoder
(n_t = 5, n_a = n_v = 4 layers in the paper) and becomes one vector h_m of width d_k.
Choices the paper leaves open, made here:
  * the input is first projected to ``model_dim`` (the paper runs at the raw width 300/74/47,
    whose head counts are awkward), plus fixed sinusoidal positions;
  * pre-norm layers with GELU, written out in ``layers.py`` (with a dropout that is cheaper on a
    CPU than ``nn.Dropout``);
  * sequence -> vector by ``pooling``: masked mean (default), the last valid step, or a learned
    attention pooling; then a linear map to d_k.
Eq. 2-3: the common encoder E_c (ONE instance shared by all modalities) and the private encoders
E_p^m (one per modality) are two-layer MLPs with GELU, d_k -> d_k.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .layers import Dropout, TransformerEncoder


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    """The fixed positional table of Vaswani et al. (2017), shape (length, dim)."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]                # (L, 1)
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return table


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over time of x (B, L, D), counting only steps where mask (B, L) is True."""
    if mask is None:
        return x.mean(dim=1)
    w = mask.to(x.dtype).unsqueeze(-1)                                       # (B, L, 1)
    return (x * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)


class ModalityEncoder(nn.Module):
    """Eq. 1: h_m = FC(pool(Transformer_m(U_m))) for one modality."""

    def __init__(self, in_dim: int, *, model_dim: int, layers: int, heads: int, ff_mult: int,
                 dropout: float, d_k: int, pooling: str = "mean", max_len: int = 512):
        super().__init__()
        if pooling not in ("mean", "last", "attention"):
            raise ValueError(f"pooling must be 'mean', 'last' or 'attention', got {pooling!r}")
        self.pooling = pooling
        self.to_model = nn.Linear(in_dim, model_dim)
        self.register_buffer("positions", sinusoidal_positions(max_len, model_dim), persistent=False)
        self.transformer = TransformerEncoder(model_dim, heads, ff_mult * model_dim, layers, dropout)
        self.attend = nn.Linear(model_dim, 1) if pooling == "attention" else None
        self.to_out = nn.Linear(model_dim, d_k)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        B, L, _ = x.shape                                                    # (B, L, d_m)
        if L > self.positions.shape[0]:
            self.positions = sinusoidal_positions(L, self.positions.shape[1]).to(x.device)
        z = self.to_model(x) + self.positions[:L]                            # (B, L, D)
        pad = None if mask is None else ~mask                                # True = ignore
        z = self.transformer(z, pad)                    # (B, L, D)
        if self.pooling == "mean":
            pooled = masked_mean(z, mask)                                    # (B, D)
        elif self.pooling == "last":
            last = (mask.sum(1) - 1) if mask is not None else torch.full((B,), L - 1, device=x.device)
            pooled = z[torch.arange(B, device=x.device), last.long()]        # (B, D)
        else:
            score = self.attend(z).squeeze(-1)                               # (B, L)
            if mask is not None:
                score = score.masked_fill(~mask, float("-inf"))
            pooled = (score.softmax(dim=1).unsqueeze(-1) * z).sum(dim=1)     # (B, D)
        return self.to_out(pooled)                                           # (B, d_k)


class MLPEncoder(nn.Module):
    """Eq. 2-3: a two-layer perceptron with GELU, d_k -> d_k."""

    def __init__(self, d_k: int, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_k, d_k), nn.GELU(), Dropout(dropout), nn.Linear(d_k, d_k))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)
