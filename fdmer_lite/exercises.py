"""The tutorials' exercises: ``check("3.2", answer)`` prints ✓ or ✗, and on ✗ a hint, never the answer.

Each exercise of notebooks 1-11 is a markdown cell, an empty "your turn" cell and a collapsed
``%%solution`` cell that runs only when solutions are switched on (:func:`show_solutions`, or
``FDMER_LITE_SOLUTIONS=1``, which the test suite sets so that nbval runs every solution).
:func:`check` tests an answer against a value computed here independently of the notebook and of
the library function the exercise is about (by hand, in numpy, or from a closed form). A right
answer gets the reason it is right; a wrong one gets a hint and the student's own number.

    >>> from fdmer_lite import exercises
    >>> exercises.check("2.2", [1, 47])
    ✓ 2.2: ...

Exercise ids are ``"<notebook>.<exercise>"``; ``"03.2"`` and ``"3.2"`` name the same one.
"""

from __future__ import annotations

import ast
import json
import math
import os
from pathlib import Path
from typing import Callable

import numpy as np

from .config import Config

#: The labels of exercise 1.1 (two zeros, one positive, one negative).
LABELS_1_1 = (0.0, 0.0, 1.0, -1.0)
#: The probe of exercise 2.1: notebook 2's three tokens with token 2 scaled to [3, 3].
PROBE_2_1 = ((1.0, 0.0), (0.0, 1.0), (3.0, 3.0))
#: The logits of exercise 4.1 (the true class is 0).
LOGITS_4_1 = (2.0, 0.0, -1.0)
#: The environment variable that runs the solutions (``1``) or skips them (unset, ``0``).
SOLUTIONS_ENV = "FDMER_LITE_SOLUTIONS"

CHECKS: dict[str, Callable[..., tuple[bool, str, str]]] = {}


def _exercise(key: str):
    """Register a check. It returns (right?, why it is right, a hint for a wrong answer); the hint
    may quote the student's own numbers, never the expected ones."""
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


def _near(answer, expected: float, tol: float = 1e-6) -> bool:
    return abs(float(answer) - expected) < tol


@_exercise("1.1")
def _acc2_readings(answer):
    pred = _vector(answer, len(LABELS_1_1))
    has0 = sum((p >= 0) == (y >= 0) for p, y in zip(pred, LABELS_1_1)) / len(LABELS_1_1)
    kept = [(p, y) for p, y in zip(pred, LABELS_1_1) if y != 0]
    non0 = sum((p > 0) == (y > 0) for p, y in kept) / len(kept)
    gap = abs(has0 - non0)
    mine = f"your predictions give has0 = {has0:.2f}, non0 = {non0:.2f}"
    return (math.isclose(gap, 0.5), mine + ", 50 points apart",
            mine + f" ({100 * gap:.0f} points apart, 50 wanted); non0 ignores the zero labels, "
                   "so choose the predictions on the zeros to move has0 alone")


@_exercise("1.2")
def _bayes_floor(answer):
    """``answer``: {label_noise: Bayes MAE}. A normal error of sd sigma has mean |error| sigma sqrt(2/pi)."""
    items = sorted((float(k), float(v)) for k, v in dict(answer).items())
    if len(items) < 2:
        return False, "", "give the Bayes floor for at least two noise levels, as {noise: floor}"
    floor_of = math.sqrt(2 / math.pi)
    bad = [f"noise {noise:g}: {floor:.3f}" for noise, floor in items
           if not abs(floor - noise * floor_of) <= 0.2 * noise * floor_of + 0.02]
    return (not bad, "each floor is near sigma * sqrt(2/pi), the mean |error| of N(0, sigma^2), a little "
                     "below where clipping at ±3 cuts the error: the floor is the label noise",
            "; ".join(bad) + ": read baselines(data)['bayes_mae'] of data generated with that label_noise, "
                             "and compare with E|eps| of a normal variable")


