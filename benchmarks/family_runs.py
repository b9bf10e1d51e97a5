"""Runs on the task family (``benchmarks/task_family.py``), remembered in one JSON file.

A run is (task, seed, model) where the model is ``baseline`` (the plain reference) or a named
FDMER variant: a preset plus config changes (``VARIANTS``). Each finished run is stored in
``benchmarks/results/family-runs.json`` with its test MAE, best epoch and per-epoch curves
(train task MSE, valid MAE), so the reports (``disentangle_diagnosis.py``, ``task_family_report.py``)
are written from stored runs and a rerun only trains what is missing.

    python benchmarks/family_runs.py --tasks mosi_aligned --seeds 0 1 2 --models baseline synthetic
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from task_family import TASKS, make_task, ridge_mae, train_baseline  # noqa: E402

from fdmer_lite.config import get_preset  # noqa: E402
from fdmer_lite.train import Trainer  # noqa: E402

STORE = Path(__file__).resolve().parent / "results" / "family-runs.json"

# name -> (base, {section: {field: value}}). A base is a preset, or "pre_recipe": the `synthetic`
# preset as it was before the recipe of task-family.md was adopted (PyTorch-initialised Eq. 2-3
# MLPs with the common dropout, early stopping on the validation task loss, 30 epochs, patience
# 10, the final LayerNorm of each transformer stack); every variant searched before the adoption
# is defined against it. "recipe_final_ln" is the preset after the recipe but still with that
# LayerNorm (the mosi_bert diagnosis). "synthetic" is whatever the preset is today. The "before"
# rows pin the Eq. 2-3 MLPs as the old preset had them.
# Runs are matched by configuration, not by name.
VARIANTS = {
    "synthetic": ("synthetic", {}),
    "synthetic_nd": ("synthetic", {"model": {"disentangle": False}}),
    "synthetic_before": ("pre_recipe", {"model": {"mlp_init": "default", "mlp_dropout": None}}),
    "synthetic_before_nd": ("pre_recipe", {"model": {"disentangle": False, "mlp_init": "default", "mlp_dropout": None}}),
    "before_dropout0": ("pre_recipe", {"model": {"mlp_init": "default", "mlp_dropout": None, "dropout": 0.0}}),
    "before_beta0": ("pre_recipe", {"model": {"mlp_init": "default", "mlp_dropout": None}, "loss": {"beta": 0.0, "gamma": 0.0}}),
    "before_batch32": ("pre_recipe", {"model": {"mlp_init": "default", "mlp_dropout": None}, "train": {"batch_size": 32}}),
    "before_warmup": ("pre_recipe", {"model": {"mlp_init": "default", "mlp_dropout": None}, "train": {"warmup_epochs": 2.0}}),
    "before_wd": ("pre_recipe", {"model": {"mlp_init": "default", "mlp_dropout": None}, "train": {"weight_decay": 1e-3}}),
    "init_scaled": ("pre_recipe", {"model": {"mlp_init": "scaled", "mlp_dropout": None}}),
    "before_mlpdrop0": ("pre_recipe", {"model": {"mlp_init": "default", "mlp_dropout": 0.0}}),
    "scaled_mlpdrop0": ("pre_recipe", {"model": {"mlp_init": "scaled", "mlp_dropout": 0.0}}),
    "scaled_mlpdrop0_batch32": ("pre_recipe", {"model": {"mlp_init": "scaled", "mlp_dropout": 0.0},
                                              "train": {"batch_size": 32}}),
    "scaled_mlpdrop0_long": ("pre_recipe", {"model": {"mlp_init": "scaled", "mlp_dropout": 0.0},
                                           "train": {"epochs": 40, "patience": 20}}),
    "mosi": ("mosi", {}),               # the paper-sized preset today
    "mosi_before": ("mosi_before", {}),  # ... before its regularisation reading
    "mosei": ("mosei", {}),            # the paper-sized preset for CMU-MOSEI (batch 16; Section 4.2)
    # The training recipe (issue 17): the plain baseline's recipe knobs moved onto FDMER one at a
    # time (batch 32, early stopping on the validation MAE), then rate, schedule and length;
    # "nd_" rows are Non-Disentangled, "full_" rows the full model as shipped.
    "nd_stop_mae": ("pre_recipe", {"model": {"disentangle": False}, "train": {"early_stop": "mae"}}),
    "nd_batch32": ("pre_recipe", {"model": {"disentangle": False}, "train": {"batch_size": 32}}),
    "nd_recipe": ("pre_recipe", {"model": {"disentangle": False},
                                "train": {"batch_size": 32, "early_stop": "mae"}}),
    "nd_mae_long": ("pre_recipe", {"model": {"disentangle": False},
                                  "train": {"early_stop": "mae", "epochs": 60, "patience": 20}}),
    "nd_mae_lr2e3": ("pre_recipe", {"model": {"disentangle": False}, "train": {"early_stop": "mae", "lr": 2e-3}}),
    "nd_mae_lr5e4": ("pre_recipe", {"model": {"disentangle": False}, "train": {"early_stop": "mae", "lr": 5e-4}}),
    "nd_mae_warmcos": ("pre_recipe", {"model": {"disentangle": False},
                                     "train": {"early_stop": "mae", "warmup_epochs": 2.0, "lr_schedule": "cosine"}}),
    "nd_mae_wd": ("pre_recipe", {"model": {"disentangle": False}, "train": {"early_stop": "mae", "weight_decay": 1e-3}}),
    "nd_mae_noclip": ("pre_recipe", {"model": {"disentangle": False}, "train": {"early_stop": "mae", "grad_clip": None}}),
    "nd_warmcos": ("pre_recipe", {"model": {"disentangle": False},
                                 "train": {"warmup_epochs": 2.0, "lr_schedule": "cosine"}}),
    "nd_mae_warmcos_long": ("pre_recipe", {"model": {"disentangle": False},
                                          "train": {"early_stop": "mae", "warmup_epochs": 2.0,
                                                    "lr_schedule": "cosine", "epochs": 60, "patience": 20}}),
    # not a recipe: Non-Disentangled at the plain baseline's sizes, stopping on MAE (what is left)
    "nd_mae_basesizes": ("pre_recipe", {"model": {"disentangle": False, "model_dim": 64, "layers_t": 2,
                                                 "layers_a": 2, "layers_v": 2, "heads": 4, "time_stride": 1},
                                       "train": {"early_stop": "mae"}}),
    "full_stop_mae": ("pre_recipe", {"train": {"early_stop": "mae"}}),
    "full_mae_warmcos": ("pre_recipe", {"train": {"early_stop": "mae", "warmup_epochs": 2.0,
                                                 "lr_schedule": "cosine"}}),
    "full_mae_warmcos_long": ("pre_recipe", {"train": {"early_stop": "mae", "warmup_epochs": 2.0,
                                                      "lr_schedule": "cosine", "epochs": 60, "patience": 20}}),
    "full_mae_long": ("pre_recipe", {"train": {"early_stop": "mae", "epochs": 60, "patience": 20}}),
    # the recipe together with the Eq. 2-3 MLP readings of disentangle-diagnosis.md, and without
    # the four extra losses (is the gap to Non-Disentangled the path or the losses?)
    "full_mae_long_scaled": ("pre_recipe", {"model": {"mlp_init": "scaled", "mlp_dropout": 0.0},
                                           "train": {"early_stop": "mae", "epochs": 60, "patience": 20}}),
    # the candidate preset: the MLP readings, stop on MAE, and a budget floor in optimiser steps
    # (train.min_steps) that gives a MOSI-sized split (21 steps an epoch) 60 epochs with patience 20
    # and leaves the 10,000-sample benchmark (157 steps an epoch) at 30 epochs with patience 10
    "recipe_steps": ("pre_recipe", {"model": {"mlp_init": "scaled", "mlp_dropout": 0.0},
                                   "train": {"early_stop": "mae", "min_steps": 1260}}),
    "recipe_steps_drop": ("pre_recipe", {"model": {"mlp_init": "scaled"},
                                        "train": {"early_stop": "mae", "min_steps": 1260}}),
    "recipe_steps_nd": ("pre_recipe", {"model": {"mlp_init": "scaled", "mlp_dropout": 0.0, "disentangle": False},
                                      "train": {"early_stop": "mae", "min_steps": 1260}}),
    # the preset as it was until the final LayerNorm was dropped (the recipe with final_norm True)
    "synthetic_final_ln": ("recipe_final_ln", {}),
    "synthetic_final_ln_nd": ("recipe_final_ln", {"model": {"disentangle": False}}),
    # mosi_bert (the signal in 768-wide text only): that preset with one change at a time
    "stride1": ("recipe_final_ln", {"model": {"time_stride": 1}}),
    "dim64": ("recipe_final_ln", {"model": {"model_dim": 64}}),
    "dropout0": ("recipe_final_ln", {"model": {"dropout": 0.0}}),
    "patience60": ("recipe_final_ln", {"train": {"patience": 60}}),
    "nd_text_only": ("recipe_final_ln", {"model": {"disentangle": False, "modalities": "t"}}),
    "basesizes": ("recipe_final_ln", {"model": {"model_dim": 64, "layers_t": 2, "layers_a": 2, "layers_v": 2,
                                                "heads": 4, "time_stride": 1}}),
    "layers2": ("recipe_final_ln", {"model": {"layers_t": 2, "layers_a": 2, "layers_v": 2}}),
    # the final LayerNorm of each pre-norm stack off (it sets every time step to one size before
    # the pooling): first Non-Disentangled on the text alone, then the model (today's preset)
    "nd_text_no_final_norm": ("recipe_final_ln", {"model": {"disentangle": False, "modalities": "t",
                                                            "final_norm": False}}),
    "no_final_norm": ("recipe_final_ln", {"model": {"final_norm": False}}),
    # what is left on mosi_bert seed 1 without the final LayerNorm: the losses, the two noise
    # modalities, the patience (today's preset with one change)
    "nfn_b0g0": ("recipe_final_ln", {"model": {"final_norm": False}, "loss": {"beta": 0.0, "gamma": 0.0}}),
    "nfn_text_only": ("recipe_final_ln", {"model": {"final_norm": False, "modalities": "t"}}),
    "nfn_patience40": ("recipe_final_ln", {"model": {"final_norm": False}, "train": {"patience": 40}}),
    # the paper-sized preset with the recipe the CPU preset adopted (scale-preserving Eq. 2-3 MLPs
    # without dropout, early stopping on the validation MAE): its readings, at the paper's sizes
    "mosi_recipe": ("mosi_before", {"model": {"mlp_init": "scaled", "mlp_dropout": 0.0}, "train": {"early_stop": "auto"}}),
    # the paper-sized preset regularised as the real-data presets had to be (dropout 0.3, weight
    # decay 1e-3), stopping on the validation MAE; a 40-epoch budget for the CPU (which also runs
    # the reversal ramp three times as fast: see CUT for a run stopped early instead)
    "mosi_reg": ("mosi_before", {"model": {"dropout": 0.3}, "train": {"weight_decay": 1e-3, "early_stop": "auto",
                                                                "epochs": 40}}),
    # mosi_spread (three windows, one per modality): today's preset with every time step kept
    # (time_stride 1: no averaging of pairs, which can put the flipping marker in one step with
    # the window's last)
    "synthetic_stride1": ("synthetic", {"model": {"time_stride": 1}}),
    # why the paper-sized presets fail on MOSI-sized sets (1,284 training samples): the same
    # preset without the disentangled path, and at a tenth of the paper's learning rate
    "mosi_nd": ("mosi_before", {"model": {"disentangle": False}}),
    "mosi_lr1e4": ("mosi_before", {"train": {"lr": 1e-4}}),
    # the paper's rate as the peak of a linear warm-up over the first 5 epochs (the paper is silent
    # on warm-up; "an initial learning rate of 1e-3")
    "mosi_warmup": ("mosi_before", {"train": {"warmup_epochs": 5.0}}),
    # mosi_reg's three changes one at a time: only the stopping criterion (the validation MAE)
    "mosi_auto": ("mosi_before", {"train": {"early_stop": "auto", "epochs": 40}}),
    # the paper-sized presets as they are, stopped after CUT[...] epochs for the CPU budget (see CUT)
    "mosei_cut": ("mosei", {}),
    "mosi_cut40": ("mosi", {}),
    "full_mae_long_b0g0": ("pre_recipe", {"loss": {"beta": 0.0, "gamma": 0.0},
                                         "train": {"early_stop": "mae", "epochs": 60, "patience": 20}}),
}


#: variants stopped after this many epochs, their configuration (train.epochs included) that of
#: the preset: a run cut short, not a shorter budget. A shorter train.epochs would also change the
#: run before the cut, because the gradient reversal's "dann" ramp (train.grl_schedule) follows the
#: fraction of the budget done: at 15 of 100 epochs it is 0.32 after the first epoch, not 0.05.
CUT = {"mosei_cut": 15, "mosi_cut40": 40}


#: the plain baseline (task_family.PlainBaseline) -> keyword arguments of train_baseline.
#: "baseline_final_ln": a LayerNorm after each of its transformer stacks, as FDMER's encoder had
#: before model.final_norm. "baseline_paper": the baseline's recipe at the paper's encoder sizes
#: (width 256, 5/4/4 layers, 8 heads, a 4x feed-forward: the `mosi` preset's Eq. 1), to tell the
#: sizes from FDMER when the paper-sized presets fail on a MOSI-sized set.
BASELINE_ARGS = {
    "baseline": {},
    "baseline_final_ln": {"final_norm": True},
    "baseline_paper": {"dim": 256, "layers": {"t": 5, "a": 4, "v": 4}, "heads": 8, "ff_mult": 4},
}
BASELINES = tuple(BASELINE_ARGS)


def load_store() -> dict:
    return json.loads(STORE.read_text()) if STORE.exists() else {}


def save_store(store: dict) -> None:
    STORE.parent.mkdir(parents=True, exist_ok=True)
    tmp = STORE.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(store, indent=1, sort_keys=True))
    os.replace(tmp, STORE)


def key(task: str, seed: int, model: str, init: int | None = None) -> str:
    """The store's key of a run; ``init``: a weight seed other than the data seed."""
    return f"{task}|{seed}|{model}" + ("" if init is None or init == seed else f"|init{init}")


