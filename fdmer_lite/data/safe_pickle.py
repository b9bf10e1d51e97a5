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

Size limits (memory bombs). A pickle of a few bytes can ask for ``bytearray(10**12)``, an array
of a huge declared shape, a memo index of 2**32 (the C unpickler sizes its memo table by it), or
share one big list thousands of times so that converting the result multiplies the file's size.
:func:`safe_load` therefore

* reads the file through ``mmap`` (a declared length beyond the end of the file is truncated
  data, never an allocation) after a pass over its opcodes (``pickletools.genops``) that refuses
  memo indices beyond the number of opcodes;
* checks every declared size before the allocation: ``bytearray(n)``, ``_reconstruct`` and
  ``ndarray`` shapes, the shape and dtype an array's ``__setstate__`` is given;
* after loading, adds up the size of the result *as if every shared reference were a copy*
  (what ``np.asarray`` of nested lists would build) and refuses a total over the limit, a
  container or object array that contains itself (``np.asarray`` of it can only fail or recurse
  without end) and containers nested more than :data:`MAX_DEPTH` deep, naming the field.

The limit is :func:`load_limit`: ``EXPANSION`` (16) times the file's size, at least ``FLOOR``
(64 MiB), at most the ceiling ``$FDMER_LITE_MAX_LOAD_BYTES`` (default 8 GiB). A refusal is a
:class:`SizeLimitError` (a ``DataError``: exit status 2) naming the file and what was declared.

