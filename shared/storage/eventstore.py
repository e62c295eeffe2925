"""Append-only, hash-chained event store on PostgreSQL.

Appends use optimistic concurrency on `(stream_id, stream_version)`: writers to different
streams never wait for each other. Readers of the whole log follow the `xid8` horizon, so a
transaction that took its positions early and commits late is never skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import asyncpg

from shared.model.clock import Clock
from shared.model.envelope import (
    GENESIS_HASH,
    Envelope,
    parse_time,
)
from shared.model.events import DomainEvent
from shared.model.log import ConcurrencyConflict, EventMetadata, Head, chained
from shared.storage.group_commit import GroupCommit

__all__ = [
    "START",
    "Checkpoint",
    "EventStore",
    "Segment",
    "StoredEvent",
    "Wakeup",
    "find_checkpoint",
    "load_checkpoint",
    "read_after",
    "save_checkpoint",
]


class Checkpoint(NamedTuple):
    """A reader's place in the log: the last (transaction id, global position) it handled."""

    transaction_id: int
    position: int


START = Checkpoint(0, 0)


@dataclass(frozen=True)
class Segment:
    """One of `count` stream-hash segments of the log: streams whose hash modulo `count` is
    `index` (PostgreSQL's `hashtext`, so every reader agrees)."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


class StoredEvent:
    """A stored event with its place in the log: the indexed columns, the envelope text
    exactly as stored, and the envelope parsed from it on first use."""

    __slots__ = (
        "_envelope",
        "event_id",
        "event_type",
        "occurred_at",
        "position",
        "raw",
        "schema_version",
        "stream_id",
        "stream_version",
        "transaction_id",
    )

    def __init__(
        self,
        *,
        position: int,
        transaction_id: int,
        event_id: str,
        stream_id: str,
        stream_version: int,
        event_type: str,
        schema_version: int,
        occurred_at: datetime,
        raw: str,
    ) -> None:
        self.position = position
        self.transaction_id = transaction_id
        self.event_id = event_id
        self.stream_id = stream_id
        self.stream_version = stream_version
        self.event_type = event_type
        self.schema_version = schema_version
        self.occurred_at = occurred_at
        self.raw = raw
        self._envelope: Envelope | None = None

    @classmethod
    def of(cls, record: asyncpg.Record) -> StoredEvent:
        return cls(
            position=int(record["global_position"]),
            transaction_id=int(record["transaction_id"]),
            event_id=str(record["event_id"]),
            stream_id=record["stream_id"],
            stream_version=record["stream_version"],
            event_type=record["event_type"],
            schema_version=record["schema_version"],
            occurred_at=record["occurred_at"],
            raw=record["envelope"],
        )

    @property
    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.transaction_id, self.position)

    @property
    def envelope(self) -> Envelope:
        """The stored envelope; raises (pydantic's ValidationError) if the row was tampered
        with so that it no longer has the contract's shape."""
        if self._envelope is None:
            self._envelope = Envelope.model_validate_json(self.raw)
        return self._envelope


class Wakeup:
    """An in-process signal: fired after a commit that appended, awaited by background loops."""

    def __init__(self) -> None:
        self._events: list[asyncio.Event] = []

    def subscribe(self, event: asyncio.Event | None = None) -> asyncio.Event:
        """An event set at every `fire` (`event`, or a new one); the subscriber clears it."""
        event = event or asyncio.Event()
        self._events.append(event)
        return event

    def fire(self) -> None:
        """Wake every subscriber."""
        for event in self._events:
            event.set()


# A request waits this long for a pooled connection before it answers 503.
ACQUIRE_TIMEOUT_SECONDS = 10.0

_HEAD_SQL = (
    "SELECT stream_version, hash FROM events WHERE stream_id = $1 "
    "ORDER BY stream_version DESC LIMIT 1"
)
# Rows inserted only if the stream still ends at the version decided against ($8, $9): one
# statement, atomic without a transaction, and never a gap in versions. Several events come
# as arrays; one (the common case) as plain parameters, with no arrays to encode.
_APPEND_INTO = (
    "WITH appended AS (INSERT INTO events (event_id, stream_id, stream_version, event_type,"
    " schema_version, occurred_at, envelope, hash) "
)
_APPEND_GUARD = (
    " WHERE (SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = $8) = $9"
    " RETURNING 1) SELECT count(*) FROM appended"
)
_APPEND_SQL = (
    _APPEND_INTO
    + "SELECT r.event_id::uuid, $8, r.stream_version, r.event_type, r.schema_version, $5,"
    " r.envelope::json, r.hash"
    " FROM unnest($1::text[], $2::integer[], $3::text[], $4::integer[], $6::text[], $7::text[])"
    " AS r(event_id, stream_version, event_type, schema_version, envelope, hash)" + _APPEND_GUARD
)
_APPEND_ONE_SQL = (
    _APPEND_INTO + "SELECT $1::text::uuid, $8, $2, $3, $4, $5, $6::text::json, $7" + _APPEND_GUARD
)
_SEGMENT_AFTER_SQL = (
    "SELECT global_position, transaction_id::text AS transaction_id, event_id::text AS event_id,"
    " stream_id, stream_version, event_type, schema_version, occurred_at, envelope FROM events"
    " WHERE (transaction_id, global_position) > ($1::text::xid8, $2)"
    " AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())"
    " AND (hashtext(stream_id) & 2147483647) % $4 = $5"
    " ORDER BY events.transaction_id, events.global_position LIMIT $3"
)
_STREAM_AFTER_SQL = (
    "SELECT envelope FROM events WHERE stream_id = $1 AND stream_version > $2"
    " ORDER BY stream_version"
)
_AFTER_SQL = (
    "SELECT global_position, transaction_id::text AS transaction_id, event_id::text AS event_id,"
    " stream_id, stream_version, event_type, schema_version, occurred_at, envelope FROM events"
    " WHERE (transaction_id, global_position) > ($1::text::xid8, $2)"
    " AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())"
    # Qualified: a bare `transaction_id` would sort by the text alias above ("1040" < "884").
    " ORDER BY events.transaction_id, events.global_position LIMIT $3"
)


# Appends of several streams in one statement (group commit): each stream's rows go in only if
# that stream still ends at the version its command decided against; the others' do anyway.
_APPEND_MANY_SQL = (
    "WITH r AS (SELECT * FROM unnest($1::text[], $2::text[], $3::integer[], $4::text[],"
    " $5::integer[], $6::timestamptz[], $7::text[], $8::text[], $9::integer[]) WITH ORDINALITY"
    " AS r(event_id, stream_id, stream_version, event_type, schema_version, occurred_at,"
    " envelope, hash, expected, ord)),"
    " fit AS (SELECT DISTINCT r.stream_id FROM r WHERE (SELECT coalesce(max(e.stream_version), 0)"
    " FROM events e WHERE e.stream_id = r.stream_id) = r.expected),"
    " appended AS (INSERT INTO events (event_id, stream_id, stream_version, event_type,"
    " schema_version, occurred_at, envelope, hash)"
    " SELECT r.event_id::uuid, r.stream_id, r.stream_version, r.event_type, r.schema_version,"
    " r.occurred_at, r.envelope::json, r.hash FROM r"
    " WHERE r.stream_id IN (SELECT stream_id FROM fit) ORDER BY r.ord RETURNING stream_id)"
    " SELECT stream_id, count(*) AS inserted FROM appended GROUP BY stream_id"
)


@dataclass(frozen=True)
class _Append:
    """One command's events, to go in after `expected` of their stream."""

    stream_id: str
    expected: int
    envelopes: list[Envelope]
    occurred: datetime


def _stream_of(write: _Append) -> str:
    return write.stream_id


async def _insert(conn: asyncpg.Connection, write: _Append) -> int:
    """One append's statement; the rows inserted (none when the stream moved on)."""
    envelopes = write.envelopes
    if len(envelopes) == 1:
        only = envelopes[0]
        inserted: int = await conn.fetchval(
            _APPEND_ONE_SQL,
            only.event_id,
            only.stream_version,
            only.event_type,
            only.schema_version,
            write.occurred,
            only.to_json().decode(),
            only.hash,
            write.stream_id,
            write.expected,
        )
        return inserted
    inserted = await conn.fetchval(
        _APPEND_SQL,
        [e.event_id for e in envelopes],
        [e.stream_version for e in envelopes],
        [e.event_type for e in envelopes],
        [e.schema_version for e in envelopes],
        write.occurred,
        [e.to_json().decode() for e in envelopes],
        [e.hash for e in envelopes],
        write.stream_id,
        write.expected,
    )
    return inserted


async def _insert_many(conn: asyncpg.Connection, writes: Sequence[_Append]) -> list[int]:
    """Several appends (one per stream) in one statement; the rows each inserted."""
    if len(writes) == 1:
        return [await _insert(conn, writes[0])]
    rows = [(write, envelope) for write in writes for envelope in write.envelopes]
    counts = await conn.fetch(
        _APPEND_MANY_SQL,
        [e.event_id for _, e in rows],
        [w.stream_id for w, _ in rows],
        [e.stream_version for _, e in rows],
        [e.event_type for _, e in rows],
        [e.schema_version for _, e in rows],
        [w.occurred for w, _ in rows],
        [e.to_json().decode() for _, e in rows],
        [e.hash for _, e in rows],
        [w.expected for w, _ in rows],
    )
    inserted = {row["stream_id"]: int(row["inserted"]) for row in counts}
    return [inserted.get(write.stream_id, 0) for write in writes]


class EventStore:
    """One service's event store. `producer` names the service in every envelope."""

    def __init__(self, pool: asyncpg.Pool, producer: str, clock: Clock) -> None:
        self.pool = pool
        self.producer = producer
        self.clock = clock
        self.appended = Wakeup()  # this process committed events
        self.appended_elsewhere = Wakeup()  # another instance of the service did (NOTIFY)
        self._commit_hooks: dict[int, list[Callable[[], None]]] = {}
        self._autocommit: set[int] = set()
        self._wrote: set[int] = set()  # connections that appended since they were taken
        self._groups = GroupCommit(_insert_many, _stream_of, service=producer)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection in a transaction; its `after_commit` hooks run and, if it appended,
        background readers are woken after it commits."""
        async with self._acquired() as conn:
            hooks: list[Callable[[], None]] = []
            self._commit_hooks[id(conn)] = hooks
            try:
                async with conn.transaction():
                    yield conn
            finally:
                del self._commit_hooks[id(conn)]
                wrote = id(conn) in self._wrote
                self._wrote.discard(id(conn))
            for hook in hooks:
                hook()
            if wrote:
                self.appended.fire()

    @asynccontextmanager
    async def _acquired(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection, or TimeoutError after `ACQUIRE_TIMEOUT_SECONDS` (bounded with
        `asyncio.timeout`: the pool's own timeout runs every acquire as a task of its own)."""
        async with asyncio.timeout(ACQUIRE_TIMEOUT_SECONDS):
            conn = await self.pool.acquire()
        try:
            yield conn
        finally:
            await self.pool.release(conn)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection without a transaction: each statement commits on its own (an append
        is one statement). Background readers are woken afterwards if it appended."""
        async with self._acquired() as conn:
            self._autocommit.add(id(conn))
            try:
                yield conn
            finally:
                self._autocommit.discard(id(conn))
                wrote = id(conn) in self._wrote
                self._wrote.discard(id(conn))
            if wrote:
                self.appended.fire()

    def after_commit(self, conn: asyncpg.Connection, hook: Callable[[], None]) -> None:
        """Run `hook` once what `conn` did so far is committed: at the end of a `transaction()`,
        at once on a `connection()`. On a connection this store does not manage, never."""
        hooks = self._commit_hooks.get(id(conn))
        if hooks is not None:
            hooks.append(hook)
        elif id(conn) in self._autocommit:
            hook()

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[asyncpg.Connection]:
        """A read-only, repeatable-read connection for streaming reads."""
        async with (
            self._acquired() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            yield conn

    async def append(
        self,
        conn: asyncpg.Connection,
        stream_id: str,
        expected_version: int | None,
        events: Sequence[DomainEvent],
        metadata: EventMetadata,
        *,
        protect: Callable[[str, str], str] | None = None,
        head: Head | None = None,
    ) -> list[Envelope]:
        """Append events to a stream, atomically, in one statement.

        `expected_version` is the version the caller decided against (0 for a new stream,
        None to append wherever the stream stands). `head`, when the caller folded the stream
        up to `expected_version`, is its last version and hash: no lookup is needed, and the
        insert itself checks that the stream still ends there. `protect` encrypts personal
        fields. Inside a transaction, make the append its first write, so its transaction id
        orders it after every event it read. Raises ConcurrencyConflict when the stream moved
        on; nothing is written then.
        """
        if not events:
            return []
        if head is None or expected_version is None or head.version != expected_version:
            head = await self.head(conn, stream_id)
            if expected_version is not None and head.version != expected_version:
                raise ConcurrencyConflict(stream_id, expected_version, head.version)
        recorded_at = self.clock.now()
        envelopes = chained(
            stream_id,
            head,
            events,
            metadata,
            producer=self.producer,
            recorded_at=recorded_at,
            protect=protect,
        )
        occurred = parse_time(envelopes[0].occurred_at)
        write = _Append(stream_id, head.version, envelopes, occurred)
        try:
            if id(conn) in self._autocommit:  # a statement of its own: grouped with others'
                inserted = await self._groups.submit(conn, write)
            else:
                inserted = await _insert(conn, write)
        except asyncpg.UniqueViolationError as error:
            raise ConcurrencyConflict(stream_id, head.version, None) from error
        if inserted != len(envelopes):
            raise ConcurrencyConflict(stream_id, head.version, None)
        self._wrote.add(id(conn))
        return envelopes

    async def head(self, conn: asyncpg.Connection, stream_id: str) -> Head:
        """The stream's last version and hash (version 0 and the genesis hash if empty)."""
        row = await conn.fetchrow(_HEAD_SQL, stream_id)
        if row is None:
            return Head(0, GENESIS_HASH)
        return Head(int(row["stream_version"]), str(row["hash"]))

    async def read_stream_after(
        self, conn: asyncpg.Connection, stream_id: str, version: int
    ) -> list[Envelope]:
        """A stream's events after `version`, in order, in one round trip (no cursor)."""
        rows = await conn.fetch(_STREAM_AFTER_SQL, stream_id, version)
        return [Envelope.model_validate_json(row["envelope"]) for row in rows]

    async def version(self, conn: asyncpg.Connection, stream_id: str) -> int:
        """The stream's current version (0 for a stream with no events)."""
        return (await self.head(conn, stream_id)).version

    async def read_stream(
        self,
        conn: asyncpg.Connection,
        stream_id: str,
        *,
        until: datetime | None = None,
        prefetch: int = 200,
    ) -> AsyncIterator[Envelope]:
        """Stream one stream in version order (inside a transaction), optionally up to a time."""
        query = (
            "SELECT envelope FROM events WHERE stream_id = $1"
            " AND ($2::timestamptz IS NULL OR occurred_at <= $2) ORDER BY stream_version"
        )
        async for record in conn.cursor(query, stream_id, until, prefetch=prefetch):
            yield Envelope.model_validate_json(record["envelope"])

    async def read_after(
        self,
        conn: asyncpg.Connection,
        checkpoint: Checkpoint,
        limit: int = 500,
        *,
        segment: Segment | None = None,
    ) -> list[StoredEvent]:
        """The next committed events after a checkpoint, in commit-safe order, at most
        `limit`; with a `segment`, only the streams that hash into it."""
        return await read_after(conn, checkpoint, limit, segment=segment)


async def read_after(
    conn: asyncpg.Connection,
    checkpoint: Checkpoint,
    limit: int = 500,
    *,
    segment: Segment | None = None,
) -> list[StoredEvent]:
    """The committed events of the connection's `events` after a checkpoint, in commit-safe
    order (never past a transaction still open), at most `limit`; with a `segment`, only the
    streams that hash into it."""
    if segment is None:
        records = await conn.fetch(
            _AFTER_SQL, str(checkpoint.transaction_id), checkpoint.position, limit
        )
    else:
        records = await conn.fetch(
            _SEGMENT_AFTER_SQL,
            str(checkpoint.transaction_id),
            checkpoint.position,
            limit,
            segment.count,
            segment.index,
        )
    return [StoredEvent.of(record) for record in records]


async def load_checkpoint(conn: asyncpg.Connection, name: str, *, lock: bool = False) -> Checkpoint:
    """Read (creating at the start of the log if new) a named checkpoint; `lock` holds its
    row till commit."""
    await conn.execute(
        "INSERT INTO checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", name
    )
    found = await find_checkpoint(conn, name, lock=lock)
    assert found is not None
    return found


async def find_checkpoint(
    conn: asyncpg.Connection, name: str, *, lock: bool = False
) -> Checkpoint | None:
    """A named checkpoint, or None if there is none; `lock` holds its row till commit."""
    row = await conn.fetchrow(
        "SELECT transaction_id::text AS transaction_id, global_position FROM checkpoints"
        " WHERE name = $1" + (" FOR UPDATE" if lock else ""),
        name,
    )
    if row is None:
        return None
    return Checkpoint(int(row["transaction_id"]), int(row["global_position"]))


async def save_checkpoints(
    conn: asyncpg.Connection, names: Sequence[str], checkpoint: Checkpoint
) -> None:
    """Move several named checkpoints to the same place, in one statement."""
    if names:
        await conn.execute(
            "UPDATE checkpoints SET transaction_id = $2::text::xid8, global_position = $3,"
            " updated_at = now() WHERE name = ANY($1::text[])",
            list(names),
            str(checkpoint.transaction_id),
            checkpoint.position,
        )


async def save_checkpoint(
    conn: asyncpg.Connection, name: str, checkpoint: Checkpoint, *, create: bool = False
) -> None:
    """Move a named checkpoint to the last event a reader handled (`create`: a new one)."""
    if create:
        await conn.execute(
            "INSERT INTO checkpoints (name, transaction_id, global_position)"
            " VALUES ($1, $2::text::xid8, $3) ON CONFLICT (name) DO NOTHING",
            name,
            str(checkpoint.transaction_id),
            checkpoint.position,
        )
        return
    await conn.execute(
        "UPDATE checkpoints SET transaction_id = $2::text::xid8, global_position = $3,"
        " updated_at = now() WHERE name = $1",
        name,
        str(checkpoint.transaction_id),
        checkpoint.position,
    )
