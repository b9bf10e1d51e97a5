"""The runs shipped with the package: used only while they match the code, and kept matching."""

import json

import pytest

from tiny_sweep import TINY, A, B, count_fits  # noqa: F401 (a fixture)

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
    _ship(tmp_path, "emotion-gamma0", cfg.replace(train={"device": "cuda"}), fp, {"mae": 0.5})   # device: not learning
    assert shipped.load_contrast("gamma0", cfg, fp, folder=tmp_path) == {"mae": 0.5}
    assert shipped.load_contrast("gamma0", cfg, {**fp, "content": "abd"}, folder=tmp_path) is None
    assert shipped.load_contrast("gamma0", cfg.replace(train={"epochs": 29}), fp, folder=tmp_path) is None
    assert shipped.load_contrast("losses_off", cfg, fp, folder=tmp_path) is None            # not shipped
    (tmp_path / "emotion-gamma0" / "metrics.json").write_text('{"mae": ')                    # truncated
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
def test_the_shipped_runs_match_todays_code():
    # Generates the lessons' full-size benchmarks (tens of seconds): a change to the preset, the
    # generator, the model or a run's list makes a shipped run stale, and this test names it.
    from fdmer_lite.data.synthetic import DEFAULT_SIZES, make_benchmark
    from fdmer_lite.experiments.runs import data_fingerprint

    data = {kind: make_benchmark(kind, task="regression", **DEFAULT_SIZES) for kind in ("emotion", "humor")}
    for name, (kind, _) in shipped.LESSON_RUNS.items():
        run = shipped.find_lesson_run(name, shipped.lesson_run_config(name), data[kind])
        assert run is not None, f"shipped run {name!r} is stale or missing: run python benchmarks/ship_runs.py"
        assert run.history and run.loaded, name
        assert {"mae", "common_factor_r2", "common_modality_acc", "disc_prob_common"} <= set(run.metrics), name
    fp = data_fingerprint(data["emotion"])
    base = get_preset("synthetic")
    for name in shipped.CONTRASTS:                     # the demo's contrast reads two of them
        assert shipped.load_contrast(name, shipped.contrast_config(base, name), fp) is not None, name
    from fdmer_lite import sweep as sw
    spec = sw.default_spec(fast=False)
    if (shipped.SWEEP_DIR / spec.slug).exists():      # the explorer's cells, where they ship
        values = sw.default_values(fast=False)
        want = {sw.cell_name(b, g) for b, g in sw.cross(values, values, center=sw.PAPER_SETTING)}
        have = set(shipped.shipped_cells(spec, data["emotion"]))
        assert want <= have, f"shipped sweep cells stale or missing: {sorted(want - have)}"
    assert {p.name for p in shipped.SWEEP_DIR.glob("*")} <= {spec.slug} if shipped.SWEEP_DIR.exists() else True
    size = sum(f.stat().st_size for f in shipped.SHIPPED_DIR.rglob("*") if f.is_file())
    assert size <= 20e6, f"the shipped runs take {size / 1e6:.1f} MB (budget 20 MB)"
    extra = {p.name for p in shipped.LESSONS_DIR.iterdir()} - set(shipped.LESSON_RUNS)
    assert not extra, f"shipped folders no run list names: {sorted(extra)}"


def test_shipped_sweep_cells_seed_a_cache_only_when_they_match(tmp_path, count_fits):
    from fdmer_lite import sweep as sw

    ship = tmp_path / "shipped"
    made = sw.SweepCache(ship / TINY.slug, TINY)
    assert not made.fill([A, B], log=None)["failed"] and len(count_fits) == 2
    cache = sw.SweepCache(tmp_path / "mine" / TINY.slug, TINY)
    assert shipped.seed_sweep(cache, folder=ship) == sorted([sw.cell_name(*A), sw.cell_name(*B)])
    assert cache.fill([A, B], log=None)["computed"] == [] and len(count_fits) == 2      # nothing trained
    assert cache.load(*A).metrics["mae"] == made.load(*A).metrics["mae"]
    assert shipped.seed_sweep(cache, folder=ship) == []                                # never replaced
    other = sw.SweepSpec(**{**TINY.to_dict(), "data": {**TINY.data, "seed": 1}})
    assert shipped.shipped_cells(other, folder=ship) == {}                             # another spec
    assert set(shipped.shipped_cells(TINY, folder=ship)) == {sw.cell_name(*A), sw.cell_name(*B)}
    with open(made.cell_dir(*B) / "metrics.json", "a") as f:                           # damaged
        f.write(" ")
    assert set(shipped.shipped_cells(TINY, folder=ship)) == {sw.cell_name(*A)}
    fresh = sw.SweepCache(tmp_path / "other" / TINY.slug, TINY)
    fresh.fill([B], log=None)                           # its own cell B, trained here
    assert shipped.seed_sweep(fresh, folder=ship) == [sw.cell_name(*A)]