@_exercise("1.3")
def _acc7_misses(answer, ideal, labels):
    pred = np.clip(np.asarray(ideal, dtype=float), -3, 3)
    true = np.clip(np.asarray(labels, dtype=float), -3, 3)
    expected = float(np.mean(np.round(pred) != np.round(true)))       # 1 - Acc7, by its definition
    return (_near(answer, expected, 1e-9),
            f"{float(answer):.3f} of the samples crossed a rounding boundary, exactly 1 - Acc7: every "
            "miss of the ideal predictor is label noise across a half-integer",
            f"your share {float(answer):.3f} is not 1 - Acc7 of the ideal predictor; count the samples "
            "where np.round of the ideal prediction and np.round of the clipped label differ")


@_exercise("2.1")
def _attention_row(answer):
    row = _vector(answer, 3)
    q = PROBE_2_1[2]
    expected = _softmax([(q[0] * k[0] + q[1] * k[1]) / math.sqrt(2) for k in PROBE_2_1])
    return (np.allclose(row, expected, atol=1e-3),
            f"row 2 = {np.round(row, 4).tolist()}: the large token attends almost only to itself",
            f"your row {np.round(row, 4).tolist()} is not row 2 of softmax(X X^T / sqrt(2)); the rows "
            "index the queries, and row 2 is the third (numbering from 0)")


@_exercise("2.2")
def _visual_heads(answer):
    given = sorted({int(h) for h in answer})
    expected = [h for h in range(1, 48) if 47 % h == 0]
    return (given == expected, f"heads {given}: 47 is prime, so one head or one head per feature",
            f"your list {given}: a head count H must divide the width 47 evenly (47 % H == 0); "
            "list every such H from 1 to 47")


@_exercise("2.3")
def _score_spread(answer):
    value, expected = float(answer), math.sqrt(256)
    return (abs(value - expected) <= 0.1 * expected,
            f"std of q . k is {value:.2f}, about sqrt(256): dividing by sqrt(d) brings it back to 1",
            f"your std {value:.2f} is off: q . k sums 256 products of independent N(0, 1) entries, each "
            "of variance 1; measure (q * k).sum(-1).std() over many pairs")


@_exercise("3.1")
def _con_exponent(answer):
    p = float(answer)
    return (abs(p - 2) <= 0.25, f"exponent {p:.2f}: L_con sums B x B entries, so gamma must shrink like "
                                "1/B^2 to keep the same pull",
            f"your exponent {p:.2f}: fit the slope of log L_con against log B, and count how many "
            "entries a B x B matrix has")


@_exercise("3.2")
def _hsic_square(answer):
    value = float(answer)
    return (abs(value) < 0.05, f"HSIC(x, x^2) = {value:.4f}: with an inner-product kernel it is "
                               "Cov(x, x^2)^2 = E[x^3]^2 = 0 for a symmetric x",
            f"your value {value:.4f}: the inner-product HSIC of x and y is their squared "
            "cross-covariance; what is Cov(x, x^2) for x ~ N(0, 1)? Use 1,000 samples or more")


@_exercise("3.3")
def _dis_shift(answer):
    value = float(answer)
    return (abs(value) < 1e-4,
            "HSIC centres its inputs, so a constant row added to P_t leaves L_dis as it was",
            f"your change {value:.2e}: look at the centring matrix U in Eq. 6, and compute "
            "L_dis(P_t + c) - L_dis(P_t) with the same P_a, P_v")


@_exercise("4.1")
def _ce_gradient(answer):
    grad = _vector(answer, 3)
    expected = _softmax(LOGITS_4_1)
    expected[0] -= 1.0                                   # d(-log p_0)/dz = softmax(z) - onehot(0)
    return (np.allclose(grad, expected, atol=1e-4),
            "the gradient is softmax(z) - onehot(0): zero only when p_0 = 1",
            f"your gradient {np.round(grad, 4).tolist()}: d(-log p_y)/dz_k = p_k - [k = y] with "
            "p = softmax(z); autograd gives the same")


@_exercise("4.2")
def _confusion_minimum(answer):
    p, loss = answer
    p = _vector(p, 3)
    ok = np.allclose(p, 1 / 3, atol=1e-3) and math.isclose(float(loss), math.log(3), abs_tol=1e-3)
    shown = f"{np.round(p, 3).tolist()}, loss {float(loss):.4f}"
    return (ok, f"p = {shown} = log 3: the floor of the confusion loss",
            f"your p {shown}: not yet the minimum; the gradient with respect to z_k is p_k - 1/3, so run "
            "until it vanishes (more steps, lr 1.0)")


