"""Shared test set-up. The suite (and the notebooks nbval runs) use FAST mode unless told otherwise."""

import os

os.environ.setdefault("FDMER_LITE_FAST", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

# The test models are tiny: one thread is as fast, and far faster on a busy shared machine where
# two threads oversubscribe the cores. FDMER_LITE_THREADS overrides.
torch.set_num_threads(int(os.environ.get("FDMER_LITE_THREADS", "").strip() or "1"))


@pytest.fixture
def tiny_data():
    """A very small known-factor benchmark (regression)."""
    from fdmer_lite.data.synthetic import make_benchmark
    return make_benchmark("emotion", n_train=96, n_valid=32, n_test=48, seq_len=12, seed=0)


@pytest.fixture
def fast_config():
    from fdmer_lite.config import get_preset
    return get_preset("fast").replace(train={"epochs": 2, "device": "cpu"})


@pytest.fixture
def denormals_kept():
    """The CPU keeps denormal floats for the test (skipped where it cannot switch), and again after."""
    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush denormals (torch.set_flush_denormal)")
    yield
    torch.set_flush_denormal(False)
