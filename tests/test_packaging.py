"""Packaging: the conda environment and pyproject name the same dependencies; CI and README agree."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def pyproject_deps() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {_name(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        names |= {_name(r) for r in extra}
    return names


def environment_deps() -> set[str]:
    names, in_pip = set(), False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        stripped = line.split("#", 1)[0].rstrip()
        if stripped.strip() == "- pip:":
            in_pip = True
            continue
        if in_pip and stripped.strip().startswith("- ") and not stripped.strip().startswith("- -e"):
            names.add(_name(stripped.strip()[2:]))
    return names


def test_environment_and_pyproject_name_the_same_dependencies():
    assert environment_deps() == pyproject_deps()


def test_readme_commands_and_ci_agree():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "fdmer-lite demo" in readme
    assert "python -m pytest" in readme and "python -m pytest" in ci
    assert "torch==2.13.0" in ci                          # the CPU build first, never a CUDA download


def test_console_script_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["fdmer-lite"] == "fdmer_lite.cli:main"


def _package_names() -> set[str]:
    """Every top-level module and subpackage of fdmer_lite, and every module of experiments/."""
    pkg = ROOT / "fdmer_lite"
    names = {p.stem for p in pkg.glob("*.py") if p.stem != "__init__"}
    names |= {d.name for d in pkg.iterdir() if (d / "__init__.py").is_file()}
    names |= {p.stem for p in (pkg / "experiments").glob("*.py") if p.stem != "__init__"}
    return names


def test_the_readme_map_and_the_package_docstring_name_every_module():
    import re

    import fdmer_lite
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index("## The library"):readme.index("## The command line")]
    for where, text in (("README's library map", block), ("fdmer_lite.__doc__", fdmer_lite.__doc__)):
        missing = sorted(n for n in _package_names() if not re.search(rf"\b{n}\b", text))
        assert not missing, f"{where} does not name {missing}"
