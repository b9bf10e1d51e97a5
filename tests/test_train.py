"""Trainer: a short fit, history, early stopping, checkpoints, NaN handling, devices, CUDA path."""

import copy
import math

import numpy as np
import pytest
import torch

from fdmer_lite.config import get_preset
from fdmer_lite.data.synthetic import make_benchmark
from fdmer_lite.losses import TERMS
from fdmer_lite.train import (NonFiniteLoss, Trainer, clip_gradients, improves, lr_scheduler,
                              make_optimizer, reversal_coefficient, select_device, term_values)


def test_fit_records_every_term_and_restores_best(tiny_data, fast_config):
    cfg = fast_config.replace(train={"epochs": 3})
    tr = Trainer(cfg, tiny_data)
    hist = tr.fit()
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    for h in hist:
        assert set(h["train"]) == set(TERMS) and set(h["valid"]) == set(TERMS)
        assert all(math.isfinite(v) for v in h["train"].values())
        assert "mae" in h["valid_metrics"]
    best = min(hist, key=lambda h: h["valid"]["task"])
    assert tr.best_epoch == best["epoch"]
    # the restored weights are the best epoch's: re-evaluating gives its validation loss
    assert tr.evaluate("valid")["losses"]["task"] == pytest.approx(best["valid"]["task"], rel=1e-5)


def test_reversal_coefficient_is_the_dann_ramp():
    assert reversal_coefficient("constant", 0.0) == reversal_coefficient("constant", 0.7) == 1.0
    for p in (0.0, 0.05, 0.1, 0.5, 1.0):                       # Ganin & Lempitsky (2015), Sec. 5.2
        lam = (1 - math.exp(-10 * p)) / (1 + math.exp(-10 * p))  # = 2 / (1 + e^(-10p)) - 1 = tanh(5p)
        assert reversal_coefficient("dann", p) == pytest.approx(lam, abs=1e-12)
        assert reversal_coefficient("dann", p) == pytest.approx(math.tanh(5 * p), abs=1e-12)
    with pytest.raises(ValueError, match="grl_schedule"):
        reversal_coefficient("linear", 0.5)


def test_trainer_passes_the_reversal_ramp_to_the_model(tiny_data, fast_config):
    cfg = fast_config.replace(train={"epochs": 2, "grl_schedule": "dann", "patience": 10})
    tr = Trainer(cfg, tiny_data)
    seen, forward = [], tr.model.forward

    def spy(features, masks=None, grl_coeff=1.0):
        if tr.model.training:
            seen.append(grl_coeff)
        return forward(features, masks, grl_coeff=grl_coeff)

    tr.model.forward = spy
    tr.fit()
    steps = len(tr.loader("train"))                            # 96 samples, batch 32: 3 steps
    expected = [math.tanh(5 * i / (2 * steps)) for i in range(2 * steps)]
    assert seen == pytest.approx(expected, abs=1e-12)


def test_early_stopping_stops_after_patience(tiny_data, fast_config):
    cfg = fast_config.replace(train={"epochs": 50, "patience": 2, "lr": 0.0})   # lr 0: never improves
    hist = Trainer(cfg, tiny_data).fit()
    assert len(hist) == 3                      # best at epoch 1, then two epochs without improvement


def test_only_a_fall_beyond_float_rounding_counts_as_an_improvement():
    assert improves(5.0, math.inf)
    assert improves(1.0, 2.0) and not improves(2.0, 2.0) and not improves(3.0, 2.0)
    assert not improves(2.0 * (1 - 1e-7), 2.0)            # a rounding-sized fall
    assert improves(2.0 * (1 - 1e-5), 2.0)
    assert improves(-2.0 * (1 + 1e-5), -2.0) and not improves(-2.0 * (1 + 1e-7), -2.0)


