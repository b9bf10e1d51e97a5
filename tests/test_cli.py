"""The command line a newcomer meets: bad options fail before any data is built, and the
progress moves within the first epoch (counted, not timed)."""

import threading

import pytest

from fdmer_lite import train as bars      # the progress bars live in train.py
from fdmer_lite.cli import main


class DataBuilt(AssertionError):
    pass


@pytest.fixture
def no_data(monkeypatch):
    """Every way a command builds or reads data raises: an option check that comes too late
    shows up as this error instead of the option's message."""
    import fdmer_lite.ablations
    import fdmer_lite.data
    import fdmer_lite.data.synthetic
    import fdmer_lite.sweep

    def built(*args, **kwargs):
        raise DataBuilt("data were built before the options were checked")

    monkeypatch.setattr(fdmer_lite.data, "load_dataset", built)
    monkeypatch.setattr(fdmer_lite.data.synthetic, "make_benchmark", built)
    monkeypatch.setattr(fdmer_lite.ablations, "run_ablation", built)
    monkeypatch.setattr(fdmer_lite.sweep.SweepCache, "fill", built)


@pytest.mark.parametrize("argv,needle", [
    (["train", "--dataset", "synthetic", "--epochs", "-3"], "--epochs"),
    (["train", "--dataset", "synthetic", "--epochs", "0"], "--epochs"),
    (["train", "--dataset", "synthetic", "--modalities", "xz"], "--modalities"),
    (["train", "--dataset", "synthetic", "--modalities", "tt"], "--modalities"),
    (["train", "--dataset", "mosi-text-audio", "--modalities", "tv"], "--modalities"),
    (["train", "--dataset", "synthetic", "--preset", "nope"], "--preset"),
    (["train", "--dataset", "synthetic", "--beta", "nan"], "--beta"),
    (["train", "--dataset", "synthetic", "--beta", "-1"], "--beta"),
    (["train", "--dataset", "synthetic", "--gamma", "inf"], "--gamma"),
    (["train", "--dataset", "synthetic", "--seed", "-1"], "--seed"),
    (["train", "--dataset", "synthetic", "--device", "foo"], "--device"),
    (["train", "--dataset", "synthetic", "--device", "cuda:x"], "--device"),
    (["demo", "--device", "gpu"], "--device"),
    (["sweep", "--dataset", "synthetic", "--device", "foo"], "--device"),
    (["ablate", "--dataset", "synthetic", "--preset", "nope"], "--preset"),
    (["ablate", "--dataset", "synthetic", "--device", "foo"], "--device"),
])
def test_a_bad_option_is_one_message_and_exit_2_before_any_data(argv, needle, no_data, tmp_path, capsys):
    code = main(argv + ["--out" if argv[0] != "sweep" else "--cache", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "expected" in lines[0], err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["train", "ablate", "distributed"])
def test_help_names_every_preset(command, capsys):
    import re

    from fdmer_lite.config import PRESETS
    with pytest.raises(SystemExit) as exit_:
        if command == "distributed":                              # python -m fdmer_lite.distributed
            from fdmer_lite.distributed import main as distributed_main
            distributed_main(["--help"])
        main([command, "--help"])
    assert exit_.value.code == 0
    preset_help = capsys.readouterr().out.split("\n  --preset PRESET", 1)[1].split("\n  --", 1)[0]
    named = set(re.findall(r"[a-z_]+", preset_help))
    missing = [name for name in PRESETS if name not in named]    # a whole word, not mosi in mosi_literal
    assert len(PRESETS) >= 10 and not missing, (missing, preset_help)


def test_cuda_asked_on_a_machine_without_it_fails_before_any_data(no_data, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code = main(["train", "--dataset", "synthetic", "--device", "cuda", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "--device" in err and "CUDA" in err and len(err.strip().splitlines()) == 1


def test_the_checks_pass_good_options_through_to_the_data(no_data, tmp_path):
    """The fixture does catch a command that builds data: good options reach the builder."""
    with pytest.raises(DataBuilt):
        main(["train", "--dataset", "synthetic", "--epochs", "1", "--modalities", "ta", "--preset", "fast",
              "--device", "cpu", "--out", str(tmp_path / "out")])


# ------------------------------------------------------------------------------ progress


class CountingBar:
    """Stands in for tqdm: records every update, in order with the trainer's epoch ends."""

    events: list

    def __init__(self, *args, **kwargs):
        self.kwargs = kwargs

    def update(self, n=1):
        self.events.append(("update", n))

    def set_description(self, *args, **kwargs):
        pass

    def set_postfix(self, *args, **kwargs):
        pass

    def close(self):
        self.events.append(("close", 0))


def test_the_training_bar_moves_before_the_first_epoch_ends(monkeypatch, tiny_data, fast_config):
    from fdmer_lite.train import Trainer

    events = []
    monkeypatch.setattr(CountingBar, "events", events, raising=False)
    monkeypatch.setattr(bars, "tqdm", CountingBar)
    cfg = fast_config.replace(train={"epochs": 2, "patience": 5, "batch_size": 16})
    trainer = Trainer(cfg, tiny_data, on_epoch=lambda entry: events.append(("epoch", entry["epoch"])),
                      progress=True)
    steps = len(trainer.loader("train"))
    assert steps >= 2
    trainer.fit()
    first_epoch = events.index(("epoch", 1))
    assert events[:first_epoch] == [("update", 1)] * steps          # one update per batch
    assert events.count(("update", 1)) == 2 * steps and events[-1] == ("close", 0)


def test_no_bar_when_progress_is_off(monkeypatch, tiny_data, fast_config):
    from fdmer_lite.train import Trainer

    events = []
    monkeypatch.setattr(CountingBar, "events", events, raising=False)
    monkeypatch.setattr(bars, "tqdm", CountingBar)
    one_epoch = fast_config.replace(train={"epochs": 1})
    Trainer(one_epoch, tiny_data, progress=False).fit()
    Trainer(one_epoch, tiny_data).fit()                   # the seconds-long fast preset: none by default
    assert events == []
    Trainer(one_epoch.replace(name="custom"), tiny_data).fit()          # any other: a bar by default
    assert events and events[-1] == ("close", 0)


def test_heartbeat_ticks_while_the_work_runs(monkeypatch):
    """Work that reports no steps (a data set being generated) still moves the bar: wait inside
    the block until the ticker thread has updated it three times (no timing asserted)."""
    from fdmer_lite.train import heartbeat

    events = []
    ticked = threading.Event()

    class Bar(CountingBar):
        def update(self, n=1):
            events.append(("update", n))
            if events.count(("update", 1)) >= 3:
                ticked.set()

    monkeypatch.setattr(CountingBar, "events", events, raising=False)
    monkeypatch.setattr(bars, "tqdm", Bar)
    with heartbeat("generating", interval=0.01) as bar:
        assert bar is not None
        assert ticked.wait(30), "the heartbeat never ticked"
    assert events[-1] == ("close", 0)
    count = len(events)
    ticked.wait(0.05)
    assert len(events) == count                                      # stopped with the block
    with heartbeat("quiet", enabled=False) as bar:
        assert bar is None


def test_export_writes_an_offline_page_and_refuses_bad_input(tmp_path, capsys):
    import nbformat

    from fdmer_lite.viz import inspect_html

    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell("$$ \\mathcal{L} = \\beta $$"))
    nbformat.write(nb, tmp_path / "lesson.ipynb")
    assert main(["export", str(tmp_path / "lesson.ipynb")]) == 0
    page = tmp_path / "lesson.html"
    assert f"wrote {page}" in capsys.readouterr().out
    found = inspect_html(page.read_text(encoding="utf-8"))
    assert found["mathjax_local"] and found["external_loads"] == []
    assert (tmp_path / "mathjax" / "MathJax.js").is_file()
    (tmp_path / "broken.ipynb").write_text("not json")
    for bad in ("missing.ipynb", "broken.ipynb", "lesson.html"):
        assert main(["export", str(tmp_path / bad)]) == 2
        err = capsys.readouterr().err
        assert str(tmp_path / bad) in err and len(err.strip().splitlines()) == 1
