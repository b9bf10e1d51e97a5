"""The whole FDMER network (Yang et al., ACM MM 2022, Section 3, Figure 1).

    U_m --Eq.1--> h_m --Eq.2--> C_m (shared encoder)  --> C = C_t + C_a + C_v --+
                      --Eq.3--> P_m (private encoders) ------------------------+--CMAF (Eq.12-17)--> head
    C_m --gradient reversal--> discriminator (Eq. 8)   -> cosines for L_ami (Eq. 10)
    P_m ---------------------> the same discriminator  -> cosines for L_ams (Eq. 11)

Optional extension beyond the paper (``ModelConfig.common_centring``): each C_m minus its
modality's mean (``encoders.ModalityCentring``), before anything reads it.

``forward`` returns an :class:`FDMEROutput` holding everything the losses and the figures need;
nothing is stashed on the module.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..config import ALPHA, MODALITIES, ModelConfig
from .discriminator import ADVERSARIES, ModalityDiscriminator, NoAdversary
from .encoders import MLPEncoder, ModalityCentring, ModalityEncoder
from .fusion import build_fusion
from .cpu_speed import PackedDropout


@dataclass
class FDMEROutput:
    prediction: torch.Tensor                   # (B,) regression, (B, n_classes) logits
    modalities: str                            # e.g. "tav": the order of every M axis below
    features: dict[str, torch.Tensor]          # h_m (B, d_k), Eq. 1
    common: dict[str, torch.Tensor]            # C_m (B, d_k), Eq. 2 (empty if not disentangled)
    private: dict[str, torch.Tensor]           # P_m (B, d_k), Eq. 3
    psi: torch.Tensor                          # (B, T) fusion weights over the targets, Eq. 16
    psi_names: tuple[str, ...]                 # e.g. ("C", "P_t", "P_a", "P_v")
    # The discriminator's logits, (B, M, M): [b, i, j] for the representation of modality i of
    # sample b and class j; the true class of row i is i. None with a single modality. They are
    # the cosines cos(theta_j) of Eq. 8-9, or raw W_D^T F(h) for Table 4's CE row;
    # ``model.discriminator.probability`` turns them into probabilities.
    disc_logits_common: torch.Tensor | None = None         # what the discriminator learns from on C
    disc_logits_private: torch.Tensor | None = None
    disc_logits_common_frozen: torch.Tensor | None = None  # confusion adversary only


class SumOfCommon(nn.Module):
    """The fusion's common target C = C_t + C_a + C_v, one token: (B, M, d_k) -> (B, 1, d_k)."""

    def forward(self, C: torch.Tensor) -> torch.Tensor:
        return C.sum(dim=1, keepdim=True)


