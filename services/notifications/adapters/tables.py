"""SQL for the notifications service's operational tables: webhooks, the queue of notifications
waiting to fall due, deliveries (claimed with FOR UPDATE SKIP LOCKED under a lease) and events
parked until their engagement's parties are known.

Every query takes the unit of work it runs in (`shared.storage.units.on_connection`): the use
cases hand it over, only this module sees its connection. Claims run in their own short
transactions: row locks assign a transaction id, and an append
must be the first write of its transaction to keep the log in commit-safe order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.notifications.domain.delivery import Notice
from shared.model.envelope import Envelope, parse_time
from shared.storage.units import on_connection


@dataclass(frozen=True)
class DueNotification:
    notification_id: str
    engagement_id: str
    recipient: str


@dataclass(frozen=True)
class Claimed:
    """One delivery attempt this worker holds the lease for."""

    notice: Notice
    webhook_id: str
    url: str
    secret: str
    attempt: int
    claim: str

    @property
    def notification_id(self) -> str:
        return self.notice.notification_id

    @property
    def engagement_id(self) -> str:
        return self.notice.engagement_id


@on_connection
async def lock_stream(conn: asyncpg.Connection, engagement_id: str) -> None:
    """Serialise writers of one engagement's notifications stream until the transaction ends.

    An advisory lock takes no transaction id, so a following append stays the first write.
    """
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"notifications:{engagement_id}"
    )


@on_connection
async def webhooks_of_recipient_locked(conn: asyncpg.Connection, recipient: str) -> int:
    """How many webhooks `recipient` has, counted under a lock on that recipient held until
    the transaction ends: concurrent registrations for one recipient count one after another,
    each seeing the ones committed before it (READ COMMITTED takes a snapshot per statement).

    The recipient is the key of both the lock and the count, here only. An advisory lock takes
    no transaction id and no row lock, so nothing else waits on it.
    """
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"webhooks:{recipient}"
    )
    count: int = await conn.fetchval(
        "SELECT count(*) FROM webhooks WHERE recipient = $1", recipient
    )
    return count


@on_connection
async def insert_webhook(
    conn: asyncpg.Connection,
    webhook_id: str,
    recipient: str,
    url: str,
    secret: str,
    created_by: str,
    at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO webhooks (webhook_id, recipient, url, secret, created_by, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        webhook_id,
        recipient,
        url,
        secret,
        created_by,
        at,
    )


@on_connection
async def webhooks_for(conn: asyncpg.Connection, recipient: str) -> list[str]:
    """Webhooks a recipient's notifications go to: its own and every `*` one."""
    rows = await conn.fetch(
        "SELECT webhook_id::text AS webhook_id FROM webhooks"
        " WHERE recipient = $1 OR recipient = '*' ORDER BY webhook_id",
        recipient,
    )
    return [str(row["webhook_id"]) for row in rows]


@on_connection
async def enqueue(conn: asyncpg.Connection, scheduled: Sequence[Envelope]) -> None:
    """Queue NotificationScheduled events until they fall due (same transaction as the append)."""
    rows = [
        (
            envelope.data["notification_id"],
            envelope.data["engagement_id"],
            envelope.data["kind"],
            envelope.data["recipient"],
            parse_time(envelope.data["due_at"]),
            envelope.data["due_at"],
            envelope.occurred_at,
        )
        for envelope in scheduled
        if envelope.event_type == "NotificationScheduled"
    ]
    if rows:
        await conn.executemany(
            "INSERT INTO notification_queue (notification_id, engagement_id, kind, recipient,"
            " due_at, due_at_text, created_at_text) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " ON CONFLICT (notification_id) DO NOTHING",
            rows,
        )


@on_connection
async def park(conn: asyncpg.Connection, envelope: Envelope) -> None:
    await conn.execute(
        "INSERT INTO parked_events (event_id, engagement_id, envelope) VALUES ($1, $2, $3::json)"
        " ON CONFLICT (event_id) DO NOTHING",
        envelope.event_id,
        envelope.stream_id,
        envelope.to_json().decode(),
    )


@on_connection
async def parked(conn: asyncpg.Connection, engagement_id: str) -> list[Envelope]:
    """Events parked for an engagement, in the order they arrived."""
    rows = await conn.fetch(
        "SELECT envelope::text AS envelope FROM parked_events WHERE engagement_id = $1"
        " ORDER BY parked_at, event_id",
        engagement_id,
    )
    return [Envelope.model_validate_json(row["envelope"]) for row in rows]


@on_connection
async def unpark(conn: asyncpg.Connection, event_ids: Sequence[str]) -> None:
    if event_ids:
        await conn.execute(
            "DELETE FROM parked_events WHERE event_id = ANY($1::uuid[])", list(event_ids)
        )


@on_connection
async def lease_due_notifications(
    conn: asyncpg.Connection, now: datetime, lease_seconds: float, limit: int
) -> list[DueNotification]:
    """Lease due, undispatched notifications some webhook is registered for.

    Due-ness follows the injected clock (`now`); leases follow the database's own clock, so
    moving business time forward never breaks a lease.
    """
    rows = await conn.fetch(
        "WITH due AS ("
        "  SELECT q.notification_id FROM notification_queue q"
        "  WHERE q.dispatched_at IS NULL AND q.due_at <= $1"
        "    AND (q.lease_until IS NULL OR q.lease_until <= clock_timestamp())"
        "    AND EXISTS (SELECT 1 FROM webhooks w WHERE w.recipient IN (q.recipient, '*'))"
        "  ORDER BY q.due_at LIMIT $3 FOR UPDATE SKIP LOCKED)"
        " UPDATE notification_queue q"
        " SET lease_until = clock_timestamp() + make_interval(secs => $2) FROM due"
        " WHERE q.notification_id = due.notification_id"
        " RETURNING q.notification_id::text AS notification_id, q.engagement_id, q.recipient",
        now,
        lease_seconds,
        limit,
    )
    return [
        DueNotification(str(row["notification_id"]), row["engagement_id"], row["recipient"])
        for row in rows
    ]


