"""The runs bundled with the package: a read-only second root, used only while they match the
code, and kept matching (every bundled run is loaded and checked by the slow test)."""

import json

import numpy as np
import pytest

from fdmer_lite import lessons
from fdmer_lite.config import get_preset
from fdmer_lite.experiments import runs, runstore


def test_a_bundled_contrast_is_used_only_when_config_and_data_match(tmp_path, tiny_data, fast_config):
    base = fast_config.replace(train={"epochs": 1})
    cfg = lessons.contrast_config(base, "gamma0")
    assert cfg.loss.gamma == 0.0 and cfg.loss.beta == base.loss.beta
    made = runs.obtain(cfg.replace(train={"device": "cpu"}), tiny_data, tmp_path / "emotion-gamma0")
    found = lessons.contrast_metrics(base.replace(train={"device": "cuda"}), tiny_data, folder=tmp_path)
    assert found == {"gamma0": made.metrics, "losses_off": None}                # not bundled: None
    assert lessons.contrast_metrics(base.replace(train={"seed": 3}), tiny_data, folder=tmp_path)["gamma0"] is None
    other = tiny_data.select("ta")                                              # other data
    assert lessons.contrast_metrics(base, other, folder=tmp_path)["gamma0"] is None
    with open(tmp_path / "emotion-gamma0" / "metrics.json", "a") as f:          # damaged
        f.write(" ")
    with pytest.warns(UserWarning, match="metrics.json"):
        assert lessons.contrast_metrics(base, tiny_data, folder=tmp_path)["gamma0"] is None


def test_contrast_verdicts_follow_the_numbers():
    this = {"common_factor_r2": 0.9, "common_modality_acc": 0.5, "disc_prob_common": 0.3}
    better = lessons.contrast_verdict(this, {"losses_off": {"common_factor_r2": 0.8},
                                             "gamma0": {"common_modality_acc": 0.9}})
    assert better[0].startswith("With the paper's losses C holds more") and "0.900 against 0.800" in better[0]
    assert "more easily (0.900 against 0.500" in better[-1]
    worse = lessons.contrast_verdict(this, {"losses_off": {"common_factor_r2": 0.95},
                                            "gamma0": {"common_modality_acc": 0.4}})
    assert "holds no more" in worse[0] and "no more easily" in worse[-1]
    both = lessons.contrast_verdict(this, {"losses_off": None, "gamma0": {"disc_prob_common": 0.05,
                                                                         "common_modality_acc": 0.5}})
    assert any("0.050 against 0.300" in line for line in both)
    none = lessons.contrast_verdict(this, {"losses_off": None, "gamma0": None})
    assert len(none) == 1 and "No bundled comparison run matches" in none[0]
    table = lessons.contrast_markdown(lessons.contrast_rows(this, {"losses_off": None, "gamma0": {**this}}))
    rows = table.splitlines()[2:]
    assert len(rows) == 3 and "no bundled run matches" in rows[1] and "| 0.900 | 0.300 | 0.500 |" in rows[2]


@pytest.mark.slow
def test_every_bundled_run_loads_and_matches_todays_code(tmp_path):
    # Generates the lessons' full-size benchmarks (tens of seconds): a change to the preset, the
    # generator, the model or a run's list makes a bundled run stale, and this test names it.
    # Every part must be there: a missing bundle fails, it is not skipped.
    from fdmer_lite import sweep as sw
    from fdmer_lite.ablations import LESSON_GRID, benchmark_setup, grid_bundle, plan, select_variants
    from fdmer_lite.data.synthetic import DEFAULT_SIZES, make_benchmark

    bundled = runs.BUNDLED
    assert {p.name for p in bundled.iterdir()} == {"lessons", "sweep", "grid", "projections"}
    data = {kind: make_benchmark(kind, task="regression", **DEFAULT_SIZES) for kind in ("emotion", "humor")}
    assert {p.name for p in lessons.BUNDLED_LESSONS.iterdir()} == set(lessons.LESSON_RUNS)
    for name, (kind, _) in lessons.LESSON_RUNS.items():                # whole runs: weights load
        whole = name not in lessons.SPREAD_RUNS                         # the seeds: numbers only
        run = runs.find(lessons.lesson_run_config(name), data[kind], lessons.BUNDLED_LESSONS / name,
                        weights=whole)
        assert run is not None, f"bundled run {name!r} is stale: run python tools/ship_runs.py"
        assert run.history and run.loaded and (run.trainer is not None) == whole, name
        assert (lessons.BUNDLED_LESSONS / name / "model.pt").exists() == whole, name
        assert {"mae", "common_factor_r2", "common_modality_acc", "disc_prob_common"} <= set(run.metrics), name
    contrasts = lessons.contrast_metrics(get_preset("synthetic"), data["emotion"])   # the demo reads two
    assert all(m is not None for m in contrasts.values()), contrasts

    spec = sw.default_spec(fast=False)                                  # the explorer's cells
    assert {p.name for p in sw.BUNDLED_SWEEPS.iterdir()} == {spec.slug}
    cache = sw.SweepCache(tmp_path / spec.slug, spec)
    assert cache.bundled == sw.BUNDLED_SWEEPS / spec.slug
    values = sw.default_values(fast=False)
    want = sw.cross(values, values, center=sw.PAPER_SETTING)
    there = {sw.parse_cell_name(p.name) for p in cache.bundled.iterdir() if p.is_dir()}
    assert there == set(want), f"bundled cells: {sorted(there)}"
    for b, g in want:
        assert cache.has(b, g), f"bundled sweep cell {sw.cell_name(b, g)} is stale"
        cell = cache.load(b, g)
        assert cell.path.parent == cache.bundled and cell.reps.common["t"].dtype == np.float32
        assert all(cache.has_projection(b, g, m) for m in ("tsne", "umap", "pca")), sw.cell_name(b, g)
    assert not (tmp_path / spec.slug / sw.cell_name(*want[0])).exists()   # read where it is

    base, grid_data, label = benchmark_setup(LESSON_GRID["kind"])       # the Table-4 grid
    assert {p.name for p in grid_bundle(label).parent.iterdir()} == {label}
    planned = plan(base, grid_data, grid_data.load().modalities, select_variants(LESSON_GRID["variants"]),
                   LESSON_GRID["seeds"], tmp_path / "grid", grid_bundle(label))
    specs = {r.spec.name: r.spec for r in planned if r.spec is not None}
    assert {p.name for p in grid_bundle(label).iterdir()} == set(specs)
    for name, spec in specs.items():
        found = spec.find()
        assert found is not None and found.path == spec.bundled, f"bundled grid run {name} is stale"
        assert "mae" in found.metrics

    index = json.loads((lessons.BUNDLED_PROJECTIONS / "index.json").read_text())   # notebook 7's
    for name, sha in index["model_sha256"].items():
        now = runstore.read_finished(lessons.BUNDLED_LESSONS / name)["files"]["model.pt"]["sha256"]
        assert sha == now, f"the bundled projections of {name} are stale: run tools/ship_runs.py --projections"
    assert len(list(lessons.BUNDLED_PROJECTIONS.glob("*.npy"))) == len(index["runs"]) * len(index["methods"])
    size = sum(f.stat().st_size for f in bundled.rglob("*") if f.is_file())
    assert size <= 20e6, f"the bundled runs take {size / 1e6:.1f} MB (budget 20 MB)"


