"""The verdict lines the results notebooks print, read from finished lesson runs, without the
notebooks: for a closing note after the bundled runs are retrained.

    python benchmarks/verdict_lines.py [--root fdmer_lite/shipped_runs/lessons] [--out FILE.md]

For every run folder under ``--root`` that holds ``metrics.json`` and ``history.json``: the
Figure-3 verdict (``fdmer_lite.verdicts.figure3``, notebook 6 and 7), where the kept epoch sits,
and, for ``emotion-paper`` beside ``emotion-beta0-gamma0``, the Figure-2 verdict (notebook 7);
then the spread over the seeds of the demo's recipe (``emotion-paper``, ``emotion-seed1..4``,
notebook 6). The folders are read as they are: this script does not check that a run matches
today's code (``fdmer_lite.experiments.runs.find`` does, in the notebooks). Figures 4a and 4b
need the test split's representations and are printed by notebooks 7, 9 and 11 only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fdmer_lite import verdicts  # noqa: E402

SEEDS = ("emotion-paper", *(f"emotion-seed{s}" for s in range(1, 5)))


def read(folder: Path) -> tuple[dict, list] | None:
    """(metrics, history) of a run folder, or None when it lacks either file."""
    if not ((folder / "metrics.json").is_file() and (folder / "history.json").is_file()):
        return None
    return json.loads((folder / "metrics.json").read_text()), json.loads((folder / "history.json").read_text())


def lines(root: Path) -> list[str]:
    runs = {p.name: r for p in sorted(root.iterdir()) if p.is_dir() and (r := read(p)) is not None}
    out = [f"# Verdict lines of the lesson runs in {root}", ""]
    for name, (metrics, history) in runs.items():
        train = [e.get("train") or {} for e in history]
        if not train or any("all" not in t for t in train):
            continue
        constraint = [t["con"] + t["dis"] for t in train] if all("con" in t and "dis" in t for t in train) else None
        out.append(f"- **{name}**: {verdicts.figure3([t['all'] for t in train], constraint, best_epoch=metrics.get('best_epoch'))} "
                   f"{verdicts.kept_epoch(metrics['best_epoch'], len(history)).sentence}")
    paper, off = runs.get("emotion-paper"), runs.get("emotion-beta0-gamma0")
    if paper and off and "common_gap" in paper[0]:
        m, o = paper[0], off[0]
        out += ["", f"- **Figure 2** (emotion-paper against emotion-beta0-gamma0): "
                    f"{verdicts.figure2(m['common_modality_acc'], m['common_gap'], epochs=len(paper[1]), probe_acc_without=o['common_modality_acc'], gap_without=o.get('common_gap'))}"]
    spread = {}
    for name in SEEDS:
        if name in runs:
            m, h = runs[name]
            spread[name] = {"mae": m["mae"], "disc_prob_common": m["disc_prob_common"],
                            "jump": bool(verdicts.jumps([e["train"]["all"] for e in h]))}
    out += ["", f"- **Seeds of the demo's recipe** ({', '.join(spread) or 'none found'}): {verdicts.seed_spread(spread)}"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT / "fdmer_lite" / "shipped_runs" / "lessons",
                        help="a folder of run folders (default: the bundled lesson runs)")
    parser.add_argument("--out", type=Path, help="also write the lines to this markdown file")
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        print(f"error: --root {args.root} is not a folder of run folders", file=sys.stderr)
        return 2
    text = "\n".join(lines(args.root)) + "\n"
    print(text, end="")
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
