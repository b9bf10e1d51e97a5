"""A tiny beta/gamma sweep shared by ``test_sweep.py`` and ``test_widgets.py``.

Cells here are tiny (fast preset, one epoch, 64 training clips of length 10), so the real
training paths run in seconds.
"""

import pytest

from fdmer_lite import sweep as sw
from fdmer_lite import train as train_mod

TINY = sw.SweepSpec(preset="fast", overrides={"train": {"epochs": 1}},
                    data={"kind": "emotion", "seed": 0, "n_train": 64, "n_valid": 32, "n_test": 32,
                          "seq_len": 10},
                    max_points=20)
A, B, C = (0.02, 0.02), (0.0, 0.02), (2.0, 0.02)
RUN_FILES = ("config.json", "history.json", "metrics.json", "model.pt")


@pytest.fixture
def count_fits(monkeypatch):
    """Count Trainer.fit calls (every training goes through it)."""
    calls = []
    original = train_mod.Trainer.fit

    def fit(self, *args, **kwargs):
        calls.append(self.config.loss.beta)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(train_mod.Trainer, "fit", fit)
    return calls


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """A cache with two finished cells, A and B (shared by the read-only tests)."""
    cache = sw.SweepCache(tmp_path_factory.mktemp("sweep") / "cache", TINY)
    result = cache.fill([A, B], log=None)
    assert result.computed == [sw.cell_name(*A), sw.cell_name(*B)] and not result.failed
    return cache


def title(output: dict) -> str:
    return output["data"]["application/vnd.plotly.v1+json"]["layout"]["title"]["text"]


def no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("training was called")
    monkeypatch.setattr(train_mod.Trainer, "fit", refuse)
