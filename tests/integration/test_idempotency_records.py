"""Idempotency records in PostgreSQL: what a reader of the table learns (nothing it could
check a guess against), how long a first answer is kept, records from before keyed hashes,
and the pruner, alone and with others."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import timedelta

import asyncpg
import pytest

from shared.model.envelope import canonical_json
from shared.model.errors import InvalidCommand
from shared.security.crypto import decode_master_key, generate_master_key
from shared.storage.db import migrate
from shared.storage.idempotency import prune_expired, remember, remembered
from shared.usecases.idempotency import IdempotencyKey, IdempotencyKeys, IdempotencyRace

CLIENT = {"client": {"name": "Ada Lovelace", "email": "ada@example.org", "phone": "+44 1"}}
DAY = timedelta(hours=24)
MIGRATION = "shared.migrations:005_idempotency_retention.sql"


def server_keys() -> IdempotencyKeys:
    return IdempotencyKeys(decode_master_key(generate_master_key()), retention=DAY)


def scope() -> str:
    return f"coach:c-{uuid.uuid4().hex[:8]}:intakes"


async def age(pool: asyncpg.Pool, by: timedelta) -> None:
    """Make every record `by` older."""
    await pool.execute("UPDATE idempotency_keys SET created_at = created_at - $1::interval", by)


async def test_a_reader_of_the_table_cannot_confirm_a_guessed_body(
    scratch_pool: asyncpg.Pool,
) -> None:
    keys = server_keys()
    first, second = keys.of(scope(), "k-1", CLIENT), keys.of(scope(), "k-1", CLIENT)
    assert first is not None and second is not None
    async with scratch_pool.acquire() as conn:
        await remember(conn, first, 201, {"engagement_id": "e-1"})
        await remember(conn, second, 201, {"engagement_id": "e-2"})
    stored = [
        row["request_hash"]
        for row in await scratch_pool.fetch("SELECT request_hash FROM idempotency_keys")
    ]
    guess = hashlib.sha256(canonical_json(CLIENT)).hexdigest()
    assert all(value.startswith("v2:") and guess not in value for value in stored)
    assert len(set(stored)) == 2  # one body, two records that do not look alike


async def kept(conn: asyncpg.Connection, keys: IdempotencyKeys, where: str) -> IdempotencyKey:
    """The key `k-1` of `CLIENT` in `where`, its first answer kept."""
    key = keys.of(where, "k-1", CLIENT)
    assert key is not None
    await remember(conn, key, 201, {"engagement_id": "e-1"})
    return key


async def test_a_retry_within_the_retention_answers_the_first_reply(
    scratch_pool: asyncpg.Pool,
) -> None:
    keys, where = server_keys(), scope()
    async with scratch_pool.acquire() as conn:
        key = await kept(conn, keys, where)
        await age(scratch_pool, DAY - timedelta(minutes=1))
        assert await remembered(conn, key) == {"engagement_id": "e-1"}
        other = keys.of(where, "k-1", {**CLIENT, "coach_id": "c-2"})
        assert other is not None
        with pytest.raises(InvalidCommand):
            await remembered(conn, other)
        with pytest.raises(IdempotencyRace):
            await remember(conn, key, 201, {"engagement_id": "e-2"})


async def test_a_key_sent_again_after_the_retention_is_a_new_request(
    scratch_pool: asyncpg.Pool,
) -> None:
    keys, where = server_keys(), scope()
    async with scratch_pool.acquire() as conn:
        key = await kept(conn, keys, where)
        await age(scratch_pool, DAY + timedelta(seconds=1))
        assert await remembered(conn, key) is None  # not yet pruned, but expired
        different = keys.of(where, "k-1", {"another": "body"})
        assert different is not None
        assert await remembered(conn, different) is None  # no 422 for an expired record
        await remember(conn, different, 201, {"engagement_id": "e-2"})
        assert await remembered(conn, different) == {"engagement_id": "e-2"}
    assert await scratch_pool.fetchval("SELECT count(*) FROM idempotency_keys") == 1


async def test_a_record_from_before_keyed_hashes_is_still_recognised_after_migrating(
    scratch_pool: asyncpg.Pool,
) -> None:
    schema = await scratch_pool.fetchval("SELECT current_schema()")
    # The database as it stood before: no index by age, a record holding a plain SHA-256.
    await scratch_pool.execute("DROP INDEX idempotency_keys_created")
    await scratch_pool.execute("DELETE FROM schema_migrations WHERE name = $1", MIGRATION)
    where = scope()
    await scratch_pool.execute(
        "INSERT INTO idempotency_keys (scope, key, request_hash, status_code, response)"
        " VALUES ($1, 'k-old', $2, 201, '{\"engagement_id\": \"e-old\"}')",
        where,
        hashlib.sha256(canonical_json(CLIENT)).hexdigest(),
    )
    applied = await migrate(scratch_pool, schema, [])
    assert applied == [MIGRATION]
    keys = server_keys()
    same, changed = keys.of(where, "k-old", CLIENT), keys.of(where, "k-old", {"x": 1})
    assert same is not None and changed is not None
    async with scratch_pool.acquire() as conn:
        assert await remembered(conn, same) == {"engagement_id": "e-old"}
        with pytest.raises(InvalidCommand):
            await remembered(conn, changed)


async def test_the_pruner_deletes_expired_records_and_keeps_the_others(
    scratch_pool: asyncpg.Pool,
) -> None:
    keys = server_keys()
    async with scratch_pool.acquire() as conn:
        for n in range(5):
            old = keys.of(scope(), f"old-{n}", CLIENT)
            assert old is not None
            await remember(conn, old, 201, {"n": n})
        await age(scratch_pool, DAY + timedelta(minutes=1))
        fresh = keys.of(scope(), "fresh", CLIENT)
        assert fresh is not None
        await remember(conn, fresh, 201, {"n": "fresh"})
    assert await prune_expired(scratch_pool, DAY) == 5
    assert await prune_expired(scratch_pool, DAY) == 0
    left = await scratch_pool.fetch("SELECT key FROM idempotency_keys")
    assert [row["key"] for row in left] == ["fresh"]


async def test_pruners_of_several_instances_share_the_work_without_error(
    scratch_pool: asyncpg.Pool,
) -> None:
    await scratch_pool.execute(
        "INSERT INTO idempotency_keys (scope, key, request_hash, status_code, response, created_at)"
        " SELECT 'admin:ops:webhooks', 'k-' || n, 'v2:x', 201, '{}', now() - interval '2 days'"
        " FROM generate_series(1, 3000) AS n"
    )

    async def instance() -> int:
        deleted = 0
        while count := await prune_expired(scratch_pool, DAY, batch=100):
            deleted += count
        return deleted

    deleted = await asyncio.gather(*(instance() for _ in range(4)))
    assert sum(deleted) == 3000
    assert await scratch_pool.fetchval("SELECT count(*) FROM idempotency_keys") == 0
