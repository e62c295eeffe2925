"""The `projection_runners` table: the instances folding a service's projections, each seen
at its last heartbeat, so each can claim its fair share of the work."""

from __future__ import annotations

import asyncpg

__all__ = ["announce", "count_live", "withdraw"]


async def announce(conn: asyncpg.Connection, instance: str) -> None:
    """This instance is alive now."""
    await conn.execute(
        "INSERT INTO projection_runners (instance, seen_at) VALUES ($1, now())"
        " ON CONFLICT (instance) DO UPDATE SET seen_at = now()",
        instance,
    )


async def count_live(conn: asyncpg.Connection, ttl_seconds: float) -> int:
    """The instances seen within the last `ttl_seconds`."""
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM projection_runners"
            " WHERE seen_at > now() - make_interval(secs => $1)",
            ttl_seconds,
        )
    )


async def withdraw(conn: asyncpg.Connection, instance: str) -> None:
    """This instance is going away."""
    await conn.execute("DELETE FROM projection_runners WHERE instance = $1", instance)
