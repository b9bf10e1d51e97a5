"""The hostile-input corpus (tests/hostile_corpus.py) through the command line: every case ends
in exit status 2 and one line naming the file or option, and no payload ever runs."""

import collections
import importlib.util

import pytest
from hostile_corpus import build, classify, run_in_process


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build(tmp_path_factory.mktemp("hostile"))


def test_the_corpus_covers_the_kinds_of_the_issue(corpus):
    groups = collections.Counter(c.group for c in corpus)
    assert groups["payload"] >= 8 and groups["bomb"] >= 10 and groups["malformed"] >= 20 and groups["option"] >= 10
    assert len({c.kind for c in corpus}) == len(corpus)
    kinds = {c.kind for c in corpus}
    issue_33 = {  # labels that hold themselves, features too large, one training sample, paths not UTF-8
        "labels-hold-themselves", "labels-uneven-lists", "audio-uneven-lists", "urfunny-features-uneven",
        "urfunny-label-uneven-lists", "bomb-deep-nesting", "features-1e30", "features-beyond-float32",
        "urfunny-features-1e30", "mosi-audio-1e30", "one-sample-train", "zero-sample-train",
        "urfunny-one-sample-train", "mosi-one-sample-train", "path-not-utf8", "path-not-utf8-one-sample-train",
        "inspect-path-not-utf8-train-equals-test", "urfunny-path-not-utf8", "mosi-path-not-utf8"}
    assert issue_33 <= kinds, issue_33 - kinds
    if importlib.util.find_spec("h5py"):
        assert {"sdk-features-1e30", "sdk-one-sample-train", "sdk-path-not-utf8"} <= kinds


@pytest.mark.slow
def test_every_hostile_input_gets_one_clear_message(corpus):
    outcomes = {}
    for case in corpus:
        rc, err = run_in_process(case)
        outcomes[case.kind] = (classify(case, rc, err), rc, err.strip()[-400:])
    bad = {k: v for k, v in outcomes.items() if v[0] != "clear"}
    assert not bad, bad
    assert not [c for c in corpus if c.marker is not None and c.marker.exists()]       # no payload ran


def test_classify_can_fail(corpus, tmp_path):
    case = next(c for c in corpus if c.kind == "not-a-pickle")
    assert classify(case, 2, f"fdmer-lite: error: {case.named}: field '<file>': ...\n") == "clear"
    assert classify(case, 2, "fdmer-lite: error: something went wrong\n") == "vague"
    assert classify(case, 1, "Traceback (most recent call last):\n  ...\nTypeError: x\n") == "traceback"
    assert classify(case, 0, "") == "silent"
    payload = next(c for c in corpus if c.marker is not None)
    payload.marker.write_text("ran")
    try:
        assert classify(payload, 2, f"fdmer-lite: error: {payload.named}\n") == "payload"
    finally:
        payload.marker.unlink()
