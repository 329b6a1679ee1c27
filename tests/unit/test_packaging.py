"""Import names: the package reaches itself only relatively, everything else only as ``nancemakina``, and
every third-party import is a declared dependency.

``python -m pytest`` puts the checkout on ``sys.path``, so ``actors`` and ``supervisor`` (which is also
supervisord's import name) import there as top-level names and would hide a wrong import that fails once
installed. These scans catch it without importing anything.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = sorted([ROOT / "supervisor.py", *(ROOT / "actors").rglob("*.py")])
TESTS_AND_BENCH = sorted([*(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").glob("*.py")])
CHECKOUT_NAMES = {"actors", "supervisor", "tests", "bench"}
"""Folders and modules of the checkout that are not installed under these names."""
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def absolute_imports(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) of every absolute import in ``path``, including those under TYPE_CHECKING."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT)}:{line}"


def requirement_names(requirements: list[str]) -> set[str]:
    return {normalized(re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0]) for r in requirements}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def third_party(paths: list[Path], own: set[str]) -> dict[str, str]:
    """Top-level third-party import name → where it is first imported."""
    names: dict[str, str] = {}
    for path in paths:
        for line, module in absolute_imports(path):
            top = module.split(".", 1)[0]
            if top not in sys.stdlib_module_names and top not in own and top != "__future__":
                names.setdefault(top, where(path, line))
    return names


def distributions_of(names: dict[str, str]) -> dict[str, str]:
    """Import name → the (normalized) distribution that provides it in this environment."""
    provided = importlib.metadata.packages_distributions()
    missing = {n: w for n, w in names.items() if n not in provided}
    assert not missing, f"imported but not installed: {missing}"
    return {n: normalized(provided[n][0]) for n in names}


def test_the_package_imports_itself_only_relatively():
    wrong = [
        f"{where(path, line)}: import {module}"
        for path in PACKAGE
        for line, module in absolute_imports(path)
        if module.split(".", 1)[0] in {*CHECKOUT_NAMES, "nancemakina"}
    ]
    assert wrong == [], "inside the package, import relatively (from .x import y)"


def test_tests_and_bench_import_the_package_as_nancemakina():
    wrong = [
        f"{where(path, line)}: import {module}"
        for path in TESTS_AND_BENCH
        for line, module in absolute_imports(path)
        if module.split(".", 1)[0] in {"actors", "supervisor"}
    ]
    assert wrong == [], "import nancemakina.actors... / nancemakina.supervisor, as installed"


def test_the_scan_sees_every_kind_of_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import actors.config\nfrom supervisor import Daemon\nfrom . import sibling\n"
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import tests.unit\n"
        "def late():\n    import bench._synthetic\n"
    )
    modules = [m for _, m in absolute_imports(probe)]
    assert modules == ["actors.config", "supervisor", "typing", "tests.unit", "bench._synthetic"]


def test_every_third_party_import_of_the_package_is_a_dependency():
    dists = distributions_of(third_party(PACKAGE, own=set()))
    required = requirement_names(PYPROJECT["dependencies"])
    plot = requirement_names(PYPROJECT["optional-dependencies"]["plot"])
    undeclared = {n: d for n, d in dists.items() if d not in required | plot}
    assert undeclared == {}, "declare these in [project] dependencies"
    assert plot == {"matplotlib"}
    assert "matplotlib" not in required, "plotting is the optional `plot` extra"


def test_every_third_party_import_of_tests_and_bench_is_declared():
    local = {p.stem for p in (ROOT / "bench").glob("*.py")}
    dists = distributions_of(third_party(TESTS_AND_BENCH, own={"nancemakina", "tests", *local}))
    extras = PYPROJECT["optional-dependencies"]
    declared = requirement_names(PYPROJECT["dependencies"] + extras["dev"] + extras["plot"])
    undeclared = {n: d for n, d in dists.items() if d not in declared}
    assert undeclared == {}, "declare these in the dev extra"


@pytest.mark.parametrize("extra", ["plot"])
def test_dev_extra_brings_the_optional_extras(extra):
    assert f"nancemakina[{extra}]" in PYPROJECT["optional-dependencies"]["dev"]


def test_supervisord_is_a_dev_dependency_so_its_import_name_is_always_beside_ours():
    assert "supervisor" in requirement_names(PYPROJECT["optional-dependencies"]["dev"])
