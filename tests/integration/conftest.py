"""Fixtures of the integration tests (real PostgreSQL and broker)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shared.runtime.config import Settings
from shared.messaging.kafka import KafkaPublisher


@pytest.fixture
async def publisher(settings: Settings) -> AsyncIterator[KafkaPublisher]:
    """A publisher to the test broker, stopped afterwards."""
    assert settings.kafka_bootstrap
    publisher = KafkaPublisher(settings.kafka_bootstrap, "tests")
    yield publisher
    await publisher.stop()
