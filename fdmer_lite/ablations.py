"""The paper's ablations (FDMER, Yang et al., ACM MM 2022, Section 4.4 and Table 4) as
configuration transforms, and the multi-seed study that reruns them.

Each row of Table 4 is one change to the full model; here it is a :class:`Variant`, a function
from a configuration (and the streams the data holds) to a new one, with what it changes in
words (:data:`VARIANTS`). Nothing else differs: same data, preset and seeds. Beyond those words:

* w/o Text / Audio / Visual on data without that stream IS the full model and reuses its runs.
* Cross-Entropy Loss drops Eq. 9's normalisation, scale and margin; CE on cosines (not a row of
  the paper) drops only the margin.
* Non-Disentangled: no common/private encoders, no L_ami/L_ams/L_con/L_dis.
* w/o Phase 1: no cross-modal attention (Eq. 12-14); w/o Phase 2: equal weights instead of
  Eq. 15-17; Multiplication: see ``model.fusion.MultFusion``.

:func:`run_ablation` plans variants x seeds as runs for the one grid runner
(``experiments.runs.run_grid``; finished runs, here or bundled, are skipped), then writes
``table.csv`` and ``table.md``: per variant, the mean and sample std (n - 1) over seeds of every
metric. A seed changes initialisation, dropout and batch order, never the data. The paper's own
numbers (:data:`PAPER_TABLE4`) are shown where the data set has the standard folds of one it used.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import MODALITIES, Config, get_preset
from .data.synthetic import FAST_SIZES
from .experiments import runstore
from .experiments.runs import BUNDLED, DataSpec, GridReport, RunSpec, run_grid
from .metrics import SCORES, TABLE4


# ------------------------------------------------------------------------------- variants
class NotApplicable(ValueError):
    """The variant makes no sense on this data (e.g. w/o Text on text-only data)."""


@dataclass(frozen=True)
class Variant:
    """One row of Table 4: a change to the full model's configuration."""

    key: str                     # short id used in file names and on the command line
    name: str                    # the paper's row name
    group: str                   # "full" | "modality" | "loss" | "representation" | "fusion"
    change: str                  # what the transformation does, in words
    transform: Callable[[Config, str], Config] = field(repr=False, compare=False)

    def apply(self, config: Config, data_modalities: str | None = None) -> Config:
        """This variant of ``config``. ``data_modalities``: the streams the data holds (default:
        the config's own ``model.modalities``). Raises :class:`NotApplicable` when the variant
        would leave nothing to train."""
        mods = data_modalities or config.model.modalities
        base = "".join(m for m in MODALITIES if m in config.model.modalities and m in mods)
        if not base:
            raise NotApplicable(f"the data ({mods!r}) holds none of the model's streams "
                                f"({config.model.modalities!r})")
        out = self.transform(config.replace(model={"modalities": base}), base)
        return out.replace(name=f"{config.name}/{self.key}")


def _without(key: str, name: str, modality: str) -> Variant:
    def transform(cfg: Config, mods: str) -> Config:
        keep = mods.replace(modality, "")
        if not keep:
            raise NotApplicable(f"w/o {modality}: the data has no other stream than {modality!r}")
        return cfg.replace(model={"modalities": keep})
    return Variant(key, name, "modality", f"model.modalities without {modality}", transform)


def _setting(key: str, name: str, group: str, setting: str, value: str, why: str = "") -> Variant:
    """The variant that sets ``setting`` (``section.option``) to ``value``."""
    section, option = setting.split(".")
    change = f"{setting} = {value!r}" + (f" ({why})" if why else "")
    return Variant(key, name, group, change, lambda cfg, mods: cfg.replace(**{section: {option: value}}))


