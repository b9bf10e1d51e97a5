"""The names of the scores (``score_names.SCORES``): every key a command shows is in it, and it
fits a markdown table."""

from fdmer_lite import cli, lessons, sweep
from fdmer_lite.ablations import _SCORE_COLUMNS
from fdmer_lite.metrics import REGRESSION_KEYS
from fdmer_lite.score_names import DISENTANGLEMENT, SCORES


def test_every_shown_key_is_in_the_table():
    shown = set(DISENTANGLEMENT) | set(sweep.MATRIX_KEYS) | set(sweep.SCORE_KEYS) | set(lessons.CONTRAST_KEYS)
    shown |= {c[0] for c in _SCORE_COLUMNS}
    assert shown <= set(SCORES)
    assert {"mae", "corr", "acc2_non0"} <= set(REGRESSION_KEYS)


def test_names_and_ideals_fit_a_markdown_table():
    for s in SCORES.values():
        assert s.key and s.name and s.ideal and "|" not in s.name + s.ideal, s


def test_the_demo_table_names_each_score_once():
    m = {"mae": 1.0, "bayes_mae": 0.5, "ridge_mae": 1.2, "mean_mae": 1.5, **{k: 0.5 for k in DISENTANGLEMENT}}
    _, scores = cli.demo_rows(m)
    assert [r[1] for r in scores] == list(DISENTANGLEMENT)
    assert [r[0] for r in scores] == [SCORES[k].name for k in DISENTANGLEMENT]
