"""Array files read with their declared sizes checked first (memory bombs from tiny files).

A ``.npy`` header or an HDF5 dataset may declare any shape, which ``np.load`` / ``dataset[()]``
allocate before finding the file short. The readers here compare what is declared with what the
file holds and with :func:`fdmer_lite.data.safe_pickle.load_limit`, and refuse, naming the file
and the field, before anything is allocated.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .base import DataError
from .safe_pickle import SizeLimitError, ceiling, load_limit


def read_npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, bool, int]:
    """``(shape, dtype, fortran_order, data_offset)`` from a ``.npy`` header; DataError if none."""
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        except (ValueError, OSError, SyntaxError, TypeError) as err:
            raise DataError(str(path), "<header>", "a .npy file", f"{type(err).__name__}: {str(err)[:160]}") from None
        return tuple(shape), np.dtype(dtype), bool(fortran), f.tell()


def load_npy(path: str | Path, *, mmap_mode: str | None = None) -> np.ndarray:
    """``np.load(path, allow_pickle=False)`` after checking the header: the declared bytes must be
    what the file holds (no more: a truncated file; never an object array)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    shape, dtype, _, offset = read_npy_header(path)
    if dtype.hasobject:
        raise DataError(str(path), "dtype", "a plain numeric array (no pickled objects)", str(dtype))
    declared = math.prod(int(d) for d in shape) * dtype.itemsize
    held = path.stat().st_size - offset
    if declared > held:
        raise DataError(str(path), "shape", f"at most {held:,} bytes of data (what the file holds)",
                        f"shape {shape} of {dtype} = {declared:,} bytes (a truncated or forged header)")
    if mmap_mode is None and declared > ceiling():
        raise SizeLimitError(str(path), "shape", f"at most {ceiling():,} bytes", f"{declared:,} bytes")
    try:
        return np.load(path, allow_pickle=False, mmap_mode=mmap_mode)
    except (ValueError, OSError) as err:
        raise DataError(str(path), "<file>", "a plain .npy array (no pickle)", str(err)[:200]) from None


def check_h5_dataset(ds, source: str, field: str) -> None:
    """Refuse an HDF5 dataset whose declared shape exceeds the load limit of its file."""
    try:
        declared = math.prod(int(d) for d in ds.shape or ()) * max(1, ds.dtype.itemsize)
    except (TypeError, ValueError, AttributeError):
        raise DataError(source, field, "a dataset with a shape", type(ds).__name__) from None
    try:
        size = Path(source).stat().st_size
    except OSError:
        size = 0
    limit = load_limit(size, expansion=64)              # HDF5 may be compressed
    if declared > limit:
        raise SizeLimitError(source, field, f"at most {limit:,} bytes (the limit for a file of "
                             f"{size:,} bytes)", f"shape {tuple(ds.shape)} of {ds.dtype} = {declared:,} bytes declared")


_EXTRA = "\0extra"


def read_csv(path: str | Path) -> tuple[list[str], list[dict]]:
    """``(columns, rows)`` of a UTF-8 CSV file with a header, each row a dict. A file that is not
    UTF-8, a field over ``csv.field_size_limit()`` characters, or a row with fewer or more fields
    than the header is one :class:`DataError` naming the file and the line."""
    import csv
    path = Path(path)
    rows: list[dict] = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, restkey=_EXTRA)
        try:
            columns = list(reader.fieldnames or [])
            for row in reader:
                line = reader.line_num
                if _EXTRA in row:
                    raise DataError(str(path), f"line {line}", f"{len(columns)} fields (as the header)",
                                    str(len(columns) + len(row[_EXTRA])))
                if any(v is None for v in row.values()):
                    short = sum(v is not None for v in row.values())
                    raise DataError(str(path), f"line {line}", f"{len(columns)} fields (as the header)", str(short))
                rows.append(row)
        except UnicodeDecodeError as err:
            raise DataError(str(path), "<encoding>", "UTF-8 text",
                            f"byte {err.object[err.start:err.start + 1]!r} at offset {err.start} of a chunk") from None
        except csv.Error as err:
            raise DataError(str(path), f"line {reader.line_num}",
                            f"a CSV field of at most {csv.field_size_limit():,} characters, properly quoted",
                            str(err)) from None
    return columns, rows


__all__ = ["check_h5_dataset", "load_npy", "read_npy_header", "read_csv"]
