"""benchmarks/denormals.py: what counts as denormal, and that the census finds one where it is."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import denormals  # noqa: E402

from fdmer_lite.train import Trainer, make_optimizer  # noqa: E402


def test_denormal_count_takes_the_non_zero_values_below_the_smallest_normal(denormals_kept):
    # float32's smallest normal number is 2**-126 (about 1.18e-38); 2**-149 is the smallest denormal
    x = torch.tensor([0.0, 2.0 ** -127, -(2.0 ** -140), 2.0 ** -149, 2.0 ** -126, -(2.0 ** -126), 1.0, 2.0 ** -150])
    assert denormals.denormal_count(x) == 3               # 2**-150 rounds to zero in float32
    assert denormals.denormal_count(x.double()) == 0      # float64 holds them as normal numbers


def test_the_census_finds_a_denormal_planted_in_a_weight_and_in_adams_moment(tiny_data, fast_config, denormals_kept):
    trainer = Trainer(fast_config, tiny_data)
    trainer.optimizer = make_optimizer(trainer.model.parameters(), fast_config.train, trainer.device)
    batch = next(iter(trainer.loader("train")))
    weight = next(trainer.model.parameters())
    clean = dict((where, n) for where, n, _ in denormals.census(trainer, batch))
    assert clean["parameters"] == 0
    with torch.no_grad():
        weight.view(-1)[0] = 2.0 ** -130
    trainer.optimizer.state[weight] = {"exp_avg": torch.full_like(weight, 2.0 ** -135),
                                       "exp_avg_sq": torch.zeros_like(weight)}
    rows = {where: (n, total) for where, n, total in denormals.census(trainer, batch)}
    assert rows["parameters"] == (1, sum(p.numel() for p in trainer.model.parameters()))
    assert rows["Adam exp_avg"] == (weight.numel(), weight.numel())
    assert rows["Adam exp_avg_sq"][0] == 0
