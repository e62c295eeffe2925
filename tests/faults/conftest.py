"""The fault suite's stack: its own PostgreSQL and broker, services as killable processes."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rapport.infra.postgres import PostgresControl, embedded_postgres
from rapport.infra.tansu import BrokerControl
from tests.faults.stack import FaultStack

INSTANCES = (
    ("intake", "intake"),
    ("engagement-1", "engagement"),
    ("engagement-2", "engagement"),
    ("notifications", "notifications"),
    ("notifications-2", "notifications"),
)


@pytest.fixture(scope="package")
async def faults() -> AsyncIterator[FaultStack]:
    # Not under pytest's own temporary root: another pytest session on the machine makes that
    # folder private again, and the embedded PostgreSQL (its own OS user) loses its data.
    with tempfile.TemporaryDirectory(prefix="rapport-faults-", ignore_cleanup_errors=True) as top:
        async for stack in _stack(Path(top)):
            yield stack


async def _stack(root: Path) -> AsyncIterator[FaultStack]:
    broker = BrokerControl(root)
    with embedded_postgres(root / "pg") as database_url:
        broker.start()
        stack = FaultStack(root, database_url, PostgresControl(root / "pg"), broker)
        for name, service in INSTANCES:
            stack.add(name, service)
        try:
            for name, _ in INSTANCES:
                stack.start(name)
                # one at a time: the first run migrates each schema
                await stack.wait_healthy(name)
            yield stack
        finally:
            stack.stop_all()
            broker.stop()
            stack.postgres.start()  # a test that stopped it: leave it for embedded-postgres
