"""Contract section 8: while the database is away every request that needs it answers 503
problem+json with `Retry-After`, `/health` answers 503 naming it, nothing is half-written, and
each service serves again by itself when it is back."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.faults.stack import FaultStack
from tests.support import auth


async def test_while_the_database_is_down_requests_answer_503_and_then_serve_again(
    faults: FaultStack,
) -> None:
    intake = faults.instances["intake"].url
    engagement = faults.instances["engagement-1"].url
    headers = auth("coach", "coach-outage")
    body = {"coach_id": "coach-outage", "client": {"name": "O", "email": "o@x.example"}}
    async with httpx.AsyncClient(timeout=15) as http:
        before = await http.post(f"{intake}/v1/intakes", json=body, headers=headers)
        assert before.status_code == 201, before.text
        engagement_id = before.json()["engagement_id"]
        conn = await faults.connect()
        try:
            logged_before = await conn.fetchval("SELECT count(*) FROM intake.events")
        finally:
            await conn.close()

        faults.postgres.stop()
        try:
            answers = [
                await http.post(f"{intake}/v1/intakes", json=body, headers=headers),
                await http.post(
                    f"{intake}/v1/intakes/{engagement_id}/goals",
                    json={"title": "g", "measure": "m", "baseline": 1, "target": 2},
                    headers=headers,
                ),
                await http.get(f"{intake}/v1/intakes/{engagement_id}", headers=headers),
                await http.get(
                    f"{engagement}/v1/engagements/{engagement_id}", headers=auth("admin", "ops")
                ),
            ]
            for answer in answers:
                assert answer.status_code == 503, answer.text
                assert answer.headers["content-type"].startswith("application/problem+json")
                assert int(answer.headers["retry-after"]) > 0
                problem = answer.json()
                assert problem["status"] == 503 and problem["title"] == "Service Unavailable"
            for url in (intake, engagement):
                health = await http.get(f"{url}/health")
                assert health.status_code == 503
                assert health.json()["checks"]["database"] is False
                assert "database" in health.json()["down"]
                assert int(health.headers["retry-after"]) > 0
        finally:
            faults.postgres.start()

        deadline = time.monotonic() + 60
        while True:  # no restart: the same processes serve again
            again = await http.post(f"{intake}/v1/intakes", json=body, headers=headers)
            if again.status_code == 201:
                break
            assert again.status_code == 503 and time.monotonic() < deadline, again.text
            await asyncio.sleep(0.2)
        for url in (intake, engagement):
            assert (await http.get(f"{url}/health")).status_code == 200
        read = await http.get(f"{intake}/v1/intakes/{engagement_id}", headers=headers)
        assert read.status_code == 200 and read.json()["goals"] == []
    conn = await faults.connect()
    try:  # the refused commands wrote nothing: only the one accepted after the outage
        assert await conn.fetchval("SELECT count(*) FROM intake.events") == logged_before + 1
    finally:
        await conn.close()
