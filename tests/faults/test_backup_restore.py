"""`rapport backup` and `rapport restore`: a restored database verifies, replays to the
digests the source replayed to, and still opens the personal data with the same master key."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from shared.security.crypto import KeyVault, Record, decode_master_key
from tests.faults import checks
from tests.faults.stack import FaultStack
from tests.faults.test_fault_run import until
from tests.support import start_intake_journey


async def rapport(
    *args: str, database_url: str, master_key: str
) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "RAPPORT_DATABASE_URL": database_url,
        "RAPPORT_MASTER_KEY": master_key,
    }
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "rapport.cli", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def digests(replayed: str) -> dict[str, str]:
    """projection -> digest, from `rapport audit replay`'s table."""
    return dict(re.findall(r"│\s*\w+\s*│\s*(\w+)\s*│\s*\d+\s*│\s*([0-9a-f]{64})\s*│", replayed))


def database_url_of(url: str, database: str) -> str:
    scheme, _, rest = url.partition("://")
    authority, _, path = rest.partition("/")
    _, _, query = path.partition("?")
    return f"{scheme}://{authority}/{database}" + (f"?{query}" if query else "")


async def test_a_restored_backup_verifies_and_replays_to_the_same_digests(
    faults: FaultStack, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(base_url=faults.instances["intake"].url, timeout=15) as intake:
        await start_intake_journey(
            intake,
            f"coach-backup-{uuid.uuid4().hex[:6]}",
            client={"name": "Backup Client", "email": "b@x.example"},
        )
    conn = await faults.connect()
    try:
        await until(lambda: _quiet(conn), 90)
    finally:
        await conn.close()
    key = faults.master_key
    source = await rapport("audit", "replay", database_url=faults.database_url, master_key=key)
    assert source.returncode == 0, source.stdout + source.stderr
    before = digests(source.stdout)
    assert len(before) >= 6, source.stdout

    backup = tmp_path / "backup"
    made = await rapport(
        "backup", "--out", str(backup), database_url=faults.database_url, master_key=key
    )
    assert made.returncode == 0, made.stdout + made.stderr
    manifest: dict[str, Any] = json.loads((backup / "manifest.json").read_text())
    assert set(manifest["schemas"]) == {"intake", "engagement", "notifications", "keyvault"}
    assert manifest["master_key_fingerprint"] and key not in (backup / "manifest.json").read_text()

    target = f"restored_{uuid.uuid4().hex[:8]}"
    admin = await faults.connect()
    await admin.execute(f"CREATE DATABASE {target}")
    await admin.close()
    target_url = database_url_of(faults.database_url, target)
    restored = await rapport("restore", str(backup), database_url=target_url, master_key=key)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert restored.stdout.count("log digest equal, chains intact") == 3, restored.stdout

    verified = await rapport("audit", "verify", database_url=target_url, master_key=key)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    replayed = await rapport("audit", "replay", database_url=target_url, master_key=key)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert digests(replayed.stdout) == before

    # the wrapped client keys came along: the same master key opens the personal data
    conn = await asyncpg.connect(target_url)
    try:
        started = [
            json.loads(row["envelope"])["data"]
            for row in await conn.fetch(
                "SELECT envelope FROM intake.events WHERE event_type = 'IntakeStarted'"
            )
        ]
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(target_url, min_size=1, max_size=2)
    try:
        vault = KeyVault(pool, decode_master_key(key))
        revealed = [
            (
                await vault.reveal(data["client"], Record(data["client_id"], data["engagement_id"]))
            ).tree["name"]
            for data in started
        ]
    finally:
        await pool.close()
    assert "Backup Client" in revealed

    again = await rapport("restore", str(backup), database_url=target_url, master_key=key)
    assert again.returncode == 2 and "not empty" in again.stderr
    with (backup / "rapport.dump").open("r+b") as dump:
        dump.seek(-100, os.SEEK_END)
        dump.write(b"tampered")
    changed = await rapport(
        "restore",
        str(backup),
        database_url=database_url_of(faults.database_url, "postgres"),
        master_key=key,
    )
    assert changed.returncode == 2 and "does not match its manifest" in changed.stderr


async def _quiet(conn: asyncpg.Connection) -> bool:
    behind = await checks.projections_behind(conn)
    left = await checks.unconsumed(conn)
    return not any(behind.values()) and not any(left.values())
