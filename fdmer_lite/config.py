"""Configuration: three small dataclasses and the named presets.

FDMER (Yang et al., ACM MM 2022), Section 4.2 gives the hyper-parameters of the ``mosi``,
``mosei`` and ``ur_funny`` presets, which add our readings where the text is silent or does not
train; the ``*_literal`` presets run the text as written. ``synthetic`` is the CPU-sized default
used by the demo and the notebooks; ``fast`` is a tiny configuration for tests and for
``FDMER_LITE_FAST=1``. ``fdmer_lite.readings`` tabulates every reading and extension.

A preset sets model sizes and training hyper-parameters only. Input widths and sequence lengths
always come from the data, so any preset runs on any data set.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

MODALITIES = ("t", "a", "v")


THREADS_ENV = "FDMER_LITE_THREADS"


def default_thread_count() -> int:
    """Torch's intra-op threads when ``$FDMER_LITE_THREADS`` is unset: one.

    On this package's CPU-sized models a second thread was measured slower than one, quiet and
    more so on a busy machine, where a thread that loses its core holds up the other at every
    synchronisation (``benchmarks/threads.py``; ``benchmarks/results/threads.md``).
    This function is the one place that chooses the default.
    """
    return 1


def thread_count() -> int:
    """``$FDMER_LITE_THREADS`` if set (a whole number >= 1; anything else is a ValueError naming
    the variable), else :func:`default_thread_count`. ``experiments.runs.set_threads`` applies
    it when a run or an entry point starts; nothing is set at import."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if not value:
        return default_thread_count()
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"${THREADS_ENV}: expected a whole number >= 1, got {value!r}")
    return int(value)


