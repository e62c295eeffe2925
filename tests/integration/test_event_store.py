"""The event store against real PostgreSQL: concurrency, append-only, commit-safe reading."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Any

import asyncpg
import pytest

from shared.model.clock import SystemClock
from shared.model.envelope import GENESIS_HASH, Actor
from shared.model.events import DomainEvent
from shared.storage.eventstore import START, ConcurrencyConflict, EventMetadata, EventStore, Head
from shared.storage.group_commit import GROUP_SIZE
from tests.support import eventually

META = EventMetadata(actor=Actor(role="admin", id="tester"), correlation_id="c-1")


class Pinged(DomainEvent):
    event_type = "Pinged"

    n: int


def stream() -> str:
    return str(uuid.uuid4())


async def test_fifty_racing_appends_give_one_winner_and_typed_conflicts(
    scratch_pool: asyncpg.Pool,
) -> None:
    store = EventStore(scratch_pool, "test", SystemClock())
    stream_id = stream()

    async def append(n: int) -> int | ConcurrencyConflict:
        try:
            async with store.transaction() as conn:
                envelopes = await store.append(conn, stream_id, 0, [Pinged(n=n)], META)
            return envelopes[0].stream_version
        except ConcurrencyConflict as conflict:
            return conflict

    results = await asyncio.gather(*(append(n) for n in range(50)))
    winners = [r for r in results if isinstance(r, int)]
    conflicts = [r for r in results if isinstance(r, ConcurrencyConflict)]
    assert winners == [1]
    assert len(conflicts) == 49
    async with store.snapshot() as conn:
        stored = [e async for e in store.read_stream(conn, stream_id)]
    assert [e.stream_version for e in stored] == [1]


async def test_racing_writers_that_retry_fill_every_version_exactly_once(
    scratch_pool: asyncpg.Pool,
) -> None:
    store = EventStore(scratch_pool, "test", SystemClock())
    stream_id = stream()

    async def append_until_accepted(n: int) -> int:
        while True:
            try:
                async with store.transaction() as conn:
                    version = await store.version(conn, stream_id)
                    envelopes = await store.append(conn, stream_id, version, [Pinged(n=n)], META)
                return envelopes[0].stream_version
            except ConcurrencyConflict:
                await asyncio.sleep(0)

    versions = await asyncio.gather(*(append_until_accepted(n) for n in range(50)))
    assert sorted(versions) == list(range(1, 51))
    async with store.snapshot() as conn:
        stored = [e async for e in store.read_stream(conn, stream_id)]
    assert [e.stream_version for e in stored] == list(range(1, 51))
    assert stored[0].prev_hash == GENESIS_HASH
    for previous, current in itertools.pairwise(stored):
        assert current.prev_hash == previous.hash
        assert current.is_intact()
    assert sorted(e.data["n"] for e in stored) == list(range(50))


async def test_the_database_refuses_to_update_or_delete_events(scratch_pool: asyncpg.Pool) -> None:
    store = EventStore(scratch_pool, "test", SystemClock())
    stream_id = stream()
    async with store.transaction() as conn:
        await store.append(conn, stream_id, 0, [Pinged(n=1)], META)
    async with scratch_pool.acquire() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("UPDATE events SET event_type = 'Tampered'")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM events")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("TRUNCATE events")
        assert await conn.fetchval("SELECT count(*) FROM events") == 1


async def test_a_late_committing_transaction_is_read_after_earlier_positions_commit(
    scratch_pool: asyncpg.Pool,
) -> None:
    store = EventStore(scratch_pool, "test", SystemClock())
    slow_stream, fast_stream = stream(), stream()
    slow_conn = await scratch_pool.acquire()
    slow_tx = slow_conn.transaction()
    await slow_tx.start()
    try:
        slow = await store.append(slow_conn, slow_stream, 0, [Pinged(n=1)], META)
        async with store.transaction() as conn:
            fast = await store.append(conn, fast_stream, 0, [Pinged(n=2)], META)
        async with scratch_pool.acquire() as conn:
            # the fast transaction took a later position and committed first: a reader
            # following a bare sequence would read it now and skip the slow one forever
            assert await store.read_after(conn, START) == []
        await slow_tx.commit()
    finally:
        await scratch_pool.release(slow_conn)
    async with scratch_pool.acquire() as conn:
        read = await store.read_after(conn, START)
    assert [item.envelope.event_id for item in read] == [slow[0].event_id, fast[0].event_id]
    assert read[0].position < read[1].position


async def test_commit_order_holds_when_transaction_ids_gain_a_digit(
    scratch_pool: asyncpg.Pool,
) -> None:
    store = EventStore(scratch_pool, "test", SystemClock())
    async with scratch_pool.acquire() as conn:
        await conn.execute(
            "CREATE PROCEDURE burn_xids(n int) LANGUAGE plpgsql AS $$"
            " BEGIN FOR i IN 1..n LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END $$"
        )
        current = int(await conn.fetchval("SELECT pg_current_xact_id()::text"))
        boundary = 10 ** len(str(current))  # e.g. 999 -> 1000: "1000" < "999" as text
        stream_id = stream()
        async with store.transaction() as tx:
            await store.append(tx, stream_id, 0, [Pinged(n=0)], META)
        await conn.execute("CALL burn_xids($1)", boundary - current + 1)
    async with store.transaction() as tx:
        await store.append(tx, stream_id, 1, [Pinged(n=1)], META)
    async with scratch_pool.acquire() as conn:
        read = await store.read_after(conn, START)
    mine = [item for item in read if item.envelope.stream_id == stream_id]
    assert [item.envelope.data["n"] for item in mine] == [0, 1]
    assert len(str(mine[1].transaction_id)) > len(str(mine[0].transaction_id))
    checkpoints = [item.checkpoint for item in read]
    assert checkpoints == sorted(checkpoints)


async def test_appends_of_many_streams_at_once_share_statements_and_each_keeps_its_chain(
    scratch_pool: asyncpg.Pool,
) -> None:
    store = EventStore(scratch_pool, "test", SystemClock())
    streams = [stream() for _ in range(20)]
    sizes = GROUP_SIZE.labels("test")
    groups_before = sizes._sum.get()

    async def append_until_accepted(stream_id: str, n: int) -> int:
        while True:
            try:
                async with store.connection() as conn:
                    version = await store.version(conn, stream_id)
                    events = [Pinged(n=n), Pinged(n=n + 1000)] if n % 3 == 0 else [Pinged(n=n)]
                    envelopes = await store.append(conn, stream_id, version, events, META)
                return envelopes[-1].stream_version
            except ConcurrencyConflict:
                await asyncio.sleep(0)

    writers = [append_until_accepted(streams[n % 20], n) for n in range(200)]
    await asyncio.gather(*writers)
    assert sizes._sum.get() - groups_before >= 200  # every append went through the groups
    async with store.snapshot() as conn:
        for index, stream_id in enumerate(streams):
            stored = [e async for e in store.read_stream(conn, stream_id)]
            ns = sorted(e.data["n"] for e in stored)
            mine = [n for n in range(200) if n % 20 == index]
            assert ns == sorted(mine + [n + 1000 for n in mine if n % 3 == 0])
            assert [e.stream_version for e in stored] == list(range(1, len(stored) + 1))
            assert stored[0].prev_hash == GENESIS_HASH
            for previous, current in itertools.pairwise(stored):
                assert current.prev_hash == previous.hash
                assert current.is_intact()
            # a command's events stay together and in order in the log
            positions = await conn.fetch(
                "SELECT stream_version, global_position FROM events WHERE stream_id = $1"
                " ORDER BY stream_version",
                stream_id,
            )
            assert [row["global_position"] for row in positions] == sorted(
                row["global_position"] for row in positions
            )


async def test_a_grouped_append_whose_stream_moved_on_is_refused_alone(
    scratch_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = EventStore(scratch_pool, "test", SystemClock())
    moved, fresh = stream(), stream()
    async with store.connection() as conn:
        await store.append(conn, moved, 0, [Pinged(n=1)], META)
    groups = store._groups
    execute = groups._execute
    statements: list[int] = []
    release = asyncio.Event()

    async def held_first(conn: asyncpg.Connection, writes: Any) -> Any:
        statements.append(len(writes))
        if len(statements) == 1:
            await release.wait()
        return await execute(conn, writes)

    monkeypatch.setattr(groups, "_execute", held_first)

    async def append(stream_id: str, expected: int) -> int | ConcurrencyConflict:
        try:
            async with store.connection() as conn:
                envelopes = await store.append(
                    conn, stream_id, expected, [Pinged(n=2)], META, head=Head(0, GENESIS_HASH)
                )
            return envelopes[0].stream_version
        except ConcurrencyConflict as conflict:
            return conflict

    async def queued(count: int) -> bool:
        return len(groups._queued) >= count

    first = asyncio.create_task(append(stream(), 0))
    await eventually(lambda: asyncio.sleep(0, bool(statements)))  # the first is in flight
    behind = [asyncio.create_task(append(moved, 0)), asyncio.create_task(append(fresh, 0))]
    await eventually(lambda: queued(2))
    release.set()
    stale, accepted = await asyncio.gather(*behind)
    assert await first == 1
    assert statements == [1, 2]  # the two behind the first shared one statement
    assert isinstance(stale, ConcurrencyConflict)
    assert accepted == 1
    async with store.snapshot() as conn:
        assert [e.data["n"] for e in [e async for e in store.read_stream(conn, moved)]] == [1]
        assert [e.data["n"] for e in [e async for e in store.read_stream(conn, fresh)]] == [2]
