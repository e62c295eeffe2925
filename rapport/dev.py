"""`rapport dev`: the whole stack on one machine, no Docker.

First the services' ports are checked (a taken one: exit 1 at once, naming it and what holds
it). Then embedded PostgreSQL and the embedded Kafka-protocol broker (or the servers named by
`RAPPORT_DATABASE_URL` / `RAPPORT_KAFKA_BOOTSTRAP`), then the three services as supervised
child processes: a child that exits is logged and started again after a growing pause; the
stack stops on Ctrl-C or SIGTERM, or when a child keeps failing at start. Nothing outlives
`rapport dev`: children get a death signal, and a watchdog process stops what is left
(PostgreSQL included) if `rapport dev` itself is killed, even by SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import httpx
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from rapport.infra import (
    Endpoints,
    die_with_parent,
    install_signal_handlers,
    running_infrastructure,
)
from rapport.listeners import busy_ports, listens_on
from rapport.registry import SERVICES, port_of
from rapport.secrets import DevSecrets, dev_secrets
from shared.runtime.config import Settings
from shared.security.tokens import issue_token

console = Console()
error_console = Console(stderr=True)


@dataclass(frozen=True)
class RestartPolicy:
    """When a child that exited starts again, and when the stack gives up on it.

    The pause before a restart doubles with each exit that comes less than `stable_after`
    seconds after its start, from `first_delay` up to `max_delay`; a child that ran that long
    starts again after `first_delay`. A child that exits `max_failed_starts` times in a row
    within `start_window` of its start, without its own process ever answering `/health`,
    failed at start: the stack gives up."""

    first_delay: float = 0.5
    max_delay: float = 30.0
    stable_after: float = 60.0
    start_window: float = 30.0
    max_failed_starts: int = 5


@dataclass
class Restarts:
    """One child's exits so far, under a policy."""

    policy: RestartPolicy = field(default_factory=RestartPolicy)
    quick_exits: int = 0  # in a row, each before `stable_after`
    failed_starts: int = 0  # in a row, each within `start_window` and never healthy

    def healthy(self) -> None:
        """The child's own process answered `/health`: it did not fail at start."""
        self.failed_starts = 0

    def exited(self, ran_for: float, was_healthy: bool) -> float | None:
        """The pause before the next start of a child that exited after `ran_for` seconds;
        None: it failed at start too often, give up."""
        policy = self.policy
        self.quick_exits = self.quick_exits + 1 if ran_for < policy.stable_after else 1
        failed_at_start = not was_healthy and ran_for < policy.start_window
        self.failed_starts = self.failed_starts + 1 if failed_at_start else 0
        if self.failed_starts >= policy.max_failed_starts:
            return None
        return min(policy.max_delay, policy.first_delay * 2.0 ** (self.quick_exits - 1))


def service_environment(
    endpoints: Endpoints, secrets: DevSecrets, settings: Settings
) -> dict[str, str]:
    return {
        **os.environ,
        "RAPPORT_DATABASE_URL": endpoints.database_url,
        "RAPPORT_KAFKA_BOOTSTRAP": endpoints.kafka_bootstrap,
        "RAPPORT_JWT_SECRET": secrets.jwt_secret,
        "RAPPORT_MASTER_KEY": secrets.master_key,
        **{f"RAPPORT_{name.upper()}_PORT": str(port_of(name, settings)) for name in SERVICES},
        "RAPPORT_WEBHOOK_ALLOW_PRIVATE_TARGETS": os.environ.get(
            "RAPPORT_WEBHOOK_ALLOW_PRIVATE_TARGETS", "1"
        ),
        "RAPPORT_LOG_LEVEL": os.environ.get("RAPPORT_LOG_LEVEL", "warning"),
    }


class Watchdog:
    """The cleanup process for a `rapport dev` that dies without cleaning up (see
    `rapport.watchdog`). Only this process holds the pipe's write end."""

    def __init__(self) -> None:
        read_end, write_end = os.pipe()  # not inherited by other children (PEP 446)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "rapport.watchdog"],
            stdin=read_end,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        os.close(read_end)
        self._pipe: IO[str] = os.fdopen(write_end, "w", buffering=1)

    def say(self, line: str) -> None:
        with contextlib.suppress(OSError):  # the watchdog is gone: nothing to tell
            self._pipe.write(line + "\n")

    def close(self) -> None:
        """A clean stop: everything was stopped here, the watchdog has nothing to do."""
        self.say("bye")
        self._pipe.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()


@dataclass
class Child:
    """One supervised service process and its restart bookkeeping."""

    name: str
    port: int
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    healthy_once: bool = False
    restarts: Restarts = field(default_factory=Restarts)
    restart_at: float | None = None
    exit_codes: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class GaveUp(RuntimeError):
    """A child kept failing at start."""


