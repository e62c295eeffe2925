"""`rapport audit verify | replay | report` (contract section 6).

The database is `RAPPORT_DATABASE_URL` when set, else the embedded PostgreSQL of `rapport dev`
in `--data-dir`. Each service keeps its log in the schema named after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from rapport.cli_help import Command, Group
from rapport.registry import SERVICES, projections_of
from rapport.terminal import output, progress
from shared.reads.folding import Unapplied

app = typer.Typer(
    cls=Group, help="Auditors: verify the hash chains, replay projections, write reports."
)


@app.callback()
def quiet_logs() -> None:
    """Auditors: verify the hash chains, replay projections, write reports."""
    from shared.runtime.logs import configure_logging

    configure_logging(os.environ.get("RAPPORT_LOG_LEVEL", "warning"))


DATA_DIR = typer.Option(Path(".rapport"), help="Where `rapport dev` keeps its database.")
SERVICE = typer.Option(None, "--service", help="Only this service (repeatable).")


@contextlib.contextmanager
def database(data_dir: Path) -> Iterator[str]:
    """The audited database, or a one-line error and exit code 2."""
    from rapport.infra import InfrastructureError, running_database

    try:
        with running_database(data_dir) as database_url:
            yield database_url
    except InfrastructureError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error


def chosen(services: Sequence[str] | None) -> list[str]:
    unknown = [name for name in services or () if name not in SERVICES]
    if unknown:
        typer.echo(f"error: unknown service {', '.join(unknown)}; one of {', '.join(SERVICES)}")
        raise typer.Exit(2)
    return list(services or SERVICES)


@app.command(cls=Command)
def verify(
    service: list[str] | None = SERVICE,
    schema: list[str] | None = typer.Option(
        None, "--schema", help="Verify this schema's events table instead (repeatable)."
    ),
    data_dir: Path = DATA_DIR,
) -> None:
    """Recompute every hash and check every prev_hash link and version sequence."""
    targets = list(schema) if schema else chosen(service)
    out = output()
    with database(data_dir) as database_url:
        outcome = asyncio.run(_verify(database_url, targets, out, named=bool(schema or service)))
    if outcome == "missing":
        typer.echo("error: nothing to verify: no event store in " + ", ".join(targets), err=True)
        raise typer.Exit(2)
    if outcome == "bad":
        raise typer.Exit(1)


async def _verify(database_url: str, schemas: Sequence[str], out: Console, *, named: bool) -> str:
    """`intact`, `bad` (the first bad event was printed) or `missing` (no store to verify)."""
    import asyncpg

    from shared.reads.audit import verify_events
    from shared.storage.bulk import has_event_store

    started = time.perf_counter()
    streams = events = 0
    conn = await asyncpg.connect(database_url)
    try:
        stores = [schema for schema in schemas if await has_event_store(conn, schema)]
        if not stores or (named and len(stores) < len(schemas)):
            return "missing"
        for schema in schemas:
            if schema not in stores:
                out.print(f"{schema}: no event store (the service has not run yet)")
                continue
            result = await verify_events(conn, schema)
            streams += result.streams
            events += result.events
            if result.bad is not None:
                out.print(f"first bad event: {result.bad}", soft_wrap=True)
                return "bad"
            out.print(
                f"{schema}: {result.streams} streams, {result.events} events intact"
                f" ({result.seconds:.2f} s)"
            )
    finally:
        await conn.close()
    out.print(
        f"verified {streams} streams, {events} events in {time.perf_counter() - started:.2f} s:"
        " every hash recomputes, every link and version sequence is whole"
    )
    return "intact"


@app.command(cls=Command)
def replay(
    service: list[str] | None = SERVICE,
    keep: bool = typer.Option(False, "--keep", help="Keep the replay schemas for inspection."),
    workers: int | None = typer.Option(
        None,
        "--workers",
        min=1,
        help="Processes folding in parallel (default: the machine's cores).",
    ),
    data_dir: Path = DATA_DIR,
) -> None:
    """Rebuild every projection from the log into fresh tables and print their digests."""
    out = output()
    with database(data_dir) as database_url:
        unapplied = asyncio.run(_replay(database_url, chosen(service), keep, out, workers))
    if unapplied:
        raise typer.Exit(1)


async def _replay(
    database_url: str, services: Sequence[str], keep: bool, out: Console, workers: int | None
) -> int:
    """Replay, print the digests and any events a projection could not fold; returns how
    many could not be folded."""
    import asyncpg

    from shared.reads.audit import live_digests, replay
    from shared.storage.bulk import count_events, has_event_store

    conn = await asyncpg.connect(database_url)
    try:
        present = [name for name in services if await has_event_store(conn, name)]
        totals = {name: await count_events(conn, name) for name in present}
    finally:
        await conn.close()
    table = Table(title="Projections replayed from the log")
    for column in ("service", "projection", "documents", "digest (sha-256)", "live"):
        table.add_column(column, no_wrap=True)
    differing = 0
    replayed = 0
    unapplied: list[tuple[str, Unapplied]] = []
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    bars = progress()
    with Progress(*columns, console=bars, disable=bars is None) as shown:
        for name in present:
            task = shown.add_task(f"replaying {name}", total=totals[name])
            projections = projections_of(name)

            def advance(count: int, task: TaskID = task) -> None:
                shown.advance(task, count)

            result = await replay(
                database_url,
                name,
                projections,
                service=name,
                keep=keep,
                workers=workers,
                progress=advance,
            )
            shown.update(task, completed=result.events, total=max(result.events, 1))
            replayed += result.events
            unapplied.extend((name, failure) for failure in result.unapplied)
            live = {d.projection: d for d in await live_digests(database_url, name, projections)}
            for found in result.digests:
                same = live[found.projection] == found
                differing += not same
                verdict = "match" if same else f"DIFFERS: {live[found.projection].digest}"
                table.add_row(name, found.projection, str(found.documents), found.digest, verdict)
            if keep:
                out.print(f"kept {result.schema}")
    out.print(table)
    if unapplied:
        parked = Table(title="Events a projection could not fold (left out of the digests)")
        for column in ("service", "projection", "stream", "version", "event_id", "error"):
            parked.add_column(column, overflow="fold")
        for name, failure in unapplied:
            item = failure.item
            parked.add_row(
                name,
                failure.projection,
                item.stream_id,
                str(item.stream_version),
                item.event_id,
                failure.error[:300],
            )
        out.print(parked)
        out.print(
            f"{len(unapplied)} event(s) could not be folded; `rapport audit verify` tells"
            " whether the log was tampered with"
        )
    if differing:
        out.print(
            f"{differing} projection(s) differ from the live ones; the live runners may still be"
            " catching up with the log: run again once they have"
        )
    else:
        out.print(f"replayed {replayed} events: every digest equals the live projection's")
    return len(unapplied)


@app.command(cls=Command)
def report(
    engagement_id: str = typer.Argument(..., help="The engagement to report on."),
    out: Path = typer.Option(..., "--out", help="Where to write the HTML file."),
    as_of: str | None = typer.Option(
        None, "--as-of", help="Only the log up to this RFC 3339 time, e.g. 2025-01-01T12:00:00Z."
    ),
    data_dir: Path = DATA_DIR,
) -> None:
    """Write a self-contained HTML report: stages, events, the trust score and the client's
    six factors over time.

    The six factors of the relationship (empathy, active listening, non-judgment,
    confidentiality, collaboration, boundaries) are the client's ratings at each check-in,
    drawn under the trust score on the same time axis. The summary lists what an auditor looks
    for first: boundary violations (open and addressed), supervision recommendations, claimed
    against verified homework, and the gaps between the coach's and the client's ratings.
    """
    from rapport.report import build_report
    from shared.http.schemas import in_utc
    from shared.model.envelope import parse_time

    try:
        moment = None if as_of is None else in_utc(parse_time(as_of))
    except ValueError as error:
        typer.echo(f"error: --as-of must be an RFC 3339 time with an offset: {error}", err=True)
        raise typer.Exit(2) from error
    if out.is_dir():
        typer.echo(f"error: --out {out} is a directory; name the HTML file", err=True)
        raise typer.Exit(2)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        writable = os.access(out.parent, os.W_OK)
    except OSError:
        writable = False
    if not writable:
        typer.echo(f"error: cannot write {out}: its folder is not writable", err=True)
        raise typer.Exit(2)
    with database(data_dir) as database_url:
        page = asyncio.run(build_report(database_url, engagement_id, moment, data_dir))
    if page is None:
        typer.echo(f"error: no engagement {engagement_id}", err=True)
        raise typer.Exit(1)
    try:
        out.write_text(page, encoding="utf-8")
    except OSError as error:
        typer.echo(f"error: cannot write {out}: {error.strerror or error}", err=True)
        raise typer.Exit(2) from error
    typer.echo(f"wrote {out}")
