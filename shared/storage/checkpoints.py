"""The `checkpoints` table: the one place its SQL is written. A named checkpoint is a reader's
place in the log (the outbox relay, each projection unit), saved with what it handled."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from shared.storage.eventstore import Checkpoint

__all__ = [
    "find_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "lock_checkpoints",
    "save_checkpoint",
    "save_checkpoints",
]

_PLACE = "transaction_id::text AS transaction_id, global_position"
_LOCK_MANY_SQL = (
    f"SELECT name, {_PLACE} FROM checkpoints WHERE name = ANY($1::text[]) ORDER BY name FOR UPDATE"
)
_MOVE = (
    "UPDATE checkpoints SET transaction_id = $2::text::xid8, global_position = $3,"
    " updated_at = now()"
)


def _place(row: asyncpg.Record) -> Checkpoint:
    return Checkpoint(int(row["transaction_id"]), int(row["global_position"]))


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
        f"SELECT {_PLACE} FROM checkpoints WHERE name = $1" + (" FOR UPDATE" if lock else ""),
        name,
    )
    return None if row is None else _place(row)


async def lock_checkpoints(conn: asyncpg.Connection, names: Sequence[str]) -> dict[str, Checkpoint]:
    """Those of the named checkpoints that exist, locked till commit in one order (by name)."""
    rows = await conn.fetch(_LOCK_MANY_SQL, sorted(names))
    return {row["name"]: _place(row) for row in rows}


async def list_checkpoints(conn: asyncpg.Connection) -> dict[str, Checkpoint]:
    """Every named checkpoint of the schema, by name."""
    rows = await conn.fetch(f"SELECT name, {_PLACE} FROM checkpoints")
    return {row["name"]: _place(row) for row in rows}


async def save_checkpoints(
    conn: asyncpg.Connection, names: Sequence[str], checkpoint: Checkpoint
) -> None:
    """Move several named checkpoints to the same place, in one statement."""
    if names:
        await conn.execute(
            _MOVE + " WHERE name = ANY($1::text[])",
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
        _MOVE + " WHERE name = $1", name, str(checkpoint.transaction_id), checkpoint.position
    )
