"""A service's `events` table whole, named by its schema: the rows an audit walks, the counts a
tool shows, and bulk loads of sealed envelopes for tools that build a log (the bench)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass

import asyncpg

from shared.model.envelope import Envelope
from shared.storage.db import checked_schema
from shared.storage.eventstore import EVENT_COLUMNS

__all__ = [
    "StoredRow",
    "analyze_events",
    "copy_envelopes",
    "copy_events_text",
    "copy_log",
    "count_events",
    "count_streams",
    "has_event_store",
    "stored_rows",
]

_COLUMNS = ", ".join(EVENT_COLUMNS)
_ROWS_SQL = (
    "SELECT stream_id, stream_version, event_id::text AS event_id, event_type, schema_version,"
    " hash, envelope FROM {schema}.events ORDER BY stream_id, stream_version"
)


@dataclass(frozen=True)
class StoredRow:
    """One row of an `events` table: the indexed columns and the envelope text as stored."""

    stream_id: str
    stream_version: int
    event_id: str
    event_type: str
    schema_version: int
    hash: str
    envelope: str

    @classmethod
    def of(cls, record: asyncpg.Record) -> StoredRow:
        return cls(
            stream_id=str(record["stream_id"]),
            stream_version=int(record["stream_version"]),
            event_id=str(record["event_id"]),
            event_type=str(record["event_type"]),
            schema_version=int(record["schema_version"]),
            hash=str(record["hash"]),
            envelope=str(record["envelope"]),
        )

    @classmethod
    def of_envelope(cls, envelope: Envelope) -> StoredRow:
        """The row an envelope is stored as (its columns and its canonical text)."""
        return cls(
            stream_id=envelope.stream_id,
            stream_version=envelope.stream_version,
            event_id=envelope.event_id,
            event_type=envelope.event_type,
            schema_version=envelope.schema_version,
            hash=envelope.hash,
            envelope=envelope.to_json().decode(),
        )


async def has_event_store(conn: asyncpg.Connection, schema: str) -> bool:
    """Whether `<schema>.events` exists."""
    found = await conn.fetchval("SELECT to_regclass($1)", f"{checked_schema(schema)}.events")
    return found is not None


async def count_events(conn: asyncpg.Connection, schema: str) -> int:
    """The number of stored events (an estimate is not enough for a progress bar's total)."""
    return int(await conn.fetchval(f"SELECT count(*) FROM {checked_schema(schema)}.events"))


async def count_streams(conn: asyncpg.Connection, schema: str) -> int:
    """The number of streams in `<schema>.events`."""
    return int(
        await conn.fetchval(
            f"SELECT count(DISTINCT stream_id) FROM {checked_schema(schema)}.events"
        )
    )


async def stored_rows(
    conn: asyncpg.Connection, schema: str, *, prefetch: int = 500
) -> AsyncGenerator[StoredRow, None]:
    """Every row of `<schema>.events` in `(stream_id, stream_version)` order, from a
    server-side cursor (inside the caller's transaction)."""
    query = _ROWS_SQL.format(schema=checked_schema(schema))
    async for record in conn.cursor(query, prefetch=prefetch):
        yield StoredRow.of(record)


async def copy_envelopes(conn: asyncpg.Connection, envelopes: Sequence[Envelope]) -> int:
    """Load sealed envelopes into the connection's `events` as they are (no version check:
    the caller chained them on their streams' heads), with one COPY; returns how many."""
    records = [
        (
            uuid.UUID(envelope.event_id),
            envelope.stream_id,
            envelope.stream_version,
            envelope.event_type,
            envelope.schema_version,
            envelope.occurred,
            envelope.to_json().decode(),
            envelope.hash,
        )
        for envelope in envelopes
    ]
    await conn.copy_records_to_table("events", records=records, columns=list(EVENT_COLUMNS))
    return len(records)


async def copy_events_text(conn: asyncpg.Connection, rows: bytes, *, schema: str) -> None:
    """Load rows in COPY's text format, their fields in `EVENT_COLUMNS` order, into
    `<schema>.events` (a tool that seals envelopes by the million writes them so)."""

    async def source() -> AsyncIterator[bytes]:
        yield rows

    await conn.copy_to_table(
        "events",
        source=source(),
        columns=list(EVENT_COLUMNS),
        schema_name=checked_schema(schema),
        format="text",
    )


async def copy_log(conn: asyncpg.Connection, source: str, target: str, limit: int) -> None:
    """Copy the first `limit` events of `<source>.events`, in log order, into the empty
    `<target>.events`."""
    await conn.execute(
        f"INSERT INTO {checked_schema(target)}.events ({_COLUMNS}) SELECT {_COLUMNS}"
        f" FROM {checked_schema(source)}.events ORDER BY global_position LIMIT $1",
        limit,
    )


async def analyze_events(conn: asyncpg.Connection, schema: str, *, vacuum: bool = False) -> None:
    """Refresh the planner's statistics of `<schema>.events` (and `vacuum` it first)."""
    verb = "VACUUM (ANALYZE)" if vacuum else "ANALYZE"
    await conn.execute(f"{verb} {checked_schema(schema)}.events")
