"""Fixtures of the integration tests (real PostgreSQL and broker)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.messaging.kafka import KafkaPublisher
from shared.runtime.config import Settings


@pytest.fixture
async def publisher(settings: Settings) -> AsyncIterator[KafkaPublisher]:
    """A publisher to the test broker, stopped afterwards."""
    assert settings.kafka_bootstrap
    publisher = KafkaPublisher(settings.kafka_bootstrap, "tests")
    yield publisher
    await publisher.stop()
