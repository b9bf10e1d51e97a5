"""Shared test set-up. The suite (and the notebooks nbval runs) use FAST mode unless told otherwise."""

import os

os.environ.setdefault("FDMER_LITE_FAST", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

# FDMER_LITE_THREADS overrides (on a shared, overloaded machine one thread is often faster).
torch.set_num_threads(int(os.environ.get("FDMER_LITE_THREADS", max(1, min(2, os.cpu_count() or 1)))))


@pytest.fixture
def tiny_data():
    """A very small known-factor benchmark (regression)."""
    from fdmer_lite.data.synthetic import make_benchmark
    return make_benchmark("emotion", n_train=96, n_valid=32, n_test=48, seq_len=12, seed=0)


@pytest.fixture
def fast_config():
    from fdmer_lite.config import get_preset
    return get_preset("fast").replace(train={"epochs": 2, "progress": False, "device": "cpu"})