@_exercise("4.3")
def _dropout_passes(answer):
    train_same, eval_same = (bool(v) for v in answer)
    return ((train_same, eval_same) == (False, True),
            "training mode draws a new dropout mask every pass; eval mode is one fixed function",
            f"your answer (train equal: {train_same}, eval equal: {eval_same}); apply the same "
            "Dropout(0.5) twice to torch.ones(1000) after .train(), compare with torch.equal, then the "
            "same after .eval()")


@_exercise("5.1")
def _phase1_parameters(answer):
    flat, per_token = (int(v) for v in answer)
    d, t = 256, 4
    expected = ((t * d) ** 2 + t * d, d * d + d)          # weight + bias of one Linear each
    return ((flat, per_token) == expected,
            f"{flat:,} against {per_token:,}: about sixteen times the parameters of a per-token map",
            f"your counts {flat:,} and {per_token:,}: a Linear(n, n) has n * n weights and n biases, "
            "with n = 4 d_k for the flattened projection and n = d_k per token")


@_exercise("5.2")
def _silent_token(answer, before, after, slot=1):
    after, before = (np.asarray(psi, dtype=float)[:, slot].mean() for psi in (after, before))
    return (_near(answer, float(after - before), 1e-5),
            f"the weight of slot {slot} moved by {float(answer):+.3f}: psi scores the attended target, "
            "which mixes all four sources, not the token alone",
            f"your change {float(answer):+.4f}: take column {slot} of psi (one row per sample), its mean "
            "after silencing minus its mean before")


def _saved_loss(run) -> dict:
    """The loss settings a run was trained with (its config.json, in today's form), or {} when it
    has none."""
    folder = getattr(run, "path", None)
    path = None if folder is None else Path(folder) / "config.json"
    if path is None or not path.is_file():
        return {}
    saved = json.loads(path.read_text())["config"]
    try:
        return Config.from_dict(saved).to_dict()["loss"]
    except (TypeError, ValueError):                 # settings this version cannot read
        return saved.get("loss", {})


@_exercise("6.1")
def _heavy_adversary(answer, heavy, base):
    beta = _saved_loss(heavy).get("beta")
    if beta is not None and not math.isclose(beta, 0.5):
        return False, "", f"the heavy run was trained with beta = {beta}; train one with loss={{'beta': 0.5}}"
    d_mae, d_ami = (float(v) for v in answer)
    mae = heavy.metrics["mae"] - base.metrics["mae"]
    ami = heavy.history[-1]["train"]["ami"] - base.history[-1]["train"]["ami"]
    return (_near(d_mae, mae) and _near(d_ami, ami),
            f"beta 0.5 changes the test MAE by {d_mae:+.3f} and the last L_ami by {d_ami:+.3f}",
            f"your differences ({d_mae:+.4f}, {d_ami:+.4f}): heavy minus base, the MAE from "
            "run.metrics['mae'] and L_ami from run.history[-1]['train']['ami']")


@_exercise("6.2")
def _best_epoch(answer, history, criterion="mae"):
    if criterion not in ("mae", "task_loss"):
        raise ValueError(f"criterion must be 'mae' or 'task_loss', got {criterion!r}")
    name = "validation MAE" if criterion == "mae" else "validation task loss"
    scores = [(e["valid_metrics"]["mae"] if criterion == "mae" else e["valid"]["task"], e["epoch"])
              for e in history]
    best = min(scores)[1]                                # the first epoch with the lowest score
    return (int(answer) == best,
            f"epoch {best} of {len(history)} has the lowest {name}: that is the checkpoint kept",
            f"epoch {int(answer)} does not have the lowest {name} of the {len(history)} epochs; "
            f"take the minimum over the history, the first epoch on a tie")


