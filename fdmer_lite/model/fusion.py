"""Cross-modal attention fusion, CMAF (FDMER Section 3.4, Eq. 12-17), and simpler baselines.

The fusion sees T tokens of width d_k: the summed common representation C = C_t + C_a + C_v and
the private ones P_t, P_a, P_v (T = 4 with all three modalities).

Phase 1 (Eq. 12-14), as the paper writes it. The source F_so = [C, P_t, P_a, P_v] is flattened
into one T*d_k vector, layer-normalised as that one vector, and projected twice, W_Q and W_U
(T*d_k -> T*d_k), then reshaped to T tokens: Q_so = LN(F_so) W_Q, U_so = LN(F_so) W_U. Each
target F_ta in {C, P_t, P_a, P_v} has its own LayerNorm and its own W_G (d_k x d_k):
G_ta = LN(F_ta) W_G. Then
    F_so->ta = softmax(G_ta Q_so^T / sqrt(d_k)) U_so                     (Eq. 12, d_k)
    Y_ta = LN(F_ta) + F_so->ta                                           (Eq. 13)
    Y_ta = f_delta(LN(Y_ta)) + Y_ta                                      (Eq. 14)
Because every input is layer-normalised before it is used, phase 1 gives the same Y when all
tokens are scaled by one positive factor.

Open choices, made here:
  * LN(F_ta) of Eq. 12 and LN(F_ta) of Eq. 13 are ONE module per target: the paper writes the
    same symbol in both places, so we read it as the same normalised tensor.
  * the scores are divided by sqrt(d_k) (``attn_scale``, a reading). Eq. 12 has no scaling; the
    literal presets turn it off.
  * the second LayerNorm (Eq. 14) is also one per target; f_delta (a GELU feed-forward
    d_k -> 2 d_k -> d_k) is SHARED by the targets.

Phase 2 (Eq. 15-17). A score per target, mu_ta = q^T tanh(W_ta Y_ta + b_ta), with one shared
vector q and a per-target W_ta; psi = softmax over the T targets; Y_fin = sum_ta psi_ta Y_ta.
psi (B, T) is what the paper's Figure 4b box plots show.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .cpu_speed import PackedDropout


class CMAF(nn.Module):
    def __init__(self, d_k: int, n_tokens: int, *, phase1: bool = True, phase2: bool = True,
                 attn_scale: bool = True, dropout: float = 0.0):
        super().__init__()
        self.T, self.d_k = n_tokens, d_k
        self.phase1, self.phase2 = phase1, phase2
        self.scale = 1.0 / math.sqrt(d_k) if attn_scale else 1.0
        if phase1:
            self.to_q = nn.Linear(n_tokens * d_k, n_tokens * d_k)            # W_Q
            self.to_u = nn.Linear(n_tokens * d_k, n_tokens * d_k)            # W_U
            self.to_g = nn.Parameter(torch.randn(n_tokens, d_k, d_k) * d_k ** -0.5)   # W_G per target
            self.norm_source = nn.LayerNorm(n_tokens * d_k)                  # LN(F_so), one 4 d_k vector
            self.norm_in = nn.ModuleList(nn.LayerNorm(d_k) for _ in range(n_tokens))  # LN(F_ta), Eq. 12-13
            self.norm_mid = nn.ModuleList(nn.LayerNorm(d_k) for _ in range(n_tokens))
            self.f_delta = nn.Sequential(nn.Linear(d_k, 2 * d_k), nn.GELU(), PackedDropout(dropout),
                                         nn.Linear(2 * d_k, d_k))
        if phase2:
            self.to_score = nn.ModuleList(nn.Linear(d_k, d_k) for _ in range(n_tokens))  # W_ta, b_ta
            self.q = nn.Parameter(torch.randn(d_k) * d_k ** -0.5)            # shared q

    def cross_attention(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Phase 1. tokens (B, T, d_k) -> Y (B, T, d_k) and attention (B, T_target, T_source)."""
        B, T, D = tokens.shape
        source = self.norm_source(tokens.reshape(B, T * D))                  # LN(F_so) (B, T*d_k)
        Q = self.to_q(source).reshape(B, T, D)                               # Q_so (B, T, d_k)
        U = self.to_u(source).reshape(B, T, D)                               # U_so (B, T, d_k)
        target = torch.stack([self.norm_in[j](tokens[:, j]) for j in range(T)], dim=1)  # LN(F_ta)
        G = torch.einsum("btd,tde->bte", target, self.to_g)                  # G_ta (B, T, d_k)
        attn = (G @ Q.transpose(1, 2) * self.scale).softmax(dim=-1)          # (B, T, T)
        cross = attn @ U                                                     # F_so->ta (B, T, d_k)
        ys = []
        for j in range(T):
            y = target[:, j] + cross[:, j]                                   # Eq. 13 (B, d_k)
            ys.append(self.f_delta(self.norm_mid[j](y)) + y)                 # Eq. 14
        return torch.stack(ys, dim=1), attn                                  # (B, T, d_k)

    def target_weights(self, Y: torch.Tensor) -> torch.Tensor:
        """Phase 2 scores. Y (B, T, d_k) -> psi (B, T), rows sum to one."""
        mu = torch.stack([torch.tanh(self.to_score[j](Y[:, j])) @ self.q for j in range(self.T)],
                         dim=1)                                              # (B, T)
        return mu.softmax(dim=1)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens (B, T, d_k) -> fused (B, d_k), psi (B, T)."""
        Y = self.cross_attention(tokens)[0] if self.phase1 else tokens       # (B, T, d_k)
        if self.phase2:
            psi = self.target_weights(Y)
        else:                                                                # w/o phase 2: equal weights
            psi = torch.full(Y.shape[:2], 1.0 / Y.shape[1], device=Y.device, dtype=Y.dtype)
        fused = (psi.unsqueeze(-1) * Y).sum(dim=1)                           # Y_fin (B, d_k)
        return fused, psi


class ConcatFusion(nn.Module):
    """"w/o CMAF": concatenate the T tokens and map back to d_k."""

    def __init__(self, d_k: int, n_tokens: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_tokens * d_k, d_k), nn.GELU())

    def forward(self, tokens):
        B, T, D = tokens.shape
        psi = torch.full((B, T), 1.0 / T, device=tokens.device, dtype=tokens.dtype)
        return self.net(tokens.reshape(B, T * D)), psi


class AddFusion(nn.Module):
    """"Addition": the sum of the T tokens."""

    def forward(self, tokens):
        B, T, _ = tokens.shape
        psi = torch.full((B, T), 1.0 / T, device=tokens.device, dtype=tokens.dtype)
        return tokens.sum(dim=1), psi


class MultFusion(nn.Module):
    """"Multiplication" (Table 4): the element-wise product of the T tokens, the counterpart of
    "Addition". Each token is layer-normalised and squashed to (0, 2) by 1 + tanh first: for a
    symmetric input 1 + tanh has mean 1, so the product keeps its scale whatever T is instead of
    exploding or vanishing.

    Not the same thing as the multiplicative fusion of Mittal et al. (M3ER), which the paper
    cites. There each modality makes its own class prediction and the *loss* reweights each
    modality's cross-entropy by how confident the modalities are (after Liu et al., 2018, "Learn
    to combine modalities"), so unreliable modalities are suppressed per sample. That needs a
    prediction head per token and a classification label; it has no regression form for MOSI's
    continuous labels. Here, as in the paper's table, "Multiplication" replaces CMAF as a way of
    combining representations, and this product is our reading of it."""

    def __init__(self, d_k: int):
        super().__init__()
        self.norm = nn.LayerNorm(d_k)

    def forward(self, tokens):
        B, T, _ = tokens.shape
        psi = torch.full((B, T), 1.0 / T, device=tokens.device, dtype=tokens.dtype)
        return torch.prod(1.0 + torch.tanh(self.norm(tokens)), dim=1), psi


CMAF_PHASES = {"cmaf": (True, True), "cmaf_wo_phase1": (False, True), "cmaf_wo_phase2": (True, False)}


def build_fusion(kind: str, d_k: int, n_tokens: int, *, attn_scale: bool = True,
                 dropout: float = 0.0) -> nn.Module:
    """The fusion ``kind`` names: CMAF (Eq. 12-17), without one of its phases, or a Table 4 baseline."""
    if kind in CMAF_PHASES:
        phase1, phase2 = CMAF_PHASES[kind]
        return CMAF(d_k, n_tokens, phase1=phase1, phase2=phase2, attn_scale=attn_scale, dropout=dropout)
    if kind == "concat":
        return ConcatFusion(d_k, n_tokens)
    if kind == "add":
        return AddFusion()
    if kind == "mult":
        return MultFusion(d_k)
    raise ValueError(f"fusion must be one of {[*CMAF_PHASES, 'concat', 'add', 'mult']}, got {kind!r}")
