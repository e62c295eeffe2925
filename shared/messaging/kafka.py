"""Kafka adapters shared by every service: topics and their administration, the contract's
headers, publishing with acknowledged offsets, dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder

from shared.model.envelope import Envelope
from shared.resilience.retry import Backoff, Retry, retrying

__all__ = [
    "DEFAULT_PARTITIONS",
    "METADATA_MAX_AGE_MS",
    "Delivered",
    "Headers",
    "KafkaPublisher",
    "OutboundMessage",
    "Publisher",
    "RememberingPartitioner",
    "TopicState",
    "create_topics",
    "dlq_topic",
    "envelope_headers",
    "envelope_message",
    "stored_headers",
    "with_dead_letters",
]

log = structlog.get_logger(__name__)


def dlq_topic(topic: str) -> str:
    """Where a topic's messages that cannot be applied go (contract section 4)."""
    return f"{topic}.dlq"


def with_dead_letters(topics: Sequence[str]) -> list[str]:
    """The topics and their dead-letter topics, each once."""
    named = list(dict.fromkeys(topics))
    return [*named, *(dlq_topic(topic) for topic in named)]


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
    return stored_headers(
        event_id=envelope.event_id,
        event_type=envelope.event_type,
        schema_version=envelope.schema_version,
        stream_id=envelope.stream_id,
        occurred_at=envelope.occurred_at,
        producer=envelope.producer,
    )


def stored_headers(
    *,
    event_id: str,
    event_type: str,
    schema_version: int,
    stream_id: str,
    occurred_at: str,
    producer: str,
) -> Headers:
    """The contract's headers from a stored event's columns (no envelope parsing needed)."""
    return [
        ("event_type", event_type.encode()),
        ("schema_version", str(schema_version).encode()),
        ("ce_specversion", b"1.0"),
        ("ce_id", event_id.encode()),
        ("ce_source", f"/rapport/{producer}".encode()),
        ("ce_type", event_type.encode()),
        ("ce_time", occurred_at.encode()),
        ("ce_subject", stream_id.encode()),
        ("content-type", b"application/json"),
    ]


def envelope_message(topic: str, envelope: Envelope) -> OutboundMessage:
    return OutboundMessage(
        topic=topic,
        key=envelope.stream_id.encode(),
        value=envelope.to_json(),
        headers=envelope_headers(envelope),
    )


@dataclass(frozen=True)
class Delivered:
    """Where the broker stored an acknowledged record."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class TopicState:
    """What the broker holds of a topic: its partitions and the end offset of each."""

    partitions: int
    end_offsets: dict[int, int]


class Publisher(Protocol):
    """Sends records to the broker and administers the topics they go to."""

    async def publish(self, messages: Sequence[OutboundMessage]) -> list[Delivered]:
        """Send every message; returns where each was stored; raises if any is not
        acknowledged."""
        ...

    async def describe_topic(self, topic: str) -> TopicState | None:
        """The topic's partitions and end offsets, or None when the broker has no such topic."""
        ...

    async def ensure_topics(self, topics: Sequence[str], partitions: int) -> list[str]:
        """Create those of `topics` that are missing; returns the ones created."""
        ...

    async def recreate_topic(self, topic: str, partitions: int) -> None:
        """Delete the topic (if there) and create it again with `partitions` partitions."""
        ...

    async def reset(self) -> None:
        """Drop the connection after a failure; the next publish reconnects."""
        ...


class RememberingPartitioner:
    """Kafka's default partitioner (murmur2 of the key), remembering each key's partition: the
    relay sends a stream's events again and again, and murmur2 in Python costs more than the
    rest of a send. Messages without a key are spread as the default spreads them."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        self._known: dict[tuple[bytes, int, int], int] = {}

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return int(DefaultPartitioner()(key, all_partitions, available))
        slot = (key, len(all_partitions), all_partitions[-1])
        found = self._known.get(slot)
        if found is None:
            found = int(DefaultPartitioner()(key, all_partitions, available))
            if len(self._known) >= self._capacity:
                self._known.clear()
            self._known[slot] = found
        return found


@dataclass
class _Batch:
    """Records packed for one partition, and where the broker put the first of them."""

    topic: str
    partition: int
    builder: BatchBuilder
    base_offset: int = -1

    def append(self, message: OutboundMessage) -> int | None:
        """The record's offset within the batch, or None when the batch is full."""
        appended = self.builder.append(
            key=message.key, value=message.value, timestamp=None, headers=message.headers
        )
        return None if appended is None else int(appended.offset)


