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

from ..config import MODALITIES, ModelConfig
from .discriminator import ModalityDiscriminator, grad_reverse
from .encoders import MLPEncoder, ModalityCentring, ModalityEncoder
from .fusion import build_fusion
from .layers import Dropout


@dataclass
class FDMEROutput:
    prediction: torch.Tensor                   # (B,) regression, (B, n_classes) logits
    modalities: str                            # e.g. "tav": the order of every M axis below
    features: dict[str, torch.Tensor]          # h_m (B, d_k), Eq. 1
    common: dict[str, torch.Tensor]            # C_m (B, d_k), Eq. 2 (empty if not disentangled)
    private: dict[str, torch.Tensor]           # P_m (B, d_k), Eq. 3
    psi: torch.Tensor                          # (B, T) fusion weights over the targets, Eq. 16
    psi_names: tuple[str, ...]                 # e.g. ("C", "P_t", "P_a", "P_v")
    # Discriminator cosines, (B, M, M): [b, i, j] = cos(theta_j) for the representation of
    # modality i of sample b. The true class of row i is i. None with a single modality.
    # With ``disc_normalised`` False they are the raw logits W_D^T F(h) (the CE ablation).
    disc_cos_common: torch.Tensor | None = None        # what the discriminator learns from on C
    disc_cos_private: torch.Tensor | None = None
    disc_cos_common_frozen: torch.Tensor | None = None  # confusion adversary only
    disc_scale: float = 72.0                 # alpha of Eq. 9: softmax(alpha cos) is D's probability
    disc_normalised: bool = True             # False: the cosines above are raw logits

    def _prob(self, cos):
        if cos is None:
            return None
        scale = self.disc_scale if self.disc_normalised else 1.0
        return torch.softmax(scale * cos.detach().float(), dim=-1)

    @property
    def disc_prob_common(self) -> torch.Tensor | None:
        """Discriminator probabilities softmax(alpha cos) on C_m, (B, M, M) (no margin: inference;
        softmax of the raw logits when the discriminator does not normalise)."""
        return self._prob(self.disc_cos_common)

    @property
    def disc_prob_private(self) -> torch.Tensor | None:
        return self._prob(self.disc_cos_private)


