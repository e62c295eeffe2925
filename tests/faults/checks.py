"""What the fault suite checks after the faults: read straight from PostgreSQL and Kafka."""

from __future__ import annotations

import asyncio

import asyncpg
from aiokafka import AIOKafkaConsumer

from rapport.registry import SERVICES, topic_of
from services.engagement.application.services import EngagementService
from services.notifications.domain.rules import HANDLED

TOPIC_OF = {service: topic_of(service) for service in SERVICES}
CONSUMERS = {
    # consumer name: its service's schema, the schemas whose topics it reads, the event types
    # it acts on (the others are acknowledged without an inbox row)
    "engagement-intake": ("engagement", ("intake",), EngagementService.INTAKE_EVENTS),
    "notifications-rules": ("notifications", ("intake", "engagement"), HANDLED),
}


async def log_event_ids(conn: asyncpg.Connection, schema: str) -> set[str]:
    rows = await conn.fetch(f"SELECT event_id::text AS id FROM {schema}.events")
    return {row["id"] for row in rows}


async def topic_event_ids(bootstrap: str, topic: str) -> set[str]:
    """Every `ce_id` on the topic, read from the beginning by a fresh consumer."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        metadata_max_age_ms=2000,
    )
    await consumer.start()
    found: set[str] = set()
    try:
        quiet = 0
        while quiet < 3:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            quiet = 0 if batches else quiet + 1
            for records in batches.values():
                for record in records:
                    found.update(v.decode() for k, v in record.headers if k == "ce_id")
    finally:
        await consumer.stop()
    return found


async def missing_from_topics(conn: asyncpg.Connection, bootstrap: str) -> dict[str, int]:
    """Per service, how many logged events its topic does not hold."""
    missing = {}
    for schema, topic in TOPIC_OF.items():
        logged = await log_event_ids(conn, schema)
        try:
            published = await asyncio.wait_for(topic_event_ids(bootstrap, topic), 60)
        except Exception:
            published = set()
        missing[schema] = len(logged - published)
    return missing


async def projections_behind(conn: asyncpg.Connection) -> dict[str, int]:
    """Per projection unit (a projection, or a stream-hash segment of a service's
    partitioned projections), how many logged events lie past its checkpoint."""
    behind = {}
    for schema in TOPIC_OF:
        rows = await conn.fetch(
            f"SELECT name, transaction_id::text AS tx, global_position FROM {schema}.checkpoints"
            " WHERE name LIKE 'projection:%' OR name LIKE 'segment:%'"
        )
        for row in rows:
            index, count = None, None
            if row["name"].startswith("segment:"):
                index, count = (int(n) for n in row["name"].removeprefix("segment:").split("/"))
            found = await conn.fetchval(
                f"SELECT count(*) FROM {schema}.events"
                " WHERE (transaction_id, global_position) > ($1::text::xid8, $2)"
                " AND ($3::integer IS NULL OR (hashtext(stream_id) & 2147483647) % $3 = $4)",
                row["tx"],
                row["global_position"],
                count,
                index,
            )
            behind[f"{schema}.{row['name']}"] = int(found)
    return behind


async def unconsumed(conn: asyncpg.Connection) -> dict[str, int]:
    """Per consumer, how many events it acts on its inbox has not applied."""
    left = {}
    for consumer, (schema, sources, handles) in CONSUMERS.items():
        total = 0
        for source in sources:
            total += await conn.fetchval(
                f"SELECT count(*) FROM {source}.events e WHERE e.event_type = ANY($2::text[])"
                f" AND NOT EXISTS (SELECT 1 FROM {schema}.inbox i"
                " WHERE i.consumer = $1 AND i.event_id = e.event_id)",
                consumer,
                sorted(handles),
            )
        left[consumer] = int(total)
    return left


async def parked(conn: asyncpg.Connection) -> dict[str, list[str]]:
    found = {}
    for schema in TOPIC_OF:
        rows = await conn.fetch(
            f"SELECT kind, name, error FROM {schema}.parked WHERE status = 'parked'"
        )
        found[schema] = [f"{r['kind']} {r['name']}: {r['error'][:200]}" for r in rows]
    return found


async def stream_counts(conn: asyncpg.Connection, schema: str) -> dict[tuple[str, str], int]:
    rows = await conn.fetch(
        f"SELECT stream_id, event_type, count(*) AS n FROM {schema}.events"
        " GROUP BY stream_id, event_type"
    )
    return {(row["stream_id"], row["event_type"]): int(row["n"]) for row in rows}
