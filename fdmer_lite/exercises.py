"""Checks for the tutorials' exercises: ``check("3.2", answer)`` prints one ✓/✗ line and says why.

Each notebook ends with two to four exercises; each has a hint and a solution in a collapsed
code cell (tagged ``solution``, run by nbval like every cell). Where an exercise has an answer
that can be checked, :func:`check` tests it against a value computed here independently of the
notebook and of the library function the exercise is about: by hand from the definition, in
plain Python or numpy, or from a closed form (for example the mean absolute value of a normal
variable, ``sigma * sqrt(2 / pi)``).

    >>> from fdmer_lite import exercises
    >>> exercises.check("2.2", [1, 47])
    ✓ 2.2: ...

Exercise ids are ``"<notebook>.<exercise>"``; ``"03.2"`` and ``"3.2"`` name the same one.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

#: The labels of exercise 1.1 (two zeros, one positive, one negative).
LABELS_1_1 = (0.0, 0.0, 1.0, -1.0)
#: The probe of exercise 2.1: notebook 2's three tokens with token 2 scaled to [3, 3].
PROBE_2_1 = ((1.0, 0.0), (0.0, 1.0), (3.0, 3.0))
#: The logits of exercise 4.1 (the true class is 0).
LOGITS_4_1 = (2.0, 0.0, -1.0)

CHECKS: dict[str, Callable[..., tuple[bool, str]]] = {}


def _exercise(key: str):
    def register(fn):
        CHECKS[key] = fn
        return fn
    return register


def _vector(answer, n: int | None = None) -> np.ndarray:
    arr = np.asarray(answer, dtype=float).reshape(-1)
    if n is not None and arr.size != n:
        raise ValueError(f"expected {n} numbers, got {arr.size}")
    return arr


def _softmax(z):
    top = max(z)
    e = [math.exp(v - top) for v in z]
    return [v / sum(e) for v in e]


# ------------------------------------------------------------------ notebook 1


@_exercise("1.1")
def _acc2_readings(answer):
    pred = _vector(answer, len(LABELS_1_1))
    has0 = sum((p >= 0) == (y >= 0) for p, y in zip(pred, LABELS_1_1)) / len(LABELS_1_1)
    kept = [(p, y) for p, y in zip(pred, LABELS_1_1) if y != 0]
    non0 = sum((p > 0) == (y > 0) for p, y in kept) / len(kept)
    gap = abs(has0 - non0)
    why = f"on labels {list(LABELS_1_1)} Acc2 has0 = {has0:.2f}, non0 = {non0:.2f}, {100 * gap:.0f} points apart"
    return math.isclose(gap, 0.5), why + ("" if math.isclose(gap, 0.5) else " (50 wanted)")


@_exercise("1.2")
def _bayes_floor(answer):
    """``answer``: {label_noise: Bayes MAE}. A normal error of sd sigma has mean |error| sigma sqrt(2/pi)."""
    items = sorted((float(k), float(v)) for k, v in dict(answer).items())
    if len(items) < 2:
        return False, "give the Bayes floor for at least two noise levels, as {noise: floor}"
    bad = []
    for noise, floor in items:
        expected = noise * math.sqrt(2 / math.pi)
        if not abs(floor - expected) <= 0.2 * expected + 0.02:
            bad.append(f"noise {noise:g}: {floor:.3f}, expected about {expected:.3f}")
    if bad:
        return False, "; ".join(bad) + " (sigma * sqrt(2/pi), less a little where labels are clipped)"
    return True, ("each floor is near sigma * sqrt(2/pi), the mean |error| of N(0, sigma^2), a little "
                  "below where clipping at ±3 cuts the error: the floor is the label noise")


# ------------------------------------------------------------------ notebook 2


@_exercise("2.1")
def _attention_row(answer):
    row = _vector(answer, 3)
    q = PROBE_2_1[2]
    expected = _softmax([(q[0] * k[0] + q[1] * k[1]) / math.sqrt(2) for k in PROBE_2_1])
    ok = np.allclose(row, expected, atol=1e-3)
    return ok, f"row 2 should be {np.round(expected, 4).tolist()}, got {np.round(row, 4).tolist()}" + (
        ": the large token attends almost only to itself" if ok else "")


@_exercise("2.2")
def _visual_heads(answer):
    given = sorted({int(h) for h in answer})
    expected = [h for h in range(1, 48) if 47 % h == 0]
    ok = given == expected
    return ok, (f"heads must divide the width 47 evenly: {expected} (47 is prime)" if ok
                else f"got {given}; a head count must divide the width 47 evenly")


@_exercise("2.3")
def _score_spread(answer):
    value, expected = float(answer), math.sqrt(256)
    ok = abs(value - expected) <= 0.1 * expected
    return ok, (f"std of q . k for two N(0, 1) vectors of width 256 is sqrt(256) = {expected:.0f}, "
                f"got {value:.2f}" + (": dividing by sqrt(d) brings it back to 1" if ok else ""))


# ------------------------------------------------------------------ notebook 3


@_exercise("3.1")
def _con_exponent(answer):
    p = float(answer)
    ok = abs(p - 2) <= 0.25
    return ok, (f"L_con sums B x B entries, so it grows like B^2; got exponent {p:.2f}"
                + (": gamma must shrink like 1/B^2 to keep the same pull" if ok else ""))


@_exercise("3.2")
def _hsic_square(answer):
    value = float(answer)
    ok = abs(value) < 0.05
    return ok, (f"HSIC(x, x^2) with an inner-product kernel is Cov(x, x^2)^2 = E[x^3]^2 = 0 for a "
                f"symmetric x; got {value:.4f}" + ("" if ok else " (expected near 0; use n >= 1000 samples)"))


@_exercise("3.3")
def _dis_shift(answer):
    value = float(answer)
    ok = abs(value) < 1e-4
    return ok, (f"HSIC centres its inputs, so adding a constant row to P_t changes L_dis by 0; "
                f"got {value:.2e}")


# ------------------------------------------------------------------ notebook 4


@_exercise("4.1")
def _ce_gradient(answer):
    grad = _vector(answer, 3)
    expected = _softmax(LOGITS_4_1)
    expected[0] -= 1.0                                   # d(-log p_0)/dz = softmax(z) - onehot(0)
    ok = np.allclose(grad, expected, atol=1e-4)
    return ok, (f"d(-log p_0)/dz = softmax(z) - onehot(0) = {np.round(expected, 4).tolist()}, "
                f"got {np.round(grad, 4).tolist()}" + (": zero only when p_0 = 1" if ok else ""))


@_exercise("4.2")
def _confusion_minimum(answer):
    p, loss = answer
    p = _vector(p, 3)
    ok = np.allclose(p, 1 / 3, atol=1e-3) and math.isclose(float(loss), math.log(3), abs_tol=1e-3)
    return ok, (f"-(1/3) sum log p_k is smallest at p = (1/3, 1/3, 1/3), where it is log 3 = "
                f"{math.log(3):.4f}; got p = {np.round(p, 3).tolist()}, loss {float(loss):.4f}")


# ------------------------------------------------------------------ notebook 5


@_exercise("5.1")
def _phase1_parameters(answer):
    flat, per_token = (int(v) for v in answer)
    d, t = 256, 4
    expected = ((t * d) ** 2 + t * d, d * d + d)          # weight + bias of one Linear each
    ok = (flat, per_token) == expected
    return ok, (f"a Linear(4 d_k, 4 d_k) at d_k = 256 has {expected[0]:,} parameters, "
                f"Linear(d_k, d_k) {expected[1]:,} ({expected[0] / expected[1]:.0f}x fewer); "
                f"got {flat:,} and {per_token:,}")


# ------------------------------------------------------------------ notebook 6


@_exercise("6.2")
def _best_epoch(answer, history, criterion="mae"):
    """``criterion``: what the run stopped on, "mae" (the validation MAE) or "task_loss"."""
    if criterion not in ("mae", "task_loss"):
        raise ValueError(f"criterion must be 'mae' or 'task_loss', got {criterion!r}")
    name = "validation MAE" if criterion == "mae" else "validation task loss"
    scores = [(entry["valid_metrics"]["mae"] if criterion == "mae" else entry["valid"]["task"], entry["epoch"])
              for entry in history]
    best = min(scores)[1]                                # the first epoch with the lowest score
    ok = int(answer) == best
    return ok, (f"the lowest {name} is at epoch {best} of {len(history)}; got {int(answer)}"
                + (": that is the checkpoint kept" if ok else ""))


# ------------------------------------------------------------------ notebook 7


@_exercise("7.1")
def _disc_accuracy(answer, rep):
    hits = total = 0
    for k, m in enumerate(rep.modalities):
        probs = np.asarray(rep.disc_prob_common[m])
        hits += int((probs.argmax(axis=1) == k).sum())
        total += len(probs)
    expected, chance = hits / total, 1 / len(rep.modalities)
    ok = abs(float(answer) - expected) < 1e-6
    side = "below" if expected < chance else "above"
    return ok, (f"the discriminator names the right modality of C_m for {expected:.3f} of the samples, "
                f"{side} chance ({chance:.3f}); got {float(answer):.3f}")


def check(exercise: str, answer, **context) -> bool:
    """Print one line, ✓ or ✗, with why, for ``answer`` to ``exercise`` ("3.2"); return True if right.

    Some checks need the run the answer was read from:
    ``check("6.2", epoch, history=run.history, criterion="mae")``, ``check("7.1", accuracy, rep=r)``.
    """
    notebook, _, number = str(exercise).partition(".")
    key = f"{int(notebook)}.{number}" if notebook.isdigit() else str(exercise)
    if key not in CHECKS:
        raise ValueError(f"no check for exercise {exercise!r}; checks exist for {', '.join(CHECKS)}")
    try:
        ok, why = CHECKS[key](answer, **context)
    except TypeError as err:
        if "argument" in str(err):
            raise TypeError(f"check({exercise!r}, ...): {err}") from None
        ok, why = False, f"could not read the answer {answer!r}: {err}"
    except (ValueError, KeyError, IndexError) as err:
        ok, why = False, f"could not read the answer {answer!r}: {err}"
    print(f"{'✓' if ok else '✗'} {key}: {why}")
    return bool(ok)
