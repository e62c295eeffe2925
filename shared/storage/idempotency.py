"""The `idempotency_keys` table: the first answer to each request sent with an
`Idempotency-Key`, kept for the key's retention, and the pruner that deletes it afterwards.
Several instances prune at once without waiting on each other (each deletes a batch the others
have not locked)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import asyncpg

from shared.usecases.idempotency import IdempotencyKey, IdempotencyRace

__all__ = ["PRUNE_BATCH", "prune_expired", "pruner", "remember", "remembered"]

PRUNE_BATCH = 1000


async def remembered(conn: asyncpg.Connection, key: IdempotencyKey) -> dict[str, Any] | None:
    """The first answer given under this key within its retention, or None; 422 if the
    request differs. A key used longer ago than that is a new request."""
    row = await conn.fetchrow(
        "SELECT request_hash, response FROM idempotency_keys"
        " WHERE scope = $1 AND key = $2 AND created_at > now() - $3::interval",
        key.scope,
        key.key,
        key.retention,
    )
    if row is None:
        return None
    if not key.matches(row["request_hash"]):
        raise key.differs()
    reply: dict[str, Any] = json.loads(row["response"])
    return reply


async def remember(
    conn: asyncpg.Connection, key: IdempotencyKey, status: int, reply: dict[str, Any]
) -> None:
    """Keep the answer under this key, in the command's transaction (in place of an expired
    one the pruner has not removed yet); IdempotencyRace when another request got there first."""
    inserted = await conn.execute(
        "INSERT INTO idempotency_keys (scope, key, request_hash, status_code, response)"
        " VALUES ($1, $2, $3, $4, $5::jsonb)"
        " ON CONFLICT (scope, key) DO UPDATE SET request_hash = EXCLUDED.request_hash,"
        " status_code = EXCLUDED.status_code, response = EXCLUDED.response, created_at = now()"
        " WHERE idempotency_keys.created_at <= now() - $6::interval",
        key.scope,
        key.key,
        key.request_hash,
        status,
        json.dumps(reply),
        key.retention,
    )
    if inserted.endswith(" 0"):
        raise IdempotencyRace(key)


async def prune_expired(
    pool: asyncpg.Pool, retention: timedelta, *, batch: int = PRUNE_BATCH
) -> int:
    """Delete up to `batch` records older than `retention` (skipping those another pruner or a
    command holds); how many were deleted."""
    status = await pool.execute(
        "DELETE FROM idempotency_keys WHERE (scope, key) IN ("
        " SELECT scope, key FROM idempotency_keys WHERE created_at <= now() - $1::interval"
        " LIMIT $2 FOR UPDATE SKIP LOCKED)",
        retention,
        batch,
    )
    return int(status.rsplit(" ", 1)[-1])


def pruner(
    pool: asyncpg.Pool, retention: timedelta, *, every: float
) -> Callable[[], Awaitable[None]]:
    """A background worker: prune expired records at once, then every `every` seconds (batch
    after batch while full ones come)."""

    async def run() -> None:
        while True:
            while await prune_expired(pool, retention) == PRUNE_BATCH:
                pass
            await asyncio.sleep(every)

    return run