def test_training_reduces_the_task_loss(tiny_data, fast_config):
    # beta = gamma = 0: on 24 steps the alpha = 72 margin losses would dominate Adam's early state
    cfg = fast_config.replace(train={"epochs": 8, "lr": 3e-3, "patience": 100}, loss={"beta": 0.0, "gamma": 0.0})
    hist = Trainer(cfg, tiny_data).fit()
    assert hist[-1]["train"]["task"] < hist[0]["train"]["task"]


def test_seeding_makes_runs_repeatable(tiny_data, fast_config):
    a = Trainer(fast_config, tiny_data).fit()
    b = Trainer(fast_config, tiny_data).fit()
    assert a[-1]["train"]["all"] == pytest.approx(b[-1]["train"]["all"], rel=1e-6)


def test_nan_loss_stops_with_epoch_step_and_term(tiny_data, fast_config, monkeypatch):
    import fdmer_lite.train as train_mod
    real = train_mod.fdmer_objective
    calls = {"n": 0}

    def poisoned(out, label, cfg, task):
        terms = real(out, label, cfg, task)
        calls["n"] += 1
        if out.prediction.requires_grad and calls["n"] > 6:      # a few training steps later
            terms["dis"] = terms["dis"] * float("nan")
        return terms

    monkeypatch.setattr(train_mod, "fdmer_objective", poisoned)
    tr = Trainer(fast_config.replace(train={"epochs": 5}), tiny_data)
    with pytest.raises(NonFiniteLoss, match=r"epoch \d+, step \d+: term 'dis'"):
        tr.fit()
    assert tr.best_epoch >= 1                                   # the best checkpoint so far is kept
    assert all(torch.isfinite(p).all() for p in tr.model.parameters())


def test_term_values_reads_every_term_by_name_in_one_go():
    terms = {"task": torch.tensor(0.25), "ami": torch.tensor(3.0, requires_grad=True) * 2,
             "con": torch.tensor(1.5, dtype=torch.float16), "dis": torch.tensor(float("inf")),
             "align": torch.tensor(float("nan"))}
    values = term_values(terms)
    assert list(values) == ["task", "ami", "con", "dis", "align"]
    assert values["task"] == 0.25 and values["ami"] == 6.0 and values["con"] == 1.5
    assert values["dis"] == float("inf") and values["align"] != values["align"]      # NaN kept
    assert all(type(v) is float for v in values.values())


def test_clip_gradients_scales_to_the_total_norm_and_make_optimizer_is_the_fused_adam():
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(n)) for n in (3, 5, 7)]
    grads = [torch.randn(p.shape) * 10 for p in params]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    total = math.sqrt(sum(float((g.double() ** 2).sum()) for g in grads))      # by hand, in float64
    returned = clip_gradients(params, 1.0, torch.device("cpu"))
    assert float(returned) == pytest.approx(total, rel=1e-6)
    for p, g in zip(params, grads):                                   # every gradient times 1 / total
        assert torch.allclose(p.grad.double(), g.double() / total, rtol=1e-5)
    small = [torch.nn.Parameter(torch.ones(2))]
    small[0].grad = torch.full((2,), 0.1)
    clip_gradients(small, 1.0, torch.device("cpu"))
    assert torch.equal(small[0].grad, torch.full((2,), 0.1))          # under the limit: untouched
    t = get_preset("fast").train
    opt = make_optimizer(params, t, torch.device("cpu"))
    group = opt.param_groups[0]
    assert isinstance(opt, torch.optim.Adam) and group["fused"] is True
    assert (group["lr"], group["weight_decay"]) == (t.lr, t.weight_decay)


