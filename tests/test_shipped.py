"""The runs shipped with the package: used only while they match the code, and kept matching."""

import json

import pytest

from fdmer_lite import shipped
from fdmer_lite.config import get_preset


def _ship(folder, name, config, fingerprint, metrics):
    (folder / name).mkdir(parents=True)
    (folder / name / "config.json").write_text(json.dumps({"config": config.to_dict(), "fingerprint": fingerprint}))
    (folder / name / "metrics.json").write_text(json.dumps(metrics))


def test_a_shipped_run_is_used_only_when_config_and_fingerprint_match(tmp_path):
    base = get_preset("synthetic")
    cfg = shipped.contrast_config(base, "gamma0")
    assert cfg.loss.gamma == 0.0 and cfg.loss.beta == base.loss.beta
    fp = {"content": "abc", "sizes": {"train": 3}}
    _ship(tmp_path, "gamma0", cfg.replace(train={"device": "cuda"}), fp, {"mae": 0.5})   # device is not learning
    assert shipped.load_contrast("gamma0", cfg, fp, folder=tmp_path) == {"mae": 0.5}
    assert shipped.load_contrast("gamma0", cfg, {**fp, "content": "abd"}, folder=tmp_path) is None
    assert shipped.load_contrast("gamma0", cfg.replace(train={"epochs": 29}), fp, folder=tmp_path) is None
    assert shipped.load_contrast("losses_off", cfg, fp, folder=tmp_path) is None            # not shipped
    (tmp_path / "gamma0" / "metrics.json").write_text('{"mae": ')                            # truncated
    assert shipped.load_contrast("gamma0", cfg, fp, folder=tmp_path) is None


def test_contrast_verdicts_follow_the_numbers():
    this = {"common_factor_r2": 0.9, "common_modality_acc": 0.5, "disc_prob_common": 0.3}
    better = shipped.contrast_verdict(this, {"losses_off": {"common_factor_r2": 0.8},
                                             "gamma0": {"common_modality_acc": 0.9}})
    assert better[0].startswith("With the paper's losses C holds more") and "0.900 against 0.800" in better[0]
    assert "more easily (0.900 against 0.500" in better[-1]
    worse = shipped.contrast_verdict(this, {"losses_off": {"common_factor_r2": 0.95},
                                            "gamma0": {"common_modality_acc": 0.4}})
    assert "holds no more" in worse[0] and "no more easily" in worse[-1]
    both = shipped.contrast_verdict(this, {"losses_off": None, "gamma0": {"disc_prob_common": 0.05,
                                                                         "common_modality_acc": 0.5}})
    assert any("0.050 against 0.300" in line for line in both)
    none = shipped.contrast_verdict(this, {"losses_off": None, "gamma0": None})
    assert len(none) == 1 and "No shipped comparison run matches" in none[0]
    table = shipped.contrast_markdown(shipped.contrast_rows(this, {"losses_off": None, "gamma0": {**this}}))
    rows = table.splitlines()[2:]
    assert len(rows) == 3 and "no shipped run matches" in rows[1] and "| 0.900 | 0.300 | 0.500 |" in rows[2]


@pytest.mark.slow
def test_the_shipped_runs_match_todays_demo():
    # Generates the demo's full-size benchmark (about 20-50 s): a change to the preset, the
    # generator or the contrasts makes the shipped runs stale, and this test says so.
    from fdmer_lite.data.synthetic import make_benchmark
    from fdmer_lite.experiments.runs import data_fingerprint
    fp = data_fingerprint(make_benchmark("emotion"))
    base = get_preset("synthetic")
    for name in shipped.CONTRASTS:
        m = shipped.load_contrast(name, shipped.contrast_config(base, name), fp)
        assert m is not None, f"shipped run {name!r} is stale: run python benchmarks/ship_runs.py"
        assert {"mae", "common_factor_r2", "common_modality_acc", "disc_prob_common"} <= set(m)
