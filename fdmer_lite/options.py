"""The rules every command's options follow, checked once, before any work starts.

``fdmer-lite train``, ``sweep`` and ``ablate`` (and anything else that takes these settings) call
:func:`check_training_options`, so the same value is accepted or refused the same way everywhere:

* ``epochs``: an integer >= 1 (0 or less would publish an untrained run as finished);
* ``beta``, ``gamma``: finite numbers >= 0 (Eq. 18 weights; NaN or inf can only give a NaN loss);
* ``modalities``: one or more distinct letters of ``tav``;
* ``seed`` / ``seeds``: integers in [0, 2**32) (numpy's range);
* ``workers``: >= 0 (``ablate``) or >= 1 (``sweep``);
* ``device``: ``auto``, ``cpu``, ``mps``, ``cuda`` or ``cuda:N``, and one this machine has
  (:func:`check_device`); ``preset``: a known preset (:func:`check_preset`);
* ``modalities`` of a data set whose streams are known before loading (``synthetic``: ``tav``,
  ``mosi-text-audio``: ``ta``): only those (:func:`check_dataset_modalities`).

Every command runs these checks before it builds or loads any data, so a typo costs a second,
not a data generation.

A refusal is an :class:`OptionError` (a ``ValueError``) naming the option, what was expected and
what was given; ``fdmer-lite`` prints it as one line and exits with status 2.
"""

from __future__ import annotations

import math
from pathlib import Path

from .config import PRESETS
from .errors import DataError
from .experiments.runstore import probe_writable

MAX_SEED = 2 ** 32


class OptionError(ValueError):
    """A command-line option (or the equivalent argument) has a value it cannot take."""

    def __init__(self, option: str, expected: str, found):
        super().__init__(f"{option}: expected {expected}, got {found!r}")
        self.option, self.expected, self.found = option, expected, found


def _int(option: str, value, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise OptionError(option, "an integer", value)
    if value < low or (high is not None and value >= high):
        rng = f">= {low}" if high is None else f"an integer in [{low}, {high})"
        raise OptionError(option, rng if high is not None else f"an integer {rng}", value)
    return value


def check_weight(option: str, value) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise OptionError(option, "a number", value) from None
    if not math.isfinite(x) or x < 0:
        raise OptionError(option, "a finite number >= 0", value)
    return x


def check_modalities(option: str, value: str) -> str:
    if not isinstance(value, str) or not value or any(m not in "tav" for m in value) \
            or len(set(value)) != len(value):
        raise OptionError(option, "one or more distinct letters of 'tav' (e.g. tav, ta, av)", value)
    return value


def check_training_options(*, epochs=None, beta=None, gamma=None, modalities=None, seed=None,
                           seeds=None, workers=None, min_workers: int = 0) -> None:
    """Refuse any value outside the rules of the module docstring (``None``: not given)."""
    if epochs is not None:
        _int("--epochs", epochs, 1)
    for name, v in (("--beta", beta), ("--gamma", gamma)):
        for x in (v if isinstance(v, (list, tuple)) else [] if v is None else [v]):
            check_weight(name, x)
    if modalities is not None:
        check_modalities("--modalities", modalities)
    if seed is not None:
        _int("--seed", seed, 0, MAX_SEED)
    for s in seeds or ():
        _int("--seeds", s, 0, MAX_SEED)
    if workers is not None:
        _int("--workers", workers, min_workers)


DEVICE_NAMES = ("auto", "cpu", "mps", "cuda")
KNOWN_MODALITIES = {"synthetic": "tav", "mosi-text-audio": "ta"}   # fixed by the data set itself


def check_device(option: str, name) -> str:
    """A device name torch understands and this machine has (``auto`` always passes)."""
    expected = "auto, cpu, mps, cuda or cuda:N"
    base, _, index = str(name).partition(":")
    if (not isinstance(name, str) or base not in DEVICE_NAMES
            or (index and (base != "cuda" or not index.isdigit()))):
        raise OptionError(option, expected, name)
    if name == "auto" or name == "cpu":
        return name
    from .train import select_device                   # imports torch: only for cuda / mps
    try:
        select_device(name)
    except ValueError as err:
        raise OptionError(option, f"a device this machine has ({err})", name) from None
    return name


def check_preset(option: str, name) -> str:
    """The name of a preset of :mod:`fdmer_lite.config` (``None``: not given)."""
    if name is None:
        return name
    if not isinstance(name, str) or name.lower().replace("-", "_") not in PRESETS:
        raise OptionError(option, f"one of {', '.join(sorted(PRESETS))}", name)
    return name


def check_dataset_modalities(option: str, dataset: str, modalities) -> None:
    """``modalities`` must be streams ``dataset`` has, where that is known without loading it."""
    have = KNOWN_MODALITIES.get(dataset)
    if modalities is None or have is None:
        return
    if any(m not in have for m in modalities):
        raise OptionError(option, f"letters of {have!r} (the streams of --dataset {dataset})", modalities)


def check_root(path, option: str) -> Path:
    """A folder that will hold many runs (``ablate --out``, ``sweep --cache``): a folder or a new
    name whose nearest existing parent is a writable folder."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DataError(f"{option} {path}", "path", "a folder or a new name", "an existing file")
    probe_writable(path, f"{option} {path}")
    return path
