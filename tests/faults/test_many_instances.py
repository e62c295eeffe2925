"""Two instances of engagement and of notifications against one PostgreSQL and one broker,
under load: they split the projection segments and the partitions, nothing is applied twice,
and every view catches up."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys

import httpx

from tests.faults import checks
from tests.faults.load import Load
from tests.faults.stack import FaultStack
from tests.faults.test_fault_run import until

PAIRS = {
    "engagement": ("engagement-1", "engagement-2"),
    "notifications": ("notifications", "notifications-2"),
}


async def metric(http: httpx.AsyncClient, url: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    text = (await http.get(f"{url}/metrics")).text
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if match and all(f'{k}="{v}"' in match.group(1) for k, v in labels.items()):
            total += float(match.group(2))
    return total


async def test_two_instances_of_a_service_share_the_work_and_apply_nothing_twice(
    faults: FaultStack,
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:

        async def split() -> bool:
            for service, names in PAIRS.items():
                owned = [
                    await metric(
                        http,
                        faults.instances[n].url,
                        "rapport_projection_units_owned",
                        service=service,
                    )
                    for n in names
                ]
                if not all(count >= 1 for count in owned):
                    return False
            return True

        await until(split, 60, 0.5)

        load = Load(
            {
                "intake": [faults.instances["intake"].url],
                "engagement": [faults.instances[n].url for n in PAIRS["engagement"]],
            },
            clients=6,
        )
        await load.run_for(20)

        conn = await faults.connect()
        try:

            async def caught_up() -> bool:
                behind = await checks.projections_behind(conn)
                left = await checks.unconsumed(conn)
                return not any(behind.values()) and not any(left.values())

            await until(caught_up, 90)
            opened = await conn.fetchval(
                "SELECT count(*) FROM engagement.events WHERE event_type = 'EngagementOpened'"
            )
            committed = await conn.fetchval(
                "SELECT count(*) FROM intake.events WHERE event_type = 'ClientCommitted'"
            )
            twice = await conn.fetch(
                "SELECT envelope::jsonb->'data'->>'cause_event_id' AS cause,"
                " envelope::jsonb->'data'->>'kind' AS kind,"
                " envelope::jsonb->'data'->>'recipient' AS recipient, count(*)"
                " FROM notifications.events WHERE event_type = 'NotificationScheduled'"
                " GROUP BY 1, 2, 3 HAVING count(*) > 1"
            )
        finally:
            await conn.close()
        assert opened == committed  # each commitment opened its engagement once
        assert twice == []  # no incoming event planned its notifications twice

        for service, names in PAIRS.items():
            folded = [
                await metric(
                    http,
                    faults.instances[n].url,
                    "rapport_projection_events_total",
                    service=service,
                )
                for n in names
            ]
            assert all(count > 0 for count in folded), (service, folded)  # both folded
        consumed = [
            await metric(
                http,
                faults.instances[n].url,
                "rapport_inbox_messages_total",
                consumer="notifications-rules",
            )
            for n in PAIRS["notifications"]
        ]
        assert all(count > 0 for count in consumed), consumed  # the partitions are split

    # the live documents are what one fold of the log gives: no event was folded twice
    replayed = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "rapport.cli", "audit", "replay"],
        env={**os.environ, "RAPPORT_DATABASE_URL": faults.database_url},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "every digest equals the live projection's" in replayed.stdout, replayed.stdout


async def test_an_instance_serving_http_only_leaves_projections_and_the_relay_to_the_others(
    faults: FaultStack,
) -> None:
    faults.add("engagement-http", "engagement", RAPPORT_BACKGROUND="false")
    faults.start("engagement-http")
    try:
        await faults.wait_healthy("engagement-http")
        http_only = faults.instances["engagement-http"].url
        load = Load(
            {"intake": [faults.instances["intake"].url], "engagement": [http_only]}, clients=4
        )
        await load.run_for(10)

        conn = await faults.connect()
        try:

            async def delivered() -> bool:
                behind = await checks.projections_behind(conn)
                missing = await checks.missing_from_topics(conn, faults.broker.bootstrap)
                return not any(behind.values()) and not any(missing.values())

            await until(delivered, 60)  # the other instances folded and relayed its commands
        finally:
            await conn.close()
        async with httpx.AsyncClient(timeout=10) as http:
            owned = await metric(
                http, http_only, "rapport_projection_units_owned", service="engagement"
            )
            folded = await metric(
                http, http_only, "rapport_projection_events_total", service="engagement"
            )
            commands = await metric(http, http_only, "rapport_http_requests_total", status="201")
        assert commands > 0  # it served commands
        assert owned == 0 and folded == 0  # and folded nothing
    finally:
        faults.kill("engagement-http")
        del faults.instances["engagement-http"]


def workers_of(pid: int) -> set[int]:
    """The worker processes uvicorn spawned under `pid` (Linux /proc; not multiprocessing's
    resource tracker)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as listing:
            found = {int(child) for child in listing.read().split()}
    except FileNotFoundError:
        return set()
    workers = set()
    for child in found:
        try:
            with open(f"/proc/{child}/cmdline", "rb") as cmdline:
                if b"spawn_main" in cmdline.read():
                    workers.add(child)
        except FileNotFoundError:
            continue
    return workers


async def test_a_service_in_two_worker_processes_serves_one_port_and_replaces_a_dead_worker(
    faults: FaultStack,
) -> None:
    faults.add("engagement-workers", "engagement", RAPPORT_WORKERS="2")
    faults.start("engagement-workers")
    try:
        await faults.wait_healthy("engagement-workers")
        process = faults.instances["engagement-workers"].process
        assert process is not None

        async def two_workers() -> bool:
            return len(workers_of(process.pid)) >= 2

        await until(two_workers, 60, 0.2)
        workers = workers_of(process.pid)
        os.kill(min(workers), signal.SIGKILL)

        async def replaced() -> bool:
            now = workers_of(process.pid)
            return len(now) >= 2 and min(workers) not in now

        await until(replaced, 60, 0.2)
        await faults.wait_healthy("engagement-workers")
        url = faults.instances["engagement-workers"].url
        load = Load({"intake": [faults.instances["intake"].url], "engagement": [url]}, clients=4)
        await load.run_for(8)
    finally:
        faults.kill("engagement-workers")
        del faults.instances["engagement-workers"]
