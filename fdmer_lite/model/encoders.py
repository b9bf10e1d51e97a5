"""Feature extraction and the common / private encoders (FDMER Section 3.2, Eq. 1-3).

Eq. 1: each modality's sequence U_m (L_m x d_m) passes through its own transformer encoder
(n_t = 5, n_a = n_v = 4 layers in the paper) and becomes one vector h_m of width d_k.
Choices the paper leaves open, made here:
  * the input is first projected to ``model_dim`` (the paper runs at the raw width 300/74/47,
    whose head counts are awkward; ``model_dim=None`` runs at the raw width, as the literal
    presets do), plus fixed sinusoidal positions;
  * pre-norm layers (``ModelConfig.norm``; post-norm in the literal presets) with GELU, written out
    in ``layers.py`` (with a dropout that is cheaper on a CPU than ``nn.Dropout``, ``cpu_speed.py``);
    in the presets the pre-norm stack ends without a LayerNorm of its own (``norm="pre"``), so a time step that
    carries a strong signal stays larger than the others when the steps are pooled;
  * sequence -> vector by ``pooling``: masked mean (default), the last valid step, or a learned
    attention pooling; then a linear map to d_k.
Eq. 2-3: the common encoder E_c (ONE instance shared by all modalities) and the private encoders
E_p^m (one per modality) are two-layer MLPs with GELU, d_k -> d_k. One reading of them
(``ModelConfig.mlp="scaled"``): an initialisation that keeps the input's scale
(``scaled_init_``) and no dropout between their layers.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from .cpu_speed import PackedDropout
from .layers import TransformerEncoder


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


def temporal_pool(x: torch.Tensor, mask: torch.Tensor | None, stride: int
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Average non-overlapping windows of ``stride`` time steps: (B, L, D) -> (B, ceil(L / stride), D).

    Only valid steps (``mask`` True) count; a window with none is padding in the result. A
    sequence whose length is not a multiple of ``stride`` gets padded steps at its end first.
    """
    B, L, D = x.shape
    extra = (-L) % stride
    if mask is None and extra == 0:
        return x.view(B, L // stride, stride, D).mean(dim=2), None
    if mask is None:
        mask = torch.ones(B, L, dtype=torch.bool, device=x.device)
    x = nn.functional.pad(x, (0, 0, 0, extra))
    mask = nn.functional.pad(mask, (0, extra), value=False)
    w = mask.view(B, -1, stride, 1).to(x.dtype)                             # (B, L', s, 1)
    pooled = (x.view(B, -1, stride, D) * w).sum(dim=2) / w.sum(dim=2).clamp_min(1.0)
    return pooled, mask.view(B, -1, stride).any(dim=2)


def head_count(width: int, most: int) -> int:
    """The largest number of attention heads, at most ``most``, that divides ``width``."""
    return max(h for h in range(1, max(1, most) + 1) if width % h == 0)


class ModalityEncoder(nn.Module):
    """Eq. 1: h_m = FC(pool(Transformer_m(U_m))) for one modality.

    ``model_dim=None``: the transformer runs at the input width ``in_dim`` (no projection), with
    :func:`head_count` heads."""

    def __init__(self, in_dim: int, *, model_dim: int | None, layers: int, heads: int, ff_mult: int,
                 dropout: float, d_k: int, pooling: str = "mean", max_len: int = 512,
                 attn_dropout: float | None = None, time_stride: int = 1, norm_first: bool = True,
                 final_norm: bool = True):
        super().__init__()
        project = model_dim is not None
        if not project:
            model_dim, heads = in_dim, head_count(in_dim, heads)
        if time_stride < 1:
            raise ValueError(f"time_stride must be >= 1, got {time_stride!r}")
        self.time_stride = time_stride
        if pooling not in ("mean", "last", "attention"):
            raise ValueError(f"pooling must be 'mean', 'last' or 'attention', got {pooling!r}")
        self.pooling = pooling
        self.to_model = nn.Linear(in_dim, model_dim) if project else nn.Identity()
        self.register_buffer("positions", sinusoidal_positions(max_len, model_dim), persistent=False)
        self.transformer = TransformerEncoder(model_dim, heads, ff_mult * model_dim, layers, dropout,
                                              attn_dropout, norm_first, final_norm)
        self.attend = nn.Linear(model_dim, 1) if pooling == "attention" else None
        self.to_out = nn.Linear(model_dim, d_k)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.time_stride > 1:                     # fewer, averaged steps (the CPU preset)
            x, mask = temporal_pool(x, mask, self.time_stride)
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


def scaled_init_(first: nn.Linear, second: nn.Linear) -> None:
    """Initialise a Linear-GELU-Linear block so that its output has about the scale of its input,
    with zero biases (the ``mlp="scaled"`` reading of Eq. 2-3).

    PyTorch's default ``nn.Linear`` initialisation draws weights of variance 1 / (3 fan_in) and
    biases of a similar size: each layer divides the spread of a signal by sqrt(3) and the GELU
    roughly halves what is left, while the biases add a constant. Here the first layer is
    He-normal (variance 2 / fan_in, for the GELU that follows), the second LeCun-normal
    (variance 1 / fan_in), and both biases start at zero.
    """
    nn.init.kaiming_normal_(first.weight, nonlinearity="relu")
    nn.init.normal_(second.weight, std=second.in_features ** -0.5)
    for layer in (first, second):
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)