def pre_recipe():
    """The `synthetic` preset before the recipe was adopted (see VARIANTS)."""
    return get_preset("synthetic").replace(
        model={"mlp_init": "default", "mlp_dropout": None, "final_norm": True},
        train={"epochs": 30, "patience": 10, "early_stop": "task_loss"})


def mosi_before():
    """The paper-sized `mosi` preset before its regularisation reading (dropout 0.1, no weight
    decay, early stopping on the validation task loss): the base of the paper-sized diagnosis."""
    return get_preset("mosi").replace(model={"dropout": 0.1},
                                      train={"weight_decay": 0.0, "early_stop": "task_loss"})


def recipe_final_ln():
    """The `synthetic` preset with the final LayerNorm of each transformer stack: the preset of
    the third session, when the diagnosis variants of mosi_bert were run (see VARIANTS)."""
    return get_preset("synthetic").replace(model={"final_norm": True})


def variant_config(model: str, seed: int):
    """The variant's configuration, its ``train.seed`` (weights, dropout, batch order) ``seed``."""
    base, changes = VARIANTS[model]
    bases = {"pre_recipe": pre_recipe, "recipe_final_ln": recipe_final_ln, "mosi_before": mosi_before}
    cfg = bases.get(base, lambda: get_preset(base))()
    cfg = cfg.replace(**changes) if changes else cfg
    return cfg.replace(train={"seed": seed, "progress": False, "device": "cpu"})


