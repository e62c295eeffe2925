"""The fault run in miniature (contract section 8): load from several clients while each
service in turn is killed with SIGKILL and started again, PostgreSQL is stopped for 5 s, and
the broker is killed and started again empty. Afterwards every acknowledged command is in the
log exactly once, every logged event is on Kafka, every view and consumer has caught up,
nothing was parked, no 5xx but 503 was answered, and the audit passes.

The figures go to `reports/faults.json`.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from tests.faults import checks
from tests.faults.load import Load
from tests.faults.stack import FaultStack
from tests.support import auth, start_intake_journey

REPORT = Path(__file__).resolve().parents[2] / "reports" / "faults.json"
COMMAND_TYPES = {
    "intake": {
        "IntakeStarted",
        "BaselineAssessed",
        "GoalSet",
        "AgreementSigned",
        "ClientCommitted",
    },
    "engagement": {"HomeworkAssigned"},
}


async def until(probe: Any, timeout: float, interval: float = 1.0) -> tuple[Any, float]:
    """Poll `probe` until it returns something truthy: (that value, seconds taken)."""
    started = time.monotonic()
    last = None
    while time.monotonic() - started < timeout:
        last = await probe()
        if last:
            return last, time.monotonic() - started
        await asyncio.sleep(interval)
    raise AssertionError(f"not reached within {timeout:.0f} s; last: {last!r}")


async def restart(faults: FaultStack, name: str) -> float:
    """SIGKILL one instance and start it again; seconds until it is healthy."""
    killed = time.monotonic()
    faults.kill(name)
    faults.start(name)
    await faults.wait_healthy(name)
    return time.monotonic() - killed


async def commitment_opens(faults: FaultStack) -> tuple[str, float]:
    """A new commitment, made now: its engagement id, and the seconds until it answers."""
    coach = f"coach-after-{int(time.time())}"
    async with httpx.AsyncClient(base_url=faults.instances["intake"].url, timeout=10) as intake:
        journey = await start_intake_journey(intake, coach)
    committed = time.monotonic()
    url = f"{faults.instances['engagement-2'].url}/v1/engagements/{journey['engagement_id']}"
    async with httpx.AsyncClient(timeout=5) as http:

        async def opened() -> bool:
            try:
                return (await http.get(url, headers=auth("coach", coach))).status_code == 200
            except httpx.HTTPError:
                return False

        await until(opened, 60, 0.2)
    return journey["engagement_id"], time.monotonic() - committed


async def test_under_load_kills_a_database_outage_and_an_empty_broker_lose_nothing(
    faults: FaultStack,
) -> None:
    urls = {
        "intake": [faults.instances["intake"].url],
        "engagement": [faults.instances[n].url for n in ("engagement-1", "engagement-2")],
    }
    load = Load(urls, clients=8)
    running = asyncio.create_task(load.run())
    report: dict[str, Any] = {"faults": {}}
    started = time.monotonic()
    try:
        await asyncio.sleep(4)
        kills: dict[str, tuple[float, float]] = {}
        for name in ("intake", "engagement-1", "notifications"):
            at = time.monotonic()
            kills[name] = (at, await restart(faults, name))
            await asyncio.sleep(4)

        stopped = time.monotonic()
        faults.postgres.stop()
        await asyncio.sleep(5)
        faults.postgres.start()
        back = time.monotonic()
        await asyncio.sleep(6)

        faults.broker.kill()
        faults.broker.start()
        broker_back = time.monotonic()
        _, opened_in = await commitment_opens(faults)
        await asyncio.sleep(3)
    finally:
        load.stop.set()
        await asyncio.wait_for(running, 180)
    ledger = load.ledger
    report["load_seconds"] = round(time.monotonic() - started, 1)
    for name, (at, healthy_after) in kills.items():
        service = name.split("-")[0]
        report["faults"][f"kill -9 {name}"] = {
            "healthy_after_s": round(healthy_after, 1),
            # commands to this service acknowledged again (none are sent to notifications)
            "first_ack_after_s": _rounded(ledger.first_ack_after(at, service)),
        }
    report["faults"]["postgres stopped 5 s"] = {
        "down_s": round(back - stopped, 1),
        "first_ack_after_return_s": _rounded(ledger.first_ack_after(back)),
    }

    conn = await faults.connect()
    try:
        missing, refilled_in = await until(
            lambda: _all_published(conn, faults.broker.bootstrap), 90, 2.0
        )
        report["faults"]["broker killed, back empty"] = {
            "new_commitment_opened_after_s": round(opened_in, 1),
            "every_logged_event_on_kafka_after_s": round(time.monotonic() - broker_back, 1),
        }
        await until(lambda: _caught_up(conn), 90)
        logged = {schema: await checks.stream_counts(conn, schema) for schema in COMMAND_TYPES}
        parked = await checks.parked(conn)
        opened = await conn.fetchval(
            "SELECT count(*) FROM engagement.events WHERE event_type = 'EngagementOpened'"
        )
        committed = await conn.fetchval(
            "SELECT count(*) FROM intake.events WHERE event_type = 'ClientCommitted'"
        )
    finally:
        await conn.close()

    acked: Counter[tuple[str, str, str]] = Counter(
        (ack.service, ack.stream_id, ack.event_type) for ack in ledger.acks
    )
    loaded = {ack.stream_id for ack in ledger.acks}
    lost: list[str] = []
    duplicated: list[str] = []
    for schema, types in COMMAND_TYPES.items():
        for (stream_id, event_type), count in logged[schema].items():
            if stream_id not in loaded:
                continue  # streams of other tests, and the commitment checked on its own
            expected = acked.get((schema, stream_id, event_type), 0)
            if event_type in types and count > expected:
                duplicated.append(
                    f"{schema} {stream_id} {event_type}: {count} logged, {expected} acked"
                )
        for (service, stream_id, event_type), count in acked.items():
            found = logged[schema].get((stream_id, event_type), 0)
            if service == schema and count > found:
                lost.append(f"{schema} {stream_id} {event_type}: {count} acked, {found} logged")
    report.update(
        acknowledged=len(ledger.acks),
        lost=len(lost),
        duplicated=len(duplicated),
        lost_commands=lost[:20],
        duplicated_commands=duplicated[:20],
        statuses=dict(sorted(ledger.statuses.items())),
        answered_503=ledger.statuses.get(503, 0),
        connection_errors=dict(ledger.transport_errors),
        abandoned=len(ledger.abandoned),
    )
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2) + "\n")

    assert ledger.acks, "the load made no progress"
    assert not ledger.unexpected, ledger.unexpected[:5]
    assert not ledger.abandoned, ledger.abandoned[:5]
    assert set(ledger.server_errors()) <= {503}, ledger.statuses
    assert not lost and not duplicated, report
    assert missing == {"intake": 0, "engagement": 0, "notifications": 0}
    assert refilled_in < 90
    assert parked == {"intake": [], "engagement": [], "notifications": []}
    assert opened == committed
    assert opened_in < 60
    for command in ("verify", "replay"):
        audit = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "rapport.cli", "audit", command],
            env={**os.environ, "RAPPORT_DATABASE_URL": faults.database_url},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "every digest equals the live projection's" in audit.stdout, audit.stdout


async def _all_published(conn: Any, bootstrap: str) -> dict[str, int] | None:
    missing = await checks.missing_from_topics(conn, bootstrap)
    return missing if not any(missing.values()) else None


async def _caught_up(conn: Any) -> bool:
    behind = await checks.projections_behind(conn)
    left = await checks.unconsumed(conn)
    return not any(behind.values()) and not any(left.values())


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)
