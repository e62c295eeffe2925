"""`rapport dev`: the whole stack on one machine, no Docker.

Embedded PostgreSQL and the embedded Kafka-protocol broker (or the servers named by
`RAPPORT_DATABASE_URL` / `RAPPORT_KAFKA_BOOTSTRAP`), then the three services as child
processes. Everything stops on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from rapport.secrets import DevSecrets, dev_secrets
from shared.auth import issue_token
from shared.config import Settings
from shared.infra import Endpoints, install_signal_handlers, running_infrastructure

SERVICES = ("intake", "engagement", "notifications")
console = Console()


def service_environment(
    endpoints: Endpoints, secrets: DevSecrets, settings: Settings
) -> dict[str, str]:
    return {
        **os.environ,
        "RAPPORT_DATABASE_URL": endpoints.database_url,
        "RAPPORT_KAFKA_BOOTSTRAP": endpoints.kafka_bootstrap,
        "RAPPORT_JWT_SECRET": secrets.jwt_secret,
        "RAPPORT_MASTER_KEY": secrets.master_key,
        "RAPPORT_INTAKE_PORT": str(settings.intake_port),
        "RAPPORT_ENGAGEMENT_PORT": str(settings.engagement_port),
        "RAPPORT_NOTIFICATIONS_PORT": str(settings.notifications_port),
        "RAPPORT_WEBHOOK_ALLOW_PRIVATE_TARGETS": os.environ.get(
            "RAPPORT_WEBHOOK_ALLOW_PRIVATE_TARGETS", "1"
        ),
        "RAPPORT_LOG_LEVEL": os.environ.get("RAPPORT_LOG_LEVEL", "warning"),
    }


@contextmanager
def child_services(
    environment: dict[str, str], log_dir: Path
) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """Start each service as `python -m services.<name>`; stop them all on exit."""
    log_dir.mkdir(parents=True, exist_ok=True)
    children: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name in SERVICES:
            log_file = (log_dir / f"{name}.log").open("ab")
            children[name] = subprocess.Popen(
                [sys.executable, "-m", f"services.{name}"],
                env=environment,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        yield children
    finally:
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def wait_healthy(
    urls: dict[str, str], children: dict[str, subprocess.Popen[bytes]], timeout: float = 60.0
) -> None:
    pending = dict(urls)
    deadline = time.monotonic() + timeout
    while pending:
        for name, url in list(pending.items()):
            if children[name].poll() is not None:
                raise RuntimeError(f"{name} exited with {children[name].returncode}; see its log")
            try:
                if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                    del pending[name]
            except httpx.HTTPError:
                pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"not healthy after {timeout:.0f}s: {', '.join(pending)}")
        time.sleep(0.2)


def run_dev(data_dir: Path) -> None:
    """Start everything, print how to reach it, and run until interrupted."""
    install_signal_handlers()
    settings = Settings()
    secrets = dev_secrets(data_dir)
    started = time.monotonic()
    with running_infrastructure(data_dir) as endpoints:
        environment = service_environment(endpoints, secrets, settings)
        urls = {name: f"http://127.0.0.1:{settings.port_of(name)}" for name in SERVICES}
        with child_services(environment, data_dir / "logs") as children:
            wait_healthy(urls, children)
            elapsed = time.monotonic() - started
            admin = issue_token(
                secrets.jwt_secret, "admin", "admin", now=datetime.now(UTC), ttl=timedelta(days=1)
            )
            table = Table(title=f"Rapport is running (healthy in {elapsed:.1f} s)")
            table.add_column("service")
            table.add_column("url")
            for name, url in urls.items():
                table.add_row(name, url)
            console.print(table)
            console.print(f"PostgreSQL: {endpoints.database_url}")
            console.print(f"Kafka:      {endpoints.kafka_bootstrap}")
            console.print(f"RAPPORT_JWT_SECRET={secrets.jwt_secret}", soft_wrap=True)
            console.print(f"Admin token (24 h): {admin}", soft_wrap=True)
            console.print(
                "More tokens: rapport token --role coach --sub <coach_id>", soft_wrap=True
            )
            console.print(f"Logs: {data_dir / 'logs'}   Stop with Ctrl-C.")
            try:
                while all(child.poll() is None for child in children.values()):
                    time.sleep(0.5)
                dead = [name for name, child in children.items() if child.poll() is not None]
                console.print(f"[red]stopped: {', '.join(dead)} exited[/red]")
            except KeyboardInterrupt:
                console.print("stopping…")
    console.print("stopped cleanly")
