"""`rapport dev`: the whole stack on one machine, no Docker.

First what it needs is checked: the packages of the embedded servers it would start (missing:
exit 2, naming the `embedded` extra), then the services' ports (a taken one: exit 1 at once,
naming it and what holds it). Then embedded PostgreSQL and the embedded Kafka-protocol broker
(or the servers named by `RAPPORT_DATABASE_URL` / `RAPPORT_KAFKA_BOOTSTRAP`), then the services
as supervised child processes of the launcher (`rapport.infra.launcher`): a child that exits
is logged and started again after a growing pause; the stack stops on Ctrl-C or SIGTERM, or
when a child keeps failing at start. Nothing outlives `rapport dev`: children get a death
signal, and a watchdog process stops what is left (PostgreSQL included) if `rapport dev`
itself is killed, even by SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from rapport.infra import (
    EmbeddedMissing,
    Endpoints,
    embedded_servers,
    install_signal_handlers,
    require,
    running_infrastructure,
)
from rapport.infra.launcher import (
    Event,
    GaveUp,
    Launcher,
    Reaped,
    Restarting,
    RestartPolicy,
    Started,
    stack_environment,
)
from rapport.listeners import busy_ports
from rapport.registry import SERVICES, port_of, port_variable
from rapport.secrets import DevSecrets, dev_secrets
from shared.runtime.config import Settings
from shared.security.tokens import issue_token

console = Console()
error_console = Console(stderr=True)


def service_environment(
    endpoints: Endpoints, secrets: DevSecrets, settings: Settings
) -> dict[str, str]:
    """This environment with the stack's database, broker, secrets and every service's port."""
    ports = {port_variable(name): str(port_of(name, settings)) for name in SERVICES}
    return stack_environment(
        {**os.environ, **ports},
        database_url=endpoints.database_url,
        kafka_bootstrap=endpoints.kafka_bootstrap,
        jwt_secret=secrets.jwt_secret,
        master_key=secrets.master_key,
    )


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


def supervised(
    environment: dict[str, str], log_dir: Path, ports: dict[str, int], watchdog: Watchdog
) -> Launcher:
    """The services on their ports, restarted when they exit, told to the console and the
    watchdog."""

    def tell(event: Event) -> None:
        match event:
            case Started(pid=pid):
                watchdog.say(f"group {pid}")
            case Reaped(name=name, pid=pid, code=code, restart_in=delay):
                watchdog.say(f"forget {pid}")
                if delay is not None:
                    console.print(
                        f"[red]{name} exited with code {code}[/]; restarting in {delay:.1f} s"
                    )
            case Restarting(name=name, restart=restart):
                console.print(f"[yellow]restarting {name} (restart {restart})[/]")

    launcher = Launcher(environment, log_dir, policy=RestartPolicy(), on_event=tell)
    for name, port in ports.items():
        launcher.add_service(name, name, port=port)
    return launcher


def run_dev(data_dir: Path) -> None:
    """Check what the stack needs, start everything, print how to reach it, and run until
    interrupted. Exit 2 when an embedded server's package is missing, 1 when a port is taken,
    at once and having started nothing."""
    try:
        require(*embedded_servers())
    except EmbeddedMissing as error:
        error_console.print(f"[red]error:[/] {escape(str(error))}", soft_wrap=True, highlight=False)
        raise SystemExit(2) from None
    install_signal_handlers()
    settings = Settings()
    ports = {name: port_of(name, settings) for name in SERVICES}
    busy = busy_ports(settings.host, ports)
    if busy:
        for port in busy:
            error_console.print(f"[red]error:[/] {port}", soft_wrap=True, highlight=False)
        variables = ", ".join(port_variable(name) for name in SERVICES)
        error_console.print(
            "Is another `rapport dev` running? Stop it, or give this one other ports"
            f" ({variables}).",
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
            with supervised(environment, data_dir / "logs", ports, watchdog) as launcher:
                try:
                    launcher.start_all()
                    launcher.wait_healthy()
                    urls = {name: child.url for name, child in launcher.instances.items()}
                    announce(endpoints, secrets, urls, data_dir, time.monotonic() - started)
                    while True:
                        launcher.tend()
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
