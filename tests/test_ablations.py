"""The Table-4 variants as config transforms, and the ablation table (mean and std over seeds)."""

import csv
import io
import json
import math
import statistics

import pytest
import torch

from fdmer_lite.ablations import (BY_KEY, PAPER_NOTE, PAPER_TABLE4, VARIANTS, NotApplicable, get_variant, load_ablation,
                                  paper_dataset, run_ablation, select_variants, to_markdown)
from fdmer_lite.config import get_preset
from fdmer_lite.experiments.runs import DataSpec
from fdmer_lite.train import Trainer

TINY = dict(kind="emotion", n_train=48, n_valid=16, n_test=24, seq_len=8, seed=0)

# What each variant must change, written out independently of the module under test:
# {variant key: {"section.field": new value}} on a config with modalities "tav".
EXPECTED_CHANGES = {
    "full": {},
    "wo_text": {"model.modalities": "av"},
    "wo_audio": {"model.modalities": "tv"},
    "wo_visual": {"model.modalities": "ta"},
    "wo_ami_ams": {"loss.aux_losses": "con+dis"},
    "wo_con": {"loss.aux_losses": "ami+ams+dis"},
    "wo_dis": {"loss.aux_losses": "ami+ams+con"},
    "ce_loss": {"loss.margin_loss": "ce"},
    "ce_cosine": {"loss.margin_loss": "cosine_ce"},
    "wo_common": {"model.fusion_targets": "P"},
    "wo_private": {"model.fusion_targets": "C"},
    "non_disentangled": {"model.fusion_targets": "h"},
    "wo_cmaf": {"model.fusion": "concat"},
    "wo_phase1": {"model.fusion": "cmaf_wo_phase1"},
    "wo_phase2": {"model.fusion": "cmaf_wo_phase2"},
    "addition": {"model.fusion": "add"},
    "multiplication": {"model.fusion": "mult"},
}


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: these models are tiny, and on a loaded two-core machine a second
    thread costs far more in synchronisation than it gains (measured: 1.3 s vs 0.02 s a step)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _flat(cfg):
    return {f"{s}.{k}": v for s, part in cfg.to_dict().items() if isinstance(part, dict) for k, v in part.items()}


def _config():
    return get_preset("fast").replace(train={"epochs": 1, "device": "cpu"})


def test_the_paper_rows_are_all_there_in_order():
    assert [v.key for v in VARIANTS] == list(EXPECTED_CHANGES)
    assert get_variant("w/o L_con") is BY_KEY["wo_con"] and get_variant("WO_CON") is BY_KEY["wo_con"]
    assert [v.key for v in select_variants("wo_con,wo_dis")] == ["full", "wo_con", "wo_dis"]
    assert len(select_variants("all")) == 17        # Table 4's 16 rows and the CE on cosines
    with pytest.raises(ValueError, match="unknown variant"):
        get_variant("w/o everything")


@pytest.mark.parametrize("key", list(EXPECTED_CHANGES))
def test_each_variant_changes_exactly_what_its_name_says(key):
    base = _config()
    new = BY_KEY[key].apply(base, "tav")
    before, after = _flat(base), _flat(new)
    changed = {k: after[k] for k in before if before[k] != after[k]}
    assert changed == EXPECTED_CHANGES[key]


def test_modality_variants_on_text_audio_data():
    base = _config().replace(model={"modalities": "ta"})
    assert BY_KEY["wo_visual"].apply(base, "ta").to_dict()["model"] == base.to_dict()["model"]
    assert BY_KEY["wo_text"].apply(base, "ta").model.modalities == "a"
    assert BY_KEY["wo_audio"].apply(base, "ta").model.modalities == "t"
    # a config naming v on data without v: the stream the data lacks is dropped first
    assert BY_KEY["full"].apply(_config(), "ta").model.modalities == "ta"
    with pytest.raises(NotApplicable):
        BY_KEY["wo_text"].apply(base, "t")


@pytest.fixture(scope="module")
def tiny():
    return DataSpec("synthetic", options=TINY).load()


@pytest.mark.parametrize("key", list(EXPECTED_CHANGES))
def test_each_variant_builds_and_trains_a_step(key, tiny):
    cfg = BY_KEY[key].apply(_config(), tiny.modalities)
    tr = Trainer(cfg, tiny)
    opt = torch.optim.Adam(tr.model.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in tr.model.parameters()]
    batch = next(iter(tr.loader("train", shuffle=True)))
    out, terms, _ = tr._forward(batch)
    assert all(torch.isfinite(v) for v in terms.values())
    opt.zero_grad()
    terms["all"].backward()
    opt.step()
    moved = sum(not torch.equal(a, b.detach()) for a, b in zip(before, tr.model.parameters()))
    assert moved > 0
    # the switch reached the model
    names = out.psi_names
    if key == "wo_common":
        assert "C" not in names and "P_t" in names
    elif key == "wo_private":
        assert names == ("C",)
    elif key == "non_disentangled":
        assert names == ("h_t", "h_a", "h_v") and not out.common
        assert float(terms["ami"]) == float(terms["con"]) == 0.0
    elif key.startswith("wo_") and key[3:] in ("text", "audio", "visual"):
        assert out.modalities == cfg.model.modalities and len(out.modalities) == 2
    if key == "wo_ami_ams":
        assert float(terms["ami"]) == float(terms["ams"]) == 0.0
    if key in ("wo_con", "wo_dis"):
        assert float(terms[key[3:]]) == 0.0


