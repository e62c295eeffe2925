"""Kafka adapters shared by every service: topics, headers, publishing, dead letters."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.envelope import Envelope

log = structlog.get_logger(__name__)

INTAKE_TOPIC = "intake.events"
ENGAGEMENT_TOPIC = "engagement.events"
NOTIFICATIONS_TOPIC = "notifications.events"
ALL_TOPICS = (INTAKE_TOPIC, ENGAGEMENT_TOPIC, NOTIFICATIONS_TOPIC)


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


def all_topics_with_dlq() -> list[str]:
    return [*ALL_TOPICS, *(dlq_topic(topic) for topic in ALL_TOPICS)]


Headers = list[tuple[str, bytes]]


@dataclass(frozen=True)
class OutboundMessage:
    """One Kafka record to send."""

    topic: str
    key: bytes
    value: bytes
    headers: Headers = field(default_factory=list)


def envelope_headers(envelope: Envelope) -> Headers:
    """The contract's headers, CloudEvents 1.0 binary-mode attributes included."""
    return [
        ("event_type", envelope.event_type.encode()),
        ("schema_version", str(envelope.schema_version).encode()),
        ("ce_specversion", b"1.0"),
        ("ce_id", envelope.event_id.encode()),
        ("ce_source", f"/rapport/{envelope.producer}".encode()),
        ("ce_type", envelope.event_type.encode()),
        ("ce_time", envelope.occurred_at.encode()),
        ("ce_subject", envelope.stream_id.encode()),
        ("content-type", b"application/json"),
    ]


def envelope_message(topic: str, envelope: Envelope) -> OutboundMessage:
    return OutboundMessage(
        topic=topic,
        key=envelope.stream_id.encode(),
        value=envelope.to_json(),
        headers=envelope_headers(envelope),
    )


class Publisher(Protocol):
    """Sends records to the broker; returns only when all of them are acknowledged."""

    async def publish(self, messages: Sequence[OutboundMessage]) -> None:
        """Send every message; raise if any is not acknowledged."""
        ...

    async def topic_is_empty(self, topic: str) -> bool:
        """True when the broker holds no record of the topic at all (a fresh or lost log)."""
        ...

    async def reset(self) -> None:
        """Drop the connection after a failure; the next publish reconnects."""
        ...


class KafkaPublisher:
    """aiokafka producer, acks from all in-sync replicas, no idempotence (tansu lacks it)."""

    def __init__(self, bootstrap: str, client_id: str, *, timeout: float = 15.0) -> None:
        self._bootstrap = bootstrap
        self._client_id = client_id
        self._timeout = timeout
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()  # relay and dead-letter publishers share one producer

    async def start(self) -> None:
        await self._started()

    async def _started(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is not None:
                return self._producer
            producer = AIOKafkaProducer(
                bootstrap_servers=self._bootstrap,
                client_id=self._client_id,
                acks="all",
                linger_ms=2,
                request_timeout_ms=10_000,
                enable_idempotence=False,
            )
            try:
                await producer.start()
            except Exception:
                await producer.stop()
                raise
            self._producer = producer
            return producer

    async def stop(self) -> None:
        async with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def reset(self) -> None:
        """Drop the connection after a failure; the next publish reconnects."""
        try:
            await asyncio.wait_for(self.stop(), self._timeout)
        except Exception as error:  # a broken producer may fail to stop cleanly
            log.warning("producer_stop_failed", error=str(error))

    async def publish(self, messages: Sequence[OutboundMessage]) -> None:
        """Send and wait for every acknowledgement; TimeoutError when the broker stays away."""
        async with asyncio.timeout(self._timeout):
            producer = await self._started()
            futures = [
                await producer.send(
                    message.topic, value=message.value, key=message.key, headers=message.headers
                )
                for message in messages
            ]
            for future in futures:
                await future

    async def topic_is_empty(self, topic: str) -> bool:
        consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            if topic not in await consumer.topics():
                return True
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                return True
            offsets = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
            return all(offset == 0 for offset in offsets.values())
        finally:
            await consumer.stop()
