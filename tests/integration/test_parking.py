"""Parked events against real PostgreSQL and the real broker: what a projection or a consumer
cannot apply is set aside and counted, the rest goes on, and an admin retries or skips it."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import pytest
from typer.testing import CliRunner

from rapport.cli import app
from rapport.infra import Endpoints
from shared.messaging.inbox import Inbox
from shared.messaging.kafka import KafkaPublisher, create_topics, dlq_topic
from shared.model.clock import SystemClock
from shared.model.envelope import Actor, Envelope, new_id
from shared.model.errors import ForbiddenByState
from shared.model.events import DomainEvent
from shared.model.log import EventMetadata
from shared.model.projections import Document, Projection
from shared.reads.runner import ProjectionRunner
from shared.runtime.config import Settings
from shared.runtime.parked import ParkedEvents, RetryFailed
from shared.storage.db import create_pool, migrate
from shared.storage.documents import load_document
from shared.storage.eventstore import EventStore
from shared.storage.parking import PARKED
from shared.usecases.ports import UnitOfWork
from tests.support import units_of

META = EventMetadata(actor=Actor(role="admin", id="tester"), correlation_id="c-parking")


class Counted(DomainEvent):
    event_type = "Counted"

    n: int


class Flaky:
    """A fold that cannot handle `n == 3` until it is mended."""

    def __init__(self) -> None:
        self.broken = True

    def fold(self, document: Document | None, envelope: Envelope) -> Document:
        if self.broken and envelope.data["n"] == 3:
            raise ValueError("cannot count a three yet")
        return {"total": (document or {"total": 0})["total"] + envelope.data["n"]}


def parked_gauge(service: str, kind: str) -> float:
    return float(PARKED.labels(service, kind)._value.get())


async def total(pool: asyncpg.Pool, stream_id: str) -> int:
    async with pool.acquire() as conn:
        found = await load_document(conn, "flaky", stream_id)
    assert found is not None
    return int(found[0]["total"])


async def test_a_parked_projection_event_is_retried_once_the_fold_can_handle_it(
    scratch_pool: asyncpg.Pool,
) -> None:
    service = f"p{uuid.uuid4().hex[:6]}"
    store = EventStore(scratch_pool, service, SystemClock())
    flaky = Flaky()
    projection = Projection("flaky", key=lambda e: e.stream_id, fold=flaky.fold)
    runner = ProjectionRunner(store, [projection])
    stream_id = str(uuid.uuid4())
    async with store.transaction() as conn:
        await store.append(conn, stream_id, 0, [Counted(n=2), Counted(n=3), Counted(n=4)], META)

    assert await runner.catch_up() == 3  # the runner went past the three
    assert await total(scratch_pool, stream_id) == 6
    assert parked_gauge(service, "projection") == 1
    admin = ParkedEvents(store, runner.projection, {})
    [entry] = (await admin.list(status="parked", after_id=0, limit=10))["items"]
    assert entry["kind"] == "projection" and entry["name"] == "flaky"
    assert entry["stream_id"] == stream_id and entry["event_type"] == "Counted"
    assert "cannot count a three yet" in entry["error"] and entry["attempts"] == 1

    with pytest.raises(RetryFailed):
        await admin.retry(entry["id"])  # still broken: stays parked, one more attempt
    [again] = (await admin.list(status="parked", after_id=0, limit=10))["items"]
    assert again["attempts"] == 2

    flaky.broken = False
    assert (await admin.retry(entry["id"]))["status"] == "retried"
    assert await total(scratch_pool, stream_id) == 9
    assert parked_gauge(service, "projection") == 0
    assert (await admin.list(status="parked", after_id=0, limit=10))["items"] == []
    with pytest.raises(ForbiddenByState):
        await admin.retry(entry["id"])


async def test_a_consumer_parks_what_it_cannot_apply_and_an_admin_retries_or_skips_it(
    scratch_pool: asyncpg.Pool, settings: Settings, publisher: KafkaPublisher
) -> None:
    assert settings.kafka_bootstrap
    topic = f"test.parking.{uuid.uuid4().hex[:8]}"
    await create_topics(settings.kafka_bootstrap, [topic, dlq_topic(topic)])
    service = f"c{uuid.uuid4().hex[:6]}"
    store = EventStore(scratch_pool, service, SystemClock())
    applied: list[str] = []
    mended = False

    async def handler(unit: UnitOfWork, envelope: Envelope) -> None:
        if not mended:
            raise KeyError("client_id")  # a message this consumer cannot apply
        applied.append(envelope.event_id)

    inbox = Inbox(units_of(store), "rules", publisher)
    first, second = (sample_envelope() for _ in range(2))
    for envelope in (first, second):
        outcome = await inbox.receive(topic, b"k", envelope.to_json(), [], handler)
        assert outcome == "dead_lettered"
    garbage = await inbox.receive(topic, b"k", b"{not json", [], handler)
    assert garbage == "dead_lettered"
    assert parked_gauge(service, "consumer") == 0  # counted when the table is read again

    admin = ParkedEvents(store, lambda name: None, {"rules": (inbox, handler)})
    entries = (await admin.list(status="parked", after_id=0, limit=10))["items"]
    assert [e["event_id"] for e in entries[:2]] == [first.event_id, second.event_id]
    assert entries[2]["event_id"].startswith("sha256:")  # unparseable: named by its content
    assert all(e["kind"] == "consumer" and e["topic"] == topic for e in entries)

    mended = True
    retried = await admin.retry(entries[0]["id"])
    assert retried["status"] == "retried" and retried["outcome"] == "applied"
    assert (await admin.skip(entries[1]["id"]))["status"] == "skipped"
    with pytest.raises(RetryFailed):
        await admin.retry(entries[2]["id"])  # still not JSON
    assert applied == [first.event_id]
    # a redelivery of the applied one changes nothing
    assert await inbox.receive(topic, b"k", first.to_json(), [], handler) == "duplicate"
    assert parked_gauge(service, "consumer") == 1


def sample_envelope() -> Envelope:
    from shared.model.envelope import format_time, seal

    return seal(
        {
            "event_id": new_id(),
            "event_type": "ClientCommitted",
            "schema_version": 1,
            "stream_id": str(uuid.uuid4()),
            "stream_version": 1,
            "occurred_at": format_time(SystemClock().now()),
            "recorded_at": format_time(SystemClock().now()),
            "producer": "intake",
            "correlation_id": "c",
            "causation_id": None,
            "actor": {"role": "coach", "id": "x"},
            "data": {},
            "prev_hash": "0" * 64,
        }
    )


async def test_replay_reports_a_row_it_cannot_read_instead_of_crashing(
    infra: Endpoints, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = f"tampered_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(infra.database_url)
    await admin.execute(f"CREATE DATABASE {database}")
    await admin.close()
    url = database_url_of(infra.database_url, database)
    pool = await create_pool(url, "engagement")
    try:
        await migrate(pool, "engagement", ["services.engagement.adapters.migrations"])
        store = EventStore(pool, "engagement", SystemClock())
        async with store.transaction() as conn:
            await store.append(conn, str(uuid.uuid4()), 0, [Counted(n=1)], META)
            tampered_id = new_id()
            await conn.execute(
                "INSERT INTO events (event_id, stream_id, stream_version, event_type,"
                " schema_version, occurred_at, envelope, hash) VALUES"
                " ($1, 'tampered', 1, 'EngagementOpened', 1, now(), $2, $3)",
                tampered_id,
                json.dumps({"event_id": tampered_id, "not": "an envelope"}),
                "0" * 64,
            )
    finally:
        await pool.close()
    monkeypatch.setenv("RAPPORT_DATABASE_URL", url)
    result = await asyncio.to_thread(
        CliRunner().invoke, app, ["audit", "replay", "--service", "engagement"]
    )
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "could not fold" in result.output.replace("\n", " ")
    assert tampered_id in result.output.replace("\n", "")


def database_url_of(url: str, database: str) -> str:
    """The same server's URL for another database."""
    scheme, _, rest = url.partition("://")
    authority, _, path = rest.partition("/")
    _, _, query = path.partition("?")
    return f"{scheme}://{authority}/{database}" + (f"?{query}" if query else "")
