"""The package's import graph keeps its layers: no cycles, no upward imports, the model's own rule.

Layers, bottom to top (a module may import its own layer and the layers below it):

    0 floor        errors, config, paths, collectives, metrics (nothing of the package's)
    1 data         data/*
    2 model        model/*, losses (the paper's equations)
    3 train        train (the Trainer alone)
    4 analysis     analysis, viz, readings
    5 experiments  experiments/* (the run store, the pool, batches of runs)
    6 front        everything else: cli, lessons, ablations, sweep, distributed

An *upward* import goes from a lower layer to a higher one. Two rules of their own (DESIGN.md,
section 2): ``model/*`` imports only ``config`` and ``model/*``; ``losses`` and ``metrics`` never
import ``model`` (they are pure functions of tensors and arrays). Imports are read from the source
with ``ast`` (nothing is imported), those inside function bodies included.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "fdmer_lite"
NAME = "fdmer_lite"

LAYERS = [
    ("floor", {"__init__", "errors", "config", "paths", "collectives", "metrics"}),
    ("data", {"data"}),
    ("model", {"model", "losses"}),
    ("train", {"train"}),
    ("analysis", {"analysis", "viz", "readings"}),
    ("experiments", {"experiments"}),
]


def layer(module: str) -> int:
    """The layer of a module (its index in LAYERS; the front is len(LAYERS))."""
    head = module.split(".")[0]
    return next((i for i, (_, members) in enumerate(LAYERS) if module in members or head in members), len(LAYERS))


def module_name(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def named(current: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The package-internal names an import statement names (``data.base``, ``data.base.Split``)."""
    if isinstance(node, ast.Import):
        return [a.name[len(NAME) + 1:] if a.name != NAME else "__init__"
                for a in node.names if a.name == NAME or a.name.startswith(NAME + ".")]
    if node.level == 0:
        if not (node.module == NAME or (node.module or "").startswith(NAME + ".")):
            return []
        target = node.module[len(NAME):].lstrip(".")
    else:
        base = current.split(".") if is_package else current.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join([*base, *(node.module.split(".") if node.module else [])])
    return [f"{target}.{a.name}" if target else a.name for a in node.names]


def graph(package: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (``from .x import Name`` is an import of x)."""
    modules = {module_name(p, package): p for p in sorted(package.rglob("*.py")) if "shipped_runs" not in p.parts}
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in named(mod, path.name == "__init__.py", node):
                    while target and target not in modules:
                        target = target.rpartition(".")[0]
                    if target and target != mod:
                        edges[mod].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module: a module reaches one of them
    and is reached back."""
    def reach(start):
        seen, todo = set(), [start]
        while todo:
            for w in edges.get(todo.pop(), ()):
                if w not in seen:
                    seen.add(w)
                    todo.append(w)
        return seen
    reached = {m: reach(m) for m in edges}
    comps = {tuple(sorted({m} | {w for w in reached[m] if m in reached[w]})) for m in edges}
    return sorted(list(c) for c in comps if len(c) > 1)


def violations(package: Path = PACKAGE) -> list[str]:
    """Every broken rule, one line each (empty: the graph is clean)."""
    edges = graph(package)
    out = [f"cycle: {' <-> '.join(c)}" for c in cycles(edges)]
    for a, targets in sorted(edges.items()):
        for b in sorted(targets):
            if layer(b) > layer(a) and not a.startswith(b + "."):    # data.x -> data: its own package
                out.append(f"upward: {a} -> {b}")
            if a.startswith("model") and not (b.startswith("model") or b == "config"):
                out.append(f"model imports outside model/ and config: {a} -> {b}")
            if a in ("losses", "metrics") and b.startswith("model"):
                out.append(f"{a} imports the model: {a} -> {b}")
    return out


def test_the_package_keeps_its_layers():
    assert (PACKAGE / "model").is_dir() and len(graph(PACKAGE)) > 30          # it read the real package
    assert violations(PACKAGE) == []


def _package(root: Path, files: dict[str, str]) -> Path:
    package = root / NAME
    for rel, text in files.items():
        (package / rel).parent.mkdir(parents=True, exist_ok=True)
        (package / rel).write_text(text)
    return package


CLEAN = {
    "__init__.py": "",
    "config.py": "import math\n",
    "metrics.py": "from . import config\n",
    "data/__init__.py": "from .base import Split\n",
    "data/base.py": "from ..config import Config\nfrom fdmer_lite import errors\n",
    "errors.py": "",
    "model/__init__.py": "from .fdmer import build_model\n",
    "model/fdmer.py": "from ..config import Config\nfrom . import layers\n",
    "model/layers.py": "import torch\n",
    "losses.py": "from .config import Config\n",
    "train.py": "from .model import build_model\nfrom .data.base import Split\n\ndef f():\n    from . import losses\n",
    "cli.py": "def main():\n    from .train import Trainer\n",
}


def test_a_clean_fake_package_passes_and_its_edges_are_read(tmp_path):
    package = _package(tmp_path, CLEAN)
    edges = graph(package)
    assert edges["data.base"] == {"config", "errors"}                      # relative and absolute
    assert edges["train"] == {"model", "data.base", "losses"}              # inside a function too
    assert edges["cli"] == {"train"} and edges["data"] == {"data.base"}
    assert violations(package) == []


def test_each_forbidden_import_is_reported(tmp_path):
    cases = {
        "model/layers.py": ("from ..train import Trainer\n", {"upward: model.layers -> train",
                            "model imports outside model/ and config: model.layers -> train",
                            "cycle: model <-> model.fdmer <-> model.layers <-> train"}),
        "losses.py": ("from .model import layers\n", {"losses imports the model: losses -> model.layers"}),
        "metrics.py": ("import fdmer_lite.model\n", {"upward: metrics -> model",
                       "metrics imports the model: metrics -> model"}),
        "data/base.py": ("def load():\n    from ..model import build_model\n", {"upward: data.base -> model"}),
        "train.py": ("import fdmer_lite.cli\n", {"upward: train -> cli", "cycle: cli <-> train"}),
    }
    for i, (rel, (line, expected)) in enumerate(cases.items()):
        package = _package(tmp_path / str(i), {**CLEAN, rel: CLEAN[rel] + line})
        assert set(violations(package)) == expected, rel


def test_a_cycle_within_one_layer_is_reported(tmp_path):
    package = _package(tmp_path, {**CLEAN, "data/a.py": "from . import b\n", "data/b.py": "from .a import x\n"})
    assert violations(package) == ["cycle: data.a <-> data.b"]
