"""benchmarks/task_family_report.py: the ratios and the paper-sized section (nothing trains)."""

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import family_runs  # noqa: E402
import task_family_report as report  # noqa: E402


def test_ratio_to_baseline_uses_only_the_seeds_both_ran():
    runs = {0: {"test_mae": 1.0}, 1: {"test_mae": 1.2}, 2: None}
    base = {0: {"test_mae": 0.5}, 1: {"test_mae": 0.7}, 2: {"test_mae": 9.0}, 3: {"test_mae": 9.0}}
    # seeds 0 and 1 only: (1.0 + 1.2) / 2 over (0.5 + 0.7) / 2
    assert math.isclose(report.ratio_to_baseline(runs, base), 1.1 / 0.6)
    assert math.isnan(report.ratio_to_baseline({0: None}, base))


def _run(task, seed, model, mae, ridge, epochs=4, best=2, config=True):
    run = {"task": task, "seed": seed, "model": model, "test_mae": mae, "ridge_mae": ridge,
           "best_epoch": best, "curve": [{}] * epochs, "seconds": 10.0 * epochs}
    if config:
        run["config"] = family_runs.variant_config(model, seed).to_dict()
    return run


def test_paper_section_marks_ridge_level_and_leaves_out_variants_not_run():
    task = "mosi_aligned"
    store = {f"{task}|0|baseline": _run(task, 0, "baseline", 0.7, 1.3, config=False),
             f"{task}|1|baseline": _run(task, 1, "baseline", 0.8, 1.3, config=False),
             f"{task}|0|mosi": _run(task, 0, "mosi_before", 1.25, 1.3, epochs=5, best=3),
             f"{task}|1|mosi": _run(task, 1, "mosi_before", 1.0, 1.3)}
    lines = report.paper_section(store)
    row = next(line for line in lines if line.startswith("| `mosi` preset before"))
    assert "1.250 (3 / 5, 10 s) (r)" in row              # 1.25 >= 0.95 x 1.3: ridge level
    assert "1.000 (2 / 4, 10 s) |" in row                 # 1.0 < 1.235: not
    assert row.endswith(f"| {(1.25 + 1.0) / (0.7 + 0.8):.2f} |")
    tables = "\n".join(line for line in lines if line.startswith(("|", "###")))   # not the prose
    assert "seed 2" not in tables                         # no variant ran it
    assert "`mosi_bert`" not in tables                    # nor any other task
    rows = [line.split(" | ")[0] for line in lines if line.startswith("| ")]
    assert rows == ["| model", "| ridge, time-averaged features", "| plain baseline",
                    "| `mosi` preset before its regularisation reading (dropout 0.1, no weight decay, "
                    "stop on the validation task loss)"]  # no other variant ran


def test_paper_section_says_when_nothing_ran():
    assert report.paper_section({})[2] == "not run (CPU budget)."


def test_weights_section_lists_each_weight_seed_of_one_data_set():
    task, ridge = "mosi_spread", report.ridge_mae(report.make_task("mosi_spread", 2))
    store = {f"{task}|2|baseline": _run(task, 2, "baseline", 1.19, ridge, config=False),
             f"{task}|2|baseline|init10": dict(_run(task, 2, "baseline", 1.25, ridge, config=False),
                                                init_seed=10),
             f"{task}|2|synthetic": _run(task, 2, "synthetic", 1.30, ridge)}
    lines = report.weights_section(store)
    rows = {line.split(" | ")[0]: line for line in lines if line.startswith("| ")}
    assert rows["| model"] == "| model | weights 2 | weights 10 |"
    assert rows["| plain baseline (from scratch)"].endswith("| 1.190 (2) | 1.250 (2) (r) |")
    assert rows["| **`synthetic` preset today** (the recipe, no final LayerNorm)"].endswith("| 1.300 (2) (r) |  |")
    assert report.weights_section({k: v for k, v in store.items() if "init" not in k}) == []
