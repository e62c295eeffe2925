"""PostgreSQL connections and versioned migrations, one schema per service."""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib import resources

import asyncpg
import structlog

from shared.storage.keyvault import KeyVault

__all__ = [
    "checked_schema",
    "create_pool",
    "migrate",
]

log = structlog.get_logger(__name__)

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
KERNEL_MIGRATIONS = "shared.storage.migrations"
# Applied migrations are recorded under their package's name; the kernel's were recorded as
# `shared.migrations` before the package moved, and keep that name so none runs twice.
RECORDED_AS = {KERNEL_MIGRATIONS: "shared.migrations"}
CONNECT_TIMEOUT_SECONDS = 5.0  # a database that does not answer is reported, not waited on


def checked_schema(schema: str) -> str:
    """A schema name safe to put into SQL, or ValueError."""
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"invalid schema name {schema!r}")
    return schema


async def create_pool(
    database_url: str, schema: str, *, min_size: int = 1, max_size: int = 10
) -> asyncpg.Pool:
    """A pool whose connections see the service's own schema first."""
    checked_schema(schema)
    admin = await asyncpg.connect(database_url, timeout=CONNECT_TIMEOUT_SECONDS)
    try:
        await admin.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    except asyncpg.UniqueViolationError:
        pass  # created concurrently by another instance
    finally:
        await admin.close()
    pool = await asyncpg.create_pool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        timeout=CONNECT_TIMEOUT_SECONDS,
        reset=_keep_session,
        server_settings={"search_path": schema, "application_name": f"rapport-{schema}"},
    )
    assert pool is not None
    return pool


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Nothing to reset when a connection goes back to the pool (asyncpg still rolls back an
    open transaction). Rapport sets no session state, and what holds session advisory locks
    or listens releases them itself: this saves a round trip on every release."""


def _migration_files(package: str) -> list[tuple[int, str, str]]:
    found = []
    for entry in resources.files(package).iterdir():
        match = re.match(r"^(\d+)_([\w-]+)\.sql$", entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


async def migrate(pool: asyncpg.Pool, schema: str, packages: Sequence[str]) -> list[str]:
    """Apply the kernel's and the service's pending migrations, once, under a lock.

    Kernel migrations come from `shared.storage.migrations`; each package in `packages` holds
    `NNN_name.sql` files. Returns the names applied now.
    """
    applied_now: list[str] = []
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"migrate:{schema}")
        await KeyVault.install(conn)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row["name"] for row in await conn.fetch("SELECT name FROM schema_migrations")}
        for package in (KERNEL_MIGRATIONS, *packages):
            for _, name, sql in _migration_files(package):
                qualified = f"{RECORDED_AS.get(package, package)}:{name}"
                if qualified in done:
                    continue
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", qualified)
                applied_now.append(qualified)
    if applied_now:
        log.info("migrations_applied", schema=schema, migrations=applied_now)
    return applied_now
