"""Session fixtures: one real PostgreSQL and one real Kafka-protocol broker for the run."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from hypothesis import settings as hypothesis_settings

from rapport.infra import Endpoints, running_infrastructure
from shared.runtime.config import Settings
from shared.security.crypto import generate_master_key
from shared.storage.db import create_pool, migrate
from tests.support import JWT_SECRET, MovableClock, Stack

# CI replays the same examples every run (a red build is reproducible); locally they vary.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


@pytest.fixture(scope="session")
def infra() -> Iterator[Endpoints]:
    with running_infrastructure(allow_containers=True) as endpoints:
        yield endpoints


@pytest.fixture(scope="session")
def settings(infra: Endpoints) -> Settings:
    return Settings(
        database_url=infra.database_url,
        kafka_bootstrap=infra.kafka_bootstrap,
        jwt_secret=JWT_SECRET,
        master_key=generate_master_key(),
        outbox_poll_seconds=0.2,
        webhook_base_backoff_seconds=0.05,
        webhook_timeout_seconds=1.0,
        webhook_max_attempts=4,
        webhook_allow_private_targets=True,  # the test receivers listen on localhost
        idempotency_prune_seconds=1.0,
    )


@pytest.fixture(scope="session")
async def stack(settings: Settings) -> AsyncIterator[Stack]:
    from services.engagement.bootstrap import create_app as engagement_app
    from services.intake.bootstrap import create_app as intake_app
    from services.notifications.bootstrap import create_app as notifications_app

    running = Stack(settings=settings, clock=MovableClock())
    await running.start("intake", intake_app)
    await running.start("engagement", engagement_app)
    await running.start("notifications", notifications_app)
    yield running
    await running.stop_all()


@pytest.fixture
async def scratch_pool(infra: Endpoints) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a fresh schema with the kernel's tables, for tests of the kernel alone."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    pool = await create_pool(infra.database_url, schema, max_size=60)
    await migrate(pool, schema, [])
    yield pool
    await pool.close()