def fast_mode() -> bool:
    """True when ``FDMER_LITE_FAST`` is set to a true value (CI and quick notebook runs)."""
    return os.environ.get("FDMER_LITE_FAST", "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class ModelConfig:
    """Sizes and structural choices of the network (Eq. 1-3, 8, 12-17).

    ``model_dim`` is the width the per-modality transformers run at. The paper runs them at the
    input width d_m (Eq. 1: Z_m in R^{L_m x d_m}); ``model_dim=None`` does that, with the largest
    head count not above ``heads`` that divides d_m (47 is prime: one head). A number projects
    every modality to that width first (our reading in the paper presets: widths such as 47 and
    5 have no sensible head count). ``fdmer_lite.readings`` lists every switch of this kind.
    """

    modalities: str = "tav"          # which streams the model uses: "tav", "ta", "tv", "av", ...
    model_dim: int | None = 64       # transformer width after an input projection; None: the input width, no projection
    layers_t: int = 5                # n_t in Eq. 1
    layers_a: int = 4                # n_a
    layers_v: int = 4                # n_v
    heads: int = 4                   # attention heads per transformer layer
    ff_mult: int = 4                 # feed-forward width = ff_mult * model_dim
    dropout: float = 0.1             # dropout in the transformers, the MLPs of Eq. 2-3, the fusion and the head
    attn_dropout: float | None = None  # dropout on the attention weights; None: the same as dropout
    pooling: str = "mean"            # sequence -> vector: "mean" | "last" | "attention"
    norm_first: bool = True          # pre-norm transformer layers (our reading); False: post-norm, as Section 3.2 writes
    final_norm: bool = True          # a pre-norm stack ends with a LayerNorm of its own (moot with post-norm); the presets say False
    time_stride: int = 1             # average windows of this many time steps before Eq. 1 (1: none)
    d_k: int = 256                   # common / private width (Eq. 2-3)
    d_disc: int = 128                # d, the discriminator feature width (Eq. 8)
    fusion: str = "cmaf"             # "cmaf" | "concat" | "add" | "mult"
    cmaf_phase1: bool = True         # cross-modal attention (Eq. 12-14)
    cmaf_phase2: bool = True         # attention over targets (Eq. 15-17)
    attn_scale: bool = True          # divide phase-1 scores by sqrt(d_k)
    use_common: bool = True          # feed C to the fusion
    use_private: bool = True         # feed P_t, P_a, P_v to the fusion
    disentangle: bool = True         # False: fuse the transformer features h_m directly
    mlp_init: str = "default"        # Eq. 2-3 MLPs: "default" (PyTorch's) | "scaled" (scale-preserving, zero biases; encoders.scaled_init_)
    mlp_dropout: float | None = None  # dropout inside the Eq. 2-3 MLPs; None: the same as dropout
    common_centring: bool = False    # extension beyond the paper: C_m minus its modality's mean (encoders.ModalityCentring)
    aux_scope: str = "all"           # what the auxiliary losses (Eq. 5, 7, 10, 11) train: "all" below them | "encoders" (Eq. 2-3 and D, not Eq. 1)

    def layers(self, modality: str) -> int:
        return {"t": self.layers_t, "a": self.layers_a, "v": self.layers_v}[modality]


@dataclass
class LossConfig:
    """Weights and shape of the objective (Eq. 4-11, 18)."""

    beta: float = 2e-2               # weight of L_ami + L_ams
    gamma: float = 2e-2              # weight of L_con + L_dis
    scale: float = 72.0              # alpha in Eq. 9
    margin: float = 0.5              # tau in Eq. 9 (radians)
    adversary: str = "grl"           # "grl" (the paper) | "confusion" (extension: D learns on detached C_m, encoders push D(C_m) to uniform)
    margin_loss: str = "angular"     # "angular" (Eq. 9) | "ce" (Table 4: softmax CE on raw W_D^T F(h)) | "cosine_ce" (CE on alpha cos, no margin)
    use_ami: bool = True             # L_ami, Eq. 10 (Table 4: w/o L_ami + L_ams turns both off)
    use_ams: bool = True             # L_ams, Eq. 11
    use_con: bool = True             # L_con, Eq. 4-5
    con_centre: bool = True          # Eq. 4 on batch-centred C_m (our reading; False = raw cosines, see losses.similarity_matrix)
    con_norm: str = "sum"            # Eq. 5's ||S_m1 - S_m2||_F^2: "sum" over the n x n entries (as written) | "sample" (/ n) | "entry" (/ n^2)
    use_dis: bool = True             # L_dis, Eq. 6-7
    align_weight: float = 0.0        # extension beyond the paper: alignment of the C_m (losses.alignment_loss)
    align_form: str = "sample"       # "sample" (each sample's C_t, C_a, C_v) | "mean" (the modalities' average C)


@dataclass
class TrainConfig:
    """How a run is trained (Section 4.2: Adam, batch size and epochs per data set)."""

    batch_size: int = 64             # samples per optimiser step
    epochs: int = 30                 # at most; early stopping may end sooner
    lr: float = 1e-3                 # Adam's learning rate
    weight_decay: float = 0.0        # Adam's L2 weight decay
    lr_schedule: str = "constant"    # "constant" (the paper's plain Adam) | "cosine" (decay to 0 by the last epoch)
    warmup_epochs: float = 0.0       # linear warm-up of the learning rate from 0 over this many epochs
    patience: int = 10               # early stopping after this many epochs without a better validation score (early_stop)
    min_steps: int = 0               # at least this many optimiser steps: on a small training split, epochs and patience are stretched by one factor (train.budget; 0: off)
    early_stop: str = "task_loss"    # what early stopping and the kept epoch follow on validation: "task_loss" | "mae" (regression only) | "auto" (mae on regression, else task_loss)
    grad_clip: float | None = 1.0    # max gradient norm; None disables clipping
    grl_schedule: str = "dann"       # strength of the gradient reversal over training: "dann" ramp | "constant" (train.reversal_coefficient)
    seed: int = 0                    # weights, dropout and batch order
    deterministic: bool = False      # ask torch for deterministic kernels (slower on CUDA)
    device: str = "auto"             # "auto" (cuda, then mps, then cpu) | "cpu" | "cuda" | "mps"
    amp: bool = True                 # mixed precision, used on CUDA only
    num_workers: int = 0             # DataLoader worker processes (0: load in the training process)
    progress: bool = True            # show a progress bar


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)   # the network
    loss: LossConfig = field(default_factory=LossConfig)      # the objective, Eq. 18
    train: TrainConfig = field(default_factory=TrainConfig)   # the optimiser and the loop
    name: str = "custom"                                      # the preset it came from

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        return cls(
            model=ModelConfig(**d.get("model", {})),
            loss=LossConfig(**d.get("loss", {})),
            train=TrainConfig(**d.get("train", {})),
            name=d.get("name", "custom"),
        )

    def replace(self, **sections) -> "Config":
        """Copy with fields changed, e.g. ``cfg.replace(loss={"beta": 0.0})``."""
        new = Config.from_dict(self.to_dict())
        for section, values in sections.items():
            if section == "name":
                new.name = values
                continue
            part = getattr(new, section)
            for key, value in values.items():
                if not hasattr(part, key):
                    raise KeyError(f"{section} has no field {key!r}")
                setattr(part, key, value)
        return new