def test_fingerprint_changes_with_every_number_and_only_with_the_numbers(tiny_data):
    fp = tiny_data.fingerprint()
    assert len(fp) == 16 and int(fp, 16) >= 0
    again = make_benchmark("emotion", n_train=96, n_valid=32, n_test=48, seq_len=12, seed=0)
    assert again is not tiny_data and again.fingerprint() == fp          # same numbers, same hash
    same = copy.deepcopy(tiny_data)
    for sp in same.splits.values():                                      # another memory layout
        sp.features = {m: np.asfortranarray(x) for m, x in sp.features.items()}
    assert same.fingerprint() == fp

    def changed(edit):
        d = copy.deepcopy(tiny_data)                  # a copy is hashed afresh, not from the cache
        edit(d)
        return d.fingerprint()

    one_ulp = lambda x: np.nextafter(x, np.float32(np.inf))  # noqa: E731
    variants = {
        "a feature, by one ulp": changed(lambda d: d.splits["test"].features["v"].__setitem__(
            (3, 4, 5), one_ulp(d.splits["test"].features["v"][3, 4, 5]))),
        "a label": changed(lambda d: d.splits["valid"].labels.__setitem__(0, 2.5)),
        "valid lengths added": changed(lambda d: d.splits["train"].lengths.__setitem__(
            "a", np.full(96, 12, dtype=np.int64))),
        "two splits swapped": changed(lambda d: d.splits.update(valid=d.splits["test"], test=d.splits["valid"])),
        "a modality left out": tiny_data.select("ta").fingerprint(),
    }
    assert all(v != fp for v in variants.values()), variants
    assert len(set(variants.values())) == len(variants)
    # A split given a new array is hashed again (the remembered hash follows the arrays held).
    tiny_data.splits["train"].labels = tiny_data.splits["train"].labels + 1.0
    assert tiny_data.fingerprint() != fp


def test_subset_of_modalities_trains(tiny_data, fast_config):
    cfg = fast_config.replace(model={"modalities": "ta"}, train={"epochs": 1})
    tr = Trainer(cfg, tiny_data)
    tr.fit()
    assert tr.data.modalities == "ta"
    assert tr.model.psi_names == ("C", "P_t", "P_a")


def test_select_device():
    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ValueError, match="device"):
        select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            select_device("cuda")


def test_amp_is_off_on_cpu(tiny_data, fast_config):
    assert Trainer(fast_config.replace(train={"amp": True}), tiny_data).use_amp is False


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine; the CUDA path "
                    "(placement, float16 autocast, pinned memory) is exercised where one exists")
def test_cuda_training_step_with_mixed_precision(tiny_data, fast_config):
    tr = Trainer(fast_config.replace(train={"device": "cuda", "epochs": 1, "amp": True}), tiny_data)
    assert tr.use_amp and next(tr.model.parameters()).is_cuda
    loader = tr.loader("train")
    assert loader.pin_memory
    out, terms, _ = tr._forward(next(iter(loader)))
    assert out.prediction.dtype == torch.float16 and terms["all"].dtype == torch.float32
    tr.fit()
    assert math.isfinite(tr.history[-1]["train"]["all"])


def _lrs(schedule, epochs=4, steps=5):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    sched = lr_scheduler(opt, schedule, epochs, steps)
    seen = []
    for _ in range(epochs * steps):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return seen


def test_lr_schedules_follow_their_formulas():
    assert _lrs("constant") == [0.1] * 20
    # cosine: 0.1 * (1 + cos(pi * k / 20)) / 2 at step k
    expected = [0.05 * (1 + math.cos(math.pi * k / 20)) for k in range(20)]
    assert _lrs("cosine") == pytest.approx(expected)
    with pytest.raises(ValueError, match="lr_schedule"):
        _lrs("linear")


def test_trainer_uses_the_schedule(tiny_data, fast_config):
    cfg = fast_config.replace(train={"lr_schedule": "cosine", "epochs": 2, "patience": 5})
    trainer = Trainer(cfg, tiny_data)
    trainer.fit()
    # after every step of a cosine schedule that ends with the last epoch, the rate is ~0
    assert trainer.history[-1]["lr"] < 0.05 * cfg.train.lr
    assert trainer.history[0]["lr"] > trainer.history[-1]["lr"]


def test_on_epoch_sees_every_history_entry(tiny_data, fast_config):
    seen = []
    trainer = Trainer(fast_config.replace(train={"epochs": 3, "patience": 5}), tiny_data,
                      on_epoch=seen.append)
    history = trainer.fit()
    assert [e["epoch"] for e in seen] == [1, 2, 3]
    assert seen == history                   # the very entries, in order, as each epoch ended


