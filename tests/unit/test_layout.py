"""The house's shape, checked from the source: layers, no circles, no reaching up, modules of one screenful.

Read from the code's own imports (``ast``, nothing imported), every import counted — ``TYPE_CHECKING`` ones
too, since a type-only import still ties the two modules together for whoever reads them.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

LAYERS = {
    "bundled": 0,
    "runtime": 0,
    "domain": 1,
    "config": 2,
    "exchange": 2,
    "messages": 3,
    "backtest": 3,
    "sim": 4,
    "tree": 5,
    "connections": 6,
    "ops": 7,
    "cli": 8,
    "supervisor": 9,
}
"""Each part of the package may import only parts on its own layer or below (``supervisor`` = the root)."""

MAX_LINES = 450


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


@cache
def package_modules() -> dict[str, Path]:
    files = [*ROOT.joinpath("actors").rglob("*.py"), ROOT / "supervisor.py"]
    return {_module_name(p): p for p in files if "__pycache__" not in p.parts}


@cache
def imports() -> dict[str, set[str]]:
    """Module → the package modules it imports (relative imports resolved; ``from . import x`` too)."""
    modules = package_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        here = name.split(".") if is_package else name.split(".")[:-1]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or node.level == 0:
                continue
            base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
            target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            for alias in node.names:
                candidate = f"{target}.{alias.name}" if target else alias.name
                found.add(candidate if candidate in modules else target)
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def _part(module: str) -> str:
    if module == "supervisor":
        return "supervisor"
    parts = module.split(".")
    return parts[1].removesuffix(".py") if len(parts) > 1 else "actors"


def test_every_part_is_placed_on_a_layer() -> None:
    unplaced = sorted({_part(m) for m in package_modules()} - set(LAYERS) - {"actors"})
    assert unplaced == [], f"new parts need a layer in LAYERS: {unplaced}"


def test_imports_never_climb_a_layer() -> None:
    climbs = [
        f"{a} → {b}"
        for a, targets in imports().items()
        for b in targets
        if _part(a) in LAYERS and _part(b) in LAYERS and LAYERS[_part(b)] > LAYERS[_part(a)]
    ]
    assert climbs == []


def test_nothing_in_the_package_imports_the_composition_root() -> None:
    assert [a for a, targets in imports().items() if "supervisor" in targets] == []


def test_the_runtime_knows_nothing_of_the_domain_or_the_config() -> None:
    foreign = [
        f"{a} → {b}"
        for a, targets in imports().items()
        if _part(a) == "runtime"
        for b in targets
        if _part(b) != "runtime"
    ]
    assert foreign == []


def test_the_domain_is_pure() -> None:
    """Strategy, fills and the vectorised twin: no I/O, no clock, no other part of the package."""
    allowed_third_party = {"talipp", "numpy", "__future__", "collections", "dataclasses", "decimal", "enum"}
    allowed_third_party |= {"math", "typing", "types", "functools", "itertools", "bisect"}
    problems = []
    for name, path in package_modules().items():
        if _part(name) != "domain":
            continue
        problems += [f"{name} → {b}" for b in imports()[name] if _part(b) != "domain"]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom) and getattr(node, "level", 0) == 0:
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                problems += [
                    f"{name} imports {n}" for n in names if n.split(".")[0] not in allowed_third_party
                ]
    assert problems == []


def test_no_import_circles() -> None:
    graph = imports()
    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert circles == []


def test_modules_stay_around_a_screenful() -> None:
    long = {
        name: n
        for name, path in package_modules().items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}
