"""A corpus of hostile and malformed inputs, each with the command line that reads it.

``build(root)`` writes every case under ``root`` and returns a list of :class:`Case`; ``classify``
says what the command did with it. Used by ``tests/test_hostile_inputs.py`` (in process, fast)
and ``benchmarks/hostile_inputs.py`` (one subprocess per case, with peak memory).

Every case must end in exit status 2 with one line on stderr that names the file (or option):
``clear``. Anything else is counted: ``traceback``, ``silent`` (exit 0 on input that should have
been refused), ``vague`` (exit 2 but not one line naming the file), ``payload`` (a marker file of
a code-running payload appeared: the worst).
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_data_mmsa import mmsa_dict  # noqa: E402
from test_data_sdk import make_folder as make_sdk_folder  # noqa: E402
from test_data_urfunny import make_folder as make_urfunny_folder  # noqa: E402


@dataclass
class Case:
    kind: str
    group: str
    argv: list[str]
    named: str                       # what the message must name (a path or an option)
    marker: Path | None = None       # a payload's marker file, if any
    env: dict = field(default_factory=dict)
    expect: str = "refuse"           # "warn": exit 0 with one warning line naming the file


class _Evil:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _mmsa_argv(path, out):
    return ["train", "--dataset", "mmsa", "--data", str(path), "--preset", "fast", "--epochs", "1",
            "--device", "cpu", "--out", str(out)]


def _small_mmsa():
    return mmsa_dict(seq=(12, 10, 8), widths={"t": 6, "a": 5, "v": 4})


def build(root: str | os.PathLike) -> list[Case]:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    out = root / "out"
    cases: list[Case] = []

    def pkl(kind, group, blob, cmd="train", marker=None):
        p = root / f"{kind}.pkl"
        p.write_bytes(blob)
        argv = _mmsa_argv(p, out / kind) if cmd == "train" else ["data", "inspect", str(p)]
        cases.append(Case(kind, group, argv, str(p), marker))

    # -- code-running payloads ------------------------------------------------------------------
    for protocol in range(0, pickle.HIGHEST_PROTOCOL + 1):
        m = root / f"pwned-p{protocol}"
        pkl(f"payload-protocol{protocol}", "payload",
            pickle.dumps({"train": {"audio": _Evil(m)}}, protocol=protocol), marker=m)
    m = root / "pwned-nested"
    pkl("payload-nested", "payload", pickle.dumps({"train": [[{"x": (_Evil(m),)}]]}, protocol=2), marker=m)
    m = root / "pwned-objarray"
    arr = np.empty(2, dtype=object)
    arr[0], arr[1] = 1, _Evil(m)
    pkl("payload-object-array", "payload", pickle.dumps({"train": {"audio": arr}}, protocol=4), marker=m)
    m = root / "pwned-inspect"
    pkl("payload-inspect", "payload", pickle.dumps({"train": _Evil(m)}, protocol=4), cmd="inspect", marker=m)

    # -- memory bombs ---------------------------------------------------------------------------
    pkl("bomb-bytearray", "bomb", b"\x80\x04cbuiltins\nbytearray\n\x8a\x06\x00\x10\xa5\xd4\xe8\x00\x85R.")
    recon = pickle.dumps(np.zeros(2), protocol=2)
    pkl("bomb-reconstruct-shape", "bomb", recon.replace(b"K\x00\x85", b"\x8a\x05\x00\xe8vH\x17\x85", 1))
    pkl("bomb-setstate-shape", "bomb", recon.replace(b"K\x02\x85", b"\x8a\x05\x00\xe8vH\x17\x85", 1))
    objarr = pickle.dumps(np.array([1, 2], dtype=object), protocol=2)
    pkl("bomb-object-array-shape", "bomb", objarr.replace(b"K\x02\x85", b"\x8a\x05\x00\xe8vH\x17\x85", 1))
    pkl("bomb-memo-index", "bomb", b"\x80\x02]r\xff\xff\xff\x7f.")
    inner = [1.0] * 4000
    pkl("bomb-memo-sharing", "bomb", pickle.dumps({"train": {"audio": [inner] * 20000}}, protocol=4))
    pkl("bomb-bytes8-length", "bomb", b"\x80\x04\x8e" + struct.pack("<Q", 10 ** 12) + b"abc.")
    pkl("bomb-frame-length", "bomb", b"\x80\x04\x95" + struct.pack("<Q", 10 ** 12) + b"N.")
    pkl("bomb-self-reference", "bomb", b"\x80\x02]q\x00h\x00a.")
    npy = root / "bomb-npy-header.npy"
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000000), }"
    header = header + " " * (63 - len(header) % 64) + "\n"
    npy.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + b"\0" * 64)
    cases.append(Case("bomb-npy-header", "bomb", ["data", "inspect", str(npy)], str(npy)))
    try:
        import h5py
        h5 = root / "bomb-hdf5-shape.csd"
        with h5py.File(h5, "w") as f:
            g = f.create_group("COVAREP").create_group("data").create_group("vid0")
            g.create_dataset("features", shape=(10 ** 6, 10 ** 6), dtype="f8", chunks=(1, 1024))
            g.create_dataset("intervals", data=np.zeros((1, 2)))
            f["COVAREP"].create_group("metadata")
        cases.append(Case("bomb-hdf5-shape", "bomb", ["data", "inspect", str(h5)], str(h5)))
        for kind, make in (("hdf5-data-is-a-dataset", lambda f: f.create_group("X").create_dataset("data", data=[1])),
                           ("hdf5-video-is-a-dataset",
                            lambda f: f.create_group("X").create_group("data").create_dataset("vid0", data=[1.0]))):
            p = root / f"{kind}.csd"
            with h5py.File(p, "w") as f:
                make(f)
            cases.append(Case(kind, "malformed", ["data", "inspect", str(p)], str(p)))
    except ImportError:
        pass

    # -- malformed MMSA pickles -----------------------------------------------------------------
    def mmsa(kind, mutate, group="malformed"):
        d = _small_mmsa()
        mutate(d)
        pkl(kind, group, pickle.dumps(d, protocol=4))
        if kind == "train-equals-test":
            cases[-1].expect = "warn"
        if kind in ("labels-are-a-dict", "complex-features", "lengths-are-strings", "all-nan-stream",
                    "train-equals-test"):                     # and what `data inspect` says of it
            p = root / f"{kind}.pkl"
            cases.append(Case(f"inspect-{kind}", group, ["data", "inspect", str(p)], str(p),
                              expect="warn" if kind == "train-equals-test" else "refuse"))

    mmsa("labels-are-a-dict", lambda d: d["train"].__setitem__("regression_labels", {"a": 1}))
    mmsa("lengths-are-strings", lambda d: d["train"].__setitem__("audio_lengths", ["x"] * 8))
    mmsa("string-labels", lambda d: d["train"].__setitem__("regression_labels", np.array(["a"] * 8)))
    mmsa("complex-features", lambda d: d["train"].__setitem__("audio", d["train"]["audio"] * 1j))
    mmsa("zero-width-stream", lambda d: [d[s].__setitem__("audio", d[s]["audio"][:, :, :0]) for s in d])
    mmsa("zero-length-stream", lambda d: [d[s].__setitem__("audio", d[s]["audio"][:, :0, :]) for s in d])
    mmsa("all-nan-stream", lambda d: [d[s]["audio"].__setitem__(Ellipsis, np.nan) for s in d])
    mmsa("features-3e38", lambda d: [d[s]["vision"].__setitem__(Ellipsis, 3e38) for s in d])
    mmsa("one-sample-train", lambda d: d.__setitem__("train", {k: v[:1] for k, v in d["train"].items()}))
    mmsa("train-equals-test", lambda d: d.__setitem__("test", d["train"]))
    pkl("top-level-list", "malformed", pickle.dumps([1, 2, 3], protocol=4))
    pkl("truncated-pickle", "malformed", pickle.dumps(_small_mmsa(), protocol=4)[:300])
    pkl("not-a-pickle", "malformed", b"this is a text file, not a pickle\n")
    pkl("empty-file", "malformed", b"")

    # -- CSV ------------------------------------------------------------------------------------
    cols = "id,video_id,clip,split,label,start,end,transcript,n_words,audio_src_part,audio_src_video_index,audio_src_position"
    for kind, body in (("csv-not-utf8", cols + "\nv_1,v,1,train,1.0,0,1,caf\xe9 \xff\xfe,1,train,0,0\n"),
                       ("csv-field-over-limit", cols + "\nv_1,v,1,train,1.0,0,1,\"" + "x" * 140000 + "\",1,train,0,0\n"),
                       ("csv-short-row", cols + "\nv_1,v,1,train\n")):
        folder = root / kind
        folder.mkdir()
        (folder / "utterances.csv").write_bytes(body.encode("latin-1"))
        np.save(folder / "audio_utterance_73d.npy", np.zeros((1, 73), np.float32))
        cases.append(Case(kind, "malformed", ["data", "inspect", str(folder / "utterances.csv")],
                          str(folder / "utterances.csv")))

    # -- SDK folds, UR-FUNNY folds --------------------------------------------------------------
    sdk = root / "sdk-folds-syntax-error"
    sdk.mkdir()
    make_sdk_folder(sdk)
    (sdk / "folds.json").unlink()
    (sdk / "CMU_MOSI_std_folds.py").write_text("standard_train_fold = ['vid0', 'vid1'\nstandard_valid_fold = [\n")
    cases.append(Case("sdk-folds-syntax-error", "malformed", ["train", "--dataset", "sdk", "--data", str(sdk),
                      "--preset", "fast", "--epochs", "1", "--out", str(out / "sdk1")], str(sdk / "CMU_MOSI_std_folds.py")))
    sdk2 = root / "sdk-folds-not-utf8"
    sdk2.mkdir()
    make_sdk_folder(sdk2)
    (sdk2 / "folds.json").write_bytes(b'{"train": ["vid0\xff"]}')
    cases.append(Case("sdk-folds-not-utf8", "malformed", ["train", "--dataset", "sdk", "--data", str(sdk2),
                      "--preset", "fast", "--epochs", "1", "--out", str(out / "sdk2")], str(sdk2 / "folds.json")))
    ur = root / "urfunny-folds-not-a-list"
    make_urfunny_folder(ur)
    (ur / "data_folds.pkl").write_bytes(pickle.dumps({"train": 5, "dev": [1], "test": [2]}, protocol=2))
    cases.append(Case("urfunny-folds-not-a-list", "malformed", ["train", "--dataset", "urfunny", "--data", str(ur),
                      "--preset", "fast", "--epochs", "1", "--out", str(out / "ur")], str(ur / "data_folds.pkl")))

    # -- paths and options ----------------------------------------------------------------------
    cases.append(Case("path-not-utf8", "malformed", ["data", "inspect", os.fsdecode(bytes(root) + b"/\xff\xfe.pkl")],
                      ".pkl"))
    (root / "a-file").write_text("x")
    tiny = ["train", "--dataset", "synthetic", "--preset", "fast", "--device", "cpu"]
    for kind, extra, named in (
            ("epochs-0", ["--epochs", "0"], "--epochs"), ("epochs-negative", ["--epochs", "-3"], "--epochs"),
            ("beta-nan", ["--beta", "nan"], "--beta"), ("beta-negative", ["--beta", "-0.5"], "--beta"),
            ("beta-1e308", ["--beta", "1e308", "--epochs", "1"], "non-finite"),
            ("gamma-inf", ["--gamma", "inf"], "--gamma"), ("modalities-tt", ["--modalities", "tt"], "--modalities"),
            ("seed-negative", ["--seed", "-1"], "--seed"),
            ("out-is-a-file", ["--out", str(root / "a-file")], str(root / "a-file")),
            ("out-parent-is-a-file", ["--out", str(root / "a-file" / "run")], str(root / "a-file")),
            ("out-read-only", ["--out", "/proc/fdmer-run"], "/proc/fdmer-run")):
        cases.append(Case(kind, "option", tiny + extra + ([] if "--out" in extra else ["--out", str(out / kind)]), named))
    link = root / "out-symlink"
    link.symlink_to(root / "elsewhere")
    cases.append(Case("out-is-a-symlink", "option", tiny + ["--epochs", "1", "--out", str(link)], str(link)))
    return cases


def classify(case: Case, rc: int, err: str) -> str:
    if case.marker is not None and case.marker.exists():
        return "payload"
    if "Traceback (most recent call last)" in err or rc not in (0, 2):
        return "traceback"
    lines = [line for line in err.strip().splitlines() if line.strip() and "Warning:" not in line
             and not line.startswith("  ")]
    if case.expect == "warn":
        warned = [line for line in lines if "warning" in line and case.named in line]
        return "clear" if rc == 0 and warned else "silent"
    if rc == 0:
        return "silent"
    return "clear" if len(lines) == 1 and case.named in lines[0] else "vague"


def run_in_process(case: Case) -> tuple[int, str]:
    """Run ``fdmer_lite.cli.main`` here, stderr captured; an exception becomes a traceback."""
    import contextlib
    import io
    import traceback

    from fdmer_lite import cli
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = cli.main(case.argv)
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 1
        except BaseException:                          # noqa: BLE001 - counted, not hidden
            traceback.print_exc(file=err)
            rc = 1
    return rc, err.getvalue()


__all__ = ["Case", "build", "classify", "run_in_process", "json"]
