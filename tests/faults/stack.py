"""A stack for fault tests: its own embedded PostgreSQL and broker (so stopping them harms no
other test), and every service as a real process of the launcher that can be killed with
SIGKILL."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from rapport.infra.launcher import Instance, Launcher, stack_environment
from rapport.infra.postgres import PostgresControl
from rapport.infra.tansu import BrokerControl
from shared.security.crypto import generate_master_key
from tests.support import JWT_SECRET


@dataclass
class FaultStack:
    """PostgreSQL, a broker and service instances, each of which a test can kill and restart."""

    root: Path
    database_url: str
    postgres: PostgresControl
    broker: BrokerControl
    master_key: str = field(default_factory=generate_master_key)
    launcher: Launcher = field(init=False)

    def __post_init__(self) -> None:
        environment = stack_environment(
            {**os.environ, "RAPPORT_OUTBOX_POLL_SECONDS": "0.2"},
            database_url=self.database_url,
            kafka_bootstrap=self.broker.bootstrap,
            jwt_secret=JWT_SECRET,
            master_key=self.master_key,
        )
        self.launcher = Launcher(environment, self.root)

    @property
    def instances(self) -> dict[str, Instance]:
        return self.launcher.instances

    def add(self, name: str, service: str, **settings: str) -> Instance:
        return self.launcher.add_service(name, service, settings=settings)

    def start(self, name: str) -> None:
        self.launcher.start(name)

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown code runs."""
        self.launcher.kill(name)

    def stop_all(self) -> None:
        self.launcher.stop_all()

    async def wait_healthy(self, name: str) -> None:
        await self.launcher.wait_healthy_async([name])

    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.database_url)
