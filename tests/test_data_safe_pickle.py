"""The allow-list unpickler: numpy data loads, code in a pickle never runs."""

import os
import pickle
import subprocess

import numpy as np
import pytest
import torch

from fdmer_lite.data.base import DataError
from fdmer_lite.data.safe_pickle import UnsafePickleError, safe_load, safe_loads


class _Payload:
    """Unpickling this calls ``func(*args)``: what a hostile file does."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _marker_command(marker):
    return f"touch {marker}"


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_numpy_arrays_scalars_and_containers_load(protocol):
    obj = {"train": {"audio": np.arange(6, dtype=np.float32).reshape(2, 3),
                     "id": np.array(["a$_$1", "b$_$2"], dtype=object),
                     "raw_text": np.array(["hello", "x"]),
                     "regression_labels": np.array([0.5, -1.0], dtype=np.float64),
                     "strided": np.arange(12.0).reshape(3, 4)[:, ::2],
                     "scalar": np.float64(2.5), "count": np.int64(3), "flags": {1, 2},
                     "nested": [("a", 1), None, True, b"bytes"]}}
    back = safe_loads(pickle.dumps(obj, protocol=protocol))
    tr = back["train"]
    np.testing.assert_array_equal(tr["audio"], obj["train"]["audio"])
    assert tr["audio"].dtype == np.float32
    assert list(tr["id"]) == ["a$_$1", "b$_$2"]
    np.testing.assert_array_equal(tr["strided"], obj["train"]["strided"])
    assert tr["scalar"] == 2.5 and tr["count"] == 3 and tr["flags"] == {1, 2}
    assert tr["nested"] == [("a", 1), None, True, b"bytes"]


@pytest.mark.parametrize("func,args", [
    (os.system, None),
    (subprocess.call, None),
    (eval, None),
])
def test_malicious_pickle_is_refused_and_its_payload_never_runs(tmp_path, func, args):
    marker = tmp_path / "pwned"
    if func is os.system:
        args = (_marker_command(marker),)
    elif func is subprocess.call:
        args = (["touch", str(marker)],)
    else:
        args = (f"open({str(marker)!r}, 'w').close()",)
    path = tmp_path / "aligned_50.pkl"
    # hidden inside an otherwise MMSA-shaped file
    path.write_bytes(pickle.dumps({"train": {"audio": np.zeros((2, 3, 4)), "x": _Payload(func, *args)}}))
    with pytest.raises(UnsafePickleError) as err:
        safe_load(path)
    assert not marker.exists()
    msg = str(err.value)
    assert str(path) in msg and "refused" in msg
    assert isinstance(err.value, DataError) and isinstance(err.value, pickle.UnpicklingError)


def test_refusal_names_the_global(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_Payload(os.system, "true")))
    with pytest.raises(UnsafePickleError, match=r"found (posix|nt|os)\.system"):
        safe_load(path)


def test_python2_style_globals(tmp_path):
    # protocol-2 pickles name builtins "__builtin__" and store bytes through _codecs.encode
    data = pickle.dumps({"s": {1}, "b": b"\x00\xff", "a": np.ones(3)}, protocol=2, fix_imports=True)
    back = safe_loads(data)
    assert back["s"] == {1} and back["b"] == b"\x00\xff"


def test_not_a_pickle_and_missing_file(tmp_path):
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"this is not a pickle")
    with pytest.raises(DataError, match="readable pickle"):
        safe_load(bad)
    with pytest.raises(FileNotFoundError):
        safe_load(tmp_path / "absent.pkl")


def test_checkpoints_load_weights_only(tmp_path):
    """Checkpoints go through torch.load(weights_only=True): a hostile one is refused, nothing runs."""
    from fdmer_lite.train import load_checkpoint
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pt"
    torch.save({"model_state": {}, "evil": _Payload(os.system, _marker_command(marker))}, path)
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(path)
    assert not marker.exists()
    ok = tmp_path / "ok.pt"
    torch.save({"model_state": {"w": torch.ones(2)}, "widths": {"t": 3}}, ok)
    assert load_checkpoint(ok)["widths"] == {"t": 3}


def _self_containing():
    arr = np.empty(3, dtype=object)
    arr[0], arr[1], arr[2] = 1.0, arr, 2.0                        # arr[1] is arr
    lst = [1.0, 2.0]
    lst.append(lst)                                              # lst[2] is lst
    return [(arr, "train.regression_labels[1]", "an object array that contains itself"),
            (lst, "train.regression_labels[2]", "a list that contains itself")]


@pytest.mark.parametrize("value,field,found", _self_containing())
def test_labels_that_contain_themselves_are_refused_naming_the_entry(value, field, found):
    # not the first key of its split: reached only if every entry of a dict is looked at
    blob = pickle.dumps({"train": {"id": ["a", "b"], "audio": np.zeros(2), "regression_labels": value}}, protocol=4)
    with pytest.raises(DataError) as err:
        safe_loads(blob, source="f.pkl")
    assert (err.value.source, err.value.field, err.value.found) == ("f.pkl", field, found)


@pytest.mark.parametrize("keys_before", [0, 1, 2, 5])
def test_every_entry_of_a_dict_counts_towards_the_size_limit(keys_before):
    from fdmer_lite.data.safe_pickle import FLOOR, SizeLimitError
    inner = [1.0] * 4000
    d = {f"k{i}": i for i in range(keys_before)}
    d["train"] = {"audio": [inner] * 20000}                       # one list, shared 20,000 times
    assert 20000 * (56 + 8 * 4000 + 32 * 4000) > FLOOR            # as copies: past the 64 MiB floor
    with pytest.raises(SizeLimitError, match="shared references"):
        safe_loads(pickle.dumps(d, protocol=4))


def test_nesting_deeper_than_the_limit_is_refused():
    from fdmer_lite.data.safe_pickle import MAX_DEPTH

    def nested(k):                                               # k lists, each inside the one before
        return b"\x80\x02" + b"]" * k + b"a" * (k - 1) + b"."

    x, depth = safe_loads(nested(MAX_DEPTH)), 1
    while x:
        x, depth = x[0], depth + 1
    assert depth == MAX_DEPTH
    for k in (MAX_DEPTH + 1, 100_000):                            # 100,000: beyond Python's recursion limit
        with pytest.raises(DataError, match=f"containers nested at most {MAX_DEPTH} deep"):
            safe_loads(nested(k))