@_exercise("6.3")
def _mosi_budget(answer, history, n_train):
    per_sample = sum(e["seconds"] for e in history) / len(history) / n_train
    expected = per_sample * 1284 * 120 / 60
    return (abs(float(answer) - expected) <= 0.1 * expected,
            f"about {float(answer):.1f} minutes at this model's size: a lower bound, the mosi preset's "
            "model is larger",
            f"your {float(answer):.1f} minutes: average the seconds per epoch, divide by the training "
            "samples of this run, multiply by 1,284 clips and 120 epochs, and convert to minutes")


@_exercise("7.1")
def _disc_accuracy(answer, rep):
    hits = total = 0
    for k, m in enumerate(rep.modalities):
        probs = np.asarray(rep.disc_prob_common[m])
        hits += int((probs.argmax(axis=1) == k).sum())
        total += len(probs)
    expected, chance = hits / total, 1 / len(rep.modalities)
    side = "below" if expected < chance else "above"
    return (_near(answer, expected), f"accuracy {float(answer):.3f}, {side} chance ({chance:.3f})",
            f"your accuracy {float(answer):.3f}: over all three modalities together, the share of samples "
            "whose most probable modality (argmax over the columns) is their own")


@_exercise("7.2")
def _relabelling(answer, rep):
    mods = list(rep.modalities)
    expected = {m: mods[int(np.asarray(rep.disc_prob_common[m]).mean(axis=0).argmax())] for m in mods}
    given = {str(k): str(v) for k, v in dict(answer).items()}
    kind = ("the identity: not fooled" if all(expected[m] == m for m in mods)
            else "a permutation: a relabelling" if len(set(expected.values())) == len(mods)
            else "not a permutation")
    return (given == expected, f"{given}: {kind}",
            f"your mapping {given}: for each true modality m, average the discriminator's probabilities "
            "over the samples of C_m and name the column with the largest mean")


@_exercise("7.3")
def _psi_without_losses(answer, with_losses, without):
    def on_common(rep):
        psi = np.asarray(rep.psi, dtype=float).mean(axis=0)
        return float(sum(v for v, n in zip(psi, rep.psi_names) if str(n).startswith("C")))
    return (_near(answer, on_common(without) - on_common(with_losses), 1e-5),
            f"the weight on C moves by {float(answer):+.3f} without the losses",
            f"your change {float(answer):+.4f}: sum the mean psi of the slots whose name starts with 'C', "
            "for the beta = gamma = 0 run minus the run with the paper's losses")


@_exercise("8.1")
def _error_message(answer, path):
    if not isinstance(answer, Exception):
        return False, "", ("pass the exception itself "
                           "(except DataError as err: ... check('8.1', err, path=...))")
    text = str(answer)
    named = {"the file": Path(path).name in text,
             "the label field": "label" in getattr(answer, "field", text), "finite values": "finite" in text}
    return (all(named.values()), "the message names the file, the field and what was expected",
            "this message does not name " + ", ".join(w for w, n in named.items() if not n)
            + "; set one *label* to NaN and load the file you wrote")


@_exercise("8.2")
def _audio_helps(answer, text_only, both):
    expected = text_only.metrics["mae"] - both.metrics["mae"]
    verdict = "audio helps" if expected > 0 else "audio does not help here"
    return (_near(answer, expected),
            f"text only minus text + audio: {float(answer):+.3f}, {verdict} "
            "(one seed; compare with the spread)",
            f"your difference {float(answer):+.4f}: text only minus text + audio, "
            "each from run.metrics['mae']")


@_exercise("9.1")
def _moved_scores(answer, off, paper, keys):
    moved = set()
    for key in keys:
        a, b = off.get(key), paper.get(key)
        numbers = isinstance(a, (int, float)) and isinstance(b, (int, float))
        if numbers and abs(b - a) > 0.1 * max(abs(a), abs(b), 1e-12):
            moved.add(key)
    given = set(answer)
    return (given == moved, f"{len(moved)} of the scores moved: {sorted(moved)}",
            f"your set has {len(given)} keys: a score moved when |b - a| > 0.1 * max(|a|, |b|), with a the "
            "beta = 0 value and b the beta = 0.02 value; skip scores that are not numbers")


