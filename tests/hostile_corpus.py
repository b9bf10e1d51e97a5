"""A corpus of hostile and malformed inputs, each with the command line that reads it.

``build(root)`` writes every case under ``root`` and returns a list of :class:`Case`; ``classify``
says what the command did with it. Used by ``tests/test_hostile_inputs.py`` (in process, fast)
and ``benchmarks/hostile_inputs.py`` (one subprocess per case, with peak memory).

Every case must end in exit status 2 with one line on stderr that names the file (or option):
``clear``. A path that is not UTF-8 is named as ``fdmer-lite`` prints it, with ``\\xNN`` for its
odd bytes; those cases run with ``PYTHONIOENCODING=utf-8`` (a strict stream, where writing the
raw path raises), and in process with strict UTF-8 streams. Anything else is counted: ``traceback``, ``silent`` (exit 0 on input that should have
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
from test_data_sdk import write_csd  # noqa: E402
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


def _train(dataset, path, out, *extra):
    return ["train", "--dataset", dataset, "--data", str(path), "--preset", "fast", "--epochs", "1",
            "--device", "cpu", "--out", str(out), *extra]


def _not_utf8(folder: Path, name: str, suffix: str = "") -> tuple[str, str]:
    """A path under ``folder`` named ``name``, the bytes 0xff 0xfe (not UTF-8), ``suffix``: the path
    as Python holds it, and as fdmer-lite prints it."""
    raw = os.fsencode(folder) + b"/" + name.encode() + b"-\xff\xfe" + suffix.encode()
    return os.fsdecode(raw), raw.decode("utf-8", "backslashreplace")


def _self_containing_array():
    arr = np.empty(8, dtype=object)
    arr[:] = [0.5] * 8
    arr[3] = arr
    return arr


def _mosi_folder(folder: Path, rows, audio=None):
    """utterances.csv and audio_utterance_73d.npy of the real CMU-MOSI text+audio layout."""
    folder.mkdir(parents=True, exist_ok=True)
    cols = ("id,video_id,clip,split,label,start,end,transcript,n_words,audio_src_part,audio_src_video_index,"
            "audio_src_position")
    lines = [f"v{i}_1,v{i},1,{split},0.5,0,1,IT WAS GOOD,3,train,0,{i}" for i, split in enumerate(rows)]
    (folder / "utterances.csv").write_text(cols + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    if audio is None:
        audio = np.random.default_rng(0).normal(size=(len(rows), 73))
    np.save(folder / "audio_utterance_73d.npy", audio.astype(np.float32))
    return folder


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
    pkl("bomb-deep-nesting", "bomb", b"\x80\x02" + b"]" * 100000 + b"a" * 99999 + b".")   # past the recursion limit
    pkl("bomb-memo-sharing-third-key", "bomb",                  # once skipped: only a dict's first keys were counted
        pickle.dumps({"a": 1, "b": 2, "train": {"audio": [inner] * 20000}}, protocol=4))
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
                    "train-equals-test", "labels-hold-themselves", "labels-uneven-lists", "features-1e30",
                    "one-sample-train"):                      # and what `data inspect` says of it
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
    mmsa("features-1e30", lambda d: d["train"]["vision"].__setitem__((0, 0, 0), 1e30))  # finite; its square is not
    mmsa("features-beyond-float32",
         lambda d: d["train"].__setitem__("audio", d["train"]["audio"].astype(np.float64) * 1e300))
    mmsa("labels-hold-themselves", lambda d: d["train"].__setitem__("regression_labels", _self_containing_array()))
    mmsa("labels-uneven-lists", lambda d: d["train"].__setitem__("regression_labels", [[0.5], [0.5, 1.0]] + [[0.0]] * 6))
    mmsa("audio-uneven-lists", lambda d: d["train"].__setitem__(
        "audio", d["train"]["audio"][:7].tolist() + [d["train"]["audio"][7, :, :4].tolist()]))
    mmsa("one-sample-train", lambda d: d.__setitem__("train", {k: v[:1] for k, v in d["train"].items()}))
    mmsa("zero-sample-train", lambda d: d.__setitem__("train", {k: v[:0] for k, v in d["train"].items()}))
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

    def urfunny(kind, mutate, named="data_folds.pkl", folder=None):
        folder = folder or root / kind
        files = make_urfunny_folder(folder)
        for name, obj in mutate(files).items():
            (Path(folder) / name).write_bytes(pickle.dumps(obj, protocol=2))
        cases.append(Case(kind, "malformed", _train("urfunny", folder, out / kind),
                          str(Path(folder) / named) if named else str(folder)))

    def first_train_id(files):
        return files["data_folds.pkl"]["train"][0]

    def uneven_covarep(f):
        rows = f["covarep_features_sdk.pkl"][first_train_id(f)]["punchline_features"]
        rows[-1] = rows[-1][:80]                                  # one word of 80 values, the others 81
        return {"covarep_features_sdk.pkl": f["covarep_features_sdk.pkl"]}

    def large_openface(f):
        f["openface_features_sdk.pkl"][first_train_id(f)]["punchline_features"][0, 0] = 1e30
        return {"openface_features_sdk.pkl": f["openface_features_sdk.pkl"]}

    urfunny("urfunny-features-uneven", uneven_covarep, "covarep_features_sdk.pkl")
    urfunny("urfunny-label-uneven-lists", lambda f: {"humor_label_sdk.pkl": {
        **f["humor_label_sdk.pkl"], first_train_id(f): [[0], [1, 1]]}}, "humor_label_sdk.pkl")
    urfunny("urfunny-features-1e30", large_openface, "openface_features_sdk.pkl")
    urfunny("urfunny-one-sample-train", lambda f: {"data_folds.pkl": dict(
        f["data_folds.pkl"], train=f["data_folds.pkl"]["train"][:1])}, None)

    def sdk(kind, mutate, folder=None):
        folder = Path(folder or root / kind)
        folder.mkdir()
        named = mutate(folder, make_sdk_folder(folder, drop_audio=()))
        cases.append(Case(kind, "malformed", _train("sdk", folder, out / kind), named))

    def sdk_large(folder, raw):
        frames, iv = raw["audio"]["vid1"]
        frames = frames.copy()
        frames[7, 2] = 1e30
        write_csd(folder / "CMU_MOSI_COVAREP.csd", "COVAREP", dict(raw["audio"], vid1=(frames, iv)))
        return str(folder / "CMU_MOSI_COVAREP.csd")

    def sdk_one_sample(folder, raw):
        y, iv = raw["labels"]["vid0"]
        write_csd(folder / "CMU_MOSI_Opinion_Labels.csd", "Opinion Segment Labels", dict(raw["labels"], vid0=(y[:1], iv[:1])))
        (folder / "folds.json").write_text(json.dumps({"train": ["vid0"], "valid": ["vid3"], "test": ["vid4"]}))
        return str(folder)

    try:
        import h5py  # noqa: F401
        sdk("sdk-features-1e30", sdk_large)
        sdk("sdk-one-sample-train", sdk_one_sample)
    except ImportError:
        pass

    mosi = _mosi_folder(root / "mosi-audio-1e30", ["train"] * 3 + ["valid", "test"], np.full((5, 73), 1e30))
    cases.append(Case("mosi-audio-1e30", "malformed", _train("mosi-text-audio", mosi, out / "m1", "--text-features",
                                                             "glove"), str(mosi / "audio_utterance_73d.npy")))
    mosi = _mosi_folder(root / "mosi-one-sample-train", ["train", "valid", "test"])
    cases.append(Case("mosi-one-sample-train", "malformed", _train("mosi-text-audio", mosi, out / "m2",
                                                                   "--text-features", "glove"),
                      str(mosi / "utterances.csv")))

    # -- paths that are not UTF-8, on strict UTF-8 streams -------------------------------------
    strict = {"PYTHONIOENCODING": "utf-8"}
    missing, shown = _not_utf8(root, "missing", ".pkl")
    cases.append(Case("path-not-utf8", "malformed", ["data", "inspect", missing], shown, env=strict))
    for kind, mutate in (("one-sample-train", lambda d: d.__setitem__("train", {k: v[:1] for k, v in d["train"].items()})),
                         ("train-equals-test", lambda d: d.__setitem__("test", d["train"]))):
        d = _small_mmsa()
        mutate(d)
        path, shown = _not_utf8(root, kind, ".pkl")
        Path(path).write_bytes(pickle.dumps(d, protocol=4))
        expect = "warn" if kind == "train-equals-test" else "refuse"
        cases.append(Case(f"path-not-utf8-{kind}", "malformed", _train("mmsa", path, out / f"nu-{kind}"), shown,
                          env=strict, expect=expect))
        cases.append(Case(f"inspect-path-not-utf8-{kind}", "malformed", ["data", "inspect", path], shown,
                          env=strict, expect=expect))
    folder, shown = _not_utf8(root, "urfunny")
    urfunny("urfunny-path-not-utf8", lambda f: {"data_folds.pkl": dict(
        f["data_folds.pkl"], train=f["data_folds.pkl"]["train"][:1])}, None, folder=folder)
    cases[-1].named, cases[-1].env = shown, strict
    folder, shown = _not_utf8(root, "mosi")
    _mosi_folder(Path(folder), ["train", "valid", "test"])
    cases.append(Case("mosi-path-not-utf8", "malformed", _train("mosi-text-audio", folder, out / "m3", "--text-features",
                                                                "glove"), shown + "/utterances.csv", env=strict))
    try:
        import h5py  # noqa: F401, F811
        folder, shown = _not_utf8(root, "sdk")
        sdk("sdk-path-not-utf8", sdk_large, folder=folder)
        cases[-1].named, cases[-1].env = shown + "/CMU_MOSI_COVAREP.csd", strict
    except ImportError:
        pass

    # -- options ---------------------------------------------------------------------------------
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
    lines = [line for line in err.strip().split("\n") if line.strip() and "Warning:" not in line
             and not line.startswith("  ") and "\r" not in line]     # \r: a progress bar redrawn
    if case.expect == "warn":
        warned = [line for line in lines if "warning" in line and case.named in line]
        return "clear" if rc == 0 and warned else "silent"
    if rc == 0:
        return "silent"
    return "clear" if len(lines) == 1 and case.named in lines[0] else "vague"


def run_in_process(case: Case) -> tuple[int, str]:
    """Run ``fdmer_lite.cli.main`` here, stderr captured; an exception becomes a traceback.

    stdout and stderr are strict UTF-8 streams, as under ``PYTHONIOENCODING=utf-8``: a path that
    is not UTF-8, written as it is, raises there."""
    import contextlib
    import io
    import traceback

    from fdmer_lite import cli
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            rc = cli.main(case.argv)
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 1
        except BaseException:                          # noqa: BLE001 - counted, not hidden
            err.reconfigure(errors="backslashreplace")
            traceback.print_exc(file=err)
            rc = 1
    err.flush()
    return rc, err.buffer.getvalue().decode("utf-8")


__all__ = ["Case", "build", "classify", "run_in_process", "json"]
