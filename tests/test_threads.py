"""The one thread policy: ``config.thread_count`` ($FDMER_LITE_THREADS, else
``config.default_thread_count``), applied by ``experiments.runs.set_threads`` when a run or an
entry point starts; nothing written to the environment at import."""

import json
import os
import subprocess
import sys

import pytest
import torch

from fdmer_lite import config, lessons
from fdmer_lite.experiments import runs


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_the_count_is_the_variable_else_the_default(monkeypatch):
    monkeypatch.delenv("FDMER_LITE_THREADS", raising=False)
    assert config.thread_count() == config.default_thread_count() == 1
    monkeypatch.setenv("FDMER_LITE_THREADS", " 3 ")
    assert config.thread_count() == 3
    monkeypatch.setenv("FDMER_LITE_THREADS", "")
    assert config.thread_count() == 1
    monkeypatch.setattr(config, "default_thread_count", lambda: 5)     # the one place to change it
    assert config.thread_count() == 5


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5"])
def test_a_bad_variable_is_refused_by_name(monkeypatch, value):
    monkeypatch.setenv("FDMER_LITE_THREADS", value)
    with pytest.raises(ValueError, match=r"\$FDMER_LITE_THREADS: expected a whole number >= 1"):
        config.thread_count()


def test_the_command_line_the_notebooks_and_every_run_apply_the_same_policy(
        monkeypatch, restore_threads, tiny_data, fast_config, tmp_path):
    seen = []
    monkeypatch.setattr(torch, "set_num_threads", seen.append)
    monkeypatch.setenv("FDMER_LITE_THREADS", "3")
    assert runs.set_threads() == 3
    for fast in ("0", "1"):                                            # FAST mode picks no count of its own
        monkeypatch.setenv("FDMER_LITE_FAST", fast)
        lessons.setup(verbose=False)
    runs.obtain(fast_config.replace(train={"epochs": 1}), tiny_data, tmp_path / "run")
    assert seen == [3, 3, 3, 3]
    monkeypatch.delenv("FDMER_LITE_THREADS")
    runs.obtain(fast_config.replace(train={"epochs": 1}), tiny_data, tmp_path / "run")   # found: still set
    assert seen[-1] == config.default_thread_count()


def test_importing_the_package_writes_nothing_to_the_environment():
    code = ("import json, os\nbefore = dict(os.environ)\n"
            "import fdmer_lite, fdmer_lite.config, fdmer_lite.cli, fdmer_lite.lessons, fdmer_lite.sweep\n"
            "print(json.dumps({k: v for k, v in os.environ.items() if before.get(k) != v}))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMP_")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {}
