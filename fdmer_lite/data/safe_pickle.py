"""Load pickles from the internet without letting them run code.

A pickle is a small program: its ``GLOBAL``/``STACK_GLOBAL`` instructions import any callable by
name and ``REDUCE`` calls it, so ``pickle.load`` on a downloaded ``aligned_50.pkl`` can run
``os.system(...)``. The benchmark pickles this package reads (MMSA, UR-FUNNY, the MOSI audio
pickle) only ever need numpy arrays, dtypes and scalars inside plain containers, so
:class:`SafeUnpickler` resolves exactly those globals and refuses every other one *before* it
is called, naming the file and the global.

Allowed (module, name) pairs, see :data:`ALLOWED`:

* numpy's array reconstruction: ``numpy.ndarray``, ``numpy.dtype``,
  ``numpy[._]core.multiarray._reconstruct`` and ``.scalar`` (numpy scalars),
  ``numpy[._]core.numeric._frombuffer`` (protocol-5 arrays);
* ``_codecs.encode`` (how protocol-2 pickles store ``bytes``);
* the built-in containers ``set``, ``frozenset``, ``bytearray``, ``complex``, ``slice`` and
  ``collections.OrderedDict``. Lists, dicts, tuples, str, int, float, bool and None need no
  global at all.

Everything else -- ``os.system``, ``builtins.eval``, ``subprocess.Popen``, pandas, torch, any
class of any library -- raises :class:`UnsafePickleError`, a :class:`~fdmer_lite.data.base.DataError`
(so ``fdmer-lite`` exits with status 2) that is also a ``pickle.UnpicklingError``.

Checkpoints are a different matter: they are read with ``torch.load(path, weights_only=True)``
(see ``fdmer_lite.train.load_checkpoint``), torch's own allow-list loader.
"""

from __future__ import annotations

import builtins
import collections
import codecs
import io
import pickle
from pathlib import Path

import numpy as np

from .base import DataError


def _numpy_attr(module: str, name: str):
    """Resolve numpy internals whether the pickle says ``numpy.core`` (numpy 1) or ``numpy._core``."""
    parts = module.split(".")
    for root in (("numpy", "_core"), ("numpy", "core")):
        obj = np
        try:
            for p in root[1:] + tuple(parts[2:]):
                obj = getattr(obj, p)
            return getattr(obj, name)
        except AttributeError:
            continue
    raise AttributeError(f"{module}.{name}")


def _allowed() -> dict[tuple[str, str], object]:
    table: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,
        ("collections", "OrderedDict"): collections.OrderedDict,
    }
    for core in ("numpy.core", "numpy._core"):
        table[(f"{core}.multiarray", "_reconstruct")] = _numpy_attr(f"{core}.multiarray", "_reconstruct")
        table[(f"{core}.multiarray", "scalar")] = _numpy_attr(f"{core}.multiarray", "scalar")
        table[(f"{core}.numeric", "_frombuffer")] = _numpy_attr(f"{core}.numeric", "_frombuffer")
    for mod in ("builtins", "__builtin__"):                 # __builtin__: Python-2 pickles
        for name in ("set", "frozenset", "bytearray", "complex", "slice"):
            table[(mod, name)] = getattr(builtins, name)
    return table


ALLOWED: dict[tuple[str, str], object] = _allowed()


class UnsafePickleError(DataError, pickle.UnpicklingError):
    """The pickle asked for a global outside the allow-list; nothing of it was called."""


class SafeUnpickler(pickle.Unpickler):
    """An ``Unpickler`` whose ``find_class`` only returns the globals in :data:`ALLOWED`."""

    def __init__(self, file, *, source: str = "<pickle>", **kwargs):
        super().__init__(file, **kwargs)
        self.source = source

    def find_class(self, module: str, name: str):
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                self.source, "pickle global",
                "only numpy arrays, dtypes and scalars inside plain containers "
                "(refused before anything was called; if you trust this file, convert it to "
                "plain numpy arrays first)",
                f"{module}.{name}") from None


def safe_load(path: str | Path, *, encoding: str = "latin1"):
    """Unpickle the file at ``path`` through :class:`SafeUnpickler`.

    ``encoding="latin1"`` lets Python-2 pickles of numpy arrays load (their byte strings are
    array buffers, which latin-1 maps one to one); it changes nothing for Python-3 pickles.
    Raises ``FileNotFoundError``, :class:`UnsafePickleError`, or :class:`DataError` for a file
    that is not a pickle at all.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, "rb") as f:
        try:
            return SafeUnpickler(f, source=str(path), encoding=encoding).load()
        except UnsafePickleError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError,
                AttributeError, UnicodeDecodeError) as err:
            raise DataError(str(path), "<file>", "a readable pickle",
                            f"{type(err).__name__}: {err}") from None


def safe_loads(data: bytes, *, source: str = "<bytes>", encoding: str = "latin1"):
    """:func:`safe_load` for bytes already in memory."""
    return SafeUnpickler(io.BytesIO(data), source=source, encoding=encoding).load()


__all__ = ["ALLOWED", "SafeUnpickler", "UnsafePickleError", "safe_load", "safe_loads"]