class MLPEncoder(nn.Module):
    """Eq. 2-3: a two-layer perceptron with GELU, d_k -> d_k.

    ``out_bias=False`` drops the bias of the second layer: used when :class:`ModalityCentring`
    follows, which cancels any constant exactly (the bias would get a gradient of zero up to
    rounding, and Adam would turn the rounding into steps of full size)."""

    def __init__(self, d_k: int, dropout: float = 0.0, out_bias: bool = True, init: str = "default"):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_k, d_k), nn.GELU(), PackedDropout(dropout),
                                 nn.Linear(d_k, d_k, bias=out_bias))
        if init == "scaled":
            scaled_init_(self.net[0], self.net[3])
        elif init != "default":
            raise ValueError(f"init must be 'default' or 'scaled', got {init!r}")

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h)


class ModalityCentring(nn.Module):
    """Extension beyond the paper, *in-model centring* (``ModelConfig.common_centring``): subtract
    from each modality's C_m that modality's mean, inside the network.

    Not to be confused with the batch-centred L_con (``LossConfig.con_centre``: the loss, not the
    representation) or the offset-removed probe (``analysis.modality_probe_accuracy(centre=True)``).

    Why. A linear probe can tell the modalities apart from C_m exactly when their means differ:
    no linear classifier does better than a constant guess if and only if the class-conditional
    means are equal (Belrose et al. 2023, "LEACE", Theorem 3.1). Nothing in Eq. 18 asks for equal
    means. The adversary (Eq. 10) fools its discriminator, and the centred consistency loss
    compares only how samples vary, so each modality can keep its own small offset, which a
    fresh probe can read (notebook 11 measures how much of C_m the offset is). Centring removes the offsets by construction,
    the way domain-specific batch normalisation does in domain adaptation; the offsets carry
    nothing about the label (C = C_t + C_a + C_v turns them into one constant).

    Like batch normalisation without scaling: in training, the batch mean of each modality
    (gradients flow through it), with a running mean kept on the side; in evaluation, the
    running mean, so one sample's output does not depend on its batch. The running mean is the
    plain average of the batch means for the first ``1 / momentum`` batches, an exponential
    average with weight ``momentum`` after that. ``batch_mean``: how to take the batch mean over
    the first axis (default ``x.mean(dim=0)``); under DistributedDataParallel the trainer passes
    a differentiable mean over every process's shard (``collectives.global_mean``), so two
    processes train like one.
    """

    def __init__(self, n_modalities: int, d_k: int, momentum: float = 0.01,
                 batch_mean: Callable[[torch.Tensor], torch.Tensor] | None = None):
        super().__init__()
        self.momentum = momentum
        self.batch_mean = batch_mean
        self.register_buffer("running_mean", torch.zeros(n_modalities, d_k))
        self.register_buffer("batches", torch.zeros((), dtype=torch.long))

    def forward(self, C: torch.Tensor, track: bool = True) -> torch.Tensor:
        """C (B, M, d_k) -> C minus each modality's mean, (B, M, d_k). ``track=False``: leave the
        running mean as it is (a second pass over the same batch)."""
        if not self.training:
            return C - self.running_mean.to(C.dtype)
        mean = C.mean(dim=0) if self.batch_mean is None else self.batch_mean(C)   # (M, d_k)
        if not track:
            return C - mean
        with torch.no_grad():
            self.batches += 1
            weight = max(self.momentum, 1.0 / self.batches.item())
            self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), weight)
        return C - mean