@_exercise("9.2")
def _true_modality(answer, rep):
    expected = {m: float(np.asarray(rep.disc_prob_common[m])[:, k].mean())
                for k, m in enumerate(rep.modalities)}
    given = {str(m): float(v) for m, v in dict(answer).items()}
    return (given.keys() == expected.keys() and all(_near(given[m], expected[m]) for m in expected),
            "per modality: " + ", ".join(f"{m} {v:.3f}" for m, v in given.items())
            + " (chance 1/3; near 0 is a confident lie, not confusion)",
            "not the mean probability of the true modality: for the k-th modality m of rep.modalities "
            "take column k of rep.disc_prob_common[m] and average it over the samples")


@_exercise("10.1")
def _seeds_needed(answer, full, row):
    d = abs(row["mae_mean"] - full["mae_mean"])
    var = row["mae_std"] ** 2 + full["mae_std"] ** 2
    expected = math.ceil(4 * var / d ** 2) if d > 0 else math.inf
    return (answer == expected, f"{answer} seeds per row would make the difference two standard errors",
            f"your {answer} seeds: solve |delta| = 2 sqrt((s_full^2 + s_row^2) / n) for n and round up")


@_exercise("10.2")
def _probe_difference(answer, full, row):
    diff, se = (float(v) for v in answer)
    key = "common_modality_acc"
    exp_diff = row[f"{key}_mean"] - full[f"{key}_mean"]
    exp_se = math.sqrt(full[f"{key}_std"] ** 2 / full["n"] + row[f"{key}_std"] ** 2 / row["n"])
    clear = "clear" if abs(diff) > 2 * se else "not clear"
    return (_near(diff, exp_diff) and _near(se, exp_se),
            f"{diff:+.3f} ± {se:.3f}: {clear} at two standard errors",
            f"your ({diff:+.4f}, {se:.4f}): the row minus the full model, and sqrt(s_full^2 / n_full + "
            "s_row^2 / n_row) with the common_modality_acc_* columns")


def _knn_accuracy(train: dict, test: dict, mods: str, k: int = 15) -> float:
    """Nearest-neighbour modality accuracy in numpy: standardised by the train split, k neighbours."""
    X = np.concatenate([np.asarray(train[m], dtype=np.float64) for m in mods])
    y = np.concatenate([np.full(len(train[m]), i) for i, m in enumerate(mods)])
    mu, sd = X.mean(axis=0), X.std(axis=0)
    sd[sd == 0] = 1.0
    X = (X - mu) / sd
    hits = total = 0
    for i, m in enumerate(mods):
        T = (np.asarray(test[m], dtype=np.float64) - mu) / sd
        d = (T ** 2).sum(1)[:, None] - 2 * T @ X.T + (X ** 2).sum(1)[None, :]
        near = y[np.argpartition(d, k, axis=1)[:, :k]]
        votes = np.stack([(near == j).sum(axis=1) for j in range(len(mods))], axis=1)
        hits += int((votes.argmax(axis=1) == i).sum())
        total += len(T)
    return hits / total


@_exercise("11.1")
def _private_keeps_modality(answer, train, test, mods):
    """``answer``: True if the private representations keep the modality (a probe well above chance)."""
    acc = _knn_accuracy(train, test, mods)
    return (bool(answer) == (acc > 0.6),
            f"a nearest-neighbour probe computed here reads the modality from P_m for {acc:.2f} of the "
            f"samples (chance {1 / len(mods):.2f})",
            "not what the probes say: fit both probes on the private representations of the train split, "
            "score them on the test split and compare with chance, 1/3")


@_exercise("11.2")
def _offset_share(answer, common, mods):
    shares = []
    for m in mods:                                        # ||mean||^2 = mean ||c||^2 - total variance
        c = np.asarray(common[m], dtype=np.float64)
        energy = float(np.einsum("bd,bd->", c, c)) / len(c)
        shares.append(1.0 - float(np.trace(np.cov(c.T, bias=True))) / energy)
    return (_near(answer, float(np.mean(shares))),
            f"offset share {float(answer):.4f}: the energy of C_m that one constant vector per "
            "modality holds",
            f"your share {float(answer):.4f}: per modality, the squared norm of the mean vector divided by "
            "the mean squared norm of the samples, then the mean over the modalities")


