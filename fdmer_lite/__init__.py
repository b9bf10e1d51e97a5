"""fdmer_lite: a teaching implementation of FDMER (Yang et al., ACM MM 2022).

Feature-Disentangled Multimodal Emotion Recognition learns, for each modality m in {t, a, v},
a common representation C_m (shared across modalities) and a private one P_m, and fuses them with
cross-modal attention (CMAF). Each module's docstring names the equations it implements.
"""

__version__ = "0.1.0"
