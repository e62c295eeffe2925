"""The commit signal through real PostgreSQL: a commit in one instance wakes the others."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import asyncpg

from shared.model.clock import SystemClock
from shared.model.envelope import Actor
from shared.model.events import DomainEvent
from shared.model.log import EventMetadata
from shared.storage.eventstore import EventStore
from tests.support import eventually

META = EventMetadata(actor=Actor(role="admin", id="tester"), correlation_id="c-signal")


class Pinged(DomainEvent):
    event_type = "Pinged"

    n: int


async def test_a_commit_wakes_another_instance_through_a_notify_that_names_its_sender(
    scratch_pool: asyncpg.Pool,
) -> None:
    service = f"signal{uuid.uuid4().hex[:8]}"  # channels span the database, not a schema
    here = EventStore(scratch_pool, service, SystemClock())
    there = EventStore(scratch_pool, service, SystemClock())
    woken = there.appended_elsewhere.subscribe()
    senders: list[str] = []

    def record(_conn: object, _pid: int, _channel: str, sender: str) -> None:
        senders.append(sender)

    async with scratch_pool.acquire() as listening, scratch_pool.acquire() as recorder:
        await there.commits.listen(listening)
        await recorder.add_listener(here.commits.channel, record)
        signal = asyncio.create_task(here.commits.run())
        try:
            async with here.transaction() as conn:
                await here.append(conn, str(uuid.uuid4()), 0, [Pinged(n=1)], META)

            async def told() -> list[str]:
                return senders if woken.is_set() else []

            assert await eventually(told) == [here.commits.instance]
        finally:
            signal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await signal
            await there.commits.unlisten(listening)
            await recorder.remove_listener(here.commits.channel, record)
