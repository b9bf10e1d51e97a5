"""Where the project's folders are: the checkout's root and its ``runs/`` folder (floor: no imports).

Run folders (the lessons' runs, the sweep's cache, cached text features) are found the same way
whatever the working directory: the nearest folder, from the working directory up, whose
``pyproject.toml`` names this project (nbval runs notebooks from ``notebooks/``); else the
checkout this package was imported from; else none (an installed package: the caller decides).
"""

from __future__ import annotations

from pathlib import Path


def _root_above(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and 'name = "fdmer_lite"' in pyproject.read_text(encoding="utf-8"):
            return folder
    return None


def project_root() -> Path | None:
    """The checkout's root, from the working directory, then from this file; None if neither."""
    return _root_above(Path.cwd().resolve()) or _root_above(Path(__file__).resolve().parent)


def runs_root() -> Path:
    """``<checkout>/runs`` (git ignores it), or ``~/.cache/fdmer_lite`` outside a checkout."""
    root = project_root()
    return root / "runs" if root else Path.home() / ".cache" / "fdmer_lite"
