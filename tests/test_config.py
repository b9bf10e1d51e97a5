"""The presets against the paper's Section 4.2, and old config.json files (settings since merged
or removed) against today's configuration."""

from pathlib import Path

import pytest

from fdmer_lite import losses
from fdmer_lite.config import Config, get_preset

ROOT = Path(__file__).resolve().parents[1]

# Section 4.2, typed from the paper: batch sizes {64, 16, 32}, epochs {120, 100, 60}, Adam with
# {1e-3, 1e-3, 2e-3}, beta {2e-2, 3e-2, 2e-2}, gamma {2e-2, 4e-2, 3e-2}; d_k = 256, d = 128,
# tau = 0.5, alpha = 72; n_t = 5, n_a = n_v = 4 transformer layers.
SECTION_4_2 = {
    "mosi": dict(batch_size=64, epochs=120, lr=1e-3, beta=2e-2, gamma=2e-2),
    "mosei": dict(batch_size=16, epochs=100, lr=1e-3, beta=3e-2, gamma=4e-2),
    "ur_funny": dict(batch_size=32, epochs=60, lr=2e-3, beta=2e-2, gamma=3e-2),
}
LITERAL = ("mosi_literal", "mosei_literal", "ur_funny_literal")


@pytest.mark.parametrize("name", [*SECTION_4_2, *LITERAL])
def test_paper_presets_carry_section_4_2(name):
    cfg = get_preset(name)
    want = SECTION_4_2[name.removesuffix("_literal")]
    assert (cfg.train.batch_size, cfg.train.epochs, cfg.train.lr) == (want["batch_size"], want["epochs"], want["lr"])
    assert (cfg.loss.beta, cfg.loss.gamma) == (want["beta"], want["gamma"])
    assert (cfg.model.d_k, cfg.model.d_disc, losses.TAU, losses.ALPHA) == (256, 128, 0.5, 72.0)
    assert cfg.model.layers == (5, 4, 4)
    assert cfg.loss.margin_loss == "angular" and cfg.model.fusion == "cmaf"
    assert cfg.name == name


SHIPPED = sorted((ROOT / "fdmer_lite" / "shipped_runs").rglob("config.json"))


@pytest.mark.parametrize("path", SHIPPED[:: max(1, len(SHIPPED) // 12)], ids=lambda p: p.parent.name)
def test_an_old_config_json_loads_and_writes_back_in_its_old_form(path):
    """The files were written before settings were merged or removed: read back, and written
    out in the old form again (what run names hash), they are the file less the removed fields."""
    import json
    from fdmer_lite.config import REMOVED, legacy_form
    old = json.loads(path.read_text(encoding="utf-8"))["config"]
    back = legacy_form(Config.from_dict(old).to_dict())
    for section in ("model", "loss", "train"):
        want = {k: v for k, v in old[section].items() if (section, k) not in REMOVED}
        got = {k: (list(v) if isinstance(v, tuple) else v) for k, v in back[section].items() if k in want}
        assert got == want, section


def test_old_settings_read_into_their_merged_fields():
    cfg = Config.from_dict({"model": {"layers_t": 1, "layers_a": 2, "layers_v": 3, "cmaf_phase1": False,
                                      "use_private": False, "norm_first": False, "mlp_init": "scaled",
                                      "mlp_dropout": 0.0},
                            "loss": {"use_ami": False, "use_ams": False, "scale": 72.0},
                            "train": {"warmup_epochs": 0.0, "num_workers": 3}})
    m = cfg.model
    assert (m.layers, m.fusion, m.fusion_targets, m.norm, m.mlp) == ((1, 2, 3), "cmaf_wo_phase1", "C", "post", "scaled")
    assert cfg.loss.aux_losses == "con+dis" and not cfg.loss.uses("ami") and cfg.loss.uses("dis")
    assert Config.from_dict({"model": {"disentangle": False}}).model.fusion_targets == "h"


@pytest.mark.parametrize("section, key, value", [("loss", "scale", 30.0), ("train", "warmup_epochs", 1.0),
                                                 ("train", "deterministic", True)])
def test_a_removed_setting_at_another_value_is_one_clear_error(section, key, value):
    with pytest.raises(ValueError, match=rf"'{section}\.{key}'.*expected .*got {value!r}"):
        Config.from_dict({section: {key: value}})


def test_a_merged_setting_that_cannot_be_expressed_is_one_clear_error():
    with pytest.raises(ValueError, match="mlp_dropout"):
        Config.from_dict({"model": {"mlp_dropout": 0.3}})
    with pytest.raises(KeyError, match="layers_t"):
        get_preset("fast").replace(model={"layers_t": 2})


def test_the_configuration_has_at_most_forty_fields():
    import dataclasses
    cfg = Config()
    count = sum(len(dataclasses.fields(getattr(cfg, s))) for s in ("model", "loss", "train")) + 1
    assert count <= 40, count


@pytest.mark.parametrize("weight, form, term", [(10.0, "mean", "align_mean"), (0.5, "sample", "align"),
                                                (0.0, "sample", None), (0.0, "mean", None)])
def test_the_old_alignment_settings_read_as_a_term_and_write_back(weight, form, term):
    """``align_weight`` > 0 with ``align_form`` was the extension on: today a term in ``aux_losses``;
    weight 0 was off, whatever the form. Written back in the old form, the settings are the same
    (a weight of 0 writes the default form, which never changed what a run learned)."""
    from fdmer_lite.config import legacy_form
    old = {"aux_losses": "ami+ams+con+dis", "align_weight": weight, "align_form": form}
    loss = Config.from_dict({"loss": old}).loss
    assert loss.uses("align") == (term == "align") and loss.uses("align_mean") == (term == "align_mean")
    back = legacy_form(Config.from_dict({"loss": old}).to_dict())["loss"]
    assert back["align_weight"] == weight
    assert back["align_form"] == (form if weight > 0 else "sample")
    if term:
        assert loss.align_weight == weight and loss.aux_losses == f"ami+ams+con+dis+{term}"
    with pytest.raises(ValueError, match="align_form"):
        Config.from_dict({"loss": {**old, "align_form": "median"}})
    older = {**{f"use_{t}": False for t in ("ami", "ams", "con", "dis")}, "align_weight": weight, "align_form": form}
    assert Config.from_dict({"loss": older}).loss.aux_losses == (term or "none")    # before aux_losses existed


def test_progress_is_not_a_setting_and_an_old_file_that_has_it_still_loads():
    assert Config.from_dict({"train": {"progress": False, "seed": 3}}).train.seed == 3
    with pytest.raises(KeyError, match="progress"):
        get_preset("fast").replace(train={"progress": False})