VARIANTS: tuple[Variant, ...] = (
    Variant("full", "FDMER (full)", "full", "the full model", lambda cfg, mods: cfg),
    _without("wo_text", "w/o Text", "t"),
    _without("wo_audio", "w/o Audio", "a"),
    _without("wo_visual", "w/o Visual", "v"),
    _setting("wo_ami_ams", "w/o L_ami + L_ams", "loss", "loss.aux_losses", "con+dis"),
    _setting("wo_con", "w/o L_con", "loss", "loss.aux_losses", "ami+ams+dis"),
    _setting("wo_dis", "w/o L_dis", "loss", "loss.aux_losses", "ami+ams+con"),
    _setting("ce_loss", "Cross-Entropy Loss", "loss", "loss.margin_loss", "ce",
             "softmax cross-entropy on the raw logits W_D^T F(h)"),
    _setting("ce_cosine", "CE on cosines (not in the paper)", "loss", "loss.margin_loss", "cosine_ce",
             "cross-entropy on alpha cos, tau = 0"),
    _setting("wo_common", "w/o Common", "representation", "model.fusion_targets", "P",
             "C_m still learnt, left out of fusion"),
    _setting("wo_private", "w/o Private", "representation", "model.fusion_targets", "C",
             "P_m still learnt, left out of fusion"),
    _setting("non_disentangled", "Non-Disentangled", "representation", "model.fusion_targets", "h",
             "fuse h_m directly"),
    _setting("wo_cmaf", "w/o CMAF", "fusion", "model.fusion", "concat"),
    _setting("wo_phase1", "w/o Phase 1", "fusion", "model.fusion", "cmaf_wo_phase1"),
    _setting("wo_phase2", "w/o Phase 2", "fusion", "model.fusion", "cmaf_wo_phase2"),
    _setting("addition", "Addition", "fusion", "model.fusion", "add"),
    _setting("multiplication", "Multiplication", "fusion", "model.fusion", "mult"),
)
BY_KEY = {v.key: v for v in VARIANTS}


def get_variant(name: str) -> Variant:
    """A variant by key (``wo_con``) or paper name (``w/o L_con``), case-insensitive."""
    wanted = name.strip().lower()
    for v in VARIANTS:
        if wanted in (v.key, v.name.lower()):
            return v
    raise ValueError(f"unknown variant {name!r}; expected one of {[v.key for v in VARIANTS]}")


def select_variants(spec: str | Iterable[str] = "all") -> list[Variant]:
    """``"all"`` or a comma-separated list (or an iterable) of keys / paper names. The full model
    is always included first: every other row is read against it."""
    if isinstance(spec, str):
        names = [s for s in spec.split(",") if s.strip()]
        if [n.strip().lower() for n in names] == ["all"]:
            return list(VARIANTS)
    else:
        names = list(spec)
    chosen = [get_variant(n) for n in names]
    keys = ["full"] + [v.key for v in chosen if v.key != "full"]
    return [BY_KEY[k] for k in dict.fromkeys(keys)]


# ---------------------------------------------------------------------- paper's numbers
#: The paper's Table 4: {"mosi" | "mosei": {variant key: {"mae", "corr"}}, "ur_funny": {variant
#: key: {"acc2"}}}, accuracies as fractions; every row of the paper (``fdmer_lite.metrics.TABLE4``).
PAPER_TABLE4: dict[str, dict[str, dict[str, float]]] = TABLE4
PAPER_NOTE = "n/a: the paper's Table 4 has no such row"

# Split sizes of the standard folds (train, valid, test) of the data sets the paper used.
_PAPER_SIZES = {(1284, 229, 686): "mosi", (16326, 1871, 4659): "mosei", (10598, 2626, 3290): "ur_funny"}


def paper_dataset(data) -> str | None:
    """``"mosi"``, ``"mosei"`` or ``"ur_funny"`` when ``data`` has the standard folds of that data
    set of the paper's Table 4, else None."""
    sizes = tuple(len(data.splits[s]) for s in ("train", "valid", "test"))
    return _PAPER_SIZES.get(sizes)


