"""`make bench`: throughput and latency of the kernel and the stack on this machine.

Measures, against a fresh embedded PostgreSQL and broker:
- appends per second with many concurrent writers on distinct streams (no global lock),
- events per second read back in commit-safe order (`read_after`),
- outbox relay throughput to the broker,
- ClientCommitted propagation: intake command → engagement stage view (p50/p95).
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from rich.console import Console
from rich.table import Table

from rapport.infra import running_infrastructure
from shared.auth import issue_token
from shared.clock import SystemClock
from shared.config import Settings
from shared.crypto import generate_master_key
from shared.db import create_pool, migrate
from shared.envelope import Actor
from shared.events import DomainEvent
from shared.eventstore import START, EventMetadata, EventStore
from shared.kafka import KafkaPublisher, create_topics
from shared.outbox import OutboxRelay
from shared.service import embedded_server

console = Console()
META = EventMetadata(actor=Actor(role="admin", id="bench"), correlation_id="bench")


class Measured(DomainEvent):
    event_type = "Measured"

    n: int


async def bench_store(database_url: str, bootstrap: str, rows: list[tuple[str, str]]) -> None:
    pool = await create_pool(database_url, "bench", max_size=20)
    await migrate(pool, "bench", [])
    store = EventStore(pool, "bench", SystemClock())
    writers, per_writer = 16, 200

    async def writer() -> None:
        stream_id = str(uuid.uuid4())
        for n in range(per_writer):
            async with store.transaction() as conn:
                await store.append(conn, stream_id, n, [Measured(n=n)], META)

    started = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(writers)))
    elapsed = time.perf_counter() - started
    total = writers * per_writer
    rows.append(("appends/s (16 writers, 1 event per transaction)", f"{total / elapsed:,.0f}"))

    started = time.perf_counter()
    checkpoint, read = START, 0
    async with pool.acquire() as conn:
        while batch := await store.read_after(conn, checkpoint, 1000):
            checkpoint, read = batch[-1].checkpoint, read + len(batch)
    rows.append(("events/s read in commit order", f"{read / (time.perf_counter() - started):,.0f}"))

    topic = f"bench.{uuid.uuid4().hex[:6]}"
    await create_topics(bootstrap, [topic])
    publisher = KafkaPublisher(bootstrap, "bench")
    relay = OutboxRelay(store, publisher, topic, batch_size=1000)
    started = time.perf_counter()
    published = await relay.publish_pending()
    rows.append(
        ("events/s relayed to the broker", f"{published / (time.perf_counter() - started):,.0f}")
    )
    await publisher.stop()
    await pool.close()


async def bench_propagation(settings: Settings, rows: list[tuple[str, str]]) -> None:
    from services.engagement.bootstrap import create_app as engagement_app
    from services.intake.bootstrap import create_app as intake_app
    from services.notifications.bootstrap import create_app as notifications_app

    servers = []
    tasks = []
    for factory, port in ((intake_app, 18001), (engagement_app, 18002), (notifications_app, 18003)):
        server = embedded_server(factory(settings), "127.0.0.1", port)
        servers.append(server)
        tasks.append(asyncio.create_task(server.serve()))
    secret = settings.jwt_secret or ""
    headers = {
        "Authorization": "Bearer "
        + issue_token(secret, "admin", "bench", now=datetime.now(UTC), ttl=timedelta(hours=1))
    }
    async with httpx.AsyncClient(timeout=30) as client:
        for port in (18001, 18002, 18003):
            while True:
                try:
                    if (await client.get(f"http://127.0.0.1:{port}/health")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        latencies = []
        for _ in range(30):
            intake = "http://127.0.0.1:18001/v1/intakes"
            started = await client.post(
                intake,
                json={"coach_id": "c", "client": {"name": "N", "email": "n@example.org"}},
                headers=headers,
            )
            engagement_id = started.json()["engagement_id"]
            for path, body in (
                ("assessments", {"instrument": "i", "scores": {"a": 1}}),
                ("goals", {"title": "t", "measure": "m", "baseline": 0, "target": 1}),
                (
                    "agreement",
                    {
                        "role_explained": True,
                        "confidentiality_limits_acknowledged": True,
                        "signed_by_client": True,
                        "signed_by_coach": True,
                        "contact_channels": ["video"],
                        "contact_hours": "any",
                        "session_cadence_days": 7,
                    },
                ),
            ):
                await client.post(f"{intake}/{engagement_id}/{path}", json=body, headers=headers)
            began = time.perf_counter()
            await client.post(f"{intake}/{engagement_id}/commitment", headers=headers)
            url = f"http://127.0.0.1:18002/v1/engagements/{engagement_id}"
            while (await client.get(url, headers=headers)).status_code != 200:  # noqa: ASYNC110
                await asyncio.sleep(0.002)  # polling an HTTP read
            latencies.append((time.perf_counter() - began) * 1000)
    latencies.sort()
    rows.append(
        ("ClientCommitted → engagement view, p50 ms", f"{statistics.median(latencies):.0f}")
    )
    rows.append(
        (
            "ClientCommitted → engagement view, p95 ms",
            f"{latencies[int(len(latencies) * 0.95) - 1]:.0f}",
        )
    )
    for server in servers:
        server.should_exit = True
    await asyncio.gather(*tasks)


def main() -> None:
    rows: list[tuple[str, str]] = []
    with running_infrastructure() as endpoints:
        settings = Settings(
            database_url=endpoints.database_url,
            kafka_bootstrap=endpoints.kafka_bootstrap,
            jwt_secret="bench-secret-bench-secret-bench-secret",
            master_key=generate_master_key(),
        )
        asyncio.run(bench_store(endpoints.database_url, endpoints.kafka_bootstrap, rows))
        asyncio.run(bench_propagation(settings, rows))
    table = Table(title="Rapport benchmark (this machine)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)


if __name__ == "__main__":
    main()
