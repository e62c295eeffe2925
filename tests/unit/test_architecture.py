"""Rules of the code base that tools do not check by themselves."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PURE = sorted(
    path
    for service in ("intake", "engagement", "notifications")
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
