"""Runs that ship with the package, so the demo can show a contrast without training it.

The paper's Figure 2 contrasts the common representations learnt with and without its losses
(beta = gamma = 0). The measures that show that contrast on the known-factor benchmark are the
shared factor's R^2 in C (``common_factor_r2``), the discriminator's probability of the true
modality on C_m (``disc_prob_common``) and a fresh linear probe (``common_modality_acc``), the
last most clearly at gamma = 0, where gradient reversal acts without the constraints. Training
those comparison runs would triple the demo's time, so their ``config.json`` and
``metrics.json`` ship in ``fdmer_lite/shipped_runs/<name>/``.

A shipped run is used only while its configuration and its data fingerprint are exactly those
the current code would train; otherwise :func:`load_contrast` returns None and the caller says
so. ``python benchmarks/ship_runs.py`` regenerates them all, and a test fails when one no
longer matches the code.
"""

from __future__ import annotations

import json
from pathlib import Path

from .config import Config
from .scores import SCORES

SHIPPED_DIR = Path(__file__).resolve().parent / "shipped_runs"

#: name -> (change to the demo's configuration, what it is in words)
CONTRASTS: dict[str, tuple[dict, str]] = {
    "losses_off": ({"loss": {"beta": 0.0, "gamma": 0.0}}, "beta = gamma = 0 (no paper losses)"),
    "gamma0": ({"loss": {"gamma": 0.0}}, "gamma = 0 (adversary, no constraints)"),
}

#: the scores the contrast compares (names: scores.SCORES; what each should show: contrast_verdict)
CONTRAST_KEYS = ("common_factor_r2", "disc_prob_common", "common_modality_acc")


def contrast_config(base: Config, name: str) -> Config:
    """The configuration of contrast ``name`` for a demo trained with ``base``."""
    change, _ = CONTRASTS[name]
    return base.replace(**change).replace(train={"progress": False})


def comparable(config: Config) -> dict:
    """What must match for a shipped run to stand for a new one (the device and the progress
    bar do not change what is learnt)."""
    d = config.to_dict()
    d["train"] = {k: v for k, v in d["train"].items() if k not in ("device", "progress", "num_workers")}
    return d


def load_contrast(name: str, config: Config, fingerprint: dict, folder: Path | None = None) -> dict | None:
    """The shipped metrics of ``name`` if it was trained with ``config`` on data with
    ``fingerprint`` (``experiments.runs.data_fingerprint``), else None."""
    folder = (folder or SHIPPED_DIR) / name
    try:
        record = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    try:
        shipped = Config.from_dict(record["config"])
    except (KeyError, TypeError):                       # a field this code no longer has
        return None
    if comparable(shipped) != comparable(config):
        return None
    if record.get("fingerprint") != fingerprint:
        return None
    return metrics


def contrast_rows(this_run: dict, contrasts: dict[str, dict | None]) -> list[tuple[str, dict | None]]:
    """Rows of the contrast table: this run first, then each contrast (None where no shipped
    run matches)."""
    return [("this run (beta, gamma of the preset)", this_run)] + \
        [(CONTRASTS[name][1], metrics) for name, metrics in contrasts.items()]


def contrast_markdown(rows: list[tuple[str, dict | None]]) -> str:
    head = "| run | " + " | ".join(SCORES[k].name for k in CONTRAST_KEYS) + " |"
    lines = [head, "|" + "---|" * (1 + len(CONTRAST_KEYS))]
    for name, m in rows:
        if m is None:
            cells = ["no shipped run matches this code"] + [""] * (len(CONTRAST_KEYS) - 1)
        else:
            cells = [f"{m[k]:.3f}" if m.get(k) is not None else "-" for k in CONTRAST_KEYS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def contrast_verdict(this_run: dict, contrasts: dict[str, dict | None]) -> list[str]:
    """One line per finding, each with its evidence, computed from the numbers."""
    lines = []
    off, g0 = contrasts.get("losses_off"), contrasts.get("gamma0")
    r2 = this_run.get("common_factor_r2")
    if off is not None and r2 is not None and off.get("common_factor_r2") is not None:
        more = r2 > off["common_factor_r2"]
        lines.append(f"With the paper's losses C holds {'more' if more else 'no more'} of the shared factor "
                     f"(R^2 {r2:.3f} against {off['common_factor_r2']:.3f} at beta = gamma = 0).")
    d = this_run.get("disc_prob_common")
    if g0 is not None and d is not None and g0.get("disc_prob_common") is not None:
        lines.append(f"Without gamma the discriminator's p(true modality | C_m) is {g0['disc_prob_common']:.3f} "
                     f"against {d:.3f} with both losses (1/3 is a confused discriminator, near 0 a "
                     f"confidently wrong one).")
    probe = this_run.get("common_modality_acc")
    if g0 is not None and probe is not None and g0.get("common_modality_acc") is not None:
        higher = g0["common_modality_acc"] > probe
        lines.append(f"Without gamma the linear probe reads the modality from C_m "
                     f"{'more' if higher else 'no more'} easily ({g0['common_modality_acc']:.3f} "
                     f"against {probe:.3f} with both losses; chance is 1/3).")
    if not lines:
        lines.append("No shipped comparison run matches this configuration and data, so there is "
                     "no contrast to show (regenerate with python benchmarks/ship_runs.py).")
    return lines


def demo_contrast(config: Config, fingerprint: dict, this_run: dict) -> str:
    """The contrast as text for the terminal and the report: the table and the verdicts."""
    contrasts = {name: load_contrast(name, contrast_config(config, name), fingerprint) for name in CONTRASTS}
    table = contrast_markdown(contrast_rows(this_run, contrasts))
    return table + "\n\n" + "\n".join(contrast_verdict(this_run, contrasts))
