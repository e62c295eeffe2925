"""`rapport audit verify` against real PostgreSQL: a whole log passes, one changed byte fails."""

from __future__ import annotations

import asyncio
import re
import tracemalloc
import uuid
from pathlib import Path

import asyncpg
import pytest
from typer.testing import CliRunner, Result

from rapport.cli import app
from rapport.infra import Endpoints
from shared.reads.audit import verify_events
from shared.model.clock import SystemClock
from shared.model.envelope import GENESIS_HASH, Actor, seal
from shared.model.events import DomainEvent
from shared.storage.eventstore import EventMetadata, EventStore

META = EventMetadata(actor=Actor(role="admin", id="auditor-test"), correlation_id="c-audit")


class Pinged(DomainEvent):
    event_type = "Pinged"

    n: int


async def cli(*args: str) -> Result:
    """Run the command line in a thread: it runs its own event loop."""
    return await asyncio.to_thread(CliRunner().invoke, app, list(args))


async def write_log(pool: asyncpg.Pool, streams: int, events: int) -> list[str]:
    store = EventStore(pool, "test", SystemClock())
    stream_ids = [str(uuid.uuid4()) for _ in range(streams)]
    for stream_id in stream_ids:
        for n in range(events):
            async with store.transaction() as conn:
                await store.append(conn, stream_id, n, [Pinged(n=n)], META)
    return stream_ids


async def schema_of(pool: asyncpg.Pool) -> str:
    return str(await pool.fetchval("SELECT current_schema()"))


