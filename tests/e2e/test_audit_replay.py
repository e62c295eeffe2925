"""`rapport audit replay` over the running stack's log: stable digests equal to the live ones."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from rapport.cli import app
from rapport.registry import SERVICES
from services.engagement.domain.events import FACTORS
from shared.reads.audit import live_digests
from tests.e2e.engagement_support import open_engagement
from tests.support import Stack, auth, eventually, start_intake_journey

ROW = re.compile(
    r"(intake|engagement|notifications)\W+(\w+)\W+(\d+)\W+([0-9a-f]{64})\W+(match|DIFFERS)"
)


async def cli(*args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, app, list(args))


def digests(output: str) -> dict[tuple[str, str], tuple[int, str, str]]:
    return {
        (service, projection): (int(documents), digest, live)
        for service, projection, documents, digest, live in ROW.findall(output)
    }


async def heads(stack: Stack) -> dict[str, int]:
    """Each service's last global position: equal before and after means the log stood still."""
    found = {}
    for name in SERVICES:
        async with stack.core(name).pool.acquire() as conn:
            found[name] = int(
                await conn.fetchval("SELECT coalesce(max(global_position), 0) FROM events")
            )
    return found


async def caught_up(stack: Stack) -> None:
    for name in SERVICES:
        await stack.core(name).runner.catch_up_all()


@pytest.fixture(autouse=True)
def database_from_environment(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    assert stack.settings.database_url
    monkeypatch.setenv("RAPPORT_DATABASE_URL", stack.settings.database_url)


async def journeys_reached_every_service(stack: Stack, count: int) -> None:
    coach_id = f"coach-{uuid.uuid4().hex[:8]}"
    async with (
        stack.client("intake") as intake,
        stack.client("engagement") as engagement,
        stack.client("notifications") as notifications,
    ):
        for _ in range(count):
            journey = await start_intake_journey(intake, coach_id)

            async def opened(engagement_id: str = journey["engagement_id"]) -> bool:
                response = await engagement.get(
                    f"/v1/engagements/{engagement_id}", headers=auth("coach", coach_id)
                )
                return response.status_code == 200

            async def welcomed(client_id: str = journey["client_id"]) -> list[Any]:
                response = await notifications.get(
                    "/v1/notifications",
                    params={"recipient": f"client:{client_id}"},
                    headers=auth("admin", "ops"),
                )
                return list(response.json()["items"])

            await eventually(opened)
            await eventually(welcomed)


async def relationship_with_an_escalated_concern(stack: Stack) -> None:
    """Check-ins from both parties on two engagements of one coach: a concern opens,
    escalates to supervision, another resolves; the roll-up spans both engagements."""
    coach_id = f"coach-{uuid.uuid4().hex[:8]}"
    ratings = dict.fromkeys(FACTORS, 4)
    escalations = []
    async with stack.client("intake") as intake, stack.client("engagement") as http:
        for client_ratings in ([1, 1, 1, 5], [2, 2, 4]):
            journey = await open_engagement(stack, intake, http, coach_id=coach_id)
            await journey.send("plan")
            await journey.send(
                "relationship-checkins",
                {"ratings": {**ratings, "empathy": 5}, "comment": "steady"},
                role="coach",
            )
            for rating in client_ratings:
                await journey.send(
                    "relationship-checkins",
                    {"ratings": {**ratings, "active_listening": rating}, "comment": "how I feel"},
                    role="client",
                )
            stored = [e.event_type for e in await journey.stored_events()]
            assert "RelationshipConcernResolved" in stored
            escalations.append(stored.count("SupervisionRecommended"))
        assert escalations == [1, 0]
        response = await http.get(
            f"/v1/coaches/{coach_id}/relationship", headers=auth("coach", coach_id)
        )
        assert response.status_code == 200


async def test_two_replays_of_the_same_log_in_any_number_of_processes_print_the_live_digests(
    stack: Stack,
) -> None:
    await journeys_reached_every_service(stack, 2)
    await relationship_with_an_escalated_concern(stack)

    async def two_replays_of_a_still_log() -> tuple[Result, Result] | None:
        await caught_up(stack)
        before = await heads(stack)
        first = await cli("audit", "replay")
        second = await cli("audit", "replay", "--workers", "1")  # one pass, no segments
        return (first, second) if await heads(stack) == before else None

    first, second = await eventually(two_replays_of_a_still_log, timeout=120.0)
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    printed = digests(first.output)
    assert printed == digests(second.output)
    registered = {
        (name, projection.name)
        for name in SERVICES
        for projection in __import__(
            f"services.{name}.projections", fromlist=["PROJECTIONS"]
        ).PROJECTIONS
    }
    assert set(printed) == registered
    assert {live for _, _, live in printed.values()} == {"match"}
    assert "every digest equals the live projection's" in first.output
    for name in SERVICES:
        projections = stack.core(name).runner.projections
        for live in await live_digests(stack.settings.database_url, name, projections):
            assert printed[(name, live.projection)][:2] == (live.documents, live.digest)
    assert printed[("intake", "intake_view")][0] >= 2
    assert printed[("engagement", "relationship_view")][0] >= 2
    assert printed[("engagement", "coach_relationship")][0] >= 1


async def test_replay_drops_its_fresh_schemas_unless_asked_to_keep_them(stack: Stack) -> None:
    async def replay_schemas() -> set[str]:
        async with stack.core("intake").pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'replay_intake_%'"
            )
        return {row["nspname"] for row in rows}

    existing = await replay_schemas()
    dropped = await cli("audit", "replay", "--service", "intake")
    assert dropped.exit_code == 0, dropped.output
    assert await replay_schemas() == existing
    kept = await cli("audit", "replay", "--service", "intake", "--keep")
    assert kept.exit_code == 0, kept.output
    [schema] = await replay_schemas() - existing
    assert f"kept {schema}" in kept.output
    async with stack.core("intake").pool.acquire() as conn:
        count = await conn.fetchval(f"SELECT count(*) FROM {schema}.documents")
        assert count == printed_documents(kept.output, "intake_view")
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")


