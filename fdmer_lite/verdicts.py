"""Verdicts: what a run says about each of the paper's figures, computed from its numbers.

FDMER (Yang et al., ACM MM 2022, Sec. 4.5) argues with Figure 2 (C_m "blended together"), Figure 3
(the losses "decrease almost monotonously"), Figure 4a (the discriminator's probabilities on C_m
"centered around 0.33") and Figure 4b (psi favours what the label depends on). A lesson cannot
know which a student's run shows, so one pure function per figure returns a :class:`Verdict`
``(outcome, sentence)``: the claim in the paper's words, holds / does not hold / too short to
tell, and the numbers read. Thresholds are arguments, our readings of words like "around 0.33".
"""

from __future__ import annotations

from typing import Mapping, NamedTuple, Sequence

import numpy as np

HOLDS, DOES_NOT_HOLD, TOO_SHORT = "holds", "does not hold", "too short to tell"

#: a run shorter than this many epochs is too short to tell (every FAST-mode run is)
MIN_EPOCHS = 10

#: the paper's claims, in its words (Sec. 4.5; LaTeX markup written out as plain text)
CLAIMS = {
    "figure2": "the distributions of C_{t,a,v} are blended together and gradually blurred, where "
               "adversarial training effectively aligns distributions of different modalities and "
               "minimizes the modality gap",
    "figure3": "the constraint loss (L_con + L_dis) and overall loss L_all decrease almost "
               "monotonously and converge smoothly",
    "figure4a": "the probabilities of the common representations P(t|C_m), P(a|C_m), P(v|C_m) are "
                "centered around 0.33, which is hard to differentiate the source of common modalities",
    "figure4b": "our CMAF module can adaptively assign larger attention values to meaningful "
                "representations",
}


class Verdict(NamedTuple):
    """``outcome``: a short word for the case (tests and code branch on it); ``sentence``: the
    claim, the verdict and its evidence, to print."""

    outcome: str
    sentence: str

    def __str__(self) -> str:
        return self.sentence


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _short(epochs: int | None, min_epochs: int) -> str:
    """'' when the run is long enough (or its length is unknown), else the caveat."""
    if epochs is not None and epochs < min_epochs:
        return (f"too short to tell: {_plural(epochs, 'epoch')} (fewer than {min_epochs}); "
                "what this run shows: ")
    return ""


def _verdict(figure: str, outcome: str, holds: bool, epochs: int | None, min_epochs: int,
             evidence: str) -> Verdict:
    """'Figure N, "the claim": holds' or 'does not hold', then ``evidence``; with the caveat
    of :func:`_short` (and the outcome "too short to tell") when the run is short."""
    caveat = _short(epochs, min_epochs)
    word = HOLDS if holds else DOES_NOT_HOLD
    return Verdict(TOO_SHORT if caveat else outcome,
                   f'Figure {figure[6:]}, "{CLAIMS[figure]}": {caveat}{word}{evidence}')


# ---------------------------------------------------------------------------- Figure 2

def figure2(probe_acc: float, gap: float, *, n_modalities: int = 3, epochs: int | None = None,
            probe_acc_without: float | None = None, gap_without: float | None = None,
            without: str = "without the losses", margin: float = 0.1,
            min_epochs: int = MIN_EPOCHS) -> Verdict:
    """Figure 2: are the common representations of the modalities blended?

    ``probe_acc``: a fresh linear probe's accuracy at telling the modality from C_m; ``gap``:
    ``analysis.common_gap``. ``probe_acc_without`` / ``gap_without``: the same for the contrast
    run, which ``without`` names (default: beta = gamma = 0). Our reading of "blended": the probe
    within ``margin`` of chance. Outcomes: ``"holds"``, ``"does not hold"``, ``"too short to tell"``."""
    chance = 1.0 / n_modalities
    blended = probe_acc <= chance + margin
    evidence = (f"a fresh linear probe tells the modality from C_m at {probe_acc:.2f} (chance "
                f"{chance:.2f}); common_gap {gap:.2f} (0: one sample's C_m coincide, about 1: no "
                f"closer than unrelated samples)")
    if gap_without is not None:
        closer = "closer together" if gap < gap_without else "no closer"
        evidence += f"; the modalities sit {closer} than {without} (common_gap {gap_without:.2f})"
    if probe_acc_without is not None:
        evidence += f"; probe {without} {probe_acc_without:.2f}"
    return _verdict("figure2", HOLDS if blended else DOES_NOT_HOLD, blended, epochs, min_epochs,
                    f" ({evidence}; our reading of 'blended': the probe within {margin:.2f} of chance).")


# ---------------------------------------------------------------------------- Figure 3