def test_table_has_one_row_per_variant_with_mean_and_std(tmp_path):
    res = run_ablation(_config(), DataSpec("synthetic", options=TINY), variants="wo_private,addition",
                       seeds=(1, 2), out_dir=tmp_path, workers=0, progress=False)
    assert [r["variant"] for r in res.rows] == ["full", "wo_private", "addition"]
    assert len(res.report.computed) == 6 and not res.report.failed
    manifest = json.loads((tmp_path / "ablation.json").read_text())
    for row in res.rows:
        assert row["n"] == 2 and row["seeds"] == "1 2"
        # recompute mean and sample std from the runs' own metrics.json files
        maes = [json.loads((tmp_path / r["run_id"] / "metrics.json").read_text())["mae"]
                for r in manifest["runs"] if r["variant"] == row["variant"]]
        assert row["mae_mean"] == pytest.approx(statistics.mean(maes))
        assert row["mae_std"] == pytest.approx(statistics.stdev(maes))
        assert math.isfinite(row["corr_std"]) and "common_modality_acc_mean" in row
    table = list(csv.DictReader(io.StringIO(res.csv_path.read_text())))
    assert [t["variant"] for t in table] == ["full", "wo_private", "addition"]
    assert {"mae_mean", "mae_std", "acc2_non0_mean", "bayes_mae_mean"} <= set(table[0])
    md = res.md_path.read_text()
    assert sum(line.startswith("| ") for line in md.splitlines()) == 1 + 3     # header + 3 rows
    assert " ± " in md
    assert "| w/o Private | 2 |" in md and "Bayes floor" in md
    # the tables can be rebuilt from the cached runs alone
    again = load_ablation(tmp_path)
    assert again.rows == res.rows


def test_paper_column_where_the_paper_used_the_data():
    class Fake:
        splits = {"train": [0] * 1284, "valid": [0] * 229, "test": [0] * 686}
    assert paper_dataset(Fake()) == "mosi"
    rows = [{"variant": "full", "name": "FDMER (full)", "n": 1, "seeds": "1", "note": "",
             "mae_mean": 0.9, "mae_std": math.nan}]
    md = to_markdown(rows, {"task": "regression", "paper_dataset": "mosi", "seeds": [1], "dataset": "x"})
    assert "paper (MOSI) MAE" in md and "| 0.845 |" in md and PAPER_NOTE not in md
    wo_visual = {**rows[0], "variant": "wo_visual", "name": "w/o Visual"}
    extra = {**rows[0], "variant": "ce_cosine", "name": "CE on cosines"}
    md = to_markdown([wo_visual, extra], {"task": "regression", "paper_dataset": "mosei", "seeds": [1], "dataset": "x"})
    assert "| 0.639 |" in md and "| n/a |" in md and PAPER_NOTE in md   # MOSEI w/o Visual; no such row
    md = to_markdown(rows, {"task": "regression", "paper_dataset": None, "seeds": [1], "dataset": "x"})
    assert "paper" not in md.split("\n")[0]


def test_paper_table4_holds_every_row_of_the_paper():
    from fdmer_lite import metrics as paper
    table_rows = [v.key for v in VARIANTS if v.key != "ce_cosine"]
    for dataset, metrics in (("mosi", {"mae", "corr"}), ("mosei", {"mae", "corr"}), ("ur_funny", {"acc2"})):
        assert sorted(PAPER_TABLE4[dataset]) == sorted(table_rows)
        assert all(set(row) == metrics for row in PAPER_TABLE4[dataset].values())
    # spot checks against the paper's printed Table 4, and its full row against Tables 1-3
    assert PAPER_TABLE4["mosi"]["wo_text"] == {"mae": 1.275, "corr": 0.345}
    assert PAPER_TABLE4["mosei"]["addition"] == {"mae": 0.607, "corr": 0.718}
    assert PAPER_TABLE4["ur_funny"]["wo_cmaf"]["acc2"] == pytest.approx(0.6733)
    assert PAPER_TABLE4["mosi"]["full"] == {k: paper.TABLE1["glove"]["FDMER"][k] for k in ("mae", "corr")}
    assert PAPER_TABLE4["mosei"]["full"] == {k: paper.TABLE2["glove"]["FDMER"][k] for k in ("mae", "corr")}
    assert PAPER_TABLE4["ur_funny"]["full"]["acc2"] == paper.TABLE3["glove"]["FDMER"]["acc2"]
    assert paper.TABLE1["glove"]["PMR"]["mae"] is None and paper.TABLE1["bert"]["FDMER"]["acc7"] == 0.441


def test_the_ablate_command_end_to_end_writes_the_table_and_resumes(tmp_path, capsys):
    from fdmer_lite import cli
    out = tmp_path / "grid"
    argv = ["ablate", "--dataset", "synthetic", "--preset", "fast", "--epochs", "1", "--variants",
            "full,wo_con", "--seeds", "1", "--workers", "0", "--out", str(out)]
    assert cli.main(argv) == 0
    first = capsys.readouterr().out
    assert "0 of 2 run(s) finished before, 2 to train" in first and "2 computed, 0 skipped" in first
    rows = list(csv.DictReader((out / "table.csv").open()))
    assert [r["variant"] for r in rows] == ["full", "wo_con"]
    for r in rows:                              # the table's MAE is the run's own metrics.json
        run = next(out.glob(f"{r['variant']}-seed1-*"))
        assert float(r["mae_mean"]) == pytest.approx(json.loads((run / "metrics.json").read_text())["mae"])
    assert (out / "table.md").read_text().count("| FDMER (full) |") == 1
    assert cli.main(argv) == 0                  # a second call trains nothing
    assert "0 computed, 2 skipped" in capsys.readouterr().out
