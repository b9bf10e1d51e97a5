"""The default intra-op thread count (config.default_threads) and the OpenMP wait policy, as the
command line and the notebooks' setup apply them. benchmarks/results/loaded-threads.md times the choice."""

import os
import subprocess
import sys

import pytest
import torch

from fdmer_lite import cli, config, lessons


@pytest.mark.parametrize("cores, policy, expected", [
    (1, "PASSIVE", 1), (2, "PASSIVE", 1), (3, "passive ", 1), (4, "PASSIVE", 2), (16, "PASSIVE", 8),
    (16, None, 1), (16, "ACTIVE", 1), (2, None, 1), (64, "", 1),
])
def test_default_threads_is_half_the_cores_only_when_idle_threads_sleep(cores, policy, expected):
    assert config.default_threads(cores, policy) == expected


def test_default_threads_rejects_a_machine_without_cores():
    with pytest.raises(ValueError, match="cores"):
        config.default_threads(0, "PASSIVE")


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def eight_passive_cores(monkeypatch):
    monkeypatch.setattr(config, "usable_cores", lambda: 8)
    monkeypatch.setattr(config, "OPENMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.delenv("FDMER_LITE_THREADS", raising=False)


def test_choose_threads_takes_the_variable_first(monkeypatch, eight_passive_cores):
    assert config.choose_threads() == 4
    monkeypatch.setenv("FDMER_LITE_THREADS", "3")
    assert config.choose_threads() == 3
    monkeypatch.setattr(config, "OPENMP_WAIT_POLICY", None)
    monkeypatch.delenv("FDMER_LITE_THREADS")
    assert config.choose_threads() == 1


def test_the_command_line_and_the_notebooks_apply_the_same_default(monkeypatch, eight_passive_cores,
                                                                    restore_threads):
    seen = []
    monkeypatch.setattr(torch, "set_num_threads", seen.append)
    cli.apply_threads()
    monkeypatch.setenv("FDMER_LITE_FAST", "0")
    lessons.setup(verbose=False)
    monkeypatch.setenv("FDMER_LITE_FAST", "1")
    lessons.setup(verbose=False)
    assert seen == [4, 4, 1]


def _policy_in_child(env_policy, torch_first):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if env_policy is not None:
        env["OMP_WAIT_POLICY"] = env_policy
    code = ("import os\n" + ("import torch\n" if torch_first else "") +
            "from fdmer_lite import config\n"
            "print(os.environ['OMP_WAIT_POLICY'], config.OPENMP_WAIT_POLICY)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_importing_the_package_asks_openmp_for_sleeping_idle_threads_unless_told_otherwise():
    assert _policy_in_child(None, torch_first=False) == ["PASSIVE", "PASSIVE"]
    assert _policy_in_child("ACTIVE", torch_first=False) == ["ACTIVE", "ACTIVE"]
    # torch loaded first: its OpenMP read no policy, so the default stays at one thread
    assert _policy_in_child(None, torch_first=True) == ["PASSIVE", "None"]