def jumps(curve: Sequence[float], *, after: int = 5,
          factor: float = 2.0) -> list[tuple[int, float, float]]:
    """The epochs (1-based) after epoch ``after`` whose value is over ``factor`` times the lowest
    value so far: ``(epoch, value, lowest so far)``; for a negative lowest, a rise above it of
    more than (factor - 1) times its size."""
    found, lowest = [], float("inf")
    for i, value in enumerate(curve):
        value, epoch = float(value), i + 1
        if epoch > after and np.isfinite(lowest) and value - lowest > (factor - 1) * abs(lowest):
            found.append((epoch, value, lowest))
        lowest = min(lowest, value)
    return found


def figure3(train_all: Sequence[float], constraint: Sequence[float] | None = None, *,
            best_epoch: int | None = None, after: int = 5, factor: float = 2.0,
            min_epochs: int = MIN_EPOCHS) -> Verdict:
    """Figure 3: do L_all (and the constraint loss L_con + L_dis) decrease almost monotonously?

    ``train_all`` and ``constraint``: per epoch, epoch 1 first. Our reading: no :func:`jumps`,
    and the last value below the first. ``best_epoch``, the epoch kept, is placed beside a jump.
    Outcomes: ``"monotone"`` (holds), ``"jump"``, ``"no decrease"``, ``"too short to tell"``."""
    curves = {"L_all": list(train_all)}
    if constraint is not None:
        curves["L_con + L_dis"] = list(constraint)
    n = len(curves["L_all"])
    if n < min(min_epochs, after + 1):
        return Verdict(TOO_SHORT, f'Figure 3, "{CLAIMS["figure3"]}": {TOO_SHORT} ({_plural(n, "epoch")}; '
                                  f"a jump is looked for after epoch {after}).")
    problems, outcome = [], "monotone"
    for name, curve in curves.items():
        found = jumps(curve, after=after, factor=factor)
        if found:
            epoch, value, lowest = found[0]
            more = f" (and {_plural(len(found) - 1, 'later epoch')})" if len(found) > 1 else ""
            problems.append(f"{name} jumps at epoch {epoch} to {value:.3g}, over {factor:g} times its lowest "
                            f"so far {lowest:.3g}{more}")
            outcome = "jump"
        elif curve[-1] >= curve[0]:
            problems.append(f"{name} ends at {curve[-1]:.3g}, not below its start {curve[0]:.3g}")
            outcome = "no decrease" if outcome == "monotone" else outcome
    kept = ""
    if best_epoch is not None:
        kept = f"; early stopping kept epoch {best_epoch} of {n}"
        if outcome == "jump":
            first = min(j[0] for c in curves.values() for j in jumps(c, after=after, factor=factor))
            kept += ", before the jump" if best_epoch < first else ", after the jump"
    if problems:
        return _verdict("figure3", outcome, False, n, min_epochs, f" ({'; '.join(problems)}{kept}).")
    evidence = "; ".join(f"{name} from {c[0]:.3g} to {c[-1]:.3g}, lowest {min(c):.3g}"
                         for name, c in curves.items())
    return _verdict("figure3", outcome, True, n, min_epochs, f" ({evidence}, no epoch after the "
                    f"{_ordinal(after)} over {factor:g} times the lowest so far{kept}).")


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


# ---------------------------------------------------------------------------- Figure 4a

def modality_box(p_true, *, n_modalities: int = 3, tol: float = 0.15) -> tuple[str, str]:
    """One modality's box of p(true modality | C_m) over samples -> (case, evidence).

    Cases, with chance = 1 / M: ``"fooled"``, the box (25th to 75th percentile) within chance ±
    ``tol``; ``"confidently wrong"``, the median below chance - tol; ``"not fooled"``, the median
    above chance + tol; ``"mixed"``, a wider box around a median near chance (samples at 0 and 1)."""
    chance = 1.0 / n_modalities
    p = np.atleast_1d(np.asarray(p_true, dtype=np.float64))
    q25, med, q75 = (float(v) for v in np.percentile(p, [25, 50, 75]))
    evidence = f"median {med:.2f}" if q25 == q75 else f"median {med:.2f}, box {q25:.2f}-{q75:.2f}"
    if abs(q25 - chance) <= tol and abs(q75 - chance) <= tol:
        return "fooled", evidence
    if med < chance - tol:
        return "confidently wrong", evidence
    if med > chance + tol:
        return "not fooled", evidence
    return "mixed", evidence


def p_true_by_modality(disc_prob: Mapping[str, np.ndarray], modalities: str) -> dict[str, np.ndarray]:
    """From ``Representations.disc_prob_common`` (m -> (N, M) probabilities) to m -> (N,) the
    probability of the true modality, the numbers Figure 4a's boxes draw."""
    return {m: np.asarray(disc_prob[m])[:, k] for k, m in enumerate(modalities)}