def test_bundled_grid_runs_are_skipped_only_when_they_match(tmp_path, monkeypatch):
    import sys
    from pathlib import Path

    from fdmer_lite import ablations
    from fdmer_lite.experiments.runs import DataSpec
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    from ship_runs import bundle_copy

    base = get_preset("fast").replace(train={"epochs": 1, "device": "cpu"})
    data = DataSpec("synthetic", options=dict(kind="emotion", n_train=48, n_valid=16, n_test=24, seq_len=8, seed=0))
    args = dict(variants="wo_con", seeds=(1,), workers=0, progress=False, log=None, dataset_label="tiny")
    monkeypatch.setattr(ablations, "BUNDLED", tmp_path / "bundle")
    made = ablations.run_ablation(base, data, out_dir=tmp_path / "made", **args)
    ids = sorted(r.spec.name for r in made.runs)
    assert len(ids) == 2 and len(made.report.computed) == 2
    for run_id in ids:                                   # what tools/ship_runs.py --grid bundles
        bundle_copy(tmp_path / "made" / run_id, tmp_path / "bundle" / "grid" / "tiny" / run_id, weights=False,
                    leave_out=("run.json", "history.json"))
    assert not list((tmp_path / "bundle").rglob("model.pt")) and not list((tmp_path / "bundle").rglob("run.json"))
    mine = ablations.run_ablation(base, data, out_dir=tmp_path / "mine", **args)
    assert mine.report.computed == [] and sorted(mine.report.bundled) == ids       # nothing trained
    assert [r["mae_mean"] for r in mine.rows] == [r["mae_mean"] for r in made.rows]
    assert not [p for p in (tmp_path / "mine").iterdir() if p.is_dir()]           # nothing copied
    assert ablations.load_ablation(tmp_path / "mine").rows == mine.rows            # the tables again
    other = ablations.run_ablation(base.replace(train={"epochs": 2}), data, out_dir=tmp_path / "o", **args)
    assert len(other.report.computed) == 2                                         # another configuration
    with open(tmp_path / "bundle" / "grid" / "tiny" / ids[0] / "metrics.json", "a") as f:   # damaged
        f.write(" ")
    with pytest.warns(UserWarning, match="metrics.json"):
        damaged = ablations.run_ablation(base, data, out_dir=tmp_path / "d", **args)
    assert damaged.report.computed == ids[:1] and damaged.report.bundled == ids[1:]


def test_the_projection_cache_reads_the_bundled_projections_and_writes_only_its_own(tmp_path):
    from fdmer_lite import viz

    ship, mine = tmp_path / "ship", tmp_path / "mine"
    X = np.random.default_rng(0).normal(size=(40, 5))
    made = runs.ProjectionCache(ship)
    first = viz.project(X, "pca", cache=made)                                   # computed, written
    assert [f.suffix for f in ship.iterdir()] == [".npy"]
    cache = runs.ProjectionCache(mine, ship)
    key = next(ship.iterdir()).stem
    assert key in cache and np.array_equal(cache[key], first)                   # read from the bundle
    np.testing.assert_array_equal(viz.project(X, "pca", cache=cache), first)
    assert not mine.exists()                                                    # nothing computed here
    viz.project(X[:30], "pca", cache=cache)                                     # another array: computed
    assert len(list(mine.glob("*.npy"))) == 1 and len(list(ship.glob("*.npy"))) == 1
    assert "pca-nothing" not in cache
    with pytest.raises(KeyError):
        cache["pca-nothing"]