@_exercise("11.3")
def _aligned_run(answer, **_):
    """``answer``: the run trained with the mean-matching loss (its config.json is read)."""
    loss = _saved_loss(answer)
    want = {"adversary": "confusion", "align_weight": 10.0, "aux_losses": "ami+ams+con+dis+align_mean"}
    wrong = [k for k, v in want.items() if loss.get(k) != v]
    return (bool(loss) and not wrong, "the run was trained with the mean-matching loss of the confusion run",
            ("no config.json in the run's folder: pass the run that lessons.lesson_run returned" if not loss
             else "this run's loss settings differ in " + ", ".join(wrong)
             + "; pass all three in config.replace(loss={...})"))


def check(exercise: str, answer, **context) -> bool:
    """Print one line, ✓ or ✗, for ``answer`` to ``exercise`` ("3.2"): why it is right, or a hint
    (never the expected answer). Return True if right. Some checks need what the answer was read
    from: ``check("6.2", epoch, history=run.history, criterion="mae")``, ``check("7.1", acc, rep=r)``.
    """
    notebook, _, number = str(exercise).partition(".")
    key = f"{int(notebook)}.{number}" if notebook.isdigit() else str(exercise)
    if key not in CHECKS:
        raise ValueError(f"no check for exercise {exercise!r}; checks exist for {', '.join(CHECKS)}")
    try:
        ok, right, hint = CHECKS[key](answer, **context)
    except (TypeError, ValueError, KeyError, IndexError) as err:
        if isinstance(err, TypeError) and "argument" in str(err):     # a context the check needs
            raise TypeError(f"check({exercise!r}, ...): {err}") from None
        ok, right, hint = False, "", f"could not read the answer {answer!r}: {err}"
    print(f"✓ {key}: {right}" if ok else f"✗ {key}: {hint}")
    return bool(ok)


_SHOWN: bool | None = None


def show_solutions(shown: bool = True) -> None:
    """Run (``True``) or skip (``False``) the ``%%solution`` cells from now on, whatever
    ``FDMER_LITE_SOLUTIONS`` says."""
    global _SHOWN
    _SHOWN = bool(shown)


def solutions_shown() -> bool:
    """Whether ``%%solution`` cells run: :func:`show_solutions`, else ``FDMER_LITE_SOLUTIONS``."""
    if _SHOWN is not None:
        return _SHOWN
    value = os.environ.get(SOLUTIONS_ENV, "").strip().lower()
    if value not in ("", "0", "false", "no", "1", "true", "yes"):
        raise ValueError(f"${SOLUTIONS_ENV}: expected 1 or 0, got {value!r}")
    return value in ("1", "true", "yes")


def run_solution(code: str, namespace: dict, shown: bool | None = None) -> bool:
    """Run ``code`` (a solution cell) in ``namespace`` if solutions are shown, as a cell would
    (the value of a last expression is displayed); else print that it was skipped. Return
    whether it ran. Errors propagate, so a failing solution fails the notebook's test."""
    shown = solutions_shown() if shown is None else shown
    titles = (ln.lstrip("# ").rstrip(":") for ln in code.splitlines() if ln.startswith("# Solution"))
    title = next(titles, "This solution")
    if not shown:
        print(f"{title.split(':')[0]} is hidden and was not run: show the cell to read it, or run "
              f"`exercises.show_solutions()` first to run it.")
        return False
    tree = ast.parse(code)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "<solution>", "exec"), namespace)
    if last is not None:
        value = eval(compile(ast.Expression(last.value), "<solution>", "eval"), namespace)
        if value is not None:
            from IPython.display import display
            display(value)
    return True


def load_ipython_extension(ipython) -> None:
    """Register the ``%%solution`` cell magic (``%load_ext fdmer_lite.exercises``; importing this
    module inside IPython does it too)."""
    def solution(line, cell):
        run_solution(cell, ipython.user_ns)
    ipython.register_magic_function(solution, magic_kind="cell", magic_name="solution")


def _register() -> None:
    try:
        from IPython import get_ipython
    except ImportError:
        return
    ipython = get_ipython()
    if ipython is not None:
        load_ipython_extension(ipython)


_register()