class Supervisor:
    """Starts the services, restarts any that exits (backoff), stops them all at the end."""

    def __init__(
        self, environment: dict[str, str], log_dir: Path, ports: dict[str, int], watchdog: Watchdog
    ) -> None:
        self._environment = environment
        self._log_dir = log_dir
        self._watchdog = watchdog
        self.children = {name: Child(name, port) for name, port in ports.items()}
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, child: Child) -> None:
        with (self._log_dir / f"{child.name}.log").open("ab") as log_file:
            child.process = subprocess.Popen(
                [sys.executable, "-m", f"services.{child.name}"],
                env=self._environment,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: no stray Ctrl-C; killpg on exit
                preexec_fn=die_with_parent(),
            )
        child.started_at = time.monotonic()
        child.healthy_once = False
        child.restart_at = None
        self._watchdog.say(f"group {child.process.pid}")

    def start_all(self) -> None:
        for child in self.children.values():
            self.start(child)

    def _healthy(self, child: Child) -> bool:
        """Whether the child answers `/health`: its own process, not whatever else listens
        on its port (another stack's service, say)."""
        if child.process is None or not listens_on(child.process.pid, child.port):
            return False
        try:
            return httpx.get(f"{child.url}/health", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_healthy(self, timeout: float = 90.0) -> None:
        """Until every child answers /health (restarting those that exit meanwhile)."""
        deadline = time.monotonic() + timeout
        while pending := [c.name for c in self.children.values() if not c.healthy_once]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"not healthy after {timeout:.0f}s: {', '.join(pending)}")
            time.sleep(0.2)
            self.tend()

    def tend(self) -> None:
        """Notice children that exited, (re)start them when their backoff is over, and note
        the first health of each start."""
        now = time.monotonic()
        for child in self.children.values():
            process = child.process
            if process is not None and process.poll() is not None:
                self._exited(child, process.returncode, now)
            if child.process is None and child.restart_at is not None and now >= child.restart_at:
                restart = len(child.exit_codes)
                console.print(f"[yellow]restarting {child.name} (restart {restart})[/]")
                self.start(child)
            elif child.process is not None and not child.healthy_once and self._healthy(child):
                child.healthy_once = True
                child.restarts.healthy()

    def _exited(self, child: Child, code: int, now: float) -> None:
        assert child.process is not None
        self._watchdog.say(f"forget {child.process.pid}")
        child.process = None
        child.exit_codes.append(code)
        delay = child.restarts.exited(now - child.started_at, child.healthy_once)
        if delay is None:
            failed = child.restarts.failed_starts
            raise GaveUp(
                f"{child.name} failed at start {failed} times in a row"
                f" (exit codes {child.exit_codes[-failed:]}); see its log in {self._log_dir}"
            )
        child.restart_at = now + delay
        console.print(f"[red]{child.name} exited with code {code}[/]; restarting in {delay:.1f} s")

    def stop_all(self) -> None:
        running = [c.process for c in self.children.values() if c.process is not None]
        for process in running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def supervised(
    environment: dict[str, str], log_dir: Path, ports: dict[str, int], watchdog: Watchdog
) -> Iterator[Supervisor]:
    supervisor = Supervisor(environment, log_dir, ports, watchdog)
    try:
        supervisor.start_all()
        yield supervisor
    finally:
        supervisor.stop_all()


def run_dev(data_dir: Path) -> None:
    """Check the services' ports, start everything, print how to reach it, and run until
    interrupted. Exit 1 at once, having started nothing, when a port is taken."""
    install_signal_handlers()
    settings = Settings()
    ports = {name: port_of(name, settings) for name in SERVICES}
    busy = busy_ports(settings.host, ports)
    if busy:
        for port in busy:
            error_console.print(f"[red]error:[/] {port}", soft_wrap=True, highlight=False)
        error_console.print(
            "Is another `rapport dev` running? Stop it, or give this one other ports"
            " (RAPPORT_INTAKE_PORT, RAPPORT_ENGAGEMENT_PORT, RAPPORT_NOTIFICATIONS_PORT).",
            soft_wrap=True,
        )
        raise SystemExit(1)
    secrets = dev_secrets(data_dir)
    started = time.monotonic()
    watchdog = Watchdog()
    gave_up: GaveUp | None = None
    try:
        with running_infrastructure(
            data_dir, on_embedded_postgres=lambda pgdata: watchdog.say(f"postgres {pgdata}")
        ) as endpoints:
            if endpoints.broker_pid is not None:
                watchdog.say(f"group {endpoints.broker_pid}")
            environment = service_environment(endpoints, secrets, settings)
            with supervised(environment, data_dir / "logs", ports, watchdog) as supervisor:
                try:
                    supervisor.wait_healthy()
                    urls = {name: child.url for name, child in supervisor.children.items()}
                    announce(endpoints, secrets, urls, data_dir, time.monotonic() - started)
                    while True:
                        supervisor.tend()
                        time.sleep(0.5)
                except KeyboardInterrupt:
                    console.print("stopping…")
                except GaveUp as error:
                    gave_up = error
                    console.print(f"[red]giving up: {error}[/red]")
    finally:
        watchdog.close()
    if gave_up is not None:
        raise SystemExit(1)
    console.print("stopped cleanly")


def announce(
    endpoints: Endpoints,
    secrets: DevSecrets,
    urls: dict[str, str],
    data_dir: Path,
    elapsed: float,
) -> None:
    admin = issue_token(
        secrets.jwt_secret, "admin", "admin", now=datetime.now(UTC), ttl=timedelta(days=1)
    )
    table = Table(title=f"Rapport is running (healthy in {elapsed:.1f} s)")
    table.add_column("service")
    table.add_column("url")
    for name, url in urls.items():
        table.add_row(name, url)
    lines = [
        f"PostgreSQL: {endpoints.database_url}",
        f"Kafka:      {endpoints.kafka_bootstrap}",
        f"RAPPORT_JWT_SECRET={secrets.jwt_secret}",
        f"Admin token (24 h): {admin}",
        "More tokens: rapport token --role coach --sub <coach_id>",
        f"Logs: {data_dir / 'logs'}   Stop with Ctrl-C.",
    ]
    # one write, so a reader of the output never sees half of it
    console.print(Group(table, *(Text(line, overflow="ignore") for line in lines)), soft_wrap=True)
