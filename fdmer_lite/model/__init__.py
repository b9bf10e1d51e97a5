"""FDMER network: per-modality transformers, common/private encoders, discriminator, CMAF."""

from .discriminator import ModalityDiscriminator, grad_reverse
from .fdmer import FDMER, FDMEROutput, build_model
from .fusion import CMAF, build_fusion

__all__ = ["FDMER", "FDMEROutput", "build_model", "CMAF", "build_fusion", "ModalityDiscriminator",
           "grad_reverse"]