def _paper(batch, epochs, lr, beta, gamma, name):
    # Section 4.2: d_k = 256, d = 128, tau = 0.5, alpha = 72; encoders with 5/4/4 layers. With our
    # readings where the paper is silent or does not train (fdmer_lite.readings lists them).
    # Dropout 0.3, weight decay 1e-3 and early stopping on the validation MAE: at these sizes
    # (about 14 million weights) the preset memorised a MOSI-sized training set (1,284 samples)
    # or never left the training mean; with them it learned the task family's MOSI-sized tasks
    # where the plain baseline learns them (benchmarks/results/task-family.md, "The paper-sized
    # preset").
    return Config(
        model=ModelConfig(model_dim=256, heads=8, ff_mult=4, d_k=256, d_disc=128, dropout=0.3,
                          final_norm=False),
        loss=LossConfig(beta=beta, gamma=gamma, scale=72.0, margin=0.5),
        train=TrainConfig(batch_size=batch, epochs=epochs, lr=lr, weight_decay=1e-3, patience=20,
                          early_stop="auto"),
        name=name,
    )


def _literal(batch, epochs, lr, beta, gamma, name):
    # The same Section 4.2 numbers and, wherever the text is unambiguous, the text itself:
    # transformers at the input width, post-norm layers, raw cosines in Eq. 4, no 1/sqrt(d_k) in
    # Eq. 12, gradient reversal at a constant -1, plain Adam at one rate, no clipping, no early
    # stopping (the best-on-validation epoch is kept: "determined via the validation set"), fp32.
    # Where the text is silent: masked mean pooling, 8 heads at most, dropout 0.1 and a 4x
    # feed-forward (the transformer of Vaswani et al. that Section 3.2 refers to).
    return Config(
        model=ModelConfig(model_dim=None, heads=8, ff_mult=4, d_k=256, d_disc=128, dropout=0.1,
                          norm_first=False, attn_scale=False),
        loss=LossConfig(beta=beta, gamma=gamma, scale=72.0, margin=0.5, con_centre=False),
        train=TrainConfig(batch_size=batch, epochs=epochs, lr=lr, patience=epochs, grad_clip=None,
                          grl_schedule="constant", amp=False),
        name=name,
    )


def _synthetic():
    # CPU-sized: one transformer layer per modality at width 32, d_k 64, trained for a two-minute
    # demo on two cores. The objective (benchmarks/results/objective-game.md): the auxiliary
    # losses train the Eq. 2-3 encoders and the discriminator, not the transformers (aux_scope);
    # Eq. 5 is a mean over the n x n entries (con_norm); the reversal is -1 from the first step, as
    # written (grl_schedule). Speed devices, labelled in fdmer_lite.readings: windows of ten time
    # steps averaged before Eq. 1 (time_stride), no attention-weight dropout (the fused attention
    # kernel), and a learning rate that decays to zero over the 24 epochs (lr_schedule), so the
    # short budget ends where the weights have settled. A small training split gets at least
    # 1,260 steps (min_steps; 60 epochs of a MOSI-sized set). The Eq. 2-3 MLPs keep their input's
    # scale and have no dropout, early stopping follows the validation MAE, and the pre-norm
    # stack ends without a LayerNorm of its own (benchmarks/results/task-family.md).
    return Config(
        model=ModelConfig(model_dim=32, layers_t=1, layers_a=1, layers_v=1, heads=2, ff_mult=2,
                          d_k=64, d_disc=32, dropout=0.1, attn_dropout=0.0, time_stride=10,
                          mlp_init="scaled", mlp_dropout=0.0, final_norm=False, aux_scope="encoders"),
        loss=LossConfig(beta=2e-2, gamma=2e-2, con_norm="entry"),
        train=TrainConfig(batch_size=64, epochs=24, lr=1e-3, lr_schedule="cosine", patience=20,
                          min_steps=1260, early_stop="auto", grl_schedule="constant"),
        name="synthetic",
    )