def test_on_epoch_returning_true_stops_after_that_epoch_and_keeps_its_best(tiny_data, fast_config):
    cfg = fast_config.replace(train={"epochs": 6, "patience": 6, "seed": 0, "early_stop": "mae"})
    full = Trainer(cfg, tiny_data).fit()
    maes = [h["valid_metrics"]["mae"] for h in full]
    # the last epoch after the first whose MAE beats every earlier one: a stop there must weigh it
    k = max(e for e in range(2, len(maes)) if maes[e - 1] < min(maes[:e - 1]))   # before the last
    tr = Trainer(cfg, tiny_data, on_epoch=lambda entry: entry["epoch"] == k)
    hist = tr.fit()
    assert [h["epoch"] for h in hist] == list(range(1, k + 1))
    # the same run as the uninterrupted one up to the stop (the budget, and so the ramp, unchanged)
    assert [h["valid_metrics"]["mae"] for h in hist] == pytest.approx(maes[:k], rel=1e-6)
    assert tr.best_epoch == k
    assert tr.evaluate("valid")["metrics"]["mae"] == pytest.approx(maes[k - 1], rel=1e-5)


def test_early_stop_on_the_validation_mae_keeps_the_best_mae_epoch(tiny_data, fast_config):
    stop_mae = {"lr": 1e-2, "seed": 3, "early_stop": "mae"}
    tr = Trainer(fast_config.replace(train={"epochs": 8, "patience": 8, **stop_mae}), tiny_data)
    hist = tr.fit()
    maes = [h["valid_metrics"]["mae"] for h in hist]
    by_mae = min(hist, key=lambda h: h["valid_metrics"]["mae"])["epoch"]
    by_loss = min(hist, key=lambda h: h["valid"]["task"])["epoch"]
    assert by_mae != by_loss              # this run tells the two criteria apart
    assert tr.best_epoch == by_mae
    assert tr.evaluate("valid")["metrics"]["mae"] == pytest.approx(maes[by_mae - 1], rel=1e-5)
    # with a patience of 1 the same run stops at the first epoch whose MAE is no better
    first_miss = next(i for i in range(1, len(maes)) if maes[i] >= min(maes[:i]))
    short = Trainer(fast_config.replace(train={"epochs": 8, "patience": 1, **stop_mae}), tiny_data)
    assert len(short.fit()) == first_miss + 1


def test_early_stop_rejects_unknown_criteria_and_mae_on_classification(tiny_data, fast_config):
    with pytest.raises(ValueError, match="early_stop must be 'task_loss', 'mae' or 'auto', got 'MAE'"):
        Trainer(fast_config.replace(train={"early_stop": "MAE"}), tiny_data)
    humour = make_benchmark("humor", task="classification", n_train=32, n_valid=16, n_test=16, seq_len=8, seed=0)
    with pytest.raises(ValueError, match="early_stop 'mae' needs a regression task"):
        Trainer(fast_config.replace(train={"early_stop": "mae"}), humour)
    Trainer(fast_config.replace(train={"early_stop": "task_loss"}), humour)      # the default fits both
    # "auto" follows the MAE on regression and the task loss on classification
    assert Trainer(fast_config.replace(train={"early_stop": "auto"}), humour).stop_on == "task_loss"
    assert Trainer(fast_config.replace(train={"early_stop": "auto"}), tiny_data).stop_on == "mae"


def test_auto_early_stop_keeps_the_same_epoch_as_mae_on_regression(tiny_data, fast_config):
    run = {"epochs": 6, "patience": 6, "lr": 1e-2, "seed": 1}
    auto = Trainer(fast_config.replace(train={**run, "early_stop": "auto"}), tiny_data)
    mae = Trainer(fast_config.replace(train={**run, "early_stop": "mae"}), tiny_data)
    auto.fit(), mae.fit()
    assert auto.best_epoch == mae.best_epoch
    assert auto.best_score == pytest.approx(min(h["valid_metrics"]["mae"] for h in auto.history))