class FDMER(nn.Module):
    """FDMER for the modalities in ``config.modalities`` with input widths from the data.

    ``adversary``: "grl" puts a gradient reversal layer between C_m and the discriminator (the
    paper); "confusion" lets the discriminator learn on detached C_m and additionally returns the
    cosines of a frozen discriminator on C_m, for a loss that pushes them towards uniform.
    ``disc_normalised=False``: the discriminator gives raw logits (Table 4's CE row).
    """

    def __init__(self, config: ModelConfig, input_dims: dict[str, int], output_dim: int = 1, *,
                 adversary: str = "grl", disc_scale: float = 72.0, max_len: int = 512,
                 disc_normalised: bool = True, batch_mean=None):
        super().__init__()
        if adversary not in ("grl", "confusion"):
            raise ValueError(f"adversary must be 'grl' or 'confusion', got {adversary!r}")
        mods = "".join(m for m in MODALITIES if m in config.modalities)
        missing = [m for m in mods if m not in input_dims]
        if not mods or missing:
            raise ValueError(f"model modalities {config.modalities!r} need input widths; "
                             f"the data provides {sorted(input_dims)}")
        if config.aux_scope not in ("all", "encoders"):
            raise ValueError(f"aux_scope must be 'all' or 'encoders', got {config.aux_scope!r}")
        if not (config.use_common or config.use_private) and config.disentangle:
            raise ValueError("use_common and use_private cannot both be False")
        self.config, self.modalities, self.output_dim = config, mods, output_dim
        self.adversary, self.disc_scale, self.disc_normalised = adversary, disc_scale, disc_normalised
        d_k = config.d_k
        self.encoders = nn.ModuleDict({
            m: ModalityEncoder(input_dims[m], model_dim=config.model_dim, layers=config.layers(m),
                               heads=config.heads, ff_mult=config.ff_mult, dropout=config.dropout,
                               d_k=d_k, pooling=config.pooling, max_len=max_len,
                               attn_dropout=config.attn_dropout, time_stride=config.time_stride,
                               norm_first=config.norm_first, final_norm=config.final_norm)
            for m in mods})
        if config.disentangle:
            init = config.mlp_init
            drop = config.dropout if config.mlp_dropout is None else config.mlp_dropout
            self.common_encoder = MLPEncoder(d_k, drop, out_bias=not config.common_centring,
                                             init=init)                                 # E_c, shared
            self.private_encoders = nn.ModuleDict({m: MLPEncoder(d_k, drop, init=init) for m in mods})
            self.discriminator = ModalityDiscriminator(d_k, config.d_disc, len(mods), disc_normalised) \
                if len(mods) > 1 else None
            names = (["C"] if config.use_common else []) + ([f"P_{m}" for m in mods] if config.use_private else [])
        else:
            self.common_encoder = self.private_encoders = self.discriminator = None
            names = [f"h_{m}" for m in mods]
        self.psi_names = tuple(names)
        self.centring = ModalityCentring(len(mods), d_k, batch_mean=batch_mean) \
            if (config.disentangle and config.common_centring) else None
        self.fusion = build_fusion(config.fusion, d_k, len(names), phase1=config.cmaf_phase1,
                                   phase2=config.cmaf_phase2, attn_scale=config.attn_scale,
                                   dropout=config.dropout)
        self.head = nn.Sequential(nn.Linear(d_k, d_k), nn.GELU(), Dropout(config.dropout),
                                  nn.Linear(d_k, output_dim))

    def common_private(self, h: dict[str, torch.Tensor], track: bool = True
                       ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Eq. 2-3: C_m = E_c(h_m) (one shared encoder) and P_m = E_p^m(h_m), each (B, d_k); with
        the centring extension C_m minus its modality's mean (``track=False``: without updating
        the running mean)."""
        common = {m: self.common_encoder(h[m]) for m in self.modalities}
        private = {m: self.private_encoders[m](h[m]) for m in self.modalities}
        if self.centring is not None:                                                       # extension
            C = self.centring(torch.stack([common[m] for m in self.modalities], dim=1), track=track)
            common = {m: C[:, i] for i, m in enumerate(self.modalities)}
        return common, private

    def forward(self, features: dict[str, torch.Tensor],
                masks: dict[str, torch.Tensor] | None = None, grl_coeff: float = 1.0) -> FDMEROutput:
        """``grl_coeff``: the gradient reversal multiplies the gradient by ``-grl_coeff``."""
        masks = masks or {}
        h = {m: self.encoders[m](features[m], masks.get(m)) for m in self.modalities}   # (B, d_k)
        common, private = {}, {}
        cos_c = cos_p = cos_c_frozen = None
        if self.config.disentangle:
            stack = lambda reps: torch.stack([reps[m] for m in self.modalities], dim=1)  # noqa: E731  (B, M, d_k)
            common, private = self.common_private(h)
            C, P = stack(common), stack(private)                                    # for the fusion
            # What the auxiliary losses see (aux_scope): the same C_m and P_m, computed from h_m
            # cut off from the transformers ("encoders"), or C and P themselves ("all")
            if self.config.aux_scope == "encoders":
                common, private = self.common_private({m: z.detach() for m, z in h.items()}, track=False)
            Ca, Pa = stack(common), stack(private)
            if self.discriminator is not None:
                if self.adversary == "grl":
                    cos_c = self.discriminator(grad_reverse(Ca, grl_coeff))            # (B, M, M)
                else:
                    cos_c = self.discriminator(Ca.detach())
                    cos_c_frozen = self.discriminator(Ca, frozen=True)
                cos_p = self.discriminator(Pa)                                      # (B, M, M)
            tokens = ([C.sum(dim=1, keepdim=True)] if self.config.use_common else []) \
                + ([P] if self.config.use_private else [])
            tokens = torch.cat(tokens, dim=1)                                       # (B, T, d_k)
        else:
            tokens = torch.stack([h[m] for m in self.modalities], dim=1)            # (B, M, d_k)
        fused, psi = self.fusion(tokens)                                            # (B, d_k), (B, T)
        pred = self.head(fused)                                                     # (B, out)
        if self.output_dim == 1:
            pred = pred.squeeze(-1)                                                 # (B,)
        return FDMEROutput(prediction=pred, modalities=self.modalities, features=h, common=common,
                           private=private, psi=psi, psi_names=self.psi_names,
                           disc_cos_common=cos_c, disc_cos_private=cos_p,
                           disc_cos_common_frozen=cos_c_frozen, disc_scale=self.disc_scale,
                           disc_normalised=self.disc_normalised)


def build_model(config, data_widths: dict[str, int], output_dim: int, max_len: int = 512, *,
                batch_mean=None) -> FDMER:
    """FDMER from a full :class:`~fdmer_lite.config.Config` and the data's input widths.

    ``batch_mean``: the batch mean the optional centring uses (``ModalityCentring``); the
    distributed trainer passes one that averages over every process's shard."""
    return FDMER(config.model, data_widths, output_dim, adversary=config.loss.adversary,
                 disc_scale=config.loss.scale, max_len=max_len,
                 disc_normalised=config.loss.margin_loss != "ce", batch_mean=batch_mean)