# ------------------------------------------------------------------ the benchmark grid
def benchmark_setup(kind: str = "emotion", fast: bool = False) -> tuple[Config, DataSpec, str]:
    """The Table-4 grid on the known-factor benchmark: (full-model configuration, data, label),
    shared by ``benchmarks/ablation_grid.py`` and the notebook so each finds the other's runs.
    Full: the ``synthetic`` preset at the generator's sizes; fast: the ``fast`` preset on
    256/64/128 samples. Sample and world seed 0 for every run."""
    cfg = get_preset("fast" if fast else "synthetic").replace(train={"device": "cpu"})
    data = DataSpec("synthetic", options={"kind": kind, "seed": 0, **(FAST_SIZES if fast else {})})
    return cfg, data, f"synthetic-{kind}" + ("-fast" if fast else "")


# --------------------------------------------------------------------------- the study
@dataclass
class PlannedRun:
    """One variant x seed of a grid and its run (``spec`` None: not applicable, see ``note``)."""

    variant: str                 # variant key
    seed: int
    spec: RunSpec | None
    note: str = ""


#: the grid notebook 10 runs at full size, ``benchmark_setup(LESSON_GRID["kind"])``; its finished
#: runs are bundled with the package (:func:`grid_bundle`)
LESSON_GRID = {"kind": "emotion", "variants": "all", "seeds": (1, 2)}


def grid_bundle(label: str) -> Path:
    """Where the package bundles the finished runs of the grid ``label`` (read only)."""
    return BUNDLED / "grid" / label


def plan(base: Config, data: DataSpec, data_modalities: str, variants: Sequence[Variant],
         seeds: Sequence[int], out_dir: str | Path, bundle: str | Path | None = None) -> list[PlannedRun]:
    """One :class:`PlannedRun` per variant x seed, its run in ``out_dir`` (or found in
    ``bundle``); variants with the same configuration (w/o Visual on text+audio) share one run."""
    runs, first_of = [], {}
    bundle = None if bundle is None else str(bundle)
    for v in variants:
        for seed in seeds:
            try:
                cfg = v.apply(base.replace(train={"seed": int(seed)}), data_modalities)
            except NotApplicable as err:
                runs.append(PlannedRun(v.key, int(seed), None, f"not applicable: {err}"))
                continue
            # the name only labels the run: identical configurations share one run
            key = json.dumps(cfg.replace(name="").to_dict(), sort_keys=True)
            if key in first_of:
                other = first_of[key]
                runs.append(PlannedRun(v.key, int(seed), other.spec,
                                       f"same configuration as {BY_KEY[other.variant].name}"))
                continue
            spec = RunSpec.create(cfg, data, out_dir, f"{v.key}-seed{seed}", bundle=bundle,
                                  meta={"variant": v.key, "seed": int(seed)})
            runs.append(PlannedRun(v.key, int(seed), spec))
            first_of[key] = runs[-1]
    return runs


@dataclass
class AblationResult:
    """What :func:`run_ablation` and :func:`load_ablation` return."""

    rows: list[dict]             # one per variant (see summarise)
    runs: list[PlannedRun]
    report: GridReport | None
    out_dir: Path
    markdown: str
    wall_seconds: float = 0.0

    @property
    def csv_path(self) -> Path:
        return self.out_dir / "table.csv"

    @property
    def md_path(self) -> Path:
        return self.out_dir / "table.md"