def test_the_budget_stretches_epochs_and_patience_by_one_factor_on_a_small_split():
    from fdmer_lite.train import budget

    # worked by hand: 30 epochs of 21 steps are 630 < 1260 steps, so the factor is 2
    assert budget(30, 10, 21, 1260) == (60, 20)
    assert budget(30, 10, 157, 1260) == (30, 10)            # 4,710 steps already: unchanged
    assert budget(30, 10, 21, 0) == (30, 10)                # off
    for epochs, patience, steps, floor in [(2, 3, 3, 20), (30, 10, 20, 1200), (5, 1, 7, 100), (1, 1, 1, 9)]:
        e, p = budget(epochs, patience, steps, floor)
        assert e * steps >= floor > (e - 1) * steps         # the fewest whole epochs that reach the floor
        factor = floor / (epochs * steps)
        assert p == math.ceil(patience * factor) >= patience
    with pytest.raises(ValueError, match="min_steps"):
        budget(30, 10, 21, -1)


def test_min_steps_stretches_a_run_on_a_small_split(tiny_data, fast_config):
    # 96 samples in batches of 32: 3 steps an epoch. lr 0 never improves, so a run stops once
    # patience epochs have passed after epoch 1.
    still = fast_config.replace(train={"epochs": 2, "patience": 1, "lr": 0.0})
    assert len(Trainer(still, tiny_data).fit()) == 2                          # no floor: patience 1
    stretched = still.replace(train={"min_steps": 12})                       # 12 / 6 = 2: epochs 4, patience 2
    assert len(Trainer(stretched, tiny_data).fit()) == 3                      # epoch 1, then two more
    learning = fast_config.replace(train={"epochs": 2, "patience": 100, "min_steps": 12})
    steps = []
    trainer = Trainer(learning, tiny_data)
    trainer.on_epoch = lambda entry: steps.append(entry["epoch"])
    assert len(trainer.fit()) == 4 and steps == [1, 2, 3, 4]                  # 4 epochs x 3 steps = 12
    assert len(Trainer(learning, tiny_data).fit(epochs=2)) == 2               # an explicit count is kept


def _denormal_survives() -> bool:
    """Whether this thread's CPU arithmetic keeps a denormal float: 1e-39 is below float32's
    smallest normal number (about 1.18e-38), and flush mode turns it, and the product, to zero."""
    tiny = torch.tensor([1e-39], dtype=torch.float32)
    return bool(tiny[0] != 0) and float((tiny * 1.0)[0]) != 0.0


def test_fit_on_the_cpu_flushes_denormals_unless_asked_not_to(tiny_data, fast_config, denormals_kept):
    config = fast_config.replace(train={"epochs": 1, "device": "cpu"})
    assert _denormal_survives()
    Trainer(config, tiny_data, flush_denormals=False).fit()
    assert _denormal_survives()                      # left alone
    Trainer(config, tiny_data).fit()
    assert not _denormal_survives()                  # flushed from then on


def _part_norm(module, loss):
    """The gradient norm ``loss`` sends into ``module``, by an ordinary backward pass."""
    params = [p for p in module.parameters()]
    for p in params:
        p.grad = None
    loss.backward(retain_graph=True)
    sq = [float((p.grad.double() ** 2).sum()) for p in params if p.grad is not None]
    for p in params:
        p.grad = None
    return math.sqrt(sum(sq))