class LeftOut(nn.Module):
    """A part Table 4 leaves out of the fusion (w/o Common, w/o Private): no tokens, (B, 0, d_k)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :0]


class NoCentring(nn.Module):
    """The paper: C_m as the common encoder gives it (the centring extension off)."""

    def forward(self, C: torch.Tensor, track: bool = True) -> torch.Tensor:
        return C


class FDMER(nn.Module):
    """FDMER for the modalities in ``config.modalities`` with input widths from the data.

    The parts are chosen here, once: ``adversary`` "grl" puts a gradient reversal layer between
    C_m and the discriminator (the paper); "confusion" lets the discriminator learn on detached
    C_m and also returns a frozen discriminator's logits on C_m (an extension).
    ``disc_normalised=False``: the discriminator gives raw logits (Table 4's CE row);
    ``disc_scale``: alpha of Eq. 9, with which the discriminator turns cosines into
    probabilities. A Table-4 variant that leaves C or P out of the fusion gets :class:`LeftOut`
    there; the centring extension is :class:`NoCentring` unless asked for.
    """

    def __init__(self, config: ModelConfig, input_dims: dict[str, int], output_dim: int = 1, *,
                 adversary: str = "grl", disc_scale: float = ALPHA, max_len: int = 512,
                 disc_normalised: bool = True, batch_mean=None):
        super().__init__()
        if adversary not in ADVERSARIES:
            raise ValueError(f"adversary must be 'grl' or 'confusion', got {adversary!r}")
        mods = "".join(m for m in MODALITIES if m in config.modalities)
        missing = [m for m in mods if m not in input_dims]
        if not mods or missing:
            raise ValueError(f"model modalities {config.modalities!r} need input widths; "
                             f"the data provides {sorted(input_dims)}")
        if config.aux_scope not in ("all", "encoders"):
            raise ValueError(f"aux_scope must be 'all' or 'encoders', got {config.aux_scope!r}")
        if config.fusion_targets not in ("C+P", "C", "P", "h"):
            raise ValueError(f"fusion_targets must be 'C+P', 'C', 'P' or 'h', got {config.fusion_targets!r}")
        if config.mlp not in ("default", "scaled"):
            raise ValueError(f"mlp must be 'default' or 'scaled', got {config.mlp!r}")
        if config.norm not in ("pre+final", "pre", "post"):
            raise ValueError(f"norm must be 'pre+final', 'pre' or 'post', got {config.norm!r}")
        use_common, use_private = "C" in config.fusion_targets, "P" in config.fusion_targets
        self.config, self.modalities, self.output_dim = config, mods, output_dim
        d_k = config.d_k
        self.encoders = nn.ModuleDict({
            m: ModalityEncoder(input_dims[m], model_dim=config.model_dim, layers=config.n_layers(m),
                               heads=config.heads, ff_mult=config.ff_mult, dropout=config.dropout,
                               d_k=d_k, pooling=config.pooling, max_len=max_len,
                               attn_dropout=config.attn_dropout, time_stride=config.time_stride,
                               norm_first=config.norm != "post", final_norm=config.norm == "pre+final")
            for m in mods})
        self.common_encoder = self.private_encoders = self.discriminator = None
        names = [f"h_{m}" for m in mods]
        if config.disentangle:
            init, drop = ("scaled", 0.0) if config.mlp == "scaled" else ("default", config.dropout)
            self.common_encoder = MLPEncoder(d_k, drop, out_bias=not config.common_centring,
                                             init=init)                                 # E_c, shared
            self.private_encoders = nn.ModuleDict({m: MLPEncoder(d_k, drop, init=init) for m in mods})
            if len(mods) > 1:
                self.discriminator = ModalityDiscriminator(d_k, config.d_disc, len(mods),
                                                           disc_normalised, disc_scale)
            names = (["C"] if use_common else []) + ([f"P_{m}" for m in mods] if use_private else [])
        self.adversary = ADVERSARIES[adversary]() if self.discriminator is not None else NoAdversary()
        self.common_token = SumOfCommon() if use_common else LeftOut()
        self.private_tokens = nn.Identity() if use_private else LeftOut()
        self.psi_names = tuple(names)
        self.centring = ModalityCentring(len(mods), d_k, batch_mean=batch_mean) \
            if (config.disentangle and config.common_centring) else NoCentring()
        self.fusion = build_fusion(config.fusion, d_k, len(names), attn_scale=config.attn_scale,
                                   dropout=config.dropout)
        self.head = nn.Sequential(nn.Linear(d_k, d_k), nn.GELU(), PackedDropout(config.dropout),
                                  nn.Linear(d_k, output_dim), *([nn.Flatten(0)] if output_dim == 1 else []))

    def stack(self, reps: dict[str, torch.Tensor]) -> torch.Tensor:
        """{m: (B, d_k)} -> (B, M, d_k) in the model's modality order."""
        return torch.stack([reps[m] for m in self.modalities], dim=1)

    def common_private(self, h: dict[str, torch.Tensor], track: bool = True
                       ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Eq. 2-3: C_m = E_c(h_m) (one shared encoder) and P_m = E_p^m(h_m), each (B, d_k); with
        the centring extension C_m minus its modality's mean (``track=False``: without updating
        the running mean)."""
        C = self.centring(self.stack({m: self.common_encoder(h[m]) for m in self.modalities}), track=track)
        private = {m: self.private_encoders[m](h[m]) for m in self.modalities}
        return {m: C[:, i] for i, m in enumerate(self.modalities)}, private

    def forward(self, features: dict[str, torch.Tensor],
                masks: dict[str, torch.Tensor] | None = None, grl_coeff: float = 1.0) -> FDMEROutput:
        """``grl_coeff``: the gradient reversal multiplies the gradient by ``-grl_coeff``."""
        masks = masks or {}
        h = {m: self.encoders[m](features[m], masks.get(m)) for m in self.modalities}   # Eq. 1, (B, d_k)
        if not self.config.disentangle:                       # Table 4's Non-Disentangled row
            return self.predict(self.stack(h), h)
        common, private = self.common_private(h)                                    # Eq. 2-3
        C, P = self.stack(common), self.stack(private)                              # (B, M, d_k)
        # What the auxiliary losses see (aux_scope): the same C_m and P_m, computed from h_m
        # cut off from the transformers ("encoders"), or C and P themselves ("all")
        if self.config.aux_scope == "encoders":
            common, private = self.common_private({m: z.detach() for m, z in h.items()}, track=False)
        logits = self.adversary(self.discriminator, self.stack(common), self.stack(private),
                                grl_coeff)                                          # Eq. 8, (B, M, M)
        tokens = torch.cat([self.common_token(C), self.private_tokens(P)], dim=1)   # (B, T, d_k)
        return self.predict(tokens, h, common, private, *logits)

    def predict(self, tokens, h, common=None, private=None, *logits) -> FDMEROutput:
        """CMAF (Eq. 12-17) over the target tokens (B, T, d_k), then the head."""
        fused, psi = self.fusion(tokens)                                            # (B, d_k), (B, T)
        return FDMEROutput(self.head(fused), self.modalities, h, common or {}, private or {},
                           psi, self.psi_names, *logits)


def build_model(config, data_widths: dict[str, int], output_dim: int, max_len: int = 512, *,
                batch_mean=None) -> FDMER:
    """FDMER from a full :class:`~fdmer_lite.config.Config` and the data's input widths; of the
    loss settings it reads only what building the adversary needs (which adversary, and whether
    the CE row asks for raw logits).

    ``batch_mean``: the batch mean the optional centring uses (``ModalityCentring``); the
    distributed trainer passes one that averages over every process's shard."""
    return FDMER(config.model, data_widths, output_dim, adversary=config.loss.adversary, max_len=max_len,
                 disc_normalised=config.loss.margin_loss != "ce", batch_mean=batch_mean)
