"""Runs that never lie: a run folder is trusted only when sealed and intact (fdmer_lite.runstore)."""

import json
import math
import threading
import time

import pytest
import torch

import fdmer_lite.train as train_mod
from fdmer_lite.experiments import runstore
from fdmer_lite.data.base import DataError
from fdmer_lite.experiments.runs import obtain
from fdmer_lite.train import NonFiniteLoss


def _poison_after(monkeypatch, train_steps: int):
    """Make the 'dis' term NaN from the (train_steps + 1)-th training step on."""
    real = train_mod.fdmer_objective
    seen = {"n": 0}

    def poisoned(out, label, cfg, task):
        terms = real(out, label, cfg, task)
        if out.prediction.requires_grad:
            seen["n"] += 1
            if seen["n"] > train_steps:
                terms["dis"] = terms["dis"] * float("nan")
        return terms
    monkeypatch.setattr(train_mod, "fdmer_objective", poisoned)


def _steps_per_epoch(config, data):
    return math.ceil(len(data.splits["train"]) / config.train.batch_size)


def test_a_finished_run_is_sealed_and_verified(tiny_data, fast_config, tmp_path):
    out = tmp_path / "run"
    obtain(fast_config, tiny_data, out, retrain=True).metrics
    record = runstore.read_finished(out)
    assert record["status"] == "finished"
    assert {"config.json", "history.json", "metrics.json", "model.pt"} <= set(record["files"])
    assert record["files"]["model.pt"]["bytes"] == (out / "model.pt").stat().st_size
    assert not list(tmp_path.glob(".run.partial-*"))                  # nothing left aside


def test_nan_after_an_epoch_keeps_the_previous_run_and_the_best_checkpoint_as_failed(
        tiny_data, fast_config, tmp_path, monkeypatch):
    out = tmp_path / "run"
    obtain(fast_config, tiny_data, out).trainer
    before = (out / runstore.RECORD).read_bytes()
    cfg = fast_config.replace(train={"epochs": 3})
    _poison_after(monkeypatch, _steps_per_epoch(cfg, tiny_data) + 1)   # epoch 1 finishes
    with pytest.raises(NonFiniteLoss, match=r"best checkpoint \(epoch 1\) is in .*run\.failed.model\.pt"):
        obtain(cfg, tiny_data, out).trainer
    assert (out / runstore.RECORD).read_bytes() == before              # the finished run is untouched
    failed = tmp_path / "run.failed"
    assert (failed / "model.pt").is_file() and (failed / runstore.FAILED_RECORD).is_file()
    assert not (failed / runstore.RECORD).exists() and not runstore.is_finished(failed)
    ckpt = train_mod.load_checkpoint(failed / "model.pt")
    assert all(torch.isfinite(v).all() for v in ckpt["model_state"].values() if v.is_floating_point())


def test_nan_before_any_epoch_writes_nothing_and_is_never_loaded(tiny_data, fast_config, tmp_path, monkeypatch):
    out = tmp_path / "run"
    _poison_after(monkeypatch, 0)
    with pytest.raises(NonFiniteLoss, match="Nothing was written"):
        obtain(fast_config, tiny_data, out).trainer
    assert not out.exists() and not (tmp_path / "run.failed").exists()
    monkeypatch.undo()
    trainer = obtain(fast_config, tiny_data, out).trainer              # trains: nothing to reuse
    assert len(trainer.history) >= 1 and runstore.is_finished(out)