def test_game_record_matches_plain_backward_passes_term_by_term(tiny_data, fast_config):
    from fdmer_lite.losses import fdmer_objective
    from fdmer_lite.train import game_record
    cfg = fast_config.replace(loss={"beta": 0.3, "gamma": 0.05})
    tr = Trainer(cfg, tiny_data)
    batch = next(iter(tr.loader("train")))
    record = game_record(tr.model, batch, cfg.loss, tr.task, coeff=0.4)
    assert tr.model.training                                  # left in the mode it was in
    tr.model.eval()
    out = tr.model(batch.features, batch.masks, grl_coeff=0.4)
    terms = fdmer_objective(out, batch.label, cfg.loss, "regression")
    weight = {"task": 1.0, "ami": 0.3, "ams": 0.3, "con": 0.05, "dis": 0.05}
    parts = {"transformers": tr.model.encoders, "common": tr.model.common_encoder,
             "private": tr.model.private_encoders, "discriminator": tr.model.discriminator}
    for term, w in weight.items():
        for name, module in parts.items():
            expected = _part_norm(module, w * terms[term]) if terms[term].requires_grad else 0.0
            assert record["grad"][term][name] == pytest.approx(expected, rel=1e-4, abs=1e-9), (term, name)
    # which term reaches which part: the private side never sees L_ami or L_con, the common side
    # never L_ams or L_dis, the discriminator only the adversarial terms
    assert record["grad"]["ami"]["private"] == record["grad"]["con"]["private"] == 0.0
    assert record["grad"]["ams"]["common"] == record["grad"]["dis"]["common"] == 0.0
    assert record["grad"]["task"]["discriminator"] == record["grad"]["con"]["discriminator"] == 0.0
    assert record["grad"]["ami"]["common"] > 0 and record["grad"]["ams"]["private"] > 0
    # D's accuracy and the representations' size, counted sample by sample
    cos_c, cos_p = out.disc_logits_common.detach(), out.disc_logits_private.detach()
    hits_c = [int(cos_c[b, i].argmax()) == i for b in range(len(batch)) for i in range(3)]
    hits_p = [int(cos_p[b, i].argmax()) == i for b in range(len(batch)) for i in range(3)]
    assert record["disc_acc_common"] == pytest.approx(sum(hits_c) / len(hits_c))
    assert record["disc_acc_private"] == pytest.approx(sum(hits_p) / len(hits_p))
    size = np.mean([float(out.common[m][b].detach().norm()) for m in "tav" for b in range(len(batch))])
    assert record["size_common"] == pytest.approx(size, rel=1e-5)
    assert record["coeff"] == 0.4


def test_the_reversed_gradient_scales_with_the_reversal_strength(tiny_data, fast_config):
    from fdmer_lite.train import game_record
    tr = Trainer(fast_config, tiny_data)
    batch = next(iter(tr.loader("train")))
    half = game_record(tr.model, batch, fast_config.loss, tr.task, coeff=0.5)["grad"]["ami"]
    full = game_record(tr.model, batch, fast_config.loss, tr.task, coeff=1.0)["grad"]["ami"]
    assert half["common"] == pytest.approx(full["common"] / 2, rel=1e-5)
    assert half["discriminator"] == pytest.approx(full["discriminator"], rel=1e-6)   # D is not reversed
    none = game_record(tr.model, batch, fast_config.loss, tr.task, coeff=0.0)["grad"]["ami"]
    assert none["common"] == 0.0 and none["discriminator"] > 0


def test_every_epoch_records_the_game_without_changing_the_run(tiny_data, fast_config):
    cfg = fast_config.replace(train={"epochs": 2, "patience": 5})
    with_game = Trainer(cfg, tiny_data).fit()
    without = Trainer(cfg, tiny_data, record_game=False).fit()
    for a, b in zip(with_game, without):
        assert a["train"] == b["train"] and a["valid"] == b["valid"]   # recording draws no random numbers
        assert "game" in a and "game" not in b
        assert set(a["game"]["grad"]) == {"task", "ami", "ams", "con", "dis"}   # no "confusion": the paper's adversary
        norm = a["game"]["grad_norm"]
        assert 0.0 <= norm["clipped"] <= 1.0 and norm["max"] >= norm["mean"] > 0
    nd = Trainer(cfg.replace(model={"fusion_targets": "h"}), tiny_data).fit()
    assert all("game" not in h for h in nd)                     # nothing to record without C and P
