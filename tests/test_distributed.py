"""DistributedDataParallel training: W processes follow the one-process Trainer.

Tolerance. With dropout 0 the W-process run computes the same global batches, the same
per-sample means (re-weighted by shard size) and the same batch-level L_con / L_dis (on the
gathered representations) as one process; only the order of floating-point operations differs
(each rank multiplies a B/W-row matrix instead of a B-row one, and the all-reduce sums the ranks'
gradients in its own order). Measured on this test's data: validation MAE agrees to about 1e-8
and Pearson correlation to about 5e-7 after three epochs. We allow 1e-5 absolute on MAE and
correlation and 1e-5 relative on the validation task loss: two orders of magnitude above what
reordering produces, and far below any real difference (one Adam step with lr 2e-3 moves the
validation MAE by about 1e-2 here).
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from fdmer_lite.config import get_preset
from fdmer_lite.ablations import BY_KEY
from fdmer_lite.config import LossConfig
from fdmer_lite.distributed import (DistributedTrainer, ShardedBatchSampler, unused_parameters,
                                     init_process_group, shard_objective)
from fdmer_lite.losses import fdmer_objective
from fdmer_lite.experiments.runs import DataSpec
from fdmer_lite.data.synthetic import FAST_SIZES, make_benchmark
from fdmer_lite.train import Trainer

TOL = dict(abs=1e-5)
TINY = DataSpec("synthetic", options=dict(kind="emotion", n_train=96, n_valid=40, n_test=48, seq_len=8, seed=0))


def _config(batch_size=31):
    # batch 31 on 96 samples: global batches 31, 31, 31, 3 -> uneven shards (16/15, 2/1)
    return get_preset("fast").replace(train={"epochs": 3, "batch_size": batch_size, "device": "cpu",
                                             "patience": 10},
                                      model={"dropout": 0.0})


def test_sharded_batches_partition_the_one_process_batches():
    batches = [list(range(0, 5)), list(range(5, 10)), [10]]
    shards = [list(ShardedBatchSampler(batches, r, 2)) for r in range(2)]
    assert shards[0] == [[0, 2, 4], [5, 7, 9]] and shards[1] == [[1, 3], [6, 8]]    # [10] < world: skipped
    for k in range(2):
        assert sorted(shards[0][k] + shards[1][k]) == batches[k]


def test_unused_parameters_are_detected_without_touching_the_random_stream():
    data = TINY.load()
    full = Trainer(_config(), data)
    state = torch.get_rng_state()
    assert unused_parameters(full) == []
    assert torch.equal(state, torch.get_rng_state())
    # without L_ami and L_ams nothing trains the discriminator: DDP must leave it alone
    unused = unused_parameters(Trainer(BY_KEY["wo_ami_ams"].apply(_config()), data))
    assert unused and all(name.startswith("discriminator.") for name in unused)


def _compare(hist_a, hist_b):
    assert len(hist_a) == len(hist_b)
    for a, b in zip(hist_a, hist_b):
        for key in ("mae", "corr"):
            assert b["valid_metrics"][key] == pytest.approx(a["valid_metrics"][key], **TOL), (a["epoch"], key)
        assert b["valid"]["task"] == pytest.approx(a["valid"]["task"], rel=1e-5)


@pytest.mark.parametrize("variant", ["full", "wo_ami_ams"])      # wo_ami_ams: unused parameters
def test_a_world_of_one_is_the_plain_trainer(variant):
    import torch.distributed as dist
    data = TINY.load()
    cfg = BY_KEY[variant].apply(_config())
    reference = Trainer(cfg, data).fit()
    init_process_group("gloo")
    try:
        hist = DistributedTrainer(cfg, data).fit()
    finally:
        dist.destroy_process_group()
    _compare(reference, hist)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_processes_give_the_one_process_validation_metrics(tmp_path):
    # the options of fdmer-lite train: --config (batch 31, dropout 0) on the fast preset's data
    cfg = _config().replace(name="fast")
    (tmp_path / "config.json").write_text(json.dumps(cfg.to_dict()))
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
           "-m", "fdmer_lite.distributed", "--dataset", "synthetic", "--config", str(tmp_path / "config.json"),
           "--device", "cpu", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "FDMER_LITE_FAST": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert json.loads((out / "distributed.json").read_text())["world_size"] == 2
    assert "distributed.json" in json.loads((out / "complete.json").read_text())["files"]   # sealed with the run
    ddp_hist = json.loads((out / "history.json").read_text())
    ddp_metrics = json.loads((out / "metrics.json").read_text())

    data = make_benchmark("emotion", seed=cfg.train.seed, **FAST_SIZES)   # what fdmer-lite train loads
    one = Trainer(cfg, data)
    _compare(one.fit(), ddp_hist)
    # test metrics of the best checkpoint, computed over the whole test split
    test = one.evaluate("test")["metrics"]
    assert ddp_metrics["mae"] == pytest.approx(test["mae"], **TOL)
    assert ddp_metrics["corr"] == pytest.approx(test["corr"], **TOL)
    assert ddp_metrics["best_epoch"] == one.best_epoch
    assert np.isfinite(ddp_metrics["ridge_mae"])


def test_a_bad_option_of_the_distributed_trainer_is_one_line_and_exit_2(capsys, tmp_path):
    from fdmer_lite import distributed
    assert distributed.main(["--dataset", "synthetic", "--epochs", "0", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--epochs" in err[0] and not (tmp_path / "o").exists()
    (tmp_path / "bad.json").write_text('{"model": {"no_such_field": 1}}')
    assert distributed.main(["--dataset", "synthetic", "--config", str(tmp_path / "bad.json")]) == 2
    assert "bad.json" in capsys.readouterr().err


@pytest.mark.parametrize("align_weight", [0.0, 0.5])
def test_eq18_split_over_processes_averages_to_the_whole_batch(align_weight):
    """Two shards of a batch, each with ``gather`` giving the whole batch's rows and ``share`` its
    weight, average (as DDP averages gradients) to the one-batch objective: value and gradients."""
    from types import SimpleNamespace
    torch.manual_seed(0)
    n, d, M, mods = 10, 6, 3, "tav"
    reps = {f"{k}_{m}": torch.randn(n, d, requires_grad=True) for k in "CP" for m in mods}
    pred = torch.randn(n, requires_grad=True)
    cos_c = torch.empty(n, M, M).uniform_(-0.9, 0.9).requires_grad_()
    cos_p = torch.empty(n, M, M).uniform_(-0.9, 0.9).requires_grad_()
    leaves = [pred, cos_c, cos_p, *reps.values()]
    label = torch.randn(n)
    cfg = LossConfig(align_weight=align_weight)
    shards = [slice(0, 4), slice(4, n)]                        # unequal shards, W = 2

    def output(rows):
        return SimpleNamespace(prediction=pred[rows], modalities=mods,
                               common={m: reps[f"C_{m}"][rows] for m in mods},
                               private={m: reps[f"P_{m}"][rows] for m in mods},
                               disc_logits_common=cos_c[rows], disc_logits_private=cos_p[rows],
                               disc_logits_common_frozen=None)

    def gather_for(r):
        def gather(rows):                                      # shard r's rows -> the whole batch's
            name = next(k for k, v in reps.items() if torch.equal(rows.detach(), v[shards[r]].detach()))
            return torch.cat([rows if s == r else reps[name][shards[s]] for s in range(2)])
        return gather

    whole = fdmer_objective(output(slice(None)), label, cfg)["all"]
    per = [shard_objective(output(shards[r]), label[shards[r]], cfg, "regression", gather=gather_for(r),
                                  share=(shards[r].stop - shards[r].start) * 2 / n)["all"] for r in range(2)]
    averaged = (per[0] + per[1]) / 2
    torch.testing.assert_close(averaged, whole)
    for a, b in zip(torch.autograd.grad(averaged, leaves), torch.autograd.grad(whole, leaves)):
        torch.testing.assert_close(a, b)