Checkpoints are a different matter: they are read with ``torch.load(path, weights_only=True)``
(see ``fdmer_lite.train.load_checkpoint``), torch's own allow-list loader.
"""

from __future__ import annotations

import builtins
import collections
import codecs
import io
import mmap
import os
import pickle
import pickletools
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


EXPANSION = 16                      # bytes a loaded pickle may hold per byte of file
FLOOR = 64 * 2 ** 20                # ... but always at least this much
CEILING_ENV = "FDMER_LITE_MAX_LOAD_BYTES"
DEFAULT_CEILING = 8 * 2 ** 30


class SizeLimitError(DataError):
    """A file declares more data than the limit allows; refused before allocating it."""


def ceiling() -> int:
    try:
        return max(1, int(os.environ.get(CEILING_ENV, DEFAULT_CEILING)))
    except ValueError:
        return DEFAULT_CEILING


def load_limit(file_size: int, expansion: int = EXPANSION) -> int:
    """The most bytes a loader may build from a file of ``file_size`` bytes."""
    return min(ceiling(), max(FLOOR, expansion * int(file_size)))


def _prod(shape) -> int:
    if isinstance(shape, int):
        shape = (shape,)
    n = 1
    for d in shape:
        if not isinstance(d, int) or d < 0:
            return -1
        n *= d
    return n


class _Guarded:
    """The allow-listed constructors, with their declared sizes checked before they run."""

    def __init__(self, unpickler: "SafeUnpickler"):
        self.u = unpickler

    def check(self, what: str, nbytes: int) -> None:
        if nbytes < 0 or nbytes > self.u.limit:
            raise SizeLimitError(self.u.source, what, f"at most {self.u.limit:,} bytes (the limit for "
                                 f"a file of {self.u.file_size:,} bytes; ${CEILING_ENV} sets the ceiling)",
                                 f"{nbytes:,} bytes declared" if nbytes >= 0 else "an invalid shape")

    def bytearray(self, *args):
        if args and isinstance(args[0], int):
            self.check("bytearray size", args[0])
        return bytearray(*args)

    def reconstruct(self, real):
        def _reconstruct(cls, shape, dtype, *rest):
            self.check("array shape", _prod(shape))
            return real(cls, shape, dtype, *rest)
        return _reconstruct

    def ndarray(self, shape=(0,), dtype=float, *args, **kwargs):
        self.check("array shape", _prod(shape) * max(1, np.dtype(dtype).itemsize))
        return np.ndarray(shape, dtype, *args, **kwargs)


class SafeUnpickler(pickle.Unpickler):
    """An ``Unpickler`` whose ``find_class`` only returns the globals in :data:`ALLOWED`, with
    declared sizes checked against ``limit`` bytes (see the module docstring)."""

    def __init__(self, file, *, source: str = "<pickle>", limit: int | None = None,
                 file_size: int = 0, **kwargs):
        super().__init__(file, **kwargs)
        self.source = source
        self.file_size = file_size
        self.limit = load_limit(file_size) if limit is None else limit
        guard = _Guarded(self)
        self._guarded = {("builtins", "bytearray"): guard.bytearray,
                         ("__builtin__", "bytearray"): guard.bytearray,
                         ("numpy", "ndarray"): _GuardedArray.bind(guard)}
        for core in ("numpy.core", "numpy._core"):
            key = (f"{core}.multiarray", "_reconstruct")
            self._guarded[key] = guard.reconstruct(ALLOWED[key])

    def find_class(self, module: str, name: str):
        if (module, name) in self._guarded:
            return self._guarded[(module, name)]
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                self.source, "pickle global",
                "only numpy arrays, dtypes and scalars inside plain containers "
                "(refused before anything was called; if you trust this file, convert it to "
                "plain numpy arrays first)",
                f"{module}.{name}") from None


class _GuardedArray(np.ndarray):
    """What ``numpy.ndarray`` resolves to inside a pickle: an array whose ``__setstate__`` checks
    the declared shape and dtype before numpy allocates them. Turned back into plain
    ``np.ndarray`` views by :func:`_check_expanded` before the caller sees anything."""

    _guard = None

    @classmethod
    def bind(cls, guard: _Guarded):
        return type("ndarray", (cls,), {"_guard": guard})

    def __new__(cls, shape=(0,), dtype=float, *args, **kwargs):
        cls._guard.check("array shape", _prod(shape) * max(1, np.dtype(dtype).itemsize))
        return super().__new__(cls, shape, dtype, *args, **kwargs)

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) >= 4:
            shape, dtype = (state[1], state[2]) if len(state) == 5 else (state[0], state[1])
            try:
                itemsize = max(1, np.dtype(dtype).itemsize)
            except TypeError:
                itemsize = 1
            self._guard.check("array shape", _prod(shape) * itemsize)
        return super().__setstate__(state)


def _scan(view, source: str) -> None:
    """One pass over the opcodes: refuse memo indices the unpickler would size its table by."""
    ops = 0
    try:
        for op, arg, _ in pickletools.genops(view):
            ops += 1
            if op.name in ("PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET") \
                    and isinstance(arg, int) and arg > ops + 1024:
                raise SizeLimitError(source, "pickle memo index", f"an index below {ops + 1024} "
                                     f"(the opcodes so far)", str(arg))
    except SizeLimitError:
        raise
    except (ValueError, EOFError, UnicodeDecodeError) as err:   # genops' own complaints
        raise DataError(source, "<file>", "a readable pickle", f"{type(err).__name__}: {err}") from None


MAX_DEPTH = 100                     # containers nested deeper than this are refused
_SCALARS = frozenset({int, float, bool, complex, type(None)})   # 32 bytes each, nothing inside


def _where(trail: list) -> str:
    """The field a trail of keys and indices names, e.g. ``train.regression_labels[3]``."""
    out = "" if not trail or isinstance(trail[0], str) else "<top level>"
    for key in trail:
        if isinstance(key, str):
            out += f".{key}" if out else key
        elif isinstance(key, tuple):                     # an index into an n-d object array
            out += "[" + ", ".join(map(str, key)) + "]"
        else:
            out += f"[{key!r}]"
    return out or "<top level>"


def _check_expanded(obj, source: str, limit: int):
    """Return ``obj`` with guarded arrays made plain, after refusing a result whose size, counting
    every shared reference as a copy, exceeds ``limit`` bytes, that contains itself (a list, dict
    or object array inside itself: no array can be made of it), or that nests containers more than
    :data:`MAX_DEPTH` deep. A refusal names the field where it happened.

    Every object visited is held by its container (dict keys and values are visited one by one,
    never through the short-lived tuples of ``dict.items()``), so the ``id`` that caches its size
    cannot be reused by another object during the walk."""
    sizes: dict[int, int] = {}
    busy: set[int] = set()
    trail: list = []

    def fail(total):
        raise SizeLimitError(source, "<contents>", f"at most {limit:,} bytes once shared references "
                             "are expanded", f"{total:,} bytes or more")

    def cycle(x):
        what = "an object array" if isinstance(x, np.ndarray) else f"a {type(x).__name__}"
        raise DataError(source, _where(trail), "data that do not contain themselves (numbers, arrays "
                        "and containers of them)", f"{what} that contains itself")

    def enter(x, key):
        if key in busy:
            cycle(x)
        if len(trail) >= MAX_DEPTH:
            raise DataError(source, _where(trail[:3]) + "...", f"containers nested at most {MAX_DEPTH} deep",
                            "deeper nesting")
        busy.add(key)

    def visit(x) -> int:
        key = id(x)
        if key in sizes:
            return sizes[key]
        if isinstance(x, np.ndarray):
            n = int(x.nbytes)
            if x.dtype == object:
                enter(x, key)
                multi = x.ndim != 1
                for i, item in enumerate(x.flat):
                    if type(item) in _SCALARS:
                        n += 32
                        continue
                    trail.append(np.unravel_index(i, x.shape) if multi else i)
                    n += visit(item)
                    trail.pop()
                    if n > limit:
                        fail(n)
                busy.discard(key)
        elif isinstance(x, (str, bytes, bytearray)):
            n = len(x) + 49
        elif isinstance(x, (list, tuple, set, frozenset, dict)):
            enter(x, key)
            n = 56 + 8 * len(x)
            if isinstance(x, dict):
                for k, v in x.items():
                    n += visit(k)                        # k and v are held by x: stable ids
                    trail.append(k if isinstance(k, (str, int)) else repr(k))
                    n += visit(v)
                    trail.pop()
                    if n > limit:
                        fail(n)
            else:
                for i, item in enumerate(x):
                    if type(item) in _SCALARS:            # most items of a list of numbers
                        n += 32
                        continue
                    trail.append(i)
                    n += visit(item)
                    trail.pop()
                    if n > limit:
                        fail(n)
            busy.discard(key)
        else:
            n = 32
        sizes[key] = n
        if n > limit:
            fail(n)
        return n

    visit(obj)
    return _plain(obj, {})


def _plain(x, seen: dict):
    """Replace guarded arrays by plain ``np.ndarray`` views (lists and dicts in place)."""
    key = id(x)
    if key in seen:
        return seen[key]
    if isinstance(x, _GuardedArray):
        out = np.asarray(x).view(np.ndarray)
        seen[key] = out
        if out.dtype == object:
            for i, item in enumerate(out.flat):
                out.flat[i] = _plain(item, seen)
        return out
    if isinstance(x, np.ndarray) and x.dtype == object:
        seen[key] = x
        for i, item in enumerate(x.flat):
            x.flat[i] = _plain(item, seen)
        return x
    if isinstance(x, list):
        seen[key] = x
        for i, item in enumerate(x):
            x[i] = _plain(item, seen)
        return x
    if isinstance(x, dict):
        seen[key] = x
        for k, v in list(x.items()):
            x[k] = _plain(v, seen)
        return x
    if isinstance(x, tuple):
        out = tuple(_plain(item, seen) for item in x)
        seen[key] = out
        return out
    return x


def _load_view(view, source: str, size: int, encoding: str):
    _scan(view, source)
    view.seek(0)
    unpickler = SafeUnpickler(view, source=source, encoding=encoding, file_size=size)
    try:
        obj = unpickler.load()
    except (UnsafePickleError, SizeLimitError):
        raise
    except MemoryError:
        raise SizeLimitError(source, "<contents>", f"data that fit in memory (limit {unpickler.limit:,} bytes)",
                             "an allocation that failed") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError,
            AttributeError, UnicodeDecodeError, OverflowError, RecursionError) as err:
        raise DataError(source, "<file>", "a readable pickle", f"{type(err).__name__}: {str(err)[:200]}") from None
    return _check_expanded(obj, source, unpickler.limit)


def safe_load(path: str | Path, *, encoding: str = "latin1"):
    """Unpickle the file at ``path`` through :class:`SafeUnpickler`, within :func:`load_limit`.

    ``encoding="latin1"`` lets Python-2 pickles of numpy arrays load (their byte strings are
    array buffers, which latin-1 maps one to one); it changes nothing for Python-3 pickles.
    Raises ``FileNotFoundError``, :class:`UnsafePickleError`, :class:`SizeLimitError`, or
    :class:`DataError` for a file that is not a pickle at all.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    size = path.stat().st_size
    if size == 0:
        raise DataError(str(path), "<file>", "a readable pickle", "an empty file")
    if size > ceiling():
        raise SizeLimitError(str(path), "<file>", f"at most {ceiling():,} bytes (${CEILING_ENV})", f"{size:,} bytes")
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view:
        return _load_view(view, str(path), size, encoding)


def safe_loads(data: bytes, *, source: str = "<bytes>", encoding: str = "latin1"):
    """:func:`safe_load` for bytes already in memory."""
    return _load_view(io.BytesIO(data), source, len(data), encoding)


__all__ = ["ALLOWED", "SafeUnpickler", "SizeLimitError", "UnsafePickleError", "load_limit", "safe_load", "safe_loads"]
