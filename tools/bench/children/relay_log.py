"""Child: time the outbox relay publishing an already-written log to the broker.

Usage: relay_log.py DSN BOOTSTRAP EVENTS [--partitions P]

The first EVENTS events of the generated `engagement` log are copied into a fresh `relay`
schema (kernel migrations), a fresh topic is created, and the measured tree's `OutboxRelay`,
built as a service builds it (its own defaults), publishes everything pending once. Setup and
the producer's start are excluded from the time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import time
from typing import Any

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.messaging.kafka import KafkaPublisher
from shared.messaging.outbox import OutboxRelay
from shared.model.clock import SystemClock
from shared.storage.bulk import analyze_events, copy_log
from shared.storage.db import migrate
from shared.storage.eventstore import EventStore

MARK = "BENCH-RESULT "


async def prepare(dsn: str, events: int) -> asyncpg.Pool:
    """A `relay` schema holding the first `events` events of the generated log."""
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute("DROP SCHEMA IF EXISTS relay CASCADE")
        await admin.execute("CREATE SCHEMA relay")
    finally:
        await admin.close()
    pool = await asyncpg.create_pool(
        dsn, min_size=1, max_size=4, server_settings={"search_path": "relay"}
    )
    assert pool is not None
    await migrate(pool, "relay", [])
    async with pool.acquire() as conn:
        await copy_log(conn, "engagement", "relay", events)
        await analyze_events(conn, "relay")
    return pool


async def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name=topic, num_partitions=partitions, replication_factor=1)]
        )
    finally:
        await admin.close()


async def timed(dsn: str, bootstrap: str, events: int, partitions: int) -> dict[str, Any]:
    pool = await prepare(dsn, events)
    topic = f"bench.relay.{secrets.token_hex(4)}"
    await create_topic(bootstrap, topic, partitions)
    store = EventStore(pool, "engagement", SystemClock())
    publisher = KafkaPublisher(bootstrap, "rapport-bench-relay")
    relay = OutboxRelay(store, publisher, topic)
    await publisher.start()
    try:
        started = time.perf_counter()
        published = await relay.publish_pending()
        seconds = time.perf_counter() - started
    finally:
        await publisher.stop()
        await pool.close()
    return {"events": int(published), "seconds": seconds, "partitions": partitions}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dsn")
    parser.add_argument("bootstrap")
    parser.add_argument("events", type=int)
    parser.add_argument("--partitions", type=int, default=3)
    args = parser.parse_args(argv)
    try:
        from shared.runtime.logs import configure_logging

        configure_logging("warning")
    except ImportError:  # pragma: no cover
        pass
    found = asyncio.run(timed(args.dsn, args.bootstrap, args.events, args.partitions))
    print(MARK + json.dumps(found), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