def run_fdmer(data, model: str, seed: int) -> dict:
    """Train the variant on ``data`` with weight seed ``seed``."""
    cfg = variant_config(model, seed)
    curve = []
    start = time.perf_counter()

    def on_epoch(e):                          # one line an epoch: a long run shows it is moving
        curve.append({"epoch": e["epoch"], "train_mse": e["train"]["task"],
                      "valid_mae": e["valid_metrics"]["mae"], "valid_mse": e["valid"]["task"]})
        print(f"  {model} seed {seed} epoch {e['epoch']}: train MSE {curve[-1]['train_mse']:.3f}, "
              f"valid MAE {curve[-1]['valid_mae']:.3f} ({time.perf_counter() - start:.0f} s)", flush=True)
        return e["epoch"] == CUT.get(model)   # True: stop after this epoch

    tr = Trainer(cfg, data, on_epoch=on_epoch)
    tr.fit()
    test = tr.evaluate("test")["metrics"]["mae"]
    return {"test_mae": float(test), "best_epoch": tr.best_epoch, "curve": curve,
            "seconds": time.perf_counter() - start, "config": cfg.to_dict(),
            **({"cut_at": CUT[model]} if model in CUT else {})}


def same_model(cfg: dict) -> dict:
    """A config dict without what cannot change the run: without the Eq. 2-3 MLPs
    (``disentangle`` False) their two readings build nothing."""
    cfg = json.loads(json.dumps(cfg))
    model = cfg["model"]
    model.setdefault("mlp_init", "default")
    model.setdefault("mlp_dropout", None)
    cfg["train"].setdefault("early_stop", "task_loss")     # stored before the option existed
    cfg["train"].setdefault("min_steps", 0)                # likewise
    model.setdefault("final_norm", True)                   # likewise: the stacks ended with a LayerNorm
    if not model.get("norm_first", True):                  # post-norm: the switch builds nothing
        model["final_norm"] = "-"
    if cfg["train"]["early_stop"] == "auto":               # every task here is a regression
        cfg["train"]["early_stop"] = "mae"
    if cfg["train"].get("disc_lr_mult") == 1.0:            # stored when a 1.0 meant the one group of today
        del cfg["train"]["disc_lr_mult"]
    if not model["disentangle"]:
        model["mlp_init"], model["mlp_dropout"] = "-", "-"
    return cfg


