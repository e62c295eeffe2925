"""A stack for fault tests: its own embedded PostgreSQL and broker (so stopping them harms no
other test), and every service as a real process that can be killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from rapport.infra.postgres import PostgresControl
from rapport.infra.tansu import BrokerControl
from shared.security.crypto import generate_master_key
from tests.support import JWT_SECRET, free_port

SCHEMAS = ("intake", "engagement", "notifications")


@dataclass
class Instance:
    """One service process: which service, on which port."""

    name: str
    service: str
    port: int
    process: subprocess.Popen[bytes] | None = None
    settings: dict[str, str] = field(default_factory=dict)  # RAPPORT_* of its own

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class FaultStack:
    """PostgreSQL, a broker and service instances, each of which a test can kill and restart."""

    root: Path
    database_url: str
    postgres: PostgresControl
    broker: BrokerControl
    instances: dict[str, Instance] = field(default_factory=dict)
    master_key: str = field(default_factory=generate_master_key)

    def add(self, name: str, service: str, **settings: str) -> Instance:
        instance = Instance(name, service, free_port(), settings=settings)
        self.instances[name] = instance
        return instance

    def environment(self, instance: Instance) -> dict[str, str]:
        blocked = ("RAPPORT_DATABASE_URL", "RAPPORT_KAFKA_BOOTSTRAP")
        return {
            **{key: value for key, value in os.environ.items() if key not in blocked},
            "RAPPORT_DATABASE_URL": self.database_url,
            "RAPPORT_KAFKA_BOOTSTRAP": self.broker.bootstrap,
            "RAPPORT_JWT_SECRET": JWT_SECRET,
            "RAPPORT_MASTER_KEY": self.master_key,
            f"RAPPORT_{instance.service.upper()}_PORT": str(instance.port),
            "RAPPORT_LOG_LEVEL": "warning",
            "RAPPORT_OUTBOX_POLL_SECONDS": "0.2",
            "RAPPORT_WEBHOOK_ALLOW_PRIVATE_TARGETS": "1",
            **instance.settings,
        }

    def start(self, name: str) -> None:
        instance = self.instances[name]
        with (self.root / f"{name}.log").open("ab") as log:
            instance.process = subprocess.Popen(
                [sys.executable, "-m", f"services.{instance.service}"],
                env=self.environment(instance),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown code runs."""
        process = self.instances[name].process
        assert process is not None
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        self.instances[name].process = None

    def stop_all(self) -> None:
        for instance in self.instances.values():
            if instance.process is not None and instance.process.poll() is None:
                instance.process.send_signal(signal.SIGTERM)
        for instance in self.instances.values():
            if instance.process is None:
                continue
            try:
                instance.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                instance.process.kill()
                instance.process.wait()
            instance.process = None

    async def wait_healthy(self, name: str, timeout: float = 90.0) -> None:
        instance = self.instances[name]
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2.0) as http:
            while True:
                assert instance.process is not None and instance.process.poll() is None, (
                    self.log_tail(name)
                )
                try:
                    if (await http.get(f"{instance.url}/health")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, f"{name} not healthy\n{self.log_tail(name)}"
                await asyncio.sleep(0.2)

    def log_tail(self, name: str, lines: int = 60) -> str:
        try:
            text = (self.root / f"{name}.log").read_text(errors="replace")
        except OSError:
            return "<no log>"
        return "\n".join(text.splitlines()[-lines:])

    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.database_url)
