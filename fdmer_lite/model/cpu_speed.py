"""The package's CPU speed devices, in one place beside the layers they serve.

Each computes what a plain PyTorch call computes, faster on a CPU (figures in
``benchmarks/results/code-notes.md`` and ``benchmarks/results/denormals.md``):

* :class:`PackedDropout`, inverted dropout like ``nn.Dropout``. PyTorch's CPU dropout draws one
  random number per element on one thread (``bernoulli_``); at the paper's MOSI preset that
  costs more of a step than the feed-forward matrix products it follows. This one draws 64
  random bits at a time and cuts them into four 15-bit numbers, one per element, so it asks the
  generator for a quarter as many draws. It drops an element with probability
  ``round(p * 2**15) / 2**15`` (0.100006 for p = 0.1) and scales the kept ones by the inverse of
  the exact keep probability, so it is unbiased in expectation. It uses torch's default
  generator (``torch.manual_seed`` makes it reproducible). On CUDA it calls ``F.dropout``.
* :func:`attention`, the attention dispatch: the fused kernel ``F.scaled_dot_product_attention``
  wherever it is faster, the written-out :func:`attention_reference` where the fused kernel's
  CPU dropout on the attention weights is slower.
* :func:`flush_denormals`, which the trainer calls on the CPU before it trains.
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


class PackedDropout(nn.Module):
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
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])               # (B, H, L, L)
    if keep is not None:
        scores = scores.masked_fill(~keep, float("-inf"))
    weights = scores.softmax(dim=-1)                                       # (B, H, L, L)
    if dropout is not None:
        weights = dropout(weights)
    return weights @ v                                                     # (B, H, L, d)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, keep: torch.Tensor | None,
              dropout: PackedDropout) -> torch.Tensor:
    """:func:`attention_reference`'s sum, in the fused kernel unless dropout on the attention
    weights is to be drawn on the CPU (the fused kernel's CPU dropout is slower)."""
    drop = dropout.p if dropout.training else 0.0
    if drop > 0.0 and q.device.type == "cpu":
        return attention_reference(q, k, v, keep, dropout)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=keep, dropout_p=drop)


def flush_denormals() -> bool:
    """Treat denormal floats (magnitudes below about 1.2e-38) as zero in this thread's CPU
    arithmetic, from now on; returns False where the CPU cannot (``torch.set_flush_denormal``).

    A CPU computes with denormals many times more slowly than with ordinary numbers; long runs of
    the paper-sized presets make them, and their steps slow down several times over. Zero in
    their place changes no loss or metric we print. The setting belongs to the calling thread
    and to threads it starts later (with one intra-op thread, the default, every step).
    """
    return bool(torch.set_flush_denormal(True))
