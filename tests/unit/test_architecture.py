"""Rules of the code base that tools do not check by themselves."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import grimp
import pytest

from rapport.registry import SERVICES

ROOT = Path(__file__).resolve().parents[2]
PURE = sorted(
    path
    for service in SERVICES
    for layer in ("domain", "projections")
    for path in (ROOT / "services" / service / layer).glob("*.py")
)
CLOCKS = {("datetime", "now"), ("datetime", "utcnow"), ("date", "today"), ("time", "time")}


def clock_reads(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
            if (name, node.func.attr) in CLOCKS:
                found.append(f"{path.name}:{node.lineno}")
    return found


def test_the_pure_layers_exist_for_every_service() -> None:
    assert len({path.parent for path in PURE}) == 6


@pytest.mark.parametrize("path", PURE, ids=lambda p: str(p.relative_to(ROOT)))
def test_domain_rules_and_projections_never_read_the_wall_clock(path: Path) -> None:
    assert clock_reads(path) == []


def test_the_clock_check_would_notice_a_wall_clock_read(tmp_path: Path) -> None:
    sample = tmp_path / "rule.py"
    sample.write_text(
        "import time\nfrom datetime import datetime\nx = datetime.now(), time.time()\n"
    )
    assert clock_reads(sample) == ["rule.py:3", "rule.py:3"]


KERNEL = sorted(
    ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    for path in (ROOT / "shared").rglob("*.py")
)


@pytest.mark.parametrize("module", KERNEL)
def test_every_kernel_module_says_what_it_offers_and_offers_what_it_says(module: str) -> None:
    imported = importlib.import_module(module)
    surface = getattr(imported, "__all__", None)
    assert isinstance(surface, list), f"{module} has no __all__"
    assert len(surface) == len(set(surface)), f"{module} names something twice"
    assert [name for name in surface if not hasattr(imported, name)] == []


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The groups of modules that import each other, directly or through others (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return cycles


def test_no_module_of_the_project_imports_itself_through_others() -> None:
    graph = grimp.build_graph("shared", "services", "rapport", "tools", cache_dir=None)
    assert import_cycles(graph) == []


def test_the_cycle_check_would_notice_two_modules_importing_each_other() -> None:
    graph = grimp.ImportGraph()
    for module in ("a", "b", "c"):
        graph.add_module(module)
    graph.add_import(importer="a", imported="b")
    graph.add_import(importer="b", imported="a")
    graph.add_import(importer="b", imported="c")
    assert import_cycles(graph) == [["a", "b"]]
