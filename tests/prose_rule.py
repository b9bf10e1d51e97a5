"""The measured decimals quoted in the tutorials' markdown: the counting rule.

Prose teaches; numbers of our own runs come from the cells' outputs (issue 16). The targets: at
most 8 measured decimals in a notebook's markdown, 40 in the series. ``tests/test_notebooks.py``
holds the tutorials to them with :func:`prose_decimals`.

The rule (what counts as a measured decimal), applied to each markdown cell of ``tutorials/*.py``:

1. A decimal is a number written with a decimal point: ``0.97``, ``1.4``, ``42.1%``, ``1.5e-3``.
   Whole numbers and fractions such as ``1/3`` do not count (they are counts, sizes, epochs).
2. Not prose, so removed first: fenced code blocks, inline ``code`` spans (what the student types:
   ``label_noise=0.2`` is an input, not a measurement), ``$...$`` and ``$$...$$`` math, and link
   targets ``(...)`` of markdown links.
3. References, not measurements: a dotted sequence with two or more points (``2.13.0``, a version);
   a number right after ``Eq.``/``Eqs.``/``Section``/``§``/``Table``/``Figure``/``notebook``/``Sec.``
   or ``Exercise``, and after ``and``/``,``/``-`` in a list of such references (``Sections 7.3 and
   7.4``); a section number of the series (a markdown heading ``## 7.4 ...``) after ``in``/``see``/
   ``of``/``from``/``at``; and a heading's own number.
4. The paper's numbers: a setting of its Section 4.2 as the paper presets hold it
   (:data:`PAPER_SETTINGS` of ``mosi``, ``mosei``, ``ur_funny``: ``0.5`` (tau), ``72`` (alpha),
   ``2e-2`` (beta), ...), the few numbers of its text in :data:`PAPER_TEXT` (Figure 4a's ``0.33``),
   and a value of its Tables 1-4 (:mod:`fdmer_lite.metrics`) written as the paper prints it: in
   percent (``84.2``) or as a fraction with three decimals or more (``0.842``, an MAE ``0.845``).
   The value must be equal; a measurement that happens to equal a paper number is missed.

Everything else is counted: a measured figure in the prose is a finding a cell should print.
"""

from __future__ import annotations

import re
import sys
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PER_NOTEBOOK, SERIES = 8, 40
#: Numbers the paper's text quotes outside its tables: Figure 4a's discriminator probability on C_m.
PAPER_TEXT = (0.33,)

_FENCE = re.compile(r"```.*?```", re.S)
_CODE = re.compile(r"`[^`\n]*`")
_MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]+\$", re.S)
_LINK_TARGET = re.compile(r"\]\([^)]*\)")
_HEADING = re.compile(r"^#{1,6}\s+(\d+(?:\.\d+)+)\b", re.M)
_NUMBER = re.compile(r"(?<![\w.])(\d+\.\d+(?:\.\d+)*|\.\d+)(?:e[-+]?\d+)?(?![\w])", re.I)
_REFERENCE_WORDS = re.compile(
    r"(?:eqs?\.|equations?|sections?|secs?\.|§|tables?|figures?|figs?\.|notebooks?|exercises?|solutions?|step|theorem|facet|version|v)\s*$", re.I)
_LIST_JOIN = re.compile(r"(?:,|and|or|to|-|–)\s*$", re.I)


#: The settings the paper's Section 4.2 gives, as the paper presets hold them.
PAPER_SETTINGS = ("loss.beta", "loss.gamma", "train.lr", "train.batch_size",
                  "train.epochs", "model.d_k", "model.d_disc")


@lru_cache(maxsize=1)
def paper_numbers() -> tuple[frozenset[float], frozenset[float]]:
    """(the values of the paper's Tables 1-4, its settings and :data:`PAPER_TEXT`), as floats.

    Table values are held both as printed in percent (``84.2``) and as fractions (``0.842``)."""
    sys.path.insert(0, str(ROOT))
    from fdmer_lite import metrics as paper
    from fdmer_lite.config import get_preset

    tables: set[float] = set()
    for name in dir(paper):
        table = getattr(paper, name)
        if not (name.startswith("TABLE") and isinstance(table, dict)):
            continue
        stack = [table]
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                stack.extend(item.values())
            elif isinstance(item, (int, float)) and not isinstance(item, bool):
                tables.update({float(item), round(float(item) * 100, 6)})
    from fdmer_lite.losses import ALPHA, TAU
    settings: set[float] = set(PAPER_TEXT) | {ALPHA, TAU}
    for preset in ("mosi", "mosei", "ur_funny"):
        cfg = get_preset(preset)
        for dotted in PAPER_SETTINGS:
            section, field = dotted.split(".")
            settings.add(float(getattr(getattr(cfg, section), field)))
    return frozenset(tables), frozenset(settings)


def _is_paper_number(text: str) -> bool:
    """A setting as written (``0.5``, ``2e-2``); a table value as the paper prints it: in percent
    (above 1, ``84.2``) or as a fraction with at least three decimals (``0.842``, ``0.845``), so
    that a short ``0.4`` is not taken for Table 1's ``40.0``."""
    value = float(text)
    tables, settings = paper_numbers()
    if any(abs(v - value) < 1e-12 for v in settings):
        return True
    decimals = len(text.split(".")[1].lower().split("e")[0]) if "." in text else 0
    printed_like_the_paper = value > 1 or decimals >= 3
    return printed_like_the_paper and any(abs(v - value) < 1e-9 for v in tables)


def _prose(cell: str) -> str:
    for pattern in (_FENCE, _CODE, _MATH, _LINK_TARGET):
        cell = pattern.sub(" ", cell)
    return cell


def _section_numbers(cells: list[str]) -> set[str]:
    return {m.group(1) for cell in cells for m in _HEADING.finditer(cell)}


def cell_decimals(cell: str, sections: set[str] = frozenset()) -> list[str]:
    """The measured decimals of one markdown cell, by the rule of this module's docstring."""
    text = _prose(cell)
    heading_numbers = {m.start(1) for m in _HEADING.finditer(text)}
    found, after_reference, previous_end = [], False, 0
    for match in _NUMBER.finditer(text):
        number, before = match.group(0), text[max(0, match.start() - 14):match.start()]
        if match.start() in heading_numbers or number.count(".") > 1:
            continue
        between = text[previous_end:match.start()]
        is_reference = bool(_REFERENCE_WORDS.search(before)) or (
            after_reference and _LIST_JOIN.search(between) and len(between) < 8)
        if not is_reference and number in sections and re.search(r"(?:in|see|of|from|at)\s*$", before, re.I):
            is_reference = True
        previous_end, after_reference = match.end(), is_reference
        if is_reference or _is_paper_number(number.rstrip("%")):
            continue
        found.append(number)
    return found


def prose_decimals(source: Path) -> list[str]:
    """The measured decimals of one tutorial's markdown cells, in order."""
    import jupytext

    markdown = [c.source for c in jupytext.read(source).cells if c.cell_type == "markdown"]
    sections = _section_numbers(markdown)
    return [d for text in markdown for d in cell_decimals(text, sections)]

