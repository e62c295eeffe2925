"""Rules of the transparency kernel: each module says what it offers, and only the witness's
store touches the file system."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "shared" / "transparency"
MODULES = sorted(
    "shared.transparency" + ("" if path.stem == "__init__" else f".{path.stem}")
    for path in PACKAGE.glob("*.py")
)
FILE_SYSTEM = {"os", "io", "fcntl", "pathlib", "tempfile", "shutil", "open"}


@pytest.mark.parametrize("module", MODULES)
def test_every_transparency_module_says_what_it_offers_and_offers_what_it_says(
    module: str,
) -> None:
    imported = importlib.import_module(module)
    surface = getattr(imported, "__all__", None)
    assert isinstance(surface, list) and len(surface) == len(set(surface))
    assert [name for name in surface if not hasattr(imported, name)] == []


def file_system_uses(path: Path) -> set[str]:
    used: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            used |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            used.add(node.module.split(".")[0])
        elif isinstance(node, ast.Name) and node.id == "open":
            used.add("open")
    return used & FILE_SYSTEM


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda path: path.name)
def test_only_the_witness_store_touches_the_file_system(path: Path) -> None:
    expected = (
        {"os", "fcntl", "pathlib", "tempfile", "open"} if path.stem == "witness_store" else set()
    )
    assert file_system_uses(path) == expected


def test_importing_the_package_leaves_the_witness_store_unloaded() -> None:
    code = (
        "import sys, shared.transparency; print('shared.transparency.witness_store' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
