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
from typing import Any, NamedTuple

import asyncpg

from shared.model.clock import Clock
from shared.model.envelope import (
    GENESIS_HASH,
    Envelope,
    parse_time,
)
from shared.model.events import DomainEvent
from shared.model.log import ConcurrencyConflict, EventMetadata, Head, chained
from shared.storage.commits import CommitSignal, Wakeup
from shared.storage.group_commit import GroupCommit

__all__ = [
    "EVENT_COLUMNS",
    "START",
    "Checkpoint",
    "EventStore",
    "Segment",
    "StoredEvent",
    "event_by_id",
    "events_at",
    "last_envelope",
    "read_after",
    "read_segmented",
    "stored_envelopes",
    "stream_exists",
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


# A request waits this long for a pooled connection before it answers 503.
ACQUIRE_TIMEOUT_SECONDS = 10.0

EVENT_COLUMNS = (
    "event_id",
    "stream_id",
    "stream_version",
    "event_type",
    "schema_version",
    "occurred_at",
    "envelope",
    "hash",
)
"""The columns a sealed envelope is stored in, in the order appends and bulk loads give them."""

_INSERT_INTO = f"INSERT INTO events ({', '.join(EVENT_COLUMNS)})"
# A stored event, as `StoredEvent.of` reads it.
_STORED = (
    "SELECT global_position, transaction_id::text AS transaction_id, event_id::text AS event_id,"
    " stream_id, stream_version, event_type, schema_version, occurred_at, envelope"
)
# Never past a transaction still open: one that took its positions early and commits late.
_COMMITTED = " transaction_id < pg_snapshot_xmin(pg_current_snapshot())"
_AFTER = " (transaction_id, global_position) > ($1::text::xid8, $2)"
# Qualified: a bare `transaction_id` would sort by the text alias above ("1040" < "884").
_IN_LOG_ORDER = " ORDER BY events.transaction_id, events.global_position"


def _segment_of(count: str) -> str:
    """The stream-hash segment of a row among `count` (PostgreSQL's `hashtext`)."""
    return f"(hashtext(stream_id) & 2147483647) % {count}"


_HEAD_SQL = (
    "SELECT stream_version, hash FROM events WHERE stream_id = $1 "
    "ORDER BY stream_version DESC LIMIT 1"
)
_LAST_SQL = "SELECT envelope FROM events WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1"
# Rows inserted only if the stream still ends at the version decided against ($8, $9): one
# statement, atomic without a transaction, and never a gap in versions. Several events come
# as arrays; one (the common case) as plain parameters, with no arrays to encode.
_APPEND_INTO = f"WITH appended AS ({_INSERT_INTO} "
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
_AFTER_SQL = f"{_STORED} FROM events WHERE{_AFTER} AND{_COMMITTED}{_IN_LOG_ORDER} LIMIT $3"
_SEGMENT_AFTER_SQL = (
    f"{_STORED} FROM events WHERE{_AFTER} AND{_COMMITTED} AND {_segment_of('$4')} = $5"
    f"{_IN_LOG_ORDER} LIMIT $3"
)
# A round of the projection runner: every segment's events, each with its segment.
_SEGMENTED_SQL = (
    f"{_STORED}, {_segment_of('$4')} AS segment FROM events WHERE{_AFTER} AND{_COMMITTED}"
    f" AND ($5::integer[] IS NULL OR {_segment_of('$4')} = ANY($5)){_IN_LOG_ORDER} LIMIT $3"
)
# Only what a rebuild's fold reads: the envelope (and its position, to find it should it fail).
_SCAN_SQL = (
    f"SELECT global_position, envelope FROM events WHERE{_COMMITTED}"
    f" AND ($1::integer IS NULL OR {_segment_of('$1')} = $2)"
    f" AND ($3::text[] IS NULL OR event_type = ANY($3)){_IN_LOG_ORDER}"
)
_AT_SQL = f"{_STORED} FROM events WHERE global_position = ANY($1::bigint[])"
_BY_ID_SQL = f"{_STORED} FROM events WHERE event_id::text = $1"
_STREAM_AFTER_SQL = (
    "SELECT envelope FROM events WHERE stream_id = $1 AND stream_version > $2"
    " ORDER BY stream_version"
)
_STREAM_UNTIL_SQL = (
    "SELECT envelope FROM events WHERE stream_id = $1"
    " AND ($2::timestamptz IS NULL OR occurred_at <= $2) ORDER BY stream_version"
)
_STORED_PAGE_SQL = (
    "SELECT stream_version, envelope FROM events WHERE stream_id = $1 AND stream_version > $2"
    " ORDER BY stream_version LIMIT $3"
)
_EXISTS_SQL = "SELECT EXISTS (SELECT 1 FROM events WHERE stream_id = $1)"


# Appends of several streams in one statement (group commit): each stream's rows go in only if
# that stream still ends at the version its command decided against; the others' do anyway.
_APPEND_MANY_SQL = (
    "WITH r AS (SELECT * FROM unnest($1::text[], $2::text[], $3::integer[], $4::text[],"
    " $5::integer[], $6::timestamptz[], $7::text[], $8::text[], $9::integer[]) WITH ORDINALITY"
    " AS r(event_id, stream_id, stream_version, event_type, schema_version, occurred_at,"
    " envelope, hash, expected, ord)),"
    " fit AS (SELECT DISTINCT r.stream_id FROM r WHERE (SELECT coalesce(max(e.stream_version), 0)"
    f" FROM events e WHERE e.stream_id = r.stream_id) = r.expected), appended AS ({_INSERT_INTO}"
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
        self.commits = CommitSignal(pool, producer, self.appended, self.appended_elsewhere)
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
        async for record in conn.cursor(_STREAM_UNTIL_SQL, stream_id, until, prefetch=prefetch):
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


async def read_segmented(
    conn: asyncpg.Connection,
    checkpoint: Checkpoint,
    limit: int,
    *,
    segments: int,
    only: Sequence[int] | None = None,
) -> list[tuple[StoredEvent, int]]:
    """The committed events after a checkpoint, in commit-safe order, at most `limit`, each
    with its stream-hash segment among `segments`; with `only`, just those segments'."""
    records = await conn.fetch(
        _SEGMENTED_SQL,
        str(checkpoint.transaction_id),
        checkpoint.position,
        limit,
        segments,
        None if only is None else list(only),
    )
    return [(StoredEvent.of(record), int(record["segment"])) for record in records]


async def scan_log(
    conn: asyncpg.Connection,
    *,
    segment: Segment | None = None,
    event_types: Sequence[str] | None = None,
) -> Any:
    """A cursor (inside a transaction) over the committed log in commit-safe order: rows of
    `(global_position, envelope text)`, of one segment's streams and of some event types
    only, when given."""
    return await conn.cursor(
        _SCAN_SQL,
        None if segment is None else segment.count,
        None if segment is None else segment.index,
        None if event_types is None else list(event_types),
    )


async def events_at(conn: asyncpg.Connection, positions: Sequence[int]) -> list[StoredEvent]:
    """The stored events at these global positions (those that exist), in no set order."""
    rows = await conn.fetch(_AT_SQL, list(positions))
    return [StoredEvent.of(row) for row in rows]


async def event_by_id(conn: asyncpg.Connection, event_id: str) -> StoredEvent | None:
    """The stored event with this id, or None."""
    row = await conn.fetchrow(_BY_ID_SQL, event_id)
    return None if row is None else StoredEvent.of(row)


async def stored_envelopes(
    conn: asyncpg.Connection, stream_id: str, after_version: int, limit: int
) -> list[tuple[int, str]]:
    """A stream's `(version, envelope text exactly as stored)` after `after_version`, in
    order, at most `limit`."""
    rows = await conn.fetch(_STORED_PAGE_SQL, stream_id, after_version, limit)
    return [(int(row["stream_version"]), str(row["envelope"])) for row in rows]


async def stream_exists(conn: asyncpg.Connection, stream_id: str) -> bool:
    """Whether the stream has any event."""
    return bool(await conn.fetchval(_EXISTS_SQL, stream_id))


async def last_envelope(conn: asyncpg.Connection, stream_id: str) -> Envelope | None:
    """A stream's last envelope, or None for a stream with no events."""
    raw = await conn.fetchval(_LAST_SQL, stream_id)
    return None if raw is None else Envelope.model_validate_json(raw)
