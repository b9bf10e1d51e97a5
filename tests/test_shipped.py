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
    from fdmer_lite.ablations import benchmark_setup
    grid_base, grid_data, label = benchmark_setup(shipped.GRID["kind"])
    if (shipped.GRID_DIR / label).exists():            # the Table-4 grid's runs, where they ship
        runs = shipped.grid_runs(grid_base, grid_data, shipped.GRID["variants"], shipped.GRID["seeds"],
                                 "unused", data[shipped.GRID["kind"]])
        have = set(shipped.shipped_grid(runs, data[shipped.GRID["kind"]], label))
        there = {p.name for p in (shipped.GRID_DIR / label).iterdir()}
        assert there <= have, f"shipped grid runs stale or no longer planned: {sorted(there - have)}"
    assert {p.name for p in shipped.GRID_DIR.glob("*")} <= {label} if shipped.GRID_DIR.exists() else True
    if shipped.PROJECTIONS_DIR.exists():               # notebook 7's projections: of today's lesson runs
        from fdmer_lite.experiments import runstore
        index = json.loads((shipped.PROJECTIONS_DIR / "index.json").read_text())
        for name, sha in index["model_sha256"].items():
            now = runstore.read_finished(shipped.LESSONS_DIR / name)["files"]["model.pt"]["sha256"]
            assert sha == now, f"the shipped projections of {name} are stale: run ship_runs.py --projections"
        assert len(list(shipped.PROJECTIONS_DIR.glob("*.npy"))) == len(index["runs"]) * len(index["methods"])
    assert {p.name for p in shipped.SHIPPED_DIR.iterdir()} <= {"lessons", "sweep", "grid", "projections"}
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


