"""``fdmer-lite data inspect``: what a file holds, and why it does not load."""

import pickle

import numpy as np
import pytest
from test_data_mmsa import mmsa_dict, write
from test_data_sdk import make_folder as make_sdk_folder
from test_data_urfunny import make_folder as make_urfunny_folder

from fdmer_lite.data.base import DataError
from fdmer_lite.data.inspect import inspect_path
from fdmer_lite.data.safe_pickle import UnsafePickleError


def test_mmsa_report_shows_splits_widths_labels_and_nonfinite(tmp_path):
    d = mmsa_dict()
    d["train"]["audio"][0, 0, :2] = -np.inf
    report = inspect_path(write(tmp_path / "unaligned_50.pkl", d))
    assert "format: MMSA pickle (unaligned)" in report
    assert "split 'train': 8 samples" in report
    assert "audio: shape (8, 30, 5), dtype float32, NaN 0, -inf 2, +inf 0" in report
    assert "regression_labels" in report and "mean" in report and "frac >= 0" in report
    assert "audio_lengths: min" in report
    assert "widths (train): {'t': 768, 'a': 5, 'v': 20}" in report and "MOSI" in report
    assert "loads: OK" in report and "nonfinite_replaced: {'train.audio': 2}" in report


def test_mmsa_report_says_why_it_does_not_load(tmp_path):
    d = mmsa_dict()
    d["test"]["vision"] = d["test"]["vision"][:, :, :7]
    report = inspect_path(write(tmp_path / "bad.pkl", d))
    assert "vision: shape (6, 40, 7)" in report
    assert "loads: NO" in report and "test.v" in report


def test_sdk_folder_and_file(tmp_path):
    make_sdk_folder(tmp_path)
    report = inspect_path(tmp_path)
    assert "CMU_MOSI_COVAREP.csd: computational sequence 'COVAREP', 5 videos" in report
    assert "NaN/inf 1" in report and "rows per second about 20.00" in report
    assert "folds from folds.json: train 3 videos" in report
    assert "loads: OK" in report and "videos_dropped" in report
    single = inspect_path(tmp_path / "CMU_MOSI_VisualFacet_4.1.csd")
    assert "format: CMU-MultimodalSDK" in single and "widths [2]" in single


def test_urfunny_folder(tmp_path):
    make_urfunny_folder(tmp_path, version=1)
    report = inspect_path(tmp_path)
    assert "format: UR-FUNNY feature folder" in report
    assert "looks like UR-FUNNY data_folds.pkl: train 10 ids, dev 4 ids, test 6 ids" in report
    assert "punchline_features: widths [75]" in report
    assert "loads: OK" in report


def test_unsafe_pickle_and_unknown_files(tmp_path):
    class Evil:
        def __reduce__(self):
            import os
            return os.system, (f"touch {tmp_path / 'pwned'}",)
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"train": Evil()}))
    with pytest.raises(UnsafePickleError):
        inspect_path(tmp_path / "evil.pkl")
    assert not (tmp_path / "pwned").exists()
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="suffix"):
        inspect_path(tmp_path / "notes.txt")
    with pytest.raises(FileNotFoundError):
        inspect_path(tmp_path / "absent.pkl")
    np.save(tmp_path / "a.npy", np.array([1.0, np.nan]))
    assert "NaN 1" in inspect_path(tmp_path / "a.npy")