def find(store: dict, task: str, seed: int, model: str, init: int | None = None) -> dict | None:
    """The stored run of (task, seed, model), or one stored under another name whose
    configuration builds and trains the same model, for as many epochs (a CUT run is not its
    preset's full run); None when there is none. ``init``: the
    weight seed, when it is not the data seed ``seed``."""
    k = key(task, seed, model, init)
    if model in BASELINES:
        return store.get(k)
    cfg = same_model(variant_config(model, seed if init is None else init).to_dict())  # a name may have meant another config
    for other in store.values():
        if (other["task"], other["seed"]) == (task, seed) and "config" in other \
                and same_model(other["config"]) == cfg and other.get("cut_at") == CUT.get(model):
            return other
    return None


def run(task: str, seed: int, model: str, store: dict | None = None, init: int | None = None) -> dict:
    """One run, from the store when present; trains and stores it otherwise. ``seed`` draws the
    data set and, unless ``init`` is given, the weights too."""
    store = load_store() if store is None else store
    init = None if init == seed else init
    k = key(task, seed, model, init)
    found = find(store, task, seed, model, init)
    if found is not None:
        return found
    data = make_task(task, seed)
    weights = seed if init is None else init
    result = (train_baseline(data, weights, **BASELINE_ARGS[model]) if model in BASELINES
              else run_fdmer(data, model, weights))
    if init is not None:
        result["init_seed"] = init
    result.update(task=task, seed=seed, model=model,
                  ridge_mae=ridge_mae(data),
                  mean_mae=float(np.mean(np.abs(data.splits["test"].labels
                                                - data.splits["train"].labels.mean()))))
    fresh = load_store()                     # another process may have stored runs meanwhile
    if k in fresh and "config" in fresh[k] and same_model(fresh[k]["config"]) != same_model(result["config"]):
        n = 1                                # the name meant another config then: keep that run
        while f"{k}#{n}" in fresh:
            n += 1
        fresh[f"{k}#{n}"] = fresh[k]
    fresh[k] = result
    save_store(fresh)
    print(f"{k}: test MAE {result['test_mae']:.3f} (best epoch {result['best_epoch']}, "
          f"{result['seconds']:.0f} s)", flush=True)
    return result