def run_ablation(base: Config, data: DataSpec, *, variants: str | Iterable[str] = "all",
                 seeds: Sequence[int] = (1, 2, 3), out_dir: str | Path = "runs/ablate",
                 workers: int | None = None, ray_address: str | None = None, progress: bool = True,
                 dataset_label: str | None = None, log=print) -> AblationResult:
    """Run variants x seeds (finished runs are skipped), then write ``table.csv``/``table.md``.

    ``base``: the full model's configuration (streams the data lacks are dropped). ``workers``,
    ``ray_address``, ``progress``, ``log``: see ``run_grid``. ``dataset_label`` names the grid
    (its bundled runs are in :func:`grid_bundle` of it)."""
    start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dataset = data.load()                                  # fail early, in this process, on bad input
    chosen = select_variants(variants)
    label = dataset_label or dataset.name
    runs = plan(base, data, dataset.modalities, chosen, seeds, out_dir, grid_bundle(label))
    manifest = {
        "dataset": label, "data": data.to_dict(), "data_modalities": dataset.modalities,
        "task": dataset.task, "paper_dataset": paper_dataset(dataset),
        "bayes_mae": dataset.info.get("bayes_mae"), "bayes_acc": dataset.info.get("bayes_acc"),
        "base_config": base.to_dict(), "variants": [v.key for v in chosen], "seeds": [int(s) for s in seeds],
        "runs": [{"variant": r.variant, "seed": r.seed, "note": r.note,
                  "run_id": r.spec.name if r.spec else None} for r in runs]}
    runstore.write_json(out_dir / "ablation.json", json.loads(json.dumps(manifest, default=str)))
    report = run_grid([r.spec for r in runs if r.spec is not None], workers=workers, ray_address=ray_address,
                      progress=progress, log=log, desc="ablation runs")
    result = load_ablation(out_dir)
    result.report = report
    result.wall_seconds = time.perf_counter() - start
    return result


def load_ablation(out_dir: str | Path) -> AblationResult:
    """Rebuild and rewrite the tables from the finished runs of the grid in ``out_dir`` (planned
    again from its ``ablation.json``), without training."""
    out_dir = Path(out_dir)
    manifest = runstore.read_json(out_dir / "ablation.json")
    variants = [BY_KEY[k] for k in manifest["variants"]]
    runs = plan(Config.from_dict(manifest["base_config"]), DataSpec.from_dict(manifest["data"]),
                manifest["data_modalities"], variants, manifest["seeds"], out_dir,
                grid_bundle(manifest["dataset"]))
    rows = summarise(runs, variants)
    md = to_markdown(rows, manifest)
    runstore.write_text(out_dir / "table.csv", to_csv(rows))
    runstore.write_text(out_dir / "table.md", md + "\n")
    return AblationResult(rows, runs, None, out_dir, md)


# ---------------------------------------------------------------------------- the table
def _mean_std(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=np.float64)
    if a.size == 0:
        return math.nan, math.nan
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else math.nan


def summarise(runs: Sequence[PlannedRun], variants: Sequence[Variant]) -> list[dict]:
    """One row per variant: ``variant``, ``name``, ``n`` (finished seeds), ``seeds``, ``note``, and
    ``<metric>_mean`` / ``<metric>_std`` for every numeric metric of its runs' ``metrics.json``
    (plus ``mae_over_bayes`` on the known-factor benchmark). Unfinished runs are left out."""
    rows = []
    for v in variants:
        mine = [r for r in runs if r.variant == v.key]
        notes = sorted({r.note for r in mine if r.note})
        per_metric: dict[str, list[float]] = {}
        seeds = []
        for r in mine:
            if r.spec is None:
                continue
            found = r.spec.find()                          # finished, intact and matching, else left out
            if found is None:
                continue
            m = {k: v for k, v in found.metrics.items() if v is not None}
            if "mae" in m and m.get("bayes_mae"):
                m["mae_over_bayes"] = m["mae"] / m["bayes_mae"]
            for k, val in m.items():
                if isinstance(val, (int, float)) and not isinstance(val, bool):
                    per_metric.setdefault(k, []).append(float(val))
            seeds.append(r.seed)
        row = {"variant": v.key, "name": v.name, "n": len(seeds), "seeds": " ".join(map(str, seeds)),
               "note": "; ".join(notes)}
        for k, vals in per_metric.items():
            row[f"{k}_mean"], row[f"{k}_std"] = _mean_std(vals)
        rows.append(row)
    return rows


def to_csv(rows: list[dict]) -> str:
    """All rows, all columns (metrics as fractions, as in metrics.json)."""
    head = ["variant", "name", "n", "seeds", "note"]
    metric_cols = sorted({k for r in rows for k in r if k not in head})
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=head + metric_cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if isinstance(r.get(k), float) and math.isnan(r[k]) else r.get(k, ""))
                    for k in head + metric_cols})
    return buf.getvalue()


