"""The tutorial pairs: ``tutorials/*.py`` (jupytext percent, the sources) and ``notebooks/*.ipynb``.

nbval executes the notebooks (``python -m pytest`` collects ``notebooks/``); this file checks what
execution cannot: every pair exists and is in sync, committed notebooks hold no outputs and no
execution counts, they name a kernel (so JupyterLab does not ask), and every tutorial ends with
a Summary and Exercises. Plus the notebook helpers in ``fdmer_lite.lessons``.

How notebook *values* are checked. nbval's ``nbval-check-output`` tag compares a cell's output
with the output stored in the notebook, but nbval skips the comparison for any cell whose stored
``execution_count`` is None ("unrun reference"), and committed notebooks are clean (no outputs,
no counts). A tag would therefore check nothing, silently. Instead, cells whose values are
deterministic (shapes, parameter counts, equation rebuilds against the library) ``assert``
them (``torch.testing.assert_close``, ``np.testing.assert_allclose``); under ``--nbval-lax``
nbval still fails on any exception, so those checks run in CI.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import jupytext
import nbformat
import pytest

import prose_rule as prose

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "tutorials"
NOTEBOOKS = ROOT / "notebooks"
SOURCES = sorted(TUTORIALS.glob("*.py"))
IPYNBS = sorted(NOTEBOOKS.glob("*.ipynb"))


def _cells(nb):
    """(type, source, tags) per cell, the parts a pair must agree on."""
    return [(c.cell_type, c.source.strip(), tuple(c.get("metadata", {}).get("tags", []))) for c in nb.cells]


def test_there_are_tutorials_numbered_from_01():
    assert SOURCES, "no tutorials/*.py found"
    numbers = [int(p.name[:2]) for p in SOURCES]
    assert numbers[0] == 1 and numbers == sorted(set(numbers)), [p.name for p in SOURCES]
    assert all(re.match(r"^\d\d_[a-z0-9_]+\.py$", p.name) for p in SOURCES), [p.name for p in SOURCES]


def test_every_tutorial_has_a_notebook_and_back():
    assert {p.stem for p in SOURCES} == {p.stem for p in IPYNBS}


def test_jupytext_pairing_is_configured_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    formats = config["tool"]["jupytext"]["formats"]
    assert "notebooks///ipynb" in formats and "tutorials///py:percent" in formats


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_pair_is_in_sync(source):
    ipynb = NOTEBOOKS / f"{source.stem}.ipynb"
    from_py = jupytext.read(source)
    committed = nbformat.read(ipynb, as_version=4)
    assert _cells(from_py) == _cells(committed), (
        f"{ipynb.name} differs from {source.name}: run `jupytext --sync {source.relative_to(ROOT)}`")


@pytest.mark.parametrize("ipynb", IPYNBS, ids=lambda p: p.stem)
def test_notebook_is_committed_clean(ipynb):
    nb = nbformat.read(ipynb, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert not cell.outputs, f"{ipynb.name}: cell {i} holds outputs (clear them before committing)"
            assert cell.execution_count is None, f"{ipynb.name}: cell {i} has an execution count"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", \
        f"{ipynb.name}: metadata.kernelspec.name must be 'python3' (JupyterLab asks for a kernel otherwise)"
    assert "widgets" not in nb.metadata, f"{ipynb.name}: saved widget state in metadata"


def _is_solution(cell) -> bool:
    meta = cell.get("metadata", {})
    return (cell.cell_type == "code" and "solution" in meta.get("tags", [])
            and meta.get("jupyter", {}).get("source_hidden") is True)


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_tutorial_opens_with_a_title_and_ends_with_summary_and_exercises(source):
    """A title first; at the end a ``## Summary`` cell, a ``## Exercises`` cell, then 2-4 exercises.

    Each exercise is a markdown cell ``### Exercise N.k: ...`` with a hint and the check to call,
    then an empty "your turn" code cell (comments only), then its solution: one code cell tagged
    ``solution`` and collapsed (``jupyter.source_hidden``) that opens with the ``%%solution``
    magic, so it runs only when solutions are switched on (nbval switches them on:
    ``notebooks/conftest.py``). One plain code cell (the imports) may follow ``## Exercises``.
    Every exercise's solution calls its own ``exercises.check("N.k", ...)``, and every check
    named in the notebook exists.
    """
    from fdmer_lite import exercises

    nb = jupytext.read(source)
    cells, n = nb.cells, int(source.name[:2])
    assert cells[0].cell_type == "markdown" and cells[0].source.lstrip().startswith("# "), \
        f"{source.name}: the first cell should be a markdown title"
    heads = [i for i, c in enumerate(cells) if c.cell_type == "markdown" and re.match(r"## Exercises\b", c.source)]
    assert len(heads) == 1, f"{source.name}: expected one '## Exercises' markdown cell"
    start = heads[0]
    assert cells[start - 1].cell_type == "markdown" and re.match(r"## Summary\b", cells[start - 1].source), \
        f"{source.name}: the cell before '## Exercises' should be '## Summary'"
    rest = cells[start + 1:]
    if rest and rest[0].cell_type == "code" and "exercises" in rest[0].source and not _is_solution(rest[0]):
        rest = rest[1:]
    assert len(rest) % 3 == 0 and 2 <= len(rest) // 3 <= 4, \
        f"{source.name}: after '## Exercises', 2-4 triples of (exercise, your turn, solution) cells"
    for k, (task, turn, solution) in enumerate(zip(rest[::3], rest[1::3], rest[2::3]), start=1):
        key = f"{n}.{k}"
        assert task.cell_type == "markdown" and task.source.startswith(f"### Exercise {key}:"), \
            f"{source.name}: exercise {k} should open '### Exercise {key}: ...'"
        assert "*Hint:*" in task.source, f"{source.name}: exercise {key} has no '*Hint:*'"
        assert f'*Check:* `exercises.check("{key}"' in task.source, f"{source.name}: exercise {key} names no check"
        assert "You learn" in task.source or "you learn" in task.source, \
            f"{source.name}: exercise {key} does not say what the student learns"
        assert turn.cell_type == "code" and not _is_solution(turn) and turn.source.startswith(f"# Your turn {key}") \
            and all(line.startswith("#") for line in turn.source.splitlines()), \
            f"{source.name}: exercise {key} should be followed by an empty 'your turn' code cell"
        assert _is_solution(solution) and solution.source.startswith(f"%%solution\n# Solution {key}"), \
            f"{source.name}: exercise {key} should end with its collapsed '%%solution' cell"
        assert f'exercises.check("{key}"' in solution.source, f"{source.name}: solution {key} runs no check"
    text = "\n".join(c.source for c in cells)
    named = set(re.findall(r'exercises\.check\("(\d+\.\d+)"', text))
    assert named <= set(exercises.CHECKS), f"{source.name}: no such checks {named - set(exercises.CHECKS)}"
    assert {key for key in exercises.CHECKS if key.split(".")[0] == str(n)} == \
        {f"{n}.{k}" for k in range(1, len(rest) // 3 + 1)}, f"{source.name}: one check per exercise"


def test_nbval_runs_the_solutions(monkeypatch):
    """The solution cells skip themselves unless FDMER_LITE_SOLUTIONS=1; the notebooks' conftest
    sets it (before nbval starts a kernel, which inherits it), so nbval runs every solution."""
    import runpy

    from fdmer_lite import exercises

    monkeypatch.delenv(exercises.SOLUTIONS_ENV, raising=False)
    runpy.run_path(str(NOTEBOOKS / "conftest.py"))
    assert exercises.solutions_shown() is True


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_markdown_cells_are_short(source):
    nb = jupytext.read(source)
    words = [len(c.source.split()) for c in nb.cells if c.cell_type == "markdown"]
    assert max(words) <= 200, f"{source.name}: a markdown cell has {max(words)} words (200 at most)"


def test_prose_quotes_few_measured_decimals():
    """At most 8 measured decimals in a notebook's markdown, 40 in the series. The counting rule
    is in the docstring of ``tests/prose_rule.py`` (decimal numbers in markdown, not in code
    spans, ``$...$`` math, section or equation references, nor the paper's own numbers)."""
    counts = {p.stem: len(prose.prose_decimals(p)) for p in SOURCES}
    assert all(c <= prose.PER_NOTEBOOK for c in counts.values()), counts
    assert sum(counts.values()) <= prose.SERIES, counts


def test_the_decimal_counter_follows_its_rule():
    sections = {"7.4"}
    assert prose.cell_decimals("The probe reads 0.93 against 0.87.") == ["0.93", "0.87"]
    assert prose.cell_decimals("As in section 7.4, see Eq. 4 and Eqs. 12-14.", sections) == []
    assert prose.cell_decimals("## 7.4 The probe", sections) == []
    assert prose.cell_decimals("Set `beta=0.37` and $x = 0.37$; torch 2.13.0.") == []
    assert prose.cell_decimals("The paper: tau = 0.5, MAE 0.845, Acc-2 84.2 %; ours 0.812.") == ["0.812"]
    assert prose.cell_decimals("Our Acc7 is 0.4 (the paper's MulT: 40.0).") == ["0.4"]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_tutorial_code_cells_are_short(source):
    """d2l style: short cells (median about 6 lines; none a wall of code)."""
    nb = jupytext.read(source)
    lengths = sorted(len(c.source.strip().splitlines()) for c in nb.cells if c.cell_type == "code")
    median = lengths[len(lengths) // 2]
    assert median <= 8, f"{source.name}: median code cell has {median} lines"
    assert lengths[-1] <= 25, f"{source.name}: a code cell has {lengths[-1]} lines"


# ---------------------------------------------------------------- fdmer_lite.lessons


def test_runs_dir_is_the_same_from_any_working_directory(monkeypatch, tmp_path):
    from fdmer_lite import lessons

    monkeypatch.delenv(lessons.RUNS_ENV, raising=False)
    monkeypatch.setenv("FDMER_LITE_FAST", "1")
    monkeypatch.chdir(ROOT)
    from_root = lessons.runs_dir(create=False)
    monkeypatch.chdir(NOTEBOOKS)                      # nbval's working directory
    assert lessons.runs_dir(create=False) == from_root == ROOT / "runs" / "lessons" / "fast"
    monkeypatch.setenv(lessons.RUNS_ENV, str(tmp_path))
    monkeypatch.setenv("FDMER_LITE_FAST", "0")
    assert lessons.runs_dir() == tmp_path / "full" and (tmp_path / "full").is_dir()


def test_lesson_sizes_and_config_follow_the_switch(monkeypatch):
    from fdmer_lite import lessons

    monkeypatch.setenv("FDMER_LITE_FAST", "1")
    assert lessons.benchmark_sizes() == lessons.FAST_SIZES
    assert lessons.lesson_config().name == "fast"
    monkeypatch.setenv("FDMER_LITE_FAST", "0")
    assert lessons.benchmark_sizes()["n_train"] > lessons.FAST_SIZES["n_train"]
    cfg = lessons.lesson_config(loss={"beta": 0.0})
    assert cfg.name == "synthetic" and cfg.loss.beta == 0.0


@pytest.fixture
def one_thread():
    """Tiny models gain nothing from threads; on a busy two-core machine a second one costs a lot."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_lesson_run_trains_then_loads(monkeypatch, tmp_path, tiny_data, fast_config, one_thread):
    from fdmer_lite import lessons

    monkeypatch.setenv(lessons.RUNS_ENV, str(tmp_path))
    fast_config = fast_config.replace(train={"epochs": 1})
    first = lessons.lesson_run("tiny", fast_config, tiny_data, verbose=False)
    assert not first.loaded and (first.path / "model.pt").is_file() and "mae" in first.metrics
    second = lessons.lesson_run("tiny", fast_config, tiny_data, verbose=False)
    assert second.loaded and second.metrics == first.metrics
    assert len(second.history) == len(first.history)
    changed = lessons.lesson_run("tiny", fast_config.replace(loss={"beta": 0.0}), tiny_data, verbose=False)
    assert not changed.loaded                          # another config: trained again


def test_lesson_run_prefers_the_students_run_then_a_matching_bundled_one(monkeypatch, tmp_path, tiny_data,
                                                                         fast_config, one_thread, capsys):
    from fdmer_lite import lessons
    from fdmer_lite.experiments.runs import obtain

    monkeypatch.setenv(lessons.RUNS_ENV, str(tmp_path / "runs"))
    monkeypatch.setattr(lessons, "BUNDLED_LESSONS", tmp_path / "shipped")
    cfg = fast_config.replace(train={"epochs": 1})
    name = "emotion-gamma0"                            # a name of lessons.LESSON_RUNS
    ship = obtain(cfg, tiny_data, tmp_path / "shipped" / name)
    found = lessons.lesson_run(name, cfg.replace(train={"device": "cpu"}), tiny_data)   # the device is not learning
    assert found.loaded and found.path == ship.path and found.metrics == ship.metrics
    assert "loaded (bundled with the package)" in capsys.readouterr().out
    assert not (tmp_path / "runs" / "fast" / name).exists()                   # nothing written for it
    other = lessons.lesson_run(name, cfg.replace(train={"seed": 1}), tiny_data)  # not the shipped config
    assert not other.loaded and other.path == lessons.runs_dir() / name
    assert "training now, at most 1 epochs" in capsys.readouterr().out
    own = lessons.lesson_run(name, cfg.replace(train={"seed": 1}), tiny_data, verbose=False)
    assert own.loaded and own.path == other.path                              # the student's own run
    live = lessons.lesson_run(name, cfg, tiny_data, shipped=False, verbose=False)
    assert not live.loaded and live.path == lessons.runs_dir() / name         # notebook 6 trains live
    assert lessons.lesson_run("not-shipped", cfg, tiny_data, verbose=False).loaded is False


def test_setup_threads(monkeypatch, one_thread):
    import torch

    from fdmer_lite import lessons

    monkeypatch.setenv("FDMER_LITE_FAST", "0")
    monkeypatch.setenv("FDMER_LITE_THREADS", "2")
    assert lessons.setup(verbose=False) is False and torch.get_num_threads() == 2
    monkeypatch.setenv("FDMER_LITE_FAST", "1")
    monkeypatch.delenv("FDMER_LITE_THREADS")
    assert lessons.setup(verbose=False) is True and torch.get_num_threads() == 1