def test_ctrl_c_during_training_leaves_the_previous_run(tiny_data, fast_config, tmp_path, monkeypatch):
    out = tmp_path / "run"
    obtain(fast_config, tiny_data, out, retrain=True).metrics
    before = (out / runstore.RECORD).read_bytes()

    def interrupted(self, epochs=None):
        raise KeyboardInterrupt
    monkeypatch.setattr(train_mod.Trainer, "fit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        obtain(fast_config.replace(loss={"beta": 0.5}), tiny_data, out, retrain=True).metrics
    assert (out / runstore.RECORD).read_bytes() == before and runstore.is_finished(out)
    assert not list(tmp_path.glob(".run.partial-*"))


@pytest.mark.parametrize("victim", ["model.pt", "metrics.json"])
def test_a_truncated_file_is_named_and_the_run_retrained(tiny_data, fast_config, tmp_path, victim):
    out = tmp_path / "run"
    obtain(fast_config, tiny_data, out).trainer
    path = out / victim
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(runstore.RunCorrupt, match=rf"{victim}: field 'bytes'"):
        runstore.read_finished(out)
    with pytest.warns(UserWarning, match=victim):
        assert not obtain(fast_config, tiny_data, out).loaded
    assert runstore.is_finished(out)
    json.loads((out / "metrics.json").read_text())                    # whole again


def test_an_edited_file_of_the_same_size_fails_the_hash(tiny_data, fast_config, tmp_path):
    out = tmp_path / "run"
    obtain(fast_config, tiny_data, out, retrain=True).metrics
    blob = bytearray((out / "model.pt").read_bytes())
    blob[-100] ^= 0xFF
    (out / "model.pt").write_bytes(bytes(blob))
    with pytest.raises(runstore.RunCorrupt, match="model.pt: field 'sha256'"):
        runstore.read_finished(out)


def test_a_symlink_planted_in_the_run_folder_is_never_written_through(tiny_data, fast_config, tmp_path):
    out = tmp_path / "run"
    obtain(fast_config, tiny_data, out, retrain=True).metrics
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    (out / "model.pt").unlink()
    (out / "model.pt").symlink_to(victim)
    obtain(fast_config.replace(loss={"beta": 0.5}), tiny_data, out, retrain=True).metrics
    assert victim.read_text() == "keep me"
    assert not (out / "model.pt").is_symlink() and runstore.is_finished(out)


def test_out_that_holds_other_files_is_refused_before_training(tiny_data, fast_config, tmp_path):
    (tmp_path / "thesis.tex").write_text("months of work")
    with pytest.raises(DataError, match="thesis.tex"):
        obtain(fast_config, tiny_data, tmp_path, retrain=True).metrics
    assert (tmp_path / "thesis.tex").read_text() == "months of work"


def test_strict_json_has_no_bare_nan(tmp_path):
    runstore.write_json(tmp_path / "m.json", {"r2": float("nan"), "x": [1.0, float("inf")]})
    text = (tmp_path / "m.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"r2": None, "x": [1.0, None]}


def test_a_second_writer_waits_for_the_lock_then_reuses_the_run(tiny_data, fast_config, tmp_path):
    out = tmp_path / "run"
    fits = []
    real_fit = train_mod.Trainer.fit

    def counting_fit(self, epochs=None):
        fits.append(1)
        return real_fit(self, epochs)
    train_mod.Trainer.fit = counting_fit
    try:
        waited = []
        with runstore.locked(out):                                  # a "first command" holds it
            with pytest.raises(BlockingIOError, match="being written by pid"):
                with runstore.locked(out, wait=False):
                    pass
            t = threading.Thread(target=lambda: waited.append(obtain(fast_config, tiny_data, out).trainer))
            t.start()
            time.sleep(0.5)
            assert t.is_alive() and not fits                        # waiting, not training
            obtain(fast_config, tiny_data, out, lock=False, retrain=True).metrics  # the first one finishes
        t.join(60)
        assert len(fits) == 1 and waited and not t.is_alive()       # the second reused it
    finally:
        train_mod.Trainer.fit = real_fit


# ------------------------------------------------------------------------ options, --out


@pytest.mark.parametrize("argv, option", [
    (["train", "--dataset", "synthetic", "--epochs", "0"], "--epochs"),
    (["train", "--dataset", "synthetic", "--epochs", "-3"], "--epochs"),
    (["train", "--dataset", "synthetic", "--beta", "-1"], "--beta"),
    (["train", "--dataset", "synthetic", "--beta", "nan"], "--beta"),
    (["train", "--dataset", "synthetic", "--beta", "1e309"], "--beta"),
    (["train", "--dataset", "synthetic", "--gamma", "inf"], "--gamma"),
    (["train", "--dataset", "synthetic", "--modalities", "tt"], "--modalities"),
    (["train", "--dataset", "synthetic", "--modalities", "tx"], "--modalities"),
    (["train", "--dataset", "synthetic", "--seed", "-1"], "--seed"),
    (["ablate", "--dataset", "synthetic", "--epochs", "0"], "--epochs"),
    (["ablate", "--dataset", "synthetic", "--seeds", "1,-2"], "--seeds"),
    (["sweep", "--dataset", "synthetic", "--gamma", "nan"], "--gamma"),
    (["sweep", "--dataset", "synthetic", "--workers", "0"], "--workers"),
    (["train", "--dataset", "synthetic", "--epochs", "two"], "--epochs"),
])
def test_every_option_is_checked_before_any_work(argv, option, tmp_path, capsys, monkeypatch):
    from fdmer_lite import cli
    monkeypatch.chdir(tmp_path)
    try:
        rc = cli.main(argv)
    except SystemExit as exc:                                         # argparse's own checks
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert option in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "runs").exists()                           # nothing was started


@pytest.mark.parametrize("make", ["file", "parent_file", "symlink", "foreign"])
def test_bad_out_is_refused_up_front(make, tmp_path, capsys):
    from fdmer_lite import cli
    out = tmp_path / "out"
    if make == "file":
        out.write_text("x")
    elif make == "parent_file":
        (tmp_path / "f").write_text("x")
        out = tmp_path / "f" / "out"
    elif make == "symlink":
        (tmp_path / "elsewhere").mkdir()
        out.symlink_to(tmp_path / "elsewhere")
    else:
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    rc = cli.main(["train", "--dataset", "synthetic", "--epochs", "1", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and str(out) in err and "'path'" in err, err


def test_a_full_disk_while_saving_is_one_line_and_leaves_no_finished_run(tmp_path, capsys, monkeypatch):
    # The disk fills while the checkpoint is written: one message with exit 2, and no folder
    # that a later command would take for a finished run.
    import errno

    import torch

    from fdmer_lite import cli

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out" / "model.pt"))

    monkeypatch.setattr(torch, "save", full)
    out = tmp_path / "out"
    rc = cli.main(["train", "--dataset", "synthetic", "--epochs", "1", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "No space left on device" in err, err
    assert not (out / "complete.json").exists()