def demo_result(model: str, metrics: dict, history: list, config: dict) -> dict:
    curve = [{"epoch": e["epoch"], "train_mse": e["train"]["task"], "valid_mae": e["valid_metrics"]["mae"],
              "valid_mse": e["valid"]["task"]} for e in history]
    return {"task": "demo", "seed": config["train"]["seed"], "model": model, "config": config,
            "test_mae": metrics["mae"], "bayes_mae": metrics["bayes_mae"],
            "floor_ratio": metrics["mae"] / metrics["bayes_mae"], "best_epoch": metrics["best_epoch"],
            "curve": curve}


def run_demo(model: str, seed: int = 0) -> dict:
    """The demo's training (the known-factor benchmark, ``fdmer-lite demo``) with a variant."""
    from fdmer_lite.data.synthetic import make_benchmark
    from fdmer_lite.metrics import regression_metrics  # noqa: F401  (evaluate uses it)
    cfg = variant_config(model, seed)
    data = make_benchmark("emotion")
    tr = Trainer(cfg, data)
    tr.fit()
    metrics = dict(tr.evaluate("test")["metrics"], bayes_mae=data.info["bayes_mae"], best_epoch=tr.best_epoch)
    return store_demo(demo_result(model, metrics, tr.history, cfg.to_dict()))


