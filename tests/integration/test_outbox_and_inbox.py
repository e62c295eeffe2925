"""Outbox relay and inbox against the real broker and database."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient

from shared.messaging.inbox import Inbox
from shared.messaging.kafka import KafkaPublisher, create_topics, dlq_topic
from shared.messaging.outbox import BrokerLostHistory, OutboxRelay
from shared.model.clock import SystemClock
from shared.model.envelope import Actor, Envelope
from shared.model.events import DomainEvent
from shared.model.log import EventMetadata
from shared.runtime.config import Settings
from shared.storage.eventstore import EventStore
from shared.storage.units import connection_of
from shared.usecases.ports import UnitOfWork
from tests.support import eventually, units_of

META = EventMetadata(actor=Actor(role="admin", id="tester"), correlation_id="c-outbox")


class Pinged(DomainEvent):
    event_type = "Pinged"

    n: int


async def read_topic(
    bootstrap: str, topic: str, expected: int
) -> list[ConsumerRecord[bytes, bytes]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while len(records) < expected and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for batch in batches.values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


async def test_a_late_commit_is_published_and_consumed_in_per_stream_order(
    scratch_pool: asyncpg.Pool, settings: Settings, publisher: KafkaPublisher
) -> None:
    assert settings.kafka_bootstrap
    topic = f"test.late.{uuid.uuid4().hex[:8]}"
    await create_topics(settings.kafka_bootstrap, [topic, dlq_topic(topic)])
    store = EventStore(scratch_pool, "test", SystemClock())
    relay = OutboxRelay(store, publisher, topic)
    slow_stream, fast_stream = f"slow-{uuid.uuid4()}", f"fast-{uuid.uuid4()}"

    slow_conn = await scratch_pool.acquire()
    slow_tx = slow_conn.transaction()
    await slow_tx.start()
    await store.append(slow_conn, slow_stream, 0, [Pinged(n=1)], META)
    async with store.transaction() as conn:
        await store.append(conn, fast_stream, 0, [Pinged(n=1)], META)
    assert await relay.publish_pending() == 0  # the fast commit waits behind the open one
    await slow_tx.commit()
    await scratch_pool.release(slow_conn)
    async with store.transaction() as conn:
        await store.append(conn, slow_stream, 1, [Pinged(n=2), Pinged(n=3)], META)
    assert await relay.publish_pending() == 4

    records = await read_topic(settings.kafka_bootstrap, topic, 4)
    assert len(records) == 4
    consumed: dict[str, list[int]] = {}
    inbox = Inbox(units_of(store), f"consumer-{uuid.uuid4().hex[:6]}", publisher)

    async def remember(unit: UnitOfWork, envelope: Envelope) -> None:
        consumed.setdefault(envelope.stream_id, []).append(envelope.stream_version)

    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        assert record.key is not None and record.value is not None
        outcome = await inbox.receive(topic, record.key, record.value, record.headers, remember)
        assert outcome == "applied"
    assert consumed == {slow_stream: [1, 2, 3], fast_stream: [1]}


async def test_the_same_message_twice_is_applied_once(
    scratch_pool: asyncpg.Pool, publisher: KafkaPublisher
) -> None:
    store = EventStore(scratch_pool, "test", SystemClock())
    async with store.transaction() as conn:
        [envelope] = await store.append(conn, f"s-{uuid.uuid4()}", 0, [Pinged(n=1)], META)
    applied: list[str] = []

    async def apply(unit: UnitOfWork, received: Envelope) -> None:
        conn = connection_of(unit)
        await conn.execute("CREATE TABLE IF NOT EXISTS effects (event_id uuid)")
        await conn.execute("INSERT INTO effects VALUES ($1)", received.event_id)
        applied.append(received.event_id)

    inbox = Inbox(units_of(store), "twice", publisher)
    outcomes = [
        await inbox.receive("t", b"k", envelope.to_json(), [], apply),
        await inbox.receive("t", b"k", envelope.to_json(), [], apply),
    ]
    concurrent = await asyncio.gather(
        *(inbox.receive("t", b"k", envelope.to_json(), [], apply) for _ in range(5))
    )
    assert outcomes == ["applied", "duplicate"]
    assert set(concurrent) == {"duplicate"}
    assert await scratch_pool.fetchval("SELECT count(*) FROM effects") == 1


async def test_a_handler_error_dead_letters_the_message_and_rolls_its_effects_back(
    scratch_pool: asyncpg.Pool, settings: Settings, publisher: KafkaPublisher
) -> None:
    assert settings.kafka_bootstrap
    topic = f"test.poison.{uuid.uuid4().hex[:8]}"
    await create_topics(settings.kafka_bootstrap, [topic, dlq_topic(topic)])
    store = EventStore(scratch_pool, "test", SystemClock())
    async with store.transaction() as conn:
        [envelope] = await store.append(conn, f"s-{uuid.uuid4()}", 0, [Pinged(n=1)], META)

    async def explode(unit: UnitOfWork, received: Envelope) -> None:
        await connection_of(unit).execute("CREATE TABLE IF NOT EXISTS half_done (x int)")
        raise ValueError("cannot apply this event")

    inbox = Inbox(units_of(store), "poison", publisher)
    assert await inbox.receive(topic, b"k", envelope.to_json(), [], explode) == "dead_lettered"
    assert await scratch_pool.fetchval("SELECT to_regclass('half_done')") is None
    [dead] = await read_topic(settings.kafka_bootstrap, dlq_topic(topic), 1)
    headers = dict(dead.headers)
    assert b"cannot apply this event" in headers["error"]
    assert dead.value == envelope.to_json()


async def recreate(bootstrap: str, topic: str, partitions: int) -> None:
    """What a broker that lost everything looks like: the topic is there again, empty."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()
    await eventually(lambda: _gone(bootstrap, topic))
    await create_topics(bootstrap, [topic], partitions)


