"""``fdmer-lite train`` / ``data inspect`` on real-format files: bad input exits with status 2."""

import json
import os
import pickle

import pytest
from test_data_mmsa import mmsa_dict, write

from fdmer_lite.cli import main


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_train_on_a_small_mmsa_file_with_two_modalities(tmp_path, capsys):
    path = write(tmp_path / "unaligned_50.pkl", mmsa_dict(seq=(12, 10, 8)))
    code, out, err = run(["train", "--dataset", "mmsa", "--data", str(path), "--preset", "fast", "--epochs", "1",
                          "--modalities", "ta", "--device", "cpu", "--out", str(tmp_path / "run")], capsys)
    assert code == 0, err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "mae" in metrics and "acc2_non0" in metrics
    assert json.loads((tmp_path / "run" / "config.json").read_text())["modalities"] == "ta"


@pytest.mark.parametrize("mutate,needle", [
    (lambda d: d["valid"].__setitem__("audio", d["valid"]["audio"][:, :, :3]), "valid.a"),
    (lambda d: d["train"].pop("regression_labels"), "train.regression_labels"),
    (lambda d: d["test"]["regression_labels"].__setitem__(0, -9.0), "[-3, 3]"),
])
def test_train_exits_2_on_bad_files(tmp_path, capsys, mutate, needle):
    d = mmsa_dict(seq=(12, 10, 8))
    mutate(d)
    path = write(tmp_path / "bad.pkl", d)
    code, out, err = run(["train", "--dataset", "mmsa", "--data", str(path), "--preset", "fast",
                          "--out", str(tmp_path / "run")], capsys)
    assert code == 2
    assert str(path) in err and needle in err
    assert len(err.strip().splitlines()) == 1                    # one message, no traceback


def test_train_exits_2_on_malicious_pickle_without_running_it(tmp_path, capsys):
    marker = tmp_path / "pwned"
    path = tmp_path / "aligned_50.pkl"
    path.write_bytes(pickle.dumps({"train": {"audio": _Evil(marker)}}))
    code, _, err = run(["train", "--dataset", "mmsa", "--data", str(path), "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and "refused" in err and "system" in err
    assert not marker.exists()
    code, _, err = run(["data", "inspect", str(path)], capsys)
    assert code == 2 and not marker.exists()


def test_exit_2_on_missing_paths_and_absent_streams(tmp_path, capsys, monkeypatch):
    code, _, err = run(["train", "--dataset", "mmsa", "--data", str(tmp_path / "absent.pkl")], capsys)
    assert code == 2 and "absent.pkl" in err
    code, _, err = run(["data", "inspect", str(tmp_path / "absent")], capsys)
    assert code == 2
    monkeypatch.delenv("FDMER_LITE_MOSI_DIR", raising=False)
    code, _, err = run(["train", "--dataset", "mosi-text-audio"], capsys)
    assert code == 2 and "FDMER_LITE_MOSI_DIR" in err
    d = mmsa_dict(seq=(12, 10, 8))
    for s in d:
        d[s].pop("vision")
    path = write(tmp_path / "no_vision.pkl", d)
    code, _, err = run(["train", "--dataset", "mmsa", "--data", str(path), "--modalities", "tav"], capsys)
    assert code == 2 and "v requested but absent" in err


def test_inspect_prints_and_exits_0(tmp_path, capsys):
    path = write(tmp_path / "aligned_50.pkl", mmsa_dict(aligned=True))
    code, out, _ = run(["data", "inspect", str(path)], capsys)
    assert code == 0 and "MMSA pickle (aligned)" in out and "loads: OK" in out
