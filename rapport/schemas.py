"""`rapport schemas [--write]` (or `python -m rapport.schemas`): the snapshot of every service's
published event schemas, `schemas/<service>.json`, checked against the models or refreshed.

A refresh writes only changes that keep every published version's promise (new versions, and
compatible changes of existing ones); a change that breaks one needs a new `schema_version`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from rapport.registry import SERVICES, events_of
from shared.model.event_schemas import SnapshotComparison, compare_snapshot, published_schemas

__all__ = ["SNAPSHOTS", "compare", "load_snapshot", "render", "schemas", "snapshot_path"]

SNAPSHOTS = Path(__file__).resolve().parents[1] / "schemas"
REFRESH = "python -m rapport.schemas --write"
BUMP = (
    "give the model a new schema_version, register the old one with"
    " `@registry.historical` and an upcaster (see docs/contract-additions.md, Schemas)"
)


def snapshot_path(service: str, directory: Path = SNAPSHOTS) -> Path:
    return directory / f"{service}.json"


def load_snapshot(service: str, directory: Path = SNAPSHOTS) -> dict[str, Any]:
    """The service's snapshot, or an empty list when it has none yet."""
    path = snapshot_path(service, directory)
    if not path.exists():
        return {"items": []}
    snapshot: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return snapshot


def render(published: object) -> str:
    """The snapshot file's text: keys sorted, two-space indents, one final newline."""
    return json.dumps(published, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def compare(service: str, directory: Path = SNAPSHOTS) -> SnapshotComparison:
    """The service's published schemas now, against its snapshot."""
    published = published_schemas(events_of(service))
    return compare_snapshot(load_snapshot(service, directory), published)


def schemas(
    write: bool = typer.Option(False, "--write", help="Refresh the snapshots."),
    directory: Path = typer.Option(SNAPSHOTS, "--dir", help="Where the snapshots live."),
) -> None:
    """Check the snapshots of the published event schemas, or refresh them (--write)."""
    failed = False
    for service in SERVICES:
        comparison = compare(service, directory)
        path = snapshot_path(service, directory)
        for line in comparison.lines():
            typer.echo(f"{service}: {line}")
        if comparison.unchanged:
            typer.echo(f"{path}: as published")
        elif not comparison.refreshable:
            typer.echo(f"{path}: not refreshed; {BUMP}", err=True)
            failed = True
        elif write:
            directory.mkdir(parents=True, exist_ok=True)
            path.write_text(render(published_schemas(events_of(service))), encoding="utf-8")
            typer.echo(f"{path}: refreshed")
        else:
            typer.echo(f"{path}: out of date; `{REFRESH}` refreshes it", err=True)
            failed = True
    if failed:
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(schemas)
