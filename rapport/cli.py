"""The `rapport` command line (typer)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from rapport.audit import app as audit_app
from rapport.cli_help import Command, Group
from rapport.schemas import schemas
from shared.runtime.logs import configure_logging
from shared.security.tokens import ROLES, SUB_MAX_LENGTH, issue_token, valid_subject

if TYPE_CHECKING:
    from rapport.backup import Outcome

app = typer.Typer(
    cls=Group,
    help="Rapport: the event-sourced backend for coaching platforms.",
    no_args_is_help=True,
)
app.add_typer(audit_app, name="audit")
app.command(cls=Command)(schemas)


@app.command(cls=Command)
def dev(
    data_dir: Path = typer.Option(Path(".rapport"), help="Where the embedded database lives."),
) -> None:
    """Start embedded PostgreSQL, an embedded Kafka-protocol broker and the three services."""
    from rapport.dev import run_dev

    configure_logging(os.environ.get("RAPPORT_LOG_LEVEL", "warning"))
    run_dev(data_dir)


@app.command(cls=Command)
def token(
    role: str = typer.Option(..., help=f"One of: {', '.join(ROLES)}"),
    sub: str = typer.Option(..., help="The subject: coach, client or supervisor id, or a name."),
    hours: float = typer.Option(
        24.0, min=0.01, help="Lifetime in hours, at most RAPPORT_MAX_TOKEN_TTL (24 h)."
    ),
    secret: str | None = typer.Option(
        None, envvar="RAPPORT_JWT_SECRET", help="HS256 secret (default: .rapport/secrets.json)."
    ),
    data_dir: Path = typer.Option(Path(".rapport"), help="Where `rapport dev` keeps its secrets."),
) -> None:
    """Print a signed token for ROLE and SUB."""
    if not sub.strip():
        typer.echo("error: --sub must not be empty", err=True)
        raise typer.Exit(2)
    if role not in ROLES:
        typer.echo(f"error: unknown role {role!r}; expected one of {', '.join(ROLES)}", err=True)
        raise typer.Exit(2)
    if not valid_subject(sub):
        typer.echo(
            f"error: --sub must be at most {SUB_MAX_LENGTH} characters, none of them a control "
            "or format character",
            err=True,
        )
        raise typer.Exit(2)
    from shared.runtime.config import Settings

    ttl, cap = timedelta(hours=hours), Settings().max_token_ttl
    if ttl > cap:
        typer.echo(
            f"error: --hours {hours:g} is past the services' token lifetime cap "
            f"(RAPPORT_MAX_TOKEN_TTL, {cap.total_seconds() / 3600:g} h): they would refuse it",
            err=True,
        )
        raise typer.Exit(2)
    if not secret:
        from rapport.secrets import no_secrets, stored_jwt_secret

        secret = stored_jwt_secret(data_dir)
        if secret is None:
            typer.echo(f"error: {no_secrets(data_dir)}", err=True)
            raise typer.Exit(2)
    typer.echo(issue_token(secret, role, sub, now=datetime.now(UTC), ttl=ttl))


@app.command(cls=Command)
def backup(
    out: Path = typer.Option(..., "--out", help="A new, empty folder for the backup."),
    data_dir: Path = typer.Option(Path(".rapport"), help="Where `rapport dev` keeps its data."),
) -> None:
    """Back up every service's log, projections and the wrapped client keys (pg_dump)."""
    from rapport.backup import backup as run_backup

    _backup_tool(data_dir, lambda url, key: run_backup(url, out, key), create=False)


@app.command(cls=Command)
def restore(
    source: Path = typer.Argument(..., help="A folder written by `rapport backup`."),
    data_dir: Path = typer.Option(
        Path(".rapport"), help="Where to restore the embedded database (a new one is created)."
    ),
) -> None:
    """Restore a backup into an empty database, then prove it: log digests and hash chains."""
    from rapport.backup import restore as run_restore

    _backup_tool(data_dir, lambda url, key: run_restore(url, source, key), create=True)
    typer.echo("restored: run `rapport audit replay` to rebuild and compare the projections")


def _backup_tool(
    data_dir: Path,
    run: Callable[[str, str | None], Coroutine[Any, Any, Outcome]],
    *,
    create: bool,
) -> None:
    """Run a backup or restore on the database of `data_dir` and print its lines; a refusal
    is one line on stderr and exit code 2."""
    from rapport.backup import BackupError

    configure_logging(os.environ.get("RAPPORT_LOG_LEVEL", "warning"))
    with _database(data_dir, create=create) as database_url:
        try:
            outcome = asyncio.run(run(database_url, _master_key(data_dir)))
        except (BackupError, OSError) as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(2) from error
    for line in outcome.lines:
        typer.echo(line)


@contextlib.contextmanager
def _database(data_dir: Path, *, create: bool) -> Iterator[str]:
    from rapport.infra import InfrastructureError, running_database

    try:
        with running_database(data_dir, create=create) as database_url:
            yield database_url
    except InfrastructureError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error


def _master_key(data_dir: Path) -> str | None:
    from rapport.secrets import master_key

    return master_key(data_dir)


@app.command(cls=Command)
def demo(
    intake_url: str | None = typer.Option(
        None, envvar="RAPPORT_INTAKE_URL", help="Default: 127.0.0.1 at RAPPORT_INTAKE_PORT."
    ),
    engagement_url: str | None = typer.Option(
        None,
        envvar="RAPPORT_ENGAGEMENT_URL",
        help="Default: 127.0.0.1 at RAPPORT_ENGAGEMENT_PORT.",
    ),
    secret: str | None = typer.Option(
        None, envvar="RAPPORT_JWT_SECRET", help="HS256 secret (default: .rapport/secrets.json)."
    ),
    data_dir: Path = typer.Option(Path(".rapport"), help="Where `rapport dev` keeps its secrets."),
) -> None:
    """Walk one client through all four stages against a running stack; print each step."""
    from rapport.demo import main
    from rapport.registry import port_of
    from shared.runtime.config import Settings

    settings = Settings()
    intake_url = intake_url or f"http://127.0.0.1:{port_of('intake', settings)}"
    engagement_url = engagement_url or f"http://127.0.0.1:{port_of('engagement', settings)}"
    raise typer.Exit(main(intake_url, engagement_url, secret, data_dir))


if __name__ == "__main__":
    app()
