"""Load pickles from the internet without letting them run code.

A pickle's ``GLOBAL``/``STACK_GLOBAL`` instructions import any callable and ``REDUCE`` calls it, so
``pickle.load`` of a downloaded ``aligned_50.pkl`` can run ``os.system(...)``. The benchmark
pickles (MMSA, UR-FUNNY) only need numpy arrays, dtypes and scalars in plain containers, so
:class:`SafeUnpickler` resolves exactly the globals in :data:`ALLOWED` (numpy's array and scalar
reconstruction, ``_codecs.encode``, ``set``, ``frozenset``, ``bytearray``, ``complex``,
``slice``, ``collections.OrderedDict``) and refuses every other one before it is called with
:class:`UnsafePickleError` (a ``DataError``, so the CLI exits with status 2, and a
``pickle.UnpicklingError``).

Memory bombs: :func:`safe_load` reads the file through ``mmap`` after a pass over its opcodes
that refuses memo indices beyond the opcode count; checks every declared size (``bytearray(n)``,
array shapes and ``__setstate__``) before allocating it; and after loading sizes the result as if
every shared reference were a copy, refusing a total over the limit, a container that contains
itself, or nesting deeper than :data:`MAX_DEPTH`. The limit is :func:`load_limit`: ``EXPANSION``
(16) times the file size, at least ``FLOOR`` (64 MiB), at most ``$FDMER_LITE_MAX_LOAD_BYTES``
(default 8 GiB); a refusal is a :class:`SizeLimitError` naming the file and the field.
Checkpoints are read with ``torch.load(weights_only=True)`` instead.
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


def _numpy_attr(submodule: str, name: str):
    """numpy's ``_core.<submodule>.<name>`` (numpy 2), else ``core.<submodule>.<name>`` (numpy 1)."""
    for core in ("_core", "core"):
        try:
            return getattr(getattr(getattr(np, core), submodule), name)
        except AttributeError:
            continue
    raise AttributeError(f"numpy.core.{submodule}.{name}")


def _allowed() -> dict[tuple[str, str], object]:
    table: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,
        ("collections", "OrderedDict"): collections.OrderedDict,
    }
    for core in ("numpy.core", "numpy._core"):
        for sub, name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"),
                          ("numeric", "_frombuffer")):
            table[(f"{core}.{sub}", name)] = _numpy_attr(sub, name)
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


class SafeUnpickler(pickle.Unpickler):
    """An ``Unpickler`` whose ``find_class`` only returns the globals in :data:`ALLOWED`, with
    declared sizes checked against ``limit`` bytes (see the module docstring)."""

    def __init__(self, file, *, source: str = "<pickle>", limit: int | None = None,
                 file_size: int = 0, **kwargs):
        super().__init__(file, **kwargs)
        self.source = source
        self.file_size = file_size
        self.limit = load_limit(file_size) if limit is None else limit
        self._guarded = {("builtins", "bytearray"): self._bytearray,
                         ("__builtin__", "bytearray"): self._bytearray,
                         ("numpy", "ndarray"): _GuardedArray.bind(self)}
        for core in ("numpy.core", "numpy._core"):
            key = (f"{core}.multiarray", "_reconstruct")
            self._guarded[key] = self._guard_reconstruct(ALLOWED[key])

    def check_size(self, what: str, nbytes: int) -> None:
        """Refuse ``nbytes`` declared for ``what`` beyond the limit (-1: an invalid shape)."""
        if nbytes < 0 or nbytes > self.limit:
            raise SizeLimitError(self.source, what, f"at most {self.limit:,} bytes (the limit for "
                                 f"a file of {self.file_size:,} bytes; ${CEILING_ENV} sets the ceiling)",
                                 f"{nbytes:,} bytes declared" if nbytes >= 0 else "an invalid shape")

    def _bytearray(self, *args):
        if args and isinstance(args[0], int):
            self.check_size("bytearray size", args[0])
        return bytearray(*args)

    def _guard_reconstruct(self, real):
        def _reconstruct(cls, shape, dtype, *rest):
            self.check_size("array shape", _prod(shape))
            return real(cls, shape, dtype, *rest)
        return _reconstruct

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
    """``numpy.ndarray`` inside a pickle: ``__new__`` and ``__setstate__`` check the declared shape
    and dtype before numpy allocates them. Made plain ``np.ndarray`` views before return."""

    _guard = None

    @classmethod
    def bind(cls, guard: SafeUnpickler):
        return type("ndarray", (cls,), {"_guard": guard})

    def __new__(cls, shape=(0,), dtype=float, *args, **kwargs):
        cls._guard.check_size("array shape", _prod(shape) * max(1, np.dtype(dtype).itemsize))
        return super().__new__(cls, shape, dtype, *args, **kwargs)

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) >= 4:
            shape, dtype = (state[1], state[2]) if len(state) == 5 else (state[0], state[1])
            try:
                itemsize = max(1, np.dtype(dtype).itemsize)
            except TypeError:
                itemsize = 1
            self._guard.check_size("array shape", _prod(shape) * itemsize)
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
    """``obj`` with guarded arrays made plain, after refusing (naming the field) a result whose
    size, counting every shared reference as a copy, exceeds ``limit`` bytes, that contains
    itself, or that nests containers more than :data:`MAX_DEPTH` deep. Every object visited is
    held by its container, so the ``id`` caching its size cannot be reused during the walk."""
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

    def visit_items(x, key: int, n: int, items, where) -> int:
        """``n`` plus the sizes of a container's items; ``where(i)`` names item i in the trail."""
        enter(x, key)
        for i, item in enumerate(items):
            if type(item) in _SCALARS:                   # most items of a list of numbers
                n += 32
                continue
            trail.append(where(i))
            n += visit(item)
            trail.pop()
            if n > limit:
                fail(n)
        busy.discard(key)
        return n

    def visit(x) -> int:
        key = id(x)
        if key in sizes:
            return sizes[key]
        if isinstance(x, np.ndarray):
            n = int(x.nbytes)
            if x.dtype == object:
                where = (lambda i: np.unravel_index(i, x.shape)) if x.ndim != 1 else (lambda i: i)
                n = visit_items(x, key, n, x.flat, where)
        elif isinstance(x, (str, bytes, bytearray)):
            n = len(x) + 49
        elif isinstance(x, dict):
            enter(x, key)
            n = 56 + 8 * len(x)
            for k, v in x.items():
                n += visit(k)                            # k and v are held by x: stable ids
                trail.append(k if isinstance(k, (str, int)) else repr(k))
                n += visit(v)
                trail.pop()
                if n > limit:
                    fail(n)
            busy.discard(key)
        elif isinstance(x, (list, tuple, set, frozenset)):
            n = visit_items(x, key, 56 + 8 * len(x), x, lambda i: i)
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
    if isinstance(x, np.ndarray):
        out = np.asarray(x).view(np.ndarray) if isinstance(x, _GuardedArray) else x
        seen[key] = out
        if out.dtype == object:
            for i, item in enumerate(out.flat):
                out.flat[i] = _plain(item, seen)
        return out
    if isinstance(x, (list, dict)):
        seen[key] = x
        for k in (range(len(x)) if isinstance(x, list) else list(x)):
            x[k] = _plain(x[k], seen)
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

    ``encoding="latin1"`` loads Python-2 pickles of numpy arrays (it changes nothing for Python 3).
    Raises ``FileNotFoundError``, :class:`UnsafePickleError`, :class:`SizeLimitError` or
    :class:`DataError`.
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