@pytest.fixture(autouse=True)
def database_from_environment(infra: Endpoints, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAPPORT_DATABASE_URL", infra.database_url)


async def test_a_clean_log_verifies_with_exit_zero_and_a_summary(
    scratch_pool: asyncpg.Pool,
) -> None:
    await write_log(scratch_pool, streams=3, events=4)
    result = await cli("audit", "verify", "--schema", await schema_of(scratch_pool))
    assert result.exit_code == 0, result.output
    assert "3 streams, 12 events intact" in result.output
    assert re.search(r"verified 3 streams, 12 events in \d+\.\d+ s", result.output)


async def test_one_byte_changed_behind_the_append_only_trigger_fails_naming_that_event(
    scratch_pool: asyncpg.Pool,
) -> None:
    schema = await schema_of(scratch_pool)
    streams = await write_log(scratch_pool, streams=3, events=4)
    victim = sorted(streams)[1]
    async with scratch_pool.acquire() as conn:
        assert await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        row = await conn.fetchrow(
            "SELECT event_id::text AS event_id, envelope FROM events"
            " WHERE stream_id = $1 AND stream_version = 3",
            victim,
        )
        assert row is not None
        original: str = row["envelope"]
        tampered = original.replace('"n":2', '"n":3')
        assert (
            len(tampered) == len(original)
            and sum(a != b for a, b in zip(original, tampered, strict=True)) == 1
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                "UPDATE events SET envelope = $1 WHERE event_id = $2::uuid",
                tampered,
                row["event_id"],
            )
        async with conn.transaction():
            await conn.execute("ALTER TABLE events DISABLE TRIGGER events_no_update_or_delete")
            await conn.execute(
                "UPDATE events SET envelope = $1 WHERE event_id = $2::uuid",
                tampered,
                row["event_id"],
            )
            await conn.execute("ALTER TABLE events ENABLE TRIGGER events_no_update_or_delete")

    result = await cli("audit", "verify", "--schema", schema)

    assert result.exit_code == 1, result.output
    assert (
        f"first bad event: service={schema} stream={victim} version=3"
        f" event_id={row['event_id']} reason=hash mismatch"
    ) in result.output


async def test_a_deleted_event_is_reported_as_a_version_gap(scratch_pool: asyncpg.Pool) -> None:
    schema = await schema_of(scratch_pool)
    [stream_id] = await write_log(scratch_pool, streams=1, events=3)
    async with scratch_pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(
            "DELETE FROM events WHERE stream_id = $1 AND stream_version = 2", stream_id
        )

    result = await cli("audit", "verify", "--schema", schema)

    assert result.exit_code == 1, result.output
    assert f"stream={stream_id} version=3" in result.output
    assert "expected version 2, found 3" in result.output


async def bulk_log(pool: asyncpg.Pool, streams: int, events: int) -> None:
    """A large, valid log written straight into the table (sealed as the store seals)."""
    rows = []
    for _ in range(streams):
        stream_id, prev = str(uuid.uuid4()), GENESIS_HASH
        for version in range(1, events + 1):
            envelope = seal(
                {
                    "event_id": str(uuid.uuid4()),
                    "event_type": "Pinged",
                    "schema_version": 1,
                    "stream_id": stream_id,
                    "stream_version": version,
                    "occurred_at": "2025-01-01T00:00:00.000000Z",
                    "recorded_at": "2025-01-01T00:00:00.000000Z",
                    "producer": "test",
                    "correlation_id": "c",
                    "causation_id": None,
                    "actor": {"role": "admin", "id": "a"},
                    "data": {"n": version, "padding": "x" * 200},
                    "prev_hash": prev,
                }
            )
            prev = envelope.hash
            rows.append(
                (
                    envelope.event_id,
                    stream_id,
                    version,
                    "Pinged",
                    1,
                    envelope.occurred,
                    envelope.to_json().decode(),
                    envelope.hash,
                )
            )
    await pool.executemany(
        "INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version,"
        " occurred_at, envelope, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        rows,
    )


async def peak_memory_of_verifying(pool: asyncpg.Pool) -> tuple[int, int]:
    schema = await schema_of(pool)
    async with pool.acquire() as conn:
        tracemalloc.start()
        try:
            result = await verify_events(conn, schema)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert result.intact, result.bad
    return result.events, peak


async def test_verifying_a_log_four_times_longer_needs_no_more_memory(
    infra: Endpoints, scratch_pool: asyncpg.Pool
) -> None:
    await bulk_log(scratch_pool, streams=20, events=100)
    small_events, small_peak = await peak_memory_of_verifying(scratch_pool)
    await bulk_log(scratch_pool, streams=60, events=100)
    large_events, large_peak = await peak_memory_of_verifying(scratch_pool)
    assert (small_events, large_events) == (2_000, 8_000)
    # the walk holds one prefetch window and one stream head, however long the log is
    assert large_peak < small_peak * 1.25 + 64 * 1024, (small_peak, large_peak)


async def test_a_named_schema_without_an_event_store_is_an_error_not_a_green_result() -> None:
    result = await cli("audit", "verify", "--schema", "no_such_service_here")
    assert result.exit_code == 2, result.output
    assert "no event store in no_such_service_here" in result.output


async def test_a_data_dir_without_a_database_is_an_error_and_creates_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("RAPPORT_DATABASE_URL")
    missing = tmp_path / "typo"
    for command in (
        ["verify"],
        ["replay"],
        ["report", "some-id", "--out", str(tmp_path / "r.html")],
    ):
        result = await cli("audit", *command, "--data-dir", str(missing))
        assert result.exit_code == 2, result.output
        assert "no Rapport database" in result.output
    assert not missing.exists()


async def test_the_report_refuses_bad_output_paths_and_times_with_a_clear_message(
    tmp_path: Path,
) -> None:
    for arguments, message in (
        (["--out", str(tmp_path)], "is a directory"),
        (["--out", "/proc/no/such.html"], "cannot write"),
        (["--out", str(tmp_path / "r.html"), "--as-of", "0001-01-01T00:00:00+01:00"], "--as-of"),
        (["--out", str(tmp_path / "r.html"), "--as-of", "yesterday"], "--as-of"),
    ):
        result = await cli("audit", "report", "some-engagement", *arguments)
        assert message in result.output, result.output
        assert result.exit_code in (1, 2), result.output
        assert "Traceback" not in result.output