@on_connection
async def create_deliveries(
    conn: asyncpg.Connection, notification_id: str, webhook_ids: Sequence[str], at: datetime
) -> None:
    await conn.executemany(
        "INSERT INTO deliveries (notification_id, webhook_id, next_attempt_at)"
        " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        [(notification_id, webhook_id, at) for webhook_id in webhook_ids],
    )
    await _mark_dispatched(conn, notification_id, at)


async def _mark_dispatched(conn: asyncpg.Connection, notification_id: str, at: datetime) -> None:
    await conn.execute(
        "UPDATE notification_queue SET dispatched_at = $2, lease_until = NULL"
        " WHERE notification_id = $1",
        notification_id,
        at,
    )


mark_dispatched = on_connection(_mark_dispatched)


_CLAIM_SQL = """
WITH candidates AS (
    SELECT c.notification_id, c.webhook_id, c.next_attempt_at
    FROM (SELECT DISTINCT webhook_id FROM deliveries WHERE status = 'pending') w
    CROSS JOIN LATERAL (
        SELECT d.notification_id, d.webhook_id, d.next_attempt_at FROM deliveries d
        WHERE d.webhook_id = w.webhook_id AND d.status = 'pending'
          AND d.next_attempt_at <= $1
          AND (d.locked_until IS NULL OR d.locked_until <= clock_timestamp())
        ORDER BY d.next_attempt_at
        LIMIT GREATEST(0, $4 - (
            SELECT count(*) FROM deliveries x
            WHERE x.webhook_id = w.webhook_id AND x.status = 'pending'
              AND x.locked_until > clock_timestamp()))
        FOR UPDATE OF d SKIP LOCKED
    ) c
    ORDER BY c.next_attempt_at
    LIMIT $5
)
UPDATE deliveries d
SET locked_until = clock_timestamp() + make_interval(secs => $2), claim = $3,
    attempts = d.attempts + 1, updated_at = now()
FROM candidates c, notification_queue q, webhooks h
WHERE d.notification_id = c.notification_id AND d.webhook_id = c.webhook_id
  AND q.notification_id = d.notification_id AND h.webhook_id = d.webhook_id
RETURNING d.notification_id::text AS notification_id, d.webhook_id::text AS webhook_id,
          d.attempts, q.engagement_id, q.kind, q.recipient, q.due_at_text, q.created_at_text,
          h.url, h.secret
"""


@on_connection
async def claim_deliveries(
    conn: asyncpg.Connection,
    now: datetime,
    lease_seconds: float,
    claim: str,
    *,
    per_webhook: int,
    limit: int,
) -> list[Claimed]:
    """Lease due deliveries (due by `now`), at most `per_webhook` in flight per webhook."""
    rows = await conn.fetch(_CLAIM_SQL, now, lease_seconds, claim, per_webhook, limit)
    return [
        Claimed(
            notice=Notice(
                notification_id=row["notification_id"],
                kind=row["kind"],
                recipient=row["recipient"],
                engagement_id=row["engagement_id"],
                due_at=row["due_at_text"],
                created_at=row["created_at_text"],
            ),
            webhook_id=row["webhook_id"],
            url=row["url"],
            secret=row["secret"],
            attempt=int(row["attempts"]),
            claim=claim,
        )
        for row in rows
    ]


@on_connection
async def settle(
    conn: asyncpg.Connection,
    claimed: Claimed,
    status: str,
    next_attempt_at: datetime,
    last_error: str | None,
) -> bool:
    """Record an attempt's outcome on the delivery, if this claim still holds it."""
    result = await conn.execute(
        "UPDATE deliveries SET status = $4, next_attempt_at = $5, last_error = $6,"
        " locked_until = NULL, claim = NULL, updated_at = now()"
        " WHERE notification_id = $1 AND webhook_id = $2 AND claim = $3",
        claimed.notification_id,
        claimed.webhook_id,
        claimed.claim,
        status,
        next_attempt_at,
        last_error,
    )
    return not result.endswith(" 0")


@on_connection
async def release(conn: asyncpg.Connection, claims: Sequence[Claimed]) -> None:
    """Give unfinished claims back (a stopping worker): due again at once, attempt not counted."""
    for claimed in claims:
        await conn.execute(
            "UPDATE deliveries SET locked_until = NULL, claim = NULL,"
            " attempts = greatest(attempts - 1, 0), updated_at = now()"
            " WHERE notification_id = $1 AND webhook_id = $2 AND claim = $3",
            claimed.notification_id,
            claimed.webhook_id,
            claimed.claim,
        )


@on_connection
async def queue_stats(conn: asyncpg.Connection, now: datetime) -> tuple[int, float]:
    """Pending deliveries and the age in seconds of the oldest one (from its due time)."""
    row = await conn.fetchrow(
        "SELECT count(*) AS depth, min(q.due_at) AS oldest FROM deliveries d"
        " JOIN notification_queue q USING (notification_id) WHERE d.status = 'pending'",
    )
    assert row is not None
    oldest: datetime | None = row["oldest"]
    age = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
    return int(row["depth"]), age