def _fast():
    return Config(
        model=ModelConfig(model_dim=16, layers_t=1, layers_a=1, layers_v=1, heads=2, ff_mult=2,
                          d_k=16, d_disc=8, dropout=0.0, final_norm=False, aux_scope="encoders"),
        loss=LossConfig(beta=2e-2, gamma=2e-2, con_norm="entry"),
        train=TrainConfig(batch_size=32, epochs=3, lr=2e-3, patience=3, early_stop="auto", progress=False,
                          grl_schedule="constant"),
        name="fast",
    )


def _mosi_text_audio():
    # The real CMU-MOSI text + audio set (1,284 training utterances), chosen on its validation
    # split over three seeds (the figures are in benchmarks/results/real-mosi-text-audio.md): a small model with strong dropout and weight
    # decay, because the larger one overfitted within a few epochs. Attention pooling weighs the
    # few sentiment words; the validation loss of 229 utterances is noisy, so early stopping
    # waits 20 epochs.
    # These settings were chosen with a LayerNorm after each transformer stack, which they keep
    # (final_norm's default): they have not been measured without it. The objective's readings
    # are the synthetic preset's (aux_scope, con_norm, a constant reversal).
    return Config(
        model=ModelConfig(modalities="ta", model_dim=32, layers_t=1, layers_a=1, layers_v=1, heads=2,
                          ff_mult=2, d_k=32, d_disc=16, dropout=0.5, pooling="attention", aux_scope="encoders"),
        loss=LossConfig(beta=2e-2, gamma=2e-2, con_norm="entry"),
        train=TrainConfig(batch_size=16, epochs=60, lr=5e-4, weight_decay=1e-3, patience=20,
                          grl_schedule="constant"),
        name="mosi_text_audio",
    )


def _mosi_text_audio_minilm():
    # The same data with all-MiniLM-L6-v2 token states (384-d) as the text input
    # (``--text-features minilm``), chosen on the validation split (benchmarks/results/
    # real-mosi-text-audio.md, 2026-12-01): the ``mosi_text_audio`` settings, with early stopping
    # after 10 epochs instead of 20 (the best epochs were 7-10, and a 20-epoch patience found no
    # later one). Dropout 0.3 tied with 0.5 on validation over three seeds; lr 2e-4, width 64 and
    # mean pooling were worse on validation (seed 0).
    cfg = _mosi_text_audio()
    cfg.train.patience = 10
    cfg.name = "mosi_text_audio_minilm"
    return cfg


PRESETS = {
    "mosi": lambda: _paper(64, 120, 1e-3, 2e-2, 2e-2, "mosi"),
    "mosei": lambda: _paper(16, 100, 1e-3, 3e-2, 4e-2, "mosei"),
    "ur_funny": lambda: _paper(32, 60, 2e-3, 2e-2, 3e-2, "ur_funny"),
    "mosi_literal": lambda: _literal(64, 120, 1e-3, 2e-2, 2e-2, "mosi_literal"),
    "mosei_literal": lambda: _literal(16, 100, 1e-3, 3e-2, 4e-2, "mosei_literal"),
    "ur_funny_literal": lambda: _literal(32, 60, 2e-3, 2e-2, 3e-2, "ur_funny_literal"),
    "synthetic": _synthetic,
    "fast": _fast,
    "mosi_text_audio": _mosi_text_audio,
    "mosi_text_audio_minilm": _mosi_text_audio_minilm,
}


def get_preset(name: str) -> Config:
    """A fresh copy of a named preset: ``mosi``, ``mosei``, ``ur_funny`` (Section 4.2 with our
    readings), ``mosi_literal``, ``mosei_literal``, ``ur_funny_literal`` (the paper's text),
    ``synthetic`` (the CPU default), ``fast`` (tests), ``mosi_text_audio`` and
    ``mosi_text_audio_minilm`` (real MOSI t + a with GloVe or MiniLM text)."""
    key = name.lower().replace("-", "_")
    if key not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {sorted(PRESETS)}")
    return PRESETS[key]()


def default_preset() -> str:
    """``fast`` under ``FDMER_LITE_FAST=1``, otherwise ``synthetic``."""
    return "fast" if fast_mode() else "synthetic"