def test_a_slim_copy_keeps_what_the_explorer_reads_and_reads_back_as_float32(tmp_path, count_fits):
    import numpy as np

    from fdmer_lite import sweep as sw
    from fdmer_lite.analysis import load_representations

    made = sw.SweepCache(tmp_path / "made" / TINY.slug, TINY)
    assert not made.fill([A], log=None)["failed"]
    src, ship = made.cell_dir(*A), tmp_path / "ship" / TINY.slug
    ship.mkdir(parents=True)
    (ship / sw.SPEC_FILE).write_bytes((made.root / sw.SPEC_FILE).read_bytes())
    shipped.slim_copy(src, ship / src.name, half=True)
    sw.project_into(ship / src.name, TINY, "pca")
    assert not (ship / src.name / "model.pt").exists() and (src / "model.pt").exists()
    record = json.loads((ship / src.name / "complete.json").read_text())
    assert "model.pt" not in record["files"] and record["cell"] == src.name and "float16" in record["slim"]
    with np.load(ship / src.name / "reps.npz") as z:                    # stored half ...
        assert z["C_t"].dtype == np.float16 and z["psi"].dtype == np.float32
    before, after = load_representations(src / "reps.npz"), load_representations(ship / src.name / "reps.npz")
    for m in "tav":                                                     # ... read back as float32
        assert after.common[m].dtype == np.float32
        np.testing.assert_allclose(after.common[m], before.common[m], rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(after.private[m], before.private[m], rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal(after.prediction, before.prediction)
    cache = sw.SweepCache(tmp_path / "mine" / TINY.slug, TINY)
    assert shipped.seed_sweep(cache, folder=tmp_path / "ship") == [src.name]
    assert cache.fill([A], log=None)["computed"] == [] and len(count_fits) == 1    # nothing trained
    assert cache.has_projection(*A, "pca")                                         # the shipped one
    assert cache.load(*A).metrics == made.load(*A).metrics
    with pytest.warns(UserWarning, match="holds no model.pt"):           # a run store never loads it
        from fdmer_lite.experiments.runs import obtain
        from fdmer_lite.experiments.specs import DataSpec
        cfg = TINY.config(*A)
        obtain(cfg, DataSpec("synthetic", options=TINY.data).load(), ship / src.name)
    assert len(count_fits) == 2


def test_a_compacted_shipped_run_keeps_its_history_values_record_and_projections(tmp_path, count_fits):
    from fdmer_lite import sweep as sw
    from fdmer_lite.experiments import runstore

    made = sw.SweepCache(tmp_path / "made" / TINY.slug, TINY)
    assert not made.fill([A], log=None)["failed"]
    cell = made.cell_dir(*A)
    sw.project_into(cell, TINY, "pca")                                  # a sub-folder the record leaves out
    text = (cell / "history.json").read_text()
    before = json.loads(text)
    assert "\n  " in text                                               # written indented
    record = runstore.read_finished(cell)
    other = shipped.compact_copy(cell, tmp_path / "elsewhere")          # a compacted copy; the source untouched
    assert json.loads((other / "history.json").read_text()) == before and (cell / "history.json").read_text() == text
    assert runstore.read_finished(other)["cell"] == record["cell"]
    assert shipped.compact_shipped(cell) is True
    after = (cell / "history.json").read_text()
    assert "\n" not in after and len(after) < 0.9 * len(text) and json.loads(after) == before
    again = runstore.read_finished(cell)                                # sealed again, every file intact
    assert again["files"]["history.json"]["bytes"] == len(after.encode())
    assert {k: again[k] for k in ("kind", "cell")} == {k: record[k] for k in ("kind", "cell")}
    assert set(again["files"]) == set(record["files"])
    assert made.has_projection(*A, "pca")                               # the projections kept
    assert shipped.compact_shipped(cell) is False                       # already compact: nothing done
    assert runstore.read_finished(cell)["written"] == again["written"]
    assert not [p for p in cell.parent.iterdir() if ".partial-" in p.name]  # no partial folder left


def test_shipped_grid_runs_seed_a_grid_only_when_they_match(tmp_path):
    from fdmer_lite.ablations import run_ablation
    from fdmer_lite.experiments.specs import DataSpec

    base = get_preset("fast").replace(train={"epochs": 1, "device": "cpu"})
    data = DataSpec("synthetic", options=dict(kind="emotion", n_train=48, n_valid=16, n_test=24, seq_len=8, seed=0))
    args = dict(variants="wo_con", seeds=(1,), workers=0, progress=False)
    made = run_ablation(base, data, out_dir=tmp_path / "made", **args)
    ids = sorted(r.spec.run_id for r in made.runs)
    assert len(ids) == 2 and len(made.report.ran) == 2
    for run_id in ids:
        shipped.slim_copy(tmp_path / "made" / run_id, tmp_path / "ship" / "tiny" / run_id, leave_out=("run.json",))
    assert not list((tmp_path / "ship").rglob("model.pt")) and not list((tmp_path / "ship").rglob("run.json"))
    mine = tmp_path / "mine"
    assert shipped.seed_grid(base, data, "wo_con", (1,), mine, "tiny", folder=tmp_path / "ship") == (ids, [])
    again = run_ablation(base, data, out_dir=mine, **args)
    assert again.report.ran == [] and sorted(again.report.skipped) == ids              # nothing trained
    assert [r["mae_mean"] for r in again.rows] == [r["mae_mean"] for r in made.rows]
    assert shipped.seed_grid(base, data, "wo_con", (1,), mine, "tiny", folder=tmp_path / "ship") == ([], [])
    other = base.replace(train={"epochs": 2})                            # another configuration
    assert shipped.seed_grid(other, data, "wo_con", (1,), tmp_path / "o", "tiny", folder=tmp_path / "ship")[0] == []
    with open(tmp_path / "ship" / "tiny" / ids[0] / "metrics.json", "a") as f:        # damaged
        f.write(" ")
    assert shipped.seed_grid(base, data, "wo_con", (1,), tmp_path / "d", "tiny", folder=tmp_path / "ship") == (ids[1:], ids[:1])


def test_the_projection_cache_reads_the_shipped_projections_and_writes_only_its_own(tmp_path):
    import numpy as np

    from fdmer_lite import viz

    ship, mine = tmp_path / "ship", tmp_path / "mine"
    X = np.random.default_rng(0).normal(size=(40, 5))
    made = shipped.ProjectionCache(ship, shipped=tmp_path / "none")
    first = viz.project(X, "pca", cache=made)                                   # computed, written
    assert [f.suffix for f in ship.iterdir()] == [".npy"]
    cache = shipped.ProjectionCache(mine, shipped=ship)
    key = next(ship.iterdir()).stem
    assert key in cache and np.array_equal(cache[key], first)                   # read from the package
    np.testing.assert_array_equal(viz.project(X, "pca", cache=cache), first)
    assert not mine.exists()                                                    # nothing computed here
    viz.project(X[:30], "pca", cache=cache)                                     # another array: computed
    assert len(list(mine.glob("*.npy"))) == 1 and len(list(ship.glob("*.npy"))) == 1
    assert "pca-nothing" not in cache
    with pytest.raises(KeyError):
        cache["pca-nothing"]