def figure4a(p_true: Mapping[str, object], *, epochs: int | None = None, tol: float = 0.15,
             min_epochs: int = MIN_EPOCHS) -> Verdict:
    """Figure 4a, per modality: is the discriminator fooled on each C_m?

    ``p_true``: modality -> the per-sample probabilities of the true modality on C_m (or one mean).
    Each gets a case of :func:`modality_box`; the claim holds when every one is fooled (a mean
    over modalities is no evidence: boxes at 0 and 1 average to 1/3). Outcome: the case all
    share, ``"different per modality"`` or ``"too short to tell"``."""
    n = len(p_true)
    cases = {m: modality_box(p, n_modalities=n, tol=tol) for m, p in p_true.items()}
    kinds = {case for case, _ in cases.values()}
    outcome = kinds.pop() if len(kinds) == 1 else "different per modality"
    holds = all(case == "fooled" for case, _ in cases.values())
    evidence = "; ".join(f"C_{m} {case} ({ev})" for m, (case, ev) in cases.items())
    return _verdict("figure4a", outcome, holds, epochs, min_epochs,
                    f" (p(true modality | C_m) per modality: {evidence}; our reading of 'around 0.33': "
                    f"the box within {1 / n:.2f} ± {tol:.2f}).")


# ---------------------------------------------------------------------------- Figure 4b

def figure4b(psi_c_before: float, psi_c_after: float, *, before: str = "emotion-like",
             after: str = "humor-like", expect: str = "up", tol: float = 0.02,
             epochs: int | None = None, min_epochs: int = MIN_EPOCHS) -> Verdict:
    """Figure 4b: how the mean fusion weight psi on C changes from run ``before`` to ``after``.

    The paper finds psi larger on C for UR_FUNNY (a label in what the modalities share); our
    emotion-like -> humor-like benchmarks move the label from private to shared, so the claim
    predicts ``expect="up"``. Within ± ``tol``: flat. Outcomes: ``"up"``, ``"down"``, ``"flat"``,
    ``"too short to tell"``."""
    delta = float(psi_c_after) - float(psi_c_before)
    direction = "up" if delta > tol else "down" if delta < -tol else "flat"
    moved = {"up": f"rises by {delta:.3f}", "down": f"falls by {-delta:.3f}",
             "flat": f"stays within {tol:.2f} (change {delta:+.3f})"}[direction]
    return _verdict("figure4b", direction, direction == expect, epochs, min_epochs,
                    f": the mean psi on C {moved} from {before} ({psi_c_before:.3f}) to {after} "
                    f"({psi_c_after:.3f}); the label's structure says it should go {expect}.")


# ---------------------------------------------------------------------------- runs

def kept_epoch(best_epoch: int, epochs: int) -> Verdict:
    """Where the checkpoint early stopping kept sits in the run: ``"first"`` (training never
    improved on its first epoch), ``"last"`` (still improving when the budget ended: more
    epochs might help) or ``"middle"``."""
    if best_epoch <= 1:
        return Verdict("first", f"best epoch the first of {epochs}: the validation score never improved "
                                f"on the first epoch, so the kept model is one epoch old.")
    if best_epoch >= epochs:
        return Verdict("last", f"best epoch the last ({best_epoch} of {epochs}): still improving when "
                               f"training stopped.")
    return Verdict("middle", f"best epoch {best_epoch} of {epochs}: early stopping kept a model from "
                             f"the middle of the run.")


def seed_spread(runs: Mapping[str, Mapping[str, float]], *, regime: float = 0.15) -> Verdict:
    """Several seeds of one recipe: name -> {"mae", "disc_prob_common", "jump" (bool)}. Outcome
    ``"same regime"`` when every run's D(C) lies within ``regime`` of every other's, ``"different
    regimes"`` otherwise, ``"too few runs"`` below two."""
    if len(runs) < 2:
        return Verdict("too few runs", f"{_plural(len(runs), 'run')} of this recipe: no spread to read.")
    mae = np.array([r["mae"] for r in runs.values()], dtype=np.float64)
    dc = np.array([r["disc_prob_common"] for r in runs.values()], dtype=np.float64)
    n_jump = sum(bool(r.get("jump")) for r in runs.values())
    same = float(dc.max() - dc.min()) <= regime
    return Verdict("same regime" if same else "different regimes",
                   f"{len(runs)} seeds: test MAE {mae.mean():.3f} ± {mae.std(ddof=1):.3f} (from "
                   f"{mae.min():.3f} to {mae.max():.3f}); D's p(true modality | C_m) from {dc.min():.2f} to "
                   f"{dc.max():.2f}, {'one regime' if same else 'different regimes'} (within {regime:.2f} of "
                   f"each other: {'yes' if same else 'no'}); L_all jumps in {n_jump} of {len(runs)}.")
