"""The modality discriminator and gradient reversal (FDMER Section 3.3, Eq. 8-11).

Eq. 8: F(h) = W_F h + b_F maps a d_k representation to d (=128). The discriminator's class
weights W_D (d x M, one column per modality) and F(h) are both L2-normalised, so the logits are
cosines cos(theta_m) in [-1, 1]; Eq. 9 (in ``losses``) adds the angular margin. ONE
discriminator serves both the common and the private representations. ``normalise=False``
gives the raw logits W_D^T F(h) instead, for Table 4's "Cross-Entropy Loss" row (conventional
softmax cross-entropy, no normalisation, no scale, no margin).

Gradient reversal (Ganin & Lempitsky, 2015): identity in the forward pass, gradient times -1 in
the backward pass. Placed between the common encoder's output and the discriminator, it lets the
discriminator learn to tell modalities apart while the common encoders learn to fool it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, coeff):
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.coeff * grad, None


def grad_reverse(x: torch.Tensor, coeff: float = 1.0) -> torch.Tensor:
    """Identity forward; multiplies the incoming gradient by ``-coeff`` backward."""
    return _GradReverse.apply(x, coeff)


class ModalityDiscriminator(nn.Module):
    """cos(theta_m) between normalised F(h) and the normalised column m of W_D (Eq. 8-9), or the
    raw logits W_D^T F(h) when ``normalise`` is False."""

    def __init__(self, d_k: int, d: int, n_modalities: int, normalise: bool = True, scale: float = 72.0):
        super().__init__()
        self.normalise = normalise
        self.prob_scale = scale if normalise else 1.0        # alpha of Eq. 9; 1 on raw logits
        self.project = nn.Linear(d_k, d)                                     # F: W_F h + b_F
        self.class_weights = nn.Parameter(torch.randn(d, n_modalities) * d ** -0.5)   # W_D

    def probability(self, logits: torch.Tensor) -> torch.Tensor:
        """D's probabilities over the modalities from its outputs: softmax(alpha cos) (no margin:
        inference), or the softmax of the raw logits when it does not normalise."""
        return torch.softmax(self.prob_scale * logits.detach().float(), dim=-1)

    def forward(self, h: torch.Tensor, frozen: bool = False) -> torch.Tensor:
        """h (..., d_k) -> cosines (..., M). ``frozen`` cuts the gradient to the discriminator's
        own parameters (used by the confusion adversary, where only the encoders should move)."""
        W_F, b_F, W_D = self.project.weight, self.project.bias, self.class_weights
        if frozen:
            W_F, b_F, W_D = W_F.detach(), b_F.detach(), W_D.detach()
        f = F.linear(h, W_F, b_F)                                            # F(h) (..., d)
        if not self.normalise:
            return f @ W_D                                                   # raw logits (..., M)
        return F.normalize(f, dim=-1) @ F.normalize(W_D, dim=0)              # cosines (..., M)


class ReversalAdversary(nn.Module):
    """The paper's adversary: D learns to tell the modalities apart from C_m through a gradient
    reversal layer, so the common encoder learns to fool it. Returns D's logits on C_m and P_m
    (and no frozen pass)."""

    def forward(self, D: ModalityDiscriminator, C, P, coeff: float):
        return D(grad_reverse(C, coeff)), D(P), None


class ConfusionAdversary(nn.Module):
    """Extension beyond the paper: D learns on detached C_m; a frozen copy's logits on C_m are
    returned as well, for a loss that pushes its probabilities towards uniform."""

    def forward(self, D: ModalityDiscriminator, C, P, coeff: float):
        return D(C.detach()), D(P), D(C, frozen=True)


class NoAdversary(nn.Module):
    """A single modality: nothing to discriminate."""

    def forward(self, D, C, P, coeff: float):
        return None, None, None


ADVERSARIES = {"grl": ReversalAdversary, "confusion": ConfusionAdversary}
