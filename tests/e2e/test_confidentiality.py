"""No personal value ever appears in plaintext in Kafka or in an event row; erasure works."""

from __future__ import annotations

import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from tests.support import Stack, auth, eventually, start_intake_journey


def secrets_of(tag: str) -> dict[str, Any]:
    return {
        "name": f"Zelda Quixote {tag}",
        "email": f"zelda.{tag}@private.example",
        "phone": f"+44 7700 {tag[:6]}",
    }


async def every_kafka_value(stack: Stack) -> list[bytes]:
    bootstrap = stack.settings.kafka_bootstrap
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if not t.startswith("__")]
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        while batches := await consumer.getmany(timeout_ms=1000):
            for batch in batches.values():
                for record in batch:
                    values.append(record.value or b"")
                    values.extend(value for _, value in record.headers)
    finally:
        await consumer.stop()
    return values


async def every_event_row(stack: Stack) -> list[str]:
    pool = stack.core("intake").pool
    rows: list[str] = []
    for schema in ("intake", "engagement", "notifications"):
        records = await pool.fetch(f"SELECT envelope::text AS e FROM {schema}.events")
        rows.extend(record["e"] for record in records)
    return rows


async def test_personal_values_never_reach_kafka_or_event_rows_in_plaintext(stack: Stack) -> None:
    tag = uuid.uuid4().hex[:10]
    personal = secrets_of(tag)
    coach_id = f"coach-{tag}"
    async with stack.client("intake") as intake:
        journey = await start_intake_journey(intake, coach_id, client=personal)
        view = await intake.get(
            f"/v1/intakes/{journey['engagement_id']}", headers=auth("coach", coach_id)
        )
    assert view.json()["client"]["name"] == personal["name"]  # authorised reads decrypt
    async with stack.client("engagement") as engagement:

        async def opened() -> bool:
            response = await engagement.get(
                f"/v1/engagements/{journey['engagement_id']}", headers=auth("admin", "ops")
            )
            return response.status_code == 200

        await eventually(opened)
    plaintexts = [value.encode() for value in personal.values()] + [b"Run 5k", b"tired"]
    haystack = await every_kafka_value(stack) + [
        row.encode() for row in await every_event_row(stack)
    ]
    assert len(haystack) > 10
    for needle in plaintexts:
        assert not any(needle in item for item in haystack), needle


async def test_erasure_nulls_personal_fields_and_keeps_the_history(stack: Stack) -> None:
    tag = uuid.uuid4().hex[:10]
    coach_id = f"coach-{tag}"
    async with stack.client("intake") as intake:
        journey = await start_intake_journey(intake, coach_id, client=secrets_of(tag))
        engagement_id, client_id = journey["engagement_id"], journey["client_id"]
        denied = await intake.post(
            f"/v1/clients/{client_id}/erasure", headers=auth("coach", coach_id)
        )
        assert denied.status_code == 403
        erased = await intake.post(f"/v1/clients/{client_id}/erasure", headers=auth("admin", "a"))
        assert erased.status_code == 201, erased.text
        unknown = await intake.post(
            f"/v1/clients/{uuid.uuid4()}/erasure", headers=auth("admin", "a")
        )
        assert unknown.status_code == 404

        async def erased_view() -> dict[str, Any] | None:
            response = await intake.get(
                f"/v1/intakes/{engagement_id}", headers=auth("coach", coach_id)
            )
            body: dict[str, Any] = response.json()
            return body if body.get("erased_at") else None

        view = await eventually(erased_view)
    assert view["erased"] is True
    assert view["client"]["name"] is None and view["client"]["email"] is None
    assert view["goals"][0]["title"] is None and view["assessments"][0]["notes"] is None
    assert view["goals"][0]["target"] == 5 and view["status"] == "committed"
    pool = stack.core("intake").pool
    events = await pool.fetch(
        "SELECT envelope FROM intake.events WHERE stream_id = $1 ORDER BY stream_version",
        engagement_id,
    )
    from shared.envelope import GENESIS_HASH, Envelope

    chain = [Envelope.model_validate_json(row["envelope"]) for row in events]
    assert chain[-1].event_type == "ClientErased"
    previous = GENESIS_HASH
    for envelope in chain:
        assert envelope.is_intact() and envelope.prev_hash == previous
        previous = envelope.hash