def printed_documents(output: str, projection: str) -> int:
    return next(
        documents for (_, name), (documents, _, _) in digests(output).items() if name == projection
    )


async def test_verify_walks_every_service_log_of_the_running_stack_and_finds_it_whole(
    stack: Stack,
) -> None:
    await journeys_reached_every_service(stack, 1)
    result = await cli("audit", "verify")
    assert result.exit_code == 0, result.output
    for name in SERVICES:
        assert re.search(rf"^{name}: \d+ streams, \d+ events intact", result.output, re.M)
    assert re.search(r"verified \d+ streams, \d+ events in \d+\.\d+ s", result.output)


async def test_a_replay_asked_for_no_worker_process_is_refused_before_it_starts() -> None:
    result = await cli("audit", "replay", "--workers", "0")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "--workers" in result.output


async def test_a_replay_written_to_a_file_holds_the_results_and_no_progress_bars(
    stack: Stack, tmp_path: Path
) -> None:
    await journeys_reached_every_service(stack, 1)
    await caught_up(stack)
    out, err = tmp_path / "replay.txt", tmp_path / "replay.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "rapport.cli", "audit", "replay", "--service", "intake"],
            stdout=stdout,
            stderr=stderr,
            env={**os.environ, "RAPPORT_DATABASE_URL": str(stack.settings.database_url)},
            timeout=300,
            check=False,
        )
    written = out.read_text()
    assert done.returncode == 0, written + err.read_text()
    assert digests(written) and "every digest equals the live projection's" in written
    for progress in ("replaying intake", "0:00:", "\r", "\x1b["):
        assert progress not in written, progress
        assert progress not in err.read_text(), progress  # no terminal there either