class KafkaPublisher:
    """aiokafka producer, acks from all in-sync replicas, no idempotence (tansu lacks it)."""

    def __init__(self, bootstrap: str, client_id: str, *, timeout: float = 15.0) -> None:
        self._bootstrap = bootstrap
        self._client_id = client_id
        self._timeout = timeout
        self._producer: AIOKafkaProducer | None = None
        self._partitioner = RememberingPartitioner()  # publish packs by partition itself
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
                max_batch_size=BATCH_BYTES,
                request_timeout_ms=10_000,
                metadata_max_age_ms=METADATA_MAX_AGE_MS,
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

    async def publish(self, messages: Sequence[OutboundMessage]) -> list[Delivered]:
        """Send and wait for every acknowledgement; TimeoutError when the broker stays away.

        The records are packed into batches per partition here, a key's records in their
        order: far cheaper than handing the producer one record at a time."""
        async with asyncio.timeout(self._timeout):
            producer = await self._started()
            packed: dict[tuple[str, int], list[_Batch]] = {}
            placed: list[tuple[_Batch, int]] = []  # each message's batch and place in it
            partitions: dict[str, list[int]] = {}
            for message in messages:
                topic = message.topic
                if topic not in partitions:
                    partitions[topic] = sorted(await producer.partitions_for(topic))
                place = (
                    topic,
                    self._partitioner(message.key, partitions[topic], partitions[topic]),
                )
                batches = packed.setdefault(place, [])
                offset = batches[-1].append(message) if batches else None
                if offset is None:
                    batches.append(_Batch(*place, producer.create_batch()))
                    offset = batches[-1].append(message)
                    if offset is None:
                        raise ValueError(f"a record of {len(message.value)} bytes fits no batch")
                placed.append((batches[-1], offset))
            # Round robin over the partitions, so that one request carries a batch of each.
            queued = [
                (
                    batch,
                    await producer.send_batch(
                        batch.builder, batch.topic, partition=batch.partition
                    ),
                )
                for round_ in itertools.zip_longest(*packed.values())
                for batch in round_
                if batch is not None
            ]
            for batch, acknowledged in queued:
                batch.base_offset = (await acknowledged).offset
            return [
                Delivered(batch.topic, batch.partition, batch.base_offset + offset)
                for batch, offset in placed
            ]

    async def describe_topic(self, topic: str) -> TopicState | None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            enable_auto_commit=False,
            request_timeout_ms=int(self._timeout * 1000),
        )
        async with asyncio.timeout(self._timeout):
            await consumer.start()
            try:
                if topic not in await consumer.topics():
                    return None
                partitions = consumer.partitions_for_topic(topic) or set()
                if not partitions:
                    return None
                offsets = await consumer.end_offsets(
                    [TopicPartition(topic, p) for p in sorted(partitions)]
                )
                return TopicState(
                    len(partitions), {tp.partition: offset for tp, offset in offsets.items()}
                )
            finally:
                await consumer.stop()

    async def ensure_topics(self, topics: Sequence[str], partitions: int) -> list[str]:
        return await create_topics(self._bootstrap, topics, partitions, retry_for=self._timeout)

    async def recreate_topic(self, topic: str, partitions: int) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap, request_timeout_ms=5000)
        try:
            await admin.start()
            if topic in await admin.list_topics():
                await admin.delete_topics([topic])
                log.warning("kafka_topic_deleted", topic=topic, reason="recreated")
        finally:
            with contextlib.suppress(Exception):
                await admin.close()
        await self.reset()  # the producer's metadata still names the old partitions
        await create_topics(self._bootstrap, [topic], partitions, retry_for=self._timeout)


# A batch of records for one partition: large batches mean few requests (Kafka's default
# limit on a request is 1 MiB).
BATCH_BYTES = 256 * 1024
# Clients notice a topic that was created or re-created within this time.
METADATA_MAX_AGE_MS = 5_000
DEFAULT_PARTITIONS = 3
# While the broker is unreachable, creating topics is tried again every half second.
TOPICS_BACKOFF = Backoff(first=0.5, most=0.5)


async def create_topics(
    bootstrap: str,
    topics: Sequence[str],
    partitions: int = DEFAULT_PARTITIONS,
    *,
    retry_for: float = 15.0,
) -> list[str]:
    """Create those of `topics` that do not exist yet, with `partitions` partitions each;
    returns the ones created.

    Topics that already exist are left as they are. While the broker is not reachable the
    attempt is repeated for `retry_for` seconds before the last error is raised.
    """

    async def attempt() -> list[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = list(dict.fromkeys(t for t in topics if t not in existing))
            if missing:
                response = await admin.create_topics(
                    [
                        NewTopic(name=t, num_partitions=partitions, replication_factor=1)
                        for t in missing
                    ]
                )
                for topic, error_code, *_ in response.topic_errors:
                    if error_code not in (0, TopicAlreadyExistsError.errno):
                        raise for_code(error_code)(f"creating topic {topic!r}")
                log.info("kafka_topics_created", bootstrap=bootstrap, topics=missing)
            return missing
        finally:
            with contextlib.suppress(Exception):
                await admin.close()

    def unreachable(error: BaseException, _attempt: int, _pause: float) -> None:
        log.debug("kafka_create_topics_retry", bootstrap=bootstrap, error=repr(error))

    return await retrying(
        attempt,
        Retry(attempts=None, seconds=retry_for, backoff=TOPICS_BACKOFF),
        on_retry=unreachable,
    )
