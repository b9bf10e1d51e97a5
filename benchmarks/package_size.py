"""Lines of the package by layer: ``lines`` as ``wc -l`` counts them, split into code, docstrings,
comments and blank lines; then the configuration's fields (its sections' and ``name``).

    python benchmarks/package_size.py [REPO]      # REPO: a checkout (default: this one)
"""

import ast
import dataclasses
import sys
from pathlib import Path

LAYERS = {"orchestration": ("cli", "lessons", "sweep", "ablations", "distributed", "experiments/"),
          "data": ("data/",), "model and losses": ("model/", "losses"),
          "teaching (viz, verdicts, readings, exercises)": ("viz", "verdicts", "readings", "exercises")}
KINDS = ("code", "doc", "comment", "blank")


def line_kinds(source: str) -> list[str]:
    """One of :data:`KINDS` per line of ``source``."""
    kinds = ["comment" if s.strip().startswith("#") else "code" if s.strip() else "blank"
             for s in source.splitlines()]
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body \
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            kinds[body[0].lineno - 1:body[0].end_lineno] = ["doc"] * (body[0].end_lineno - body[0].lineno + 1)
    return kinds


def main(repo: Path) -> None:
    package, table = repo / "fdmer_lite", {}
    for path in sorted(package.rglob("*.py")):
        name = str(path.relative_to(package)).removesuffix(".py")
        layer = next((k for k, v in LAYERS.items() if any(name == m or name.startswith(m) and m.endswith("/")
                                                          for m in v)), "core (config, train, metrics, ...)")
        kinds, row = line_kinds(path.read_text(encoding="utf-8")), table.setdefault(layer, [0] * 6)
        for i, n in enumerate((1, len(kinds), *(kinds.count(k) for k in KINDS))):
            row[i] += n
    print("| layer | modules | lines | code | docstrings | comments | blank |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for layer, row in [*sorted(table.items()), ("**the package**", [sum(c) for c in zip(*table.values())])]:
        print(f"| {layer} | " + " | ".join(f"{n:,}" for n in row) + " |")
    sys.path.insert(0, str(repo))
    from fdmer_lite.config import Config
    fields = sum(len(dataclasses.fields(getattr(Config(), s))) for s in ("model", "loss", "train")) + 1
    print("\nconfiguration fields:", fields)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]).resolve())
