"""PostgreSQL itself: raw single-row transactions per second, and a second database on the
same server for the generated log."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit, urlunsplit

import asyncpg


def with_database(dsn: str, name: str) -> str:
    """The same server's DSN for another database (the path of the URL)."""
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


async def create_database(dsn: str, name: str) -> str:
    """A fresh database `name` on the server of `dsn`; its DSN."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(dsn, name)


async def connections_by_application(dsn: str) -> dict[str, int]:
    """Open connections to the server per `application_name` (how the services' pools grew)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT application_name, count(*) AS n FROM pg_stat_activity"
            " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            " GROUP BY application_name ORDER BY application_name"
        )
    finally:
        await conn.close()
    return {str(row["application_name"]) or "(unnamed)": int(row["n"]) for row in rows}


async def single_row_transactions(
    dsn: str, *, connections: int = 8, seconds: float = 5.0, warmup: float = 1.0
) -> float:
    """Autocommit single-row INSERTs per second from `connections` concurrent connections."""
    setup = await asyncpg.connect(dsn)
    try:
        await setup.execute(
            "CREATE TABLE IF NOT EXISTS bench_raw (id bigint GENERATED ALWAYS AS IDENTITY"
            " PRIMARY KEY, payload text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
        )
    finally:
        await setup.close()
    conns = [await asyncpg.connect(dsn) for _ in range(connections)]
    counted = [0]
    measuring = [False]
    stop_at = time.monotonic() + warmup + seconds

    async def writer(conn: asyncpg.Connection) -> None:
        while time.monotonic() < stop_at:
            await conn.execute("INSERT INTO bench_raw (payload) VALUES ($1)", "homework")
            if measuring[0]:
                counted[0] += 1

    async def clock() -> float:
        await asyncio.sleep(warmup)
        measuring[0] = True
        started = time.monotonic()
        await asyncio.sleep(seconds)
        measuring[0] = False
        return time.monotonic() - started

    try:
        timing = asyncio.ensure_future(clock())
        await asyncio.gather(timing, *(writer(conn) for conn in conns))
        elapsed = timing.result()
    finally:
        for conn in conns:
            await conn.close()
    return counted[0] / elapsed
