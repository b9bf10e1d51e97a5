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


def test_printable_shows_the_bytes_of_a_path_that_is_not_utf8():
    from fdmer_lite.cli import printable
    raw = b"/data/caf\xc3\xa9-\xff\xfe.pkl"                       # a UTF-8 name with two bytes that are not
    assert printable(os.fsdecode(raw)) == raw.decode("utf-8", "backslashreplace") == "/data/caf\u00e9-\\xff\\xfe.pkl"
    assert printable("plain caf\u00e9") == "plain caf\u00e9"


def _not_utf8_path(folder, d):
    name = os.fsencode(folder) + b"/caf\xc3\xa9-\xff\xfe.pkl"
    with open(name, "wb") as f:
        f.write(pickle.dumps(d, protocol=4))
    return os.fsdecode(name), name.decode("utf-8", "backslashreplace")


def test_a_path_that_is_not_utf8_is_named_on_strict_utf8_streams(tmp_path, monkeypatch):
    """As under PYTHONIOENCODING=utf-8 or an en_US.UTF-8 locale, where writing the path raised
    UnicodeEncodeError and the message said only that."""
    import io
    import sys
    d = mmsa_dict(seq=(12, 10, 8))
    d["train"] = {k: v[:1] for k, v in d["train"].items()}
    path, shown = _not_utf8_path(tmp_path, d)
    for argv in (["data", "inspect", path], ["train", "--dataset", "mmsa", "--data", path, "--out", str(tmp_path / "r")]):
        out, err = (io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict") for _ in range(2))
        monkeypatch.setattr(sys, "stdout", out)
        monkeypatch.setattr(sys, "stderr", err)
        code = main(argv)
        err.flush()
        lines = err.buffer.getvalue().decode("utf-8").strip().splitlines()
        monkeypatch.undo()
        assert code == 2 and len(lines) == 1, lines
        assert lines[0].startswith(f"fdmer-lite: error: {shown}: field 'train.regression_labels': expected at least 2")


def test_a_path_that_is_not_utf8_prints_through_the_command_line(tmp_path):
    import subprocess
    import sys
    path, shown = _not_utf8_path(tmp_path, mmsa_dict(aligned=True))
    env = dict(os.environ, PYTHONIOENCODING="utf-8")                # strict: a surrogate raises
    proc = subprocess.run([sys.executable, "-m", "fdmer_lite.cli", "data", "inspect", path], env=env,
                          capture_output=True, timeout=300)
    out, err = proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8")
    assert proc.returncode == 0, err
    assert out.splitlines()[0] == shown and "loads: OK" in out and "Traceback" not in err
