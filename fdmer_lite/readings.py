"""Every place where this code departs from the paper's text, read from the code itself.

A **reading** is our choice where the paper is silent or its text as written does not train well
(the ``*_literal`` presets drop it); an **extension** goes beyond the paper; a **speed** device only
makes a CPU run cheaper. ``python -m fdmer_lite.readings`` prints ``docs/readings.md``: one row per
switch, with its value in every preset read from :func:`fdmer_lite.config.get_preset`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from .config import PRESETS, get_preset

RESULTS = "../benchmarks/results"
READINGS = f"{RESULTS}/readings-synthetic.md"


@dataclass(frozen=True)
class Switch:
    field: str          # "section.name" of Config
    kind: str           # "reading" | "extension" | "speed"
    paper: str          # what the paper says
    does: str           # what the switch does here
    evidence: str       # a link to the measurement of its effect, or why there is none
    literal: object     # its value in the literal presets (or a function of the config)

    def literal_value(self, config):
        return self.literal(config) if callable(self.literal) else self.literal


SWITCHES: tuple[Switch, ...] = (
    Switch("loss.con_centre", "reading",
           "Eq. 4: S_m from L2-normalised C_m (raw cosines, the only symmetric reading)",
           "True: S_m from batch-centred C_m (correlations between samples)",
           f"[raw_cosines]({READINGS})", literal=False),
    Switch("train.grl_schedule", "reading",
           "Eq. 10: the reversal layer multiplies the gradient by -1",
           '"dann": the reversal ramps from 0 to 1 as 2/(1+e^(-10p))-1 (Ganin & Lempitsky); "constant": '
           "-1 from the first step, as written",
           f"[objective game]({RESULTS}/objective-game.md); "
           f"[constant_grl]({READINGS})", literal="constant"),
    Switch("model.aux_scope", "reading",
           'Sec. 3.3: the discriminator "guide[s] the parameter learning of the common and private '
           'encoders"; the constraints "constrain the projections" into the two subspaces (Fig. 1); it '
           "does not say whether their gradients also train the Eq. 1 transformers",
           '"encoders": L_ami, L_ams, L_con and L_dis train the Eq. 2-3 encoders and the discriminator, '
           'and stop at Z_m; the task loss trains everything. "all": every loss trains everything below it',
           f"[objective game]({RESULTS}/objective-game.md)", literal="all"),
    Switch("loss.con_norm", "reading",
           "Eq. 5: the squared Frobenius norm of S_m1 - S_m2, n x n matrices of one batch (a sum over n^2 "
           "entries; Eq. 6 divides its n x n trace by (n-1)^2, Eq. 5 says nothing of n)",
           '"entry": Eq. 5 divided by n^2, the mean over the entries, so that gamma L_con does not grow '
           'with the square of the batch size; "sample": divided by n; "sum": as written',
           f"[objective game]({RESULTS}/objective-game.md)", literal="sum"),
    Switch("model.attn_scale", "reading",
           "Eq. 12: softmax(G_ta Q_so^T), no scaling",
           "True: the scores are divided by sqrt(d_k)",
           f"[no_attn_scale]({READINGS})", literal=False),
    Switch("model.norm", "reading",
           'Sec. 3.2: "residual connections ... followed by layer normalization" (post-norm); nothing of '
           "a final LayerNorm (a post-norm layer ends with one anyway)",
           '"pre+final": LayerNorm before each sub-layer (pre-norm) and one more at the end of the stack, '
           'which gives every time step the same size before the pooling; "pre": without that last one '
           "(the stack's output is the residual stream itself); "
           '"post": as written',
           f"[post_norm]({READINGS}); [task family]({RESULTS}/task-family.md)", literal="post"),
    Switch("model.model_dim", "reading",
           "Eq. 1: the transformers run at the input width d_m (300/74/47)",
           "a number: project each modality to that width first; None: the input width",
           "not measured yet (`benchmarks/readings.py --rows input_width`)", literal=None),
    Switch("train.grad_clip", "reading",
           "nothing (plain Adam)",
           "the largest total gradient norm; None: no clipping",
           f"[no_clip]({READINGS})", literal=None),
    Switch("train.patience", "reading",
           '"all the hyper-parameters are determined via the validation set"',
           "stop after this many epochs without a better validation score (`train.early_stop`); the best "
           "epoch is kept either way",
           "not measured yet (`benchmarks/readings.py --rows "
           "no_patience`)", literal=lambda c: c.train.epochs),
    Switch("train.early_stop", "reading",
           '"all the hyper-parameters are determined via the validation set" (on which number, it does '
           "not say)",
           'what early stopping and the kept epoch follow: "task_loss" (the validation task loss), "mae" '
           '(the validation MAE, regression only) or "auto" (the MAE on regression, the task loss on '
           "classification)",
           f"[task family, Recipe]({RESULTS}/task-family.md)", literal="task_loss"),
    Switch("train.min_steps", "reading",
           "Sec. 4.2: epochs per data set, the most for the smallest (120 on MOSI)",
           "a floor on the optimiser steps of a run: when the epochs give fewer, epochs and patience are "
           "stretched by one factor (`train.budget`); 0: off",
           f"[task family, Recipe]({RESULTS}/task-family.md)", literal=0),
    Switch("train.amp", "reading",
           "nothing (fp32)",
           "float16 autocast with a gradient scaler, on CUDA only",
           "CUDA only: `benchmarks/cuda_check.py`", literal=False),
    Switch("model.pooling", "reading",
           "Sec. 3.2: fully connected layers make one d_k vector (no pooling named)",
           '"mean" over the valid steps, "last" step, or "attention" pooling',
           "a choice, not measured", literal="mean"),
    Switch("model.dropout", "reading",
           "nothing; Sec. 3.2 refers to Vaswani et al. (dropout 0.1)",
           "dropout after attention, feed-forward, the encoders and the head",
           f"[task family, the paper-sized preset]({RESULTS}/task-family.md); "
           f"[real data]({RESULTS}/real-mosi-text-audio.md)", literal=0.1),
    Switch("train.weight_decay", "reading",
           "Adam, nothing of weight decay",
           "Adam's L2 weight decay",
           f"[task family, the paper-sized preset]({RESULTS}/task-family.md); "
           f"[real data]({RESULTS}/real-mosi-text-audio.md)", literal=0.0),
    Switch("model.mlp", "reading",
           "Eq. 2-3: two-layer perceptrons, no initialisation or dropout named",
           '"scaled": He-normal first layer, LeCun-normal second, zero biases (the output keeps about the '
           "input's scale) and no dropout between the layers; \"default\": PyTorch's initialisation, "
           "which divides the spread by sqrt(3) per layer, and `model.dropout`",
           f"[disentangle diagnosis]({RESULTS}/disentangle-diagnosis.md)", literal="default"),
    Switch("model.common_centring", "extension",
           "nothing: no term of Eq. 18 equalises the modalities' means",
           "each C_m minus its modality's mean (batch mean in training, running mean in eval)",
           f"[centring]({READINGS})", literal=False),
    Switch("loss.adversary", "extension",
           'Eq. 10: gradient reversal ("grl")',
           '"confusion": D learns on detached C_m; the encoders push D(C_m) towards uniform',
           "[demo_settings.md](../benchmarks/demo_settings.md) (an earlier model)", literal="grl"),
    Switch("loss.align_weight", "extension",
           "nothing",
           'weight of a whitened alignment of C_t, C_a, C_v, on when `loss.aux_losses` lists "align" '
           '(each sample) or "align_mean" (the modalities\' means); 0: off',
           "off in every preset; not measured with today's code", literal=0.0),
    Switch("train.lr_schedule", "speed",
           "Adam at one initial rate (Sec. 4.2)",
           '"cosine": decay to 0 by the last epoch (a short CPU budget ends where the weights have '
           'settled); "constant": the paper',
           f"[objective game]({RESULTS}/objective-game.md); [cosine_lr]({READINGS})", literal="constant"),
    Switch("model.time_stride", "speed",
           "nothing: every time step",
           "average windows of this many steps before Eq. 1",
           "[demo_settings.md](../benchmarks/demo_settings.md) (an earlier model)", literal=1),
    Switch("model.attn_dropout", "speed",
           "nothing (Vaswani et al. drop attention weights at the dropout rate)",
           "dropout on the attention weights (None: the same as dropout); 0 lets the fused attention "
           "kernel run on the CPU",
           "a speed choice, not measured", literal=None),
)


def value(config, field: str):
    section, name = field.split(".")
    return getattr(getattr(config, section), name)


def _fmt(v) -> str:
    if v is None:
        return "None"
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, str):
        return f'"{v}"'
    return str(v)


def table_markdown(presets: tuple[str, ...] | None = None) -> str:
    """The table of readings and extensions, one row per switch, one column per preset."""
    presets = presets or tuple(PRESETS)
    configs = {p: get_preset(p) for p in presets}
    head = ["switch", "kind", "the paper says", "what the switch does", *[f"`{p}`" for p in presets],
            "measured"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in SWITCHES:
        cells = [f"`{s.field}`", s.kind, s.paper, s.does,
                 *[_fmt(value(configs[p], s.field)) for p in presets], s.evidence]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def document() -> str:
    """The whole of ``docs/readings.md``."""
    return "\n".join([
        "# Readings and extensions",
        "",
        "Generated by `python -m fdmer_lite.readings > docs/readings.md` from `fdmer_lite/readings.py` "
        "and the presets in `fdmer_lite/config.py`; do not edit by hand.",
        "",
        "A *reading* is our choice where the paper is silent, or where its text as written does not train "
        "well; the `*_literal` presets drop every reading. An *extension* goes beyond the paper and is off "
        "in every preset. A *speed* device only makes a CPU run cheaper.",
        "Where the paper is silent the literal presets still have to choose: they pool with a masked mean, "
        "use at most 8 heads, dropout 0.1 and a 4x feed-forward (the transformer of Vaswani et al. that "
        "Section 3.2 refers to), and keep the epoch that was best on validation without stopping early.",
        "",
        table_markdown(),
        "",
    ])


if __name__ == "__main__":
    sys.stdout.write(document())