def import_demo(model: str, folder: str) -> dict:
    """Store a finished ``fdmer-lite demo --out FOLDER`` run as the demo run of ``model``; its
    configuration must be the variant's (device and progress aside)."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())["config"]
    want = variant_config(model, config["train"]["seed"]).to_dict()
    for c in (config, want):
        c["train"].update(device="-", progress="-")
    if same_model(config) != same_model(want):
        raise SystemExit(f"{folder}/config.json: expected the configuration of variant {model!r}")
    metrics = json.loads((folder / "metrics.json").read_text())
    history = json.loads((folder / "history.json").read_text())
    return store_demo(demo_result(model, metrics, history, config))


def store_demo(result: dict) -> dict:
    store = load_store()
    store[key("demo", result["seed"], result["model"])] = result
    save_store(store)
    print(f"demo|{result['seed']}|{result['model']}: test MAE {result['test_mae']:.3f}, "
          f"{result['floor_ratio']:.2f}x the Bayes floor", flush=True)
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", nargs="+", default=["mosi_aligned"], choices=sorted(TASKS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--models", nargs="+", default=["baseline", "synthetic"],
                   choices=[*BASELINES, *VARIANTS])
    p.add_argument("--inits", nargs="+", type=int, default=[None], metavar="K",
                   help="weight seeds other than the data seed (default: the data seed)")
    p.add_argument("--demo", action="store_true", help="train the demo's benchmark with each --models variant")
    p.add_argument("--import-demo", default=None, metavar="DIR",
                   help="store a finished `fdmer-lite demo --out DIR` run as the demo run of --models")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    if a.import_demo:
        import_demo(a.models[0], a.import_demo)
        return
    if a.demo:
        for seed in a.seeds:
            for model in a.models:
                run_demo(model, seed)
        return
    for task in a.tasks:
        for seed in a.seeds:
            for init in a.inits:
                for model in a.models:
                    run(task, seed, model, init=init)


if __name__ == "__main__":
    main()
