"""The presets against the paper's Section 4.2, the literal presets against the readings table,
and the generated table against its committed copy."""

from pathlib import Path

import pytest

from fdmer_lite import readings
from fdmer_lite.config import PRESETS, Config, get_preset

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
    assert (cfg.model.d_k, cfg.model.d_disc, cfg.loss.margin, cfg.loss.scale) == (256, 128, 0.5, 72.0)
    assert (cfg.model.layers_t, cfg.model.layers_a, cfg.model.layers_v) == (5, 4, 4)
    assert cfg.loss.margin_loss == "angular" and cfg.model.fusion == "cmaf"
    assert cfg.name == name


@pytest.mark.parametrize("name", LITERAL)
def test_literal_presets_take_no_reading_and_no_extension(name):
    cfg = get_preset(name)
    off = {s.field: (readings.value(cfg, s.field), s.literal_value(cfg)) for s in readings.SWITCHES
           if readings.value(cfg, s.field) != s.literal_value(cfg)}
    assert off == {}
    # the text where it is explicit, spelled out once more
    assert cfg.train.grl_schedule == "constant" and cfg.loss.con_centre is False
    assert cfg.model.attn_scale is False and cfg.model.norm_first is False
    assert cfg.train.grad_clip is None and cfg.train.lr_schedule == "constant"
    assert cfg.train.patience >= cfg.train.epochs


@pytest.mark.parametrize("name", [p for p in PRESETS if p not in LITERAL])
def test_every_default_preset_leaves_the_extensions_off(name):
    cfg = get_preset(name)
    on = {s.field: readings.value(cfg, s.field) for s in readings.SWITCHES
          if s.kind == "extension" and readings.value(cfg, s.field) != s.literal_value(cfg)}
    assert on == {}


def test_every_switch_names_a_real_field_and_a_known_kind():
    cfg = Config()
    for s in readings.SWITCHES:
        section, field = s.field.split(".")
        assert hasattr(getattr(cfg, section), field), s.field
        assert s.kind in ("reading", "extension", "speed")
        assert s.paper and s.does and s.evidence
    assert len({s.field for s in readings.SWITCHES}) == len(readings.SWITCHES)


def test_readings_table_has_one_column_per_preset_read_from_the_code():
    table = readings.table_markdown(("synthetic", "mosi_literal"))
    rows = {line.split(" | ")[0].strip("| `"): line.split(" | ") for line in table.splitlines()[2:]}
    assert rows["model.norm_first"][4:6] == ["on", "off"]
    assert rows["model.time_stride"][4:6] == [str(get_preset("synthetic").model.time_stride), "1"]


def test_committed_readings_document_is_the_generated_one():
    committed = (ROOT / "docs" / "readings.md").read_text(encoding="utf-8")
    assert committed == readings.document(), "run: python -m fdmer_lite.readings > docs/readings.md"
