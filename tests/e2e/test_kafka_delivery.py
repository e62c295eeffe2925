"""Kafka delivery through the running services: redelivery, poison messages, the hash rule."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from services.engagement.bootstrap import TOPIC as ENGAGEMENT_TOPIC
from services.intake.bootstrap import TOPIC as INTAKE_TOPIC
from services.notifications.bootstrap import TOPIC as NOTIFICATIONS_TOPIC
from shared.messaging.kafka import (
    KafkaPublisher,
    dlq_topic,
    envelope_message,
)
from shared.model.envelope import GENESIS_HASH, SYSTEM_ACTOR, Envelope, format_time, seal
from tests.support import Stack, auth, eventually, start_intake_journey


def client_committed(engagement_id: str) -> Envelope:
    now = format_time(datetime.now(UTC))
    return seal(
        {
            "event_id": str(uuid.uuid4()),
            "event_type": "ClientCommitted",
            "schema_version": 1,
            "stream_id": engagement_id,
            "stream_version": 5,
            "occurred_at": now,
            "recorded_at": now,
            "producer": "intake",
            "correlation_id": str(uuid.uuid4()),
            "causation_id": None,
            "actor": SYSTEM_ACTOR.model_dump(),
            "data": {
                "engagement_id": engagement_id,
                "client_id": f"client-{engagement_id[:8]}",
                "coach_id": "coach-kafka",
                "supervisor_id": None,
                "goals": [],
                "baselines": [],
                "session_cadence_days": 7,
                "contact_channels": ["video"],
                "contact_hours": "any",
                "committed_at": now,
            },
            "prev_hash": "a" * 64,
        }
    )


async def engagement_version(stack: Stack, engagement_id: str) -> int | None:
    async with stack.client("engagement") as client:
        response = await client.get(
            f"/v1/engagements/{engagement_id}", headers=auth("admin", "ops")
        )
    return response.json()["version"] if response.status_code == 200 else None


async def test_a_message_delivered_twice_opens_the_engagement_once(stack: Stack) -> None:
    engagement_id = str(uuid.uuid4())
    envelope = client_committed(engagement_id)
    publisher = KafkaPublisher(stack.settings.kafka_bootstrap or "", "tests")
    try:
        await publisher.publish([envelope_message(INTAKE_TOPIC, envelope)] * 2)
        await eventually(lambda: engagement_version(stack, engagement_id))
        marker = client_committed(str(uuid.uuid4()))  # a later message on another stream
        await publisher.publish([envelope_message(INTAKE_TOPIC, marker)])
        await eventually(lambda: engagement_version(stack, marker.stream_id))
        await publisher.publish([envelope_message(INTAKE_TOPIC, envelope)])
        await asyncio.sleep(0.5)
    finally:
        await publisher.stop()
    core = stack.core("engagement")
    count = await core.pool.fetchval(
        "SELECT count(*) FROM events WHERE stream_id = $1", engagement_id
    )
    assert count == 1
    assert await engagement_version(stack, engagement_id) == 1


async def test_a_garbage_message_goes_to_the_dlq_and_the_next_one_is_processed(
    stack: Stack,
) -> None:
    engagement_id = str(uuid.uuid4())
    garbage = b'{"event_id": "not an envelope"'
    publisher = KafkaPublisher(stack.settings.kafka_bootstrap or "", "tests")
    try:
        from shared.messaging.kafka import OutboundMessage

        await publisher.publish(
            [OutboundMessage(INTAKE_TOPIC, engagement_id.encode(), garbage, [])]
        )
        good = client_committed(engagement_id)
        await publisher.publish([envelope_message(INTAKE_TOPIC, good)])
    finally:
        await publisher.stop()
    assert await eventually(lambda: engagement_version(stack, engagement_id), timeout=45) == 1

    async def both_consumers_dead_lettered() -> list[ConsumerRecord[bytes, bytes]] | None:
        dead = await find_records(
            stack, dlq_topic(INTAKE_TOPIC), lambda record: record.value == garbage
        )
        consumers = {dict(record.headers).get("consumer") for record in dead}
        return dead if {b"engagement-intake", b"notifications-rules"} <= consumers else None

    dead = await eventually(both_consumers_dead_lettered, timeout=45)
    assert all(dict(record.headers)["error"] for record in dead)


async def find_records(
    stack: Stack, topic: str, wanted: Any, *, minimum: int = 2
) -> list[ConsumerRecord[bytes, bytes]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=stack.settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[ConsumerRecord[bytes, bytes]] = []
    try:
        deadline = asyncio.get_running_loop().time() + 5
        while len(found) < minimum and asyncio.get_running_loop().time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                found.extend(record for record in batch if wanted(record))
    finally:
        await consumer.stop()
    return found


async def test_every_published_message_verifies_against_the_hash_rule(stack: Stack) -> None:
    async with stack.client("intake") as intake:
        journey = await start_intake_journey(intake, f"coach-{uuid.uuid4().hex[:6]}")
    await eventually(lambda: engagement_version(stack, journey["engagement_id"]))
    checked = 0
    for topic in (INTAKE_TOPIC, ENGAGEMENT_TOPIC, NOTIFICATIONS_TOPIC):
        records = await drain(stack, topic)
        chains: dict[str, list[Envelope]] = {}
        for record in records:
            headers = dict(record.headers)
            if b"/rapport/" not in headers.get("ce_source", b""):
                continue  # test-injected messages
            assert record.value is not None
            envelope = Envelope.model_validate_json(record.value)
            assert envelope.is_intact(), envelope.event_id
            assert json.loads(record.value) == envelope.model_dump(mode="json")
            assert record.key == envelope.stream_id.encode()
            assert headers["event_type"] == envelope.event_type.encode()
            assert headers["schema_version"] == str(envelope.schema_version).encode()
            assert headers["ce_specversion"] == b"1.0"
            assert headers["ce_id"] == envelope.event_id.encode()
            assert headers["ce_type"] == envelope.event_type.encode()
            assert headers["ce_time"] == envelope.occurred_at.encode()
            assert headers["ce_subject"] == envelope.stream_id.encode()
            assert headers["ce_source"] == f"/rapport/{envelope.producer}".encode()
            chains.setdefault(envelope.stream_id, []).append(envelope)
            checked += 1
        for chain in chains.values():
            unique = {e.stream_version: e for e in chain}  # at least once: duplicates allowed
            versions = sorted(unique)
            assert versions == list(range(versions[0], versions[-1] + 1))
            if versions[0] == 1:
                assert unique[1].prev_hash == GENESIS_HASH
            for version in versions[1:]:
                assert unique[version].prev_hash == unique[version - 1].hash
    assert checked >= 7


async def drain(stack: Stack, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=stack.settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=500)
            if not batches:
                return records
            for batch in batches.values():
                records.extend(batch)
    finally:
        await consumer.stop()
