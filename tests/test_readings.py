"""The table of readings, extensions and speed devices (fdmer_lite/readings.py) against the
presets it reads and the committed docs/readings.md."""

from pathlib import Path

import pytest

from fdmer_lite import readings
from fdmer_lite.config import PRESETS, Config, get_preset

ROOT = Path(__file__).resolve().parents[1]
LITERAL = ("mosi_literal", "mosei_literal", "ur_funny_literal")


@pytest.mark.parametrize("name", LITERAL)
def test_literal_presets_take_no_reading_and_no_extension(name):
    cfg = get_preset(name)
    off = {s.field: (readings.value(cfg, s.field), s.literal_value(cfg)) for s in readings.SWITCHES
           if readings.value(cfg, s.field) != s.literal_value(cfg)}
    assert off == {}
    # the text where it is explicit, spelled out once more
    assert cfg.train.grl_schedule == "constant" and cfg.loss.con_centre is False
    assert cfg.model.attn_scale is False and cfg.model.norm == "post"
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
    assert rows["model.norm"][4:6] == ['"pre"', '"post"']
    assert rows["model.time_stride"][4:6] == [str(get_preset("synthetic").model.time_stride), "1"]


def test_committed_readings_document_is_the_generated_one():
    committed = (ROOT / "docs" / "readings.md").read_text(encoding="utf-8")
    assert committed == readings.document(), "run: python -m fdmer_lite.readings > docs/readings.md"