async def _gone(bootstrap: str, topic: str) -> bool:
    return await KafkaPublisher(bootstrap, "probe").describe_topic(topic) is None


async def test_a_broker_that_lost_the_topic_is_refilled_with_the_whole_log(
    scratch_pool: asyncpg.Pool, settings: Settings, publisher: KafkaPublisher
) -> None:
    assert settings.kafka_bootstrap
    topic = f"test.lost.{uuid.uuid4().hex[:8]}"
    await create_topics(settings.kafka_bootstrap, [topic])
    store = EventStore(scratch_pool, "test", SystemClock())
    stream = f"s-{uuid.uuid4()}"
    async with store.transaction() as conn:
        await store.append(conn, stream, 0, [Pinged(n=1), Pinged(n=2)], META)
    relay = OutboxRelay(store, publisher, topic)
    assert await relay.publish_pending() == 2
    assert await relay.check_broker() is False  # nothing lost yet

    await recreate(settings.kafka_bootstrap, topic, 3)
    # a command after the loss: its record lands below the offsets we had reached
    async with store.transaction() as conn:
        await store.append(conn, stream, 2, [Pinged(n=3)], META)
    with pytest.raises(BrokerLostHistory):
        await relay.publish_pending()
    assert await relay.refill("test", proven=True) is True
    assert await relay.publish_pending() == 3
    assert await relay.check_broker() is False
    records = await read_topic(settings.kafka_bootstrap, topic, 4)
    versions = {Envelope.model_validate_json(r.value or b"").stream_version for r in records}
    assert versions == {1, 2, 3}


async def test_an_idle_relay_notices_the_loss_and_recreates_the_topic_with_its_partitions(
    scratch_pool: asyncpg.Pool, settings: Settings, publisher: KafkaPublisher
) -> None:
    assert settings.kafka_bootstrap
    topic = f"test.lost.{uuid.uuid4().hex[:8]}"
    await create_topics(settings.kafka_bootstrap, [topic])
    store = EventStore(scratch_pool, "test", SystemClock())
    async with store.transaction() as conn:
        for n in range(6):
            await store.append(conn, f"s-{n}-{uuid.uuid4()}", 0, [Pinged(n=n)], META)
    relay = OutboxRelay(store, publisher, topic, partitions=3)
    assert await relay.publish_pending() == 6
    # the broker came back with the topic auto-created by some client, with other partitions
    await recreate(settings.kafka_bootstrap, topic, 5)
    assert await relay.check_broker() is True
    state = await publisher.describe_topic(topic)
    assert state is not None and state.partitions == 3
    assert await relay.publish_pending() == 6
    assert len(await read_topic(settings.kafka_bootstrap, topic, 6)) == 6
    assert await relay.check_broker() is False
