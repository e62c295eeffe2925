"""The `outbox_offsets` table: per topic and partition, the offset the outbox relay's records
reached on the broker (a broker that answers less has lost history)."""

from __future__ import annotations

import asyncpg

__all__ = ["Marks", "forget_marks", "load_marks", "save_marks"]

Marks = dict[int, int]
"""Per partition, the offset the relay's records reached."""

_LOAD_SQL = "SELECT partition, next_offset FROM outbox_offsets WHERE topic = $1"
_SAVE_SQL = (
    "INSERT INTO outbox_offsets (topic, partition, next_offset)"
    " SELECT $1, * FROM unnest($2::integer[], $3::bigint[])"
    " ON CONFLICT (topic, partition) DO UPDATE"
    " SET next_offset = greatest(outbox_offsets.next_offset, EXCLUDED.next_offset)"
)


async def load_marks(conn: asyncpg.Connection, topic: str) -> Marks:
    """What the relay's records reached on each partition of `topic`."""
    return dict(await conn.fetch(_LOAD_SQL, topic))


async def save_marks(conn: asyncpg.Connection, topic: str, reached: Marks) -> None:
    """Raise the marks to what a publish `reached` (a mark never goes down)."""
    await conn.execute(_SAVE_SQL, topic, list(reached), list(reached.values()))


async def forget_marks(conn: asyncpg.Connection, topic: str) -> None:
    """Forget `topic`'s marks (it is published again from the start)."""
    await conn.execute("DELETE FROM outbox_offsets WHERE topic = $1", topic)
