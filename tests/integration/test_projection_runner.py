"""The projection runner against real PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import asyncpg

from shared.clock import SystemClock
from shared.envelope import Actor, Envelope
from shared.events import DomainEvent
from shared.eventstore import START, EventMetadata, EventStore, load_checkpoint
from shared.parking import ParkedEvent, list_parked
from shared.projections import Document, Projection, ProjectionRunner, load_document
from tests.support import eventually

META = EventMetadata(actor=Actor(role="admin", id="tester"), correlation_id="c-runner")


class Counted(DomainEvent):
    event_type = "Counted"

    n: int


def count(document: Document | None, envelope: Envelope) -> Document:
    return {"total": (document or {"total": 0})["total"] + envelope.data["n"]}


def explode(document: Document | None, envelope: Envelope) -> Document:
    raise ValueError("a fold that cannot handle this event")


async def test_a_projection_that_cannot_fold_an_event_parks_it_and_goes_on(
    scratch_pool: asyncpg.Pool,
) -> None:
    store = EventStore(scratch_pool, "test", SystemClock())
    healthy = Projection("healthy", key=lambda e: e.stream_id, fold=count)
    broken = Projection("broken", key=lambda e: e.stream_id, fold=explode)
    runner = ProjectionRunner(store, [broken, healthy], poll_interval=0.05)
    stream_id = str(uuid.uuid4())
    async with store.transaction() as conn:
        await store.append(conn, stream_id, 0, [Counted(n=2), Counted(n=3)], META)
    running = asyncio.create_task(runner.run())
    try:

        async def folded() -> Document | None:
            async with scratch_pool.acquire() as conn:
                found = await load_document(conn, "healthy", stream_id)
            return found[0] if found else None

        assert await eventually(folded) == {"total": 5}

        async def parked() -> list[ParkedEvent]:
            async with scratch_pool.acquire() as conn:
                entries = await list_parked(conn, status="parked", after_id=0, limit=10)
            return entries if len(entries) == 2 else []

        entries = await eventually(parked)
        assert {(e.kind, e.name, e.stream_id) for e in entries} == {
            ("projection", "broken", stream_id)
        }
        assert all("a fold that cannot handle this event" in e.error for e in entries)
        async with scratch_pool.acquire() as conn:
            assert await load_checkpoint(conn, "projection:broken") != START
            assert await load_document(conn, "broken", stream_id) is None
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