# (metric, header, shown as percent, lower is better)
_REG_COLUMNS = [("mae", "MAE", False, True), ("corr", "Corr", False, False),
                ("acc7", "Acc-7", True, False), ("acc2_non0", "Acc-2", True, False),
                ("f1_non0", "F1", True, False)]
_CLS_COLUMNS = [("acc2", "Acc-2", True, False), ("f1", "F1", True, False)]
_BENCH_COLUMNS = [("mae_over_bayes", "MAE / Bayes", False, True)]
_SCORE_COLUMNS = [(k, f"{SCORES[k].name} (ideal: {SCORES[k].ideal})", False, None)
                  for k in ("common_modality_acc", "private_modality_acc", "common_factor_r2",
                            "private_factor_r2", "disc_prob_common", "common_gap")]


def _num(x: float, percent: bool, sign: str = "") -> str:
    """``x`` as the table shows it: a percent with 1 decimal, or 3 decimals."""
    return f"{x * (100.0 if percent else 1.0):{sign}.{1 if percent else 3}f}"


def _cell(row: dict, key: str, percent: bool) -> str:
    mean, std = row.get(f"{key}_mean"), row.get(f"{key}_std")
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    if std is None or math.isnan(std):
        return _num(mean, percent)
    return f"{_num(mean, percent)} ± {_num(std, percent)}"


