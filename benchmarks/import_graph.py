"""The package's import graph and size by layer: cycles, upward imports, imports inside functions.

    python benchmarks/import_graph.py            # prints a markdown report
    python benchmarks/import_graph.py --json     # the same figures as JSON

Layers, bottom to top (a module may import its own layer and the layers below it):

    0 floor        errors, config, paper, paths, collectives, metrics, score_names, progress (nothing of the package's)
    1 data         data/*
    2 model        model/*, losses (the paper's equations)
    3 train        train (the Trainer alone)
    4 analysis     analysis, viz, readings
    5 experiments  experiments/* (the run store and the grid runner)
    6 front        cli, lessons, ablations, sweep, distributed

An *upward* import goes from a lower layer to a higher one. The model has a stricter rule of its
own: ``model/*`` imports only ``config`` and ``model/*``. Imports are read from the source with
``ast`` (nothing is imported); an import is *hidden* when it sits inside a function body.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "fdmer_lite"

def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


LAYERS = [
    ("floor", {"__init__", "errors", "config", "paper", "paths", "collectives", "metrics", "score_names", "progress"}),
    ("data", {"data"}),
    ("model", {"model", "losses"}),
    ("train", {"train"}),
    ("analysis", {"analysis", "viz", "readings"}),
    ("experiments", {"experiments"}),
]
LAYER_NAMES = {i: name for i, (name, _) in enumerate(LAYERS)} | {len(LAYERS): "front"}


def layer(module: str) -> int:
    head = module.split(".")[0]
    for i, (_, members) in enumerate(LAYERS):
        if module in members or head in members:
            return i
    return len(LAYERS)


def resolve(current: str, is_package: bool, node: ast.ImportFrom | ast.Import) -> list[str]:
    """Package-internal modules an import statement names."""
    out = []
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.startswith("fdmer_lite"):
                out.append(alias.name[len("fdmer_lite."):] if alias.name != "fdmer_lite" else "__init__")
        return out
    base = current.split(".") if is_package else current.split(".")[:-1]
    if node.level == 0:
        if not (node.module or "").startswith("fdmer_lite"):
            return []
        target = (node.module or "")[len("fdmer_lite"):].lstrip(".")
    else:
        up = base[: len(base) - (node.level - 1)] if node.level > 1 else base
        target = ".".join([*up, *(node.module.split(".") if node.module else [])])
    names = []
    for alias in node.names:
        candidate = f"{target}.{alias.name}" if target else alias.name
        names.append(candidate)
    return names or [target]


def graph() -> tuple[dict[str, set[str]], dict[str, int], list[tuple[str, str]], dict[str, int]]:
    files = sorted(p for p in PACKAGE.rglob("*.py") if "shipped_runs" not in p.parts)
    modules = {module_name(p): p for p in files}
    edges: dict[str, set[str]] = {m: set() for m in modules}
    hidden, lines = [], {}
    for mod, path in modules.items():
        source = path.read_text(encoding="utf-8")
        lines[mod] = sum(1 for line in source.splitlines() if line.strip())
        tree = ast.parse(source)
        functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        inside = {id(n) for f in functions for n in ast.walk(f) if n is not f}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for name in resolve(mod, path.name == "__init__.py", node):
                target = name
                while target and target not in modules:      # "from .x import Name" -> module x
                    target = target.rpartition(".")[0]
                if target and target != mod:
                    edges[mod].add(target)
                    if id(node) in inside:
                        hidden.append((mod, target))
    return edges, lines, hidden, {m: layer(m) for m in modules}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            visit(v)
    return out


def parent_package_edge(src: str, dst: str) -> bool:
    """``data.x -> data`` (a module reading its own package's ``__init__``) is not a layer step."""
    return src.startswith(dst + ".")


def report() -> dict:
    edges, lines, hidden, layers = graph()
    upward = sorted((a, b) for a, targets in edges.items() for b in targets
                    if layers[b] > layers[a] and not parent_package_edge(a, b))
    model_rule = sorted((a, b) for a, targets in edges.items() for b in targets
                        if a.startswith("model") and not (b.startswith("model") or b == "config"))
    by_layer: dict[str, int] = {}
    for mod, n in lines.items():
        by_layer[LAYER_NAMES[layers[mod]]] = by_layer.get(LAYER_NAMES[layers[mod]], 0) + n
    internal = sum(len(t) for t in edges.values())
    return {"modules": len(edges), "internal_imports": internal, "cycles": cycles(edges),
            "upward": upward, "model_rule_breaks": model_rule, "hidden": sorted(set(hidden)),
            "lines_by_layer": by_layer, "lines_by_module": dict(sorted(lines.items())),
            "layers": {m: LAYER_NAMES[v] for m, v in sorted(layers.items())}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    r = report()
    if args.json:
        print(json.dumps(r, indent=1))
        return 0
    print(f"{r['modules']} modules, {r['internal_imports']} internal imports (module to module)\n")
    print(f"- cycles: {len(r['cycles'])}" + "".join(f"\n  - {' <-> '.join(c)}" for c in r["cycles"]))
    print(f"- upward imports: {len(r['upward'])}" + "".join(f"\n  - {a} -> {b}" for a, b in r["upward"]))
    print(f"- model importing outside model/ and config: {len(r['model_rule_breaks'])}"
          + "".join(f"\n  - {a} -> {b}" for a, b in r["model_rule_breaks"]))
    print(f"- imports inside functions: {len(r['hidden'])}" + "".join(f"\n  - {a} -> {b}" for a, b in r["hidden"]))
    print("\n| layer | non-blank lines |\n|---|---|")
    for name in LAYER_NAMES.values():
        print(f"| {name} | {r['lines_by_layer'].get(name, 0)} |")
    print("\n| module | layer | non-blank lines |\n|---|---|---|")
    for mod, n in r["lines_by_module"].items():
        print(f"| {mod} | {r['layers'][mod]} | {n} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
