"""The projection runner against real PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid

import asyncpg

from shared.model.clock import SystemClock
from shared.model.envelope import Actor, Envelope
from shared.model.events import DomainEvent
from shared.model.log import EventMetadata
from shared.model.projections import Document, Projection
from shared.reads.runner import ProjectionRunner
from shared.storage.checkpoints import load_checkpoint
from shared.storage.documents import load_document
from shared.storage.eventstore import START, EventStore
from shared.storage.parking import ParkedEvent, list_parked
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
            moved = [await load_checkpoint(conn, unit.checkpoint) for unit in runner.units]
            assert any(checkpoint != START for checkpoint in moved)
            assert await load_document(conn, "broken", stream_id) is None
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


async def test_two_instances_share_the_segments_fold_each_event_once_and_take_over(
    scratch_pool: asyncpg.Pool,
) -> None:
    store = EventStore(scratch_pool, "shared", SystemClock())
    counting = Projection("counting", key=lambda e: e.stream_id, fold=count)
    first = ProjectionRunner(store, [counting], segments=4, poll_interval=0.05)
    second = ProjectionRunner(store, [counting], segments=4, poll_interval=0.05)
    streams = [str(uuid.uuid4()) for _ in range(40)]
    for stream_id in streams:
        async with store.transaction() as conn:
            await store.append(conn, stream_id, 0, [Counted(n=1), Counted(n=2)], META)
    tasks = [asyncio.create_task(runner.run()) for runner in (first, second)]
    try:

        async def split() -> bool:
            return len(first.owned) == 2 and len(second.owned) == 2

        await eventually(split, timeout=30)
        assert set(first.owned).isdisjoint(second.owned)

        async def totals() -> dict[str, int] | None:
            async with scratch_pool.acquire() as conn:
                rows = await conn.fetch(
                    "SELECT id, doc FROM documents WHERE projection = 'counting'"
                )
            found = {row["id"]: json.loads(row["doc"])["total"] for row in rows}
            return found if len(found) == len(streams) else None

        assert set((await eventually(totals)).values()) == {3}  # every event folded once

        tasks[0].cancel()  # the first instance goes away: its segments move on
        with contextlib.suppress(asyncio.CancelledError):
            await tasks[0]

        async def taken_over() -> bool:
            return len(second.owned) == 4

        await eventually(taken_over, timeout=30)
        later = [str(uuid.uuid4()) for _ in range(8)]
        for stream_id in later:
            async with store.transaction() as conn:
                await store.append(conn, stream_id, 0, [Counted(n=5)], META)
        streams += later

        async def all_folded() -> dict[str, int] | None:
            found = await totals()
            return found if found and all(found[s] == 5 for s in later) else None

        assert set((await eventually(all_folded)).values()) == {3, 5}
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_folding_a_stretch_of_the_log_again_changes_no_partitioned_document(
    scratch_pool: asyncpg.Pool,
) -> None:
    store = EventStore(scratch_pool, "again", SystemClock())
    counting = Projection("counting", key=lambda e: e.stream_id, fold=count)
    runner = ProjectionRunner(store, [counting], segments=2)
    stream_id = str(uuid.uuid4())
    async with store.transaction() as conn:
        await store.append(conn, stream_id, 0, [Counted(n=2), Counted(n=3)], META)
    await runner.catch_up()
    async with scratch_pool.acquire() as conn:
        await conn.execute("UPDATE checkpoints SET transaction_id = '0', global_position = 0")
    assert await runner.catch_up() == 2  # read again from the start of the log...
    async with scratch_pool.acquire() as conn:
        found = await load_document(conn, "counting", stream_id)
    assert found is not None and found[0] == {"total": 5}  # ...and skipped: folded already
