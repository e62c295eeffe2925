"""Parked events: what a projection or a consumer could not apply, set aside instead of
stalling everything behind it (as KurrentDB parks what a subscriber cannot handle).

A parked entry names the subscriber (`kind` projection or consumer, and its `name`), the
event, the error, when it was first and last seen and how many attempts failed. Parking the
same event again counts another attempt. An admin retries an entry (it is applied now, or
stays parked with the new error) or skips it. Open entries are counted in `/metrics`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg
from prometheus_client import Counter, Gauge

__all__ = [
    "PARKED",
    "ParkedEvent",
    "Parking",
    "count_open",
    "find",
    "list_parked",
    "park",
    "record_failure",
    "resolve",
]

Kind = Literal["projection", "consumer"]
Status = Literal["parked", "retried", "skipped"]

PARKED = Gauge(
    "rapport_parked_events", "Events parked and not yet retried or skipped", ["service", "kind"]
)
PARKINGS = Counter(
    "rapport_parkings_total", "Times an event was parked", ["service", "kind", "name"]
)

_COLUMNS = (
    "id, kind, name, event_id, stream_id, event_type, position, topic, message_key, message,"
    " headers, error, status, attempts, first_seen, last_seen, resolved_at"
)


@dataclass(frozen=True)
class Parking:
    """What to park: the subscriber, the event (as far as it could be read) and the error."""

    kind: Kind
    name: str
    event_id: str
    message: bytes
    error: str
    stream_id: str | None = None
    event_type: str | None = None
    position: int | None = None
    topic: str | None = None
    message_key: bytes | None = None
    headers: Sequence[tuple[str, bytes]] = ()


@dataclass(frozen=True)
class ParkedEvent:
    """One parked entry as stored."""

    id: int
    kind: Kind
    name: str
    event_id: str
    stream_id: str | None
    event_type: str | None
    position: int | None
    topic: str | None
    message_key: bytes | None
    message: bytes
    headers: list[tuple[str, bytes]]
    error: str
    status: Status
    attempts: int
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None

    @classmethod
    def of(cls, row: asyncpg.Record) -> ParkedEvent:
        headers = [(name, value.encode("latin-1")) for name, value in json.loads(row["headers"])]
        return cls(**{**dict(row), "headers": headers})

    def public(self) -> dict[str, Any]:
        """The entry as the admin API shows it (no message body: it may hold sealed data)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "event_id": self.event_id,
            "stream_id": self.stream_id,
            "event_type": self.event_type,
            "topic": self.topic,
            "error": self.error,
            "status": self.status,
            "attempts": self.attempts,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "resolved_at": None if self.resolved_at is None else self.resolved_at.isoformat(),
        }


async def park(conn: asyncpg.Connection, service: str, parking: Parking) -> int:
    """Record (or count again) a parked event; returns its id."""
    headers = json.dumps([(name, value.decode("latin-1")) for name, value in parking.headers])
    parked_id: int = await conn.fetchval(
        "INSERT INTO parked (kind, name, event_id, stream_id, event_type, position, topic,"
        " message_key, message, headers, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
        " $10::jsonb, $11) ON CONFLICT (kind, name, event_id) DO UPDATE SET"
        " attempts = parked.attempts + 1, last_seen = now(), error = EXCLUDED.error,"
        " status = 'parked', resolved_at = NULL RETURNING id",
        parking.kind,
        parking.name,
        parking.event_id,
        parking.stream_id,
        parking.event_type,
        parking.position,
        parking.topic,
        parking.message_key,
        parking.message,
        headers,
        parking.error[:4000],
    )
    PARKINGS.labels(service, parking.kind, parking.name).inc()
    return parked_id


async def find(
    conn: asyncpg.Connection, parked_id: int, *, lock: bool = False
) -> ParkedEvent | None:
    """One entry by id (`lock` holds its row until the transaction ends)."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM parked WHERE id = $1" + (" FOR UPDATE" if lock else ""),
        parked_id,
    )
    return None if row is None else ParkedEvent.of(row)


async def list_parked(
    conn: asyncpg.Connection, *, status: Status | None, after_id: int, limit: int
) -> list[ParkedEvent]:
    """Entries in id order, optionally of one status, paged by `after_id`."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM parked WHERE ($1::text IS NULL OR status = $1) AND id > $2"
        " ORDER BY id LIMIT $3",
        status,
        after_id,
        limit,
    )
    return [ParkedEvent.of(row) for row in rows]


async def resolve(conn: asyncpg.Connection, parked_id: int, status: Status) -> None:
    """Close an entry as retried (applied) or skipped."""
    await conn.execute(
        "UPDATE parked SET status = $2, resolved_at = now(), last_seen = now() WHERE id = $1",
        parked_id,
        status,
    )


async def record_failure(conn: asyncpg.Connection, parked_id: int, error: str) -> None:
    """A retry failed again: count it and keep the newest error."""
    await conn.execute(
        "UPDATE parked SET attempts = attempts + 1, last_seen = now(), error = $2 WHERE id = $1",
        parked_id,
        error[:4000],
    )


async def count_open(pool: asyncpg.Pool, service: str) -> None:
    """Set the gauge of open entries from the table."""
    rows = await pool.fetch(
        "SELECT kind, count(*) AS open FROM parked WHERE status = 'parked' GROUP BY kind"
    )
    found = {row["kind"]: int(row["open"]) for row in rows}
    for kind in ("projection", "consumer"):
        PARKED.labels(service, kind).set(found.get(kind, 0))