def to_markdown(rows: list[dict], manifest: dict) -> str:
    """The human table: main metrics (accuracies in %), the difference to the full model, the
    paper's column where the data set is one it used, and the disentanglement scores."""
    regression = manifest.get("task", "regression") == "regression"
    cols = list(_REG_COLUMNS if regression else _CLS_COLUMNS)
    if manifest.get("bayes_mae"):
        cols += _BENCH_COLUMNS
    present = {k for r in rows for k in r}
    scores = [c for c in _SCORE_COLUMNS if f"{c[0]}_mean" in present]
    main, percent = ("mae", False) if regression else ("acc2", True)
    full = next((r for r in rows if r["variant"] == "full"), None)
    paper = manifest.get("paper_dataset")
    paper_vals = PAPER_TABLE4.get(paper, {}) if paper else {}

    head = ["variant", "n"] + [c[1] for c in cols] + [f"Δ {main.upper()} vs full"]
    if paper:
        head.append(f"paper ({paper.upper()}) {main.upper()}")
    head += [c[1] for c in scores] + ["note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["name"], str(r["n"])] + [_cell(r, c[0], c[2]) for c in cols]
        if full is not None and r is not full and f"{main}_mean" in r and f"{main}_mean" in full:
            cells.append(_num(r[f"{main}_mean"] - full[f"{main}_mean"], percent, "+"))
        else:
            cells.append("")
        if paper:
            pv = paper_vals.get(r["variant"], {}).get(main)
            cells.append("n/a" if pv is None else _num(pv, percent))
        cells += [_cell(r, c[0], c[2]) for c in scores]
        cells.append(r.get("note", ""))
        lines.append("| " + " | ".join(cells) + " |")

    notes = [f"Data: {manifest.get('dataset')} ({manifest.get('data_modalities')}), "
             f"seeds {', '.join(map(str, manifest.get('seeds', [])))}; mean ± sample std (n - 1) "
             f"over seeds; accuracies in %."]
    if manifest.get("bayes_mae"):
        notes.append(f"Bayes floor (test MAE of the ideal predictor): {manifest['bayes_mae']:.3f}.")
    if regression:
        notes.append("Acc-2 and F1 are the non0 reading (labels = 0 left out); table.csv has both.")
    if paper and any(main not in paper_vals.get(r["variant"], {}) for r in rows):
        notes.append(f"{PAPER_NOTE}.")
    if paper and manifest.get("data", {}).get("name") == "mosi-text-audio":
        text = {"minilm": "all-MiniLM-L6-v2 token states, 384-d"}.get(
            manifest["data"].get("options", {}).get("text_features"), "GloVe 50-d")
        notes.append("The paper's MOSI rows use text, audio and visual with its own features; this "
                     f"data set has text ({text}) and utterance-level audio only: not like for like.")
    return "\n".join(lines) + "\n\n" + "\n".join(notes)


# ------------------------------------------------------------------- the paper's claims
def _delta(rows_by_key: dict, key: str, metric: str, ref: str = "full") -> tuple[float, float] | None:
    """(mean of variant - mean of ref, standard error of that difference) for a metric."""
    a, b = rows_by_key.get(key), rows_by_key.get(ref)
    if not a or not b or f"{metric}_mean" not in a or f"{metric}_mean" not in b:
        return None
    se = 0.0
    for r in (a, b):
        std = r.get(f"{metric}_std", math.nan)
        if r["n"] > 1 and not math.isnan(std):
            se += std ** 2 / r["n"]
    return a[f"{metric}_mean"] - b[f"{metric}_mean"], math.sqrt(se)


def _fmt(d: tuple[float, float] | None) -> str:
    return "n/a" if d is None else f"{d[0]:+.3f} (± {d[1]:.3f} s.e.)"


def paper_claims(rows: list[dict], kind: str | None = None) -> list[dict]:
    """Which of the paper's orderings hold in ``rows`` (a regression :func:`summarise` table),
    for the variants it holds: dicts of ``claim``, ``holds``, ``clear`` (the difference exceeds
    two standard errors; None without an error bar) and ``evidence``. ``kind`` ("emotion" /
    "humor") adds which part of the representation matters more."""
    by = {r["variant"]: r for r in rows}
    out = []

    def add(claim, d, extra):
        """The claim that ``d``'s difference is positive."""
        if d is None:
            return                                            # a variant that was not run
        clear = None if d[1] == 0 else abs(d[0]) > 2 * d[1]
        out.append({"claim": claim, "holds": d[0] > 0, "clear": clear, "evidence": _fmt(d) + extra})

    for v in VARIANTS[1:]:
        d = _delta(by, v.key, "mae")
        if d is not None and by[v.key].get("note", "").startswith("same configuration"):
            continue                                          # e.g. w/o Visual on text+audio data
        add(f"{v.name} is worse than the full model (higher MAE)", d, " MAE vs full")
    add("Removing L_ami + L_ams makes the modality easier to read from C (common_modality_acc rises)",
        _delta(by, "wo_ami_ams", "common_modality_acc"), " common_modality_acc vs full")
    add("Removing L_ami + L_ams leaves one sample's C_t, C_a, C_v further apart (common_gap rises)",
        _delta(by, "wo_ami_ams", "common_gap"), " common_gap vs full")
    add("Removing L_con leaves one sample's C_t, C_a, C_v further apart (common_gap rises)",
        _delta(by, "wo_con", "common_gap"), " common_gap vs full")
    if kind in ("emotion", "humor"):
        dc, dp = _delta(by, "wo_common", "mae"), _delta(by, "wo_private", "mae")
        if dc is not None and dp is not None:
            diff = (dp[0] - dc[0], math.hypot(dp[1], dc[1]))
            if kind == "emotion":
                add("Emotion-like (private-dominant) label: dropping the private part hurts more "
                    "than dropping the common part", diff, " MAE(w/o Private) - MAE(w/o Common)")
            else:
                add("Humor-like (common-dominant) label: dropping the common part hurts more than "
                    "dropping the private part", (-diff[0], diff[1]), " MAE(w/o Common) - MAE(w/o Private)")
    return out


def claims_markdown(claims: list[dict]) -> str:
    """:func:`paper_claims` as a markdown table."""
    lines = ["| claim | holds here? | difference |", "|---|---|---|"]
    for c in claims:
        verdict = {True: "yes", False: "no", None: "n/a"}[c["holds"]]
        if c["holds"] is not None:
            verdict += {True: " (clear: > 2 s.e.)", False: " (within noise)",
                        None: " (no error bar: one seed or no spread)"}[c["clear"]]
        lines.append(f"| {c['claim']} | {verdict} | {c['evidence']} |")
    return "\n".join(lines)
