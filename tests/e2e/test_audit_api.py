"""`GET /v1/audit/streams/{stream_id}/events` on intake and engagement, over real HTTP."""

from __future__ import annotations

import itertools
import json
import uuid
from typing import Any

import pytest

from shared.model.envelope import GENESIS_HASH, compute_hash
from tests.support import Stack, auth, eventually, start_intake_journey


def assert_whole_chain(items: list[dict[str, Any]]) -> None:
    assert [item["stream_version"] for item in items] == list(range(1, len(items) + 1))
    assert items[0]["prev_hash"] == GENESIS_HASH
    for item in items:
        assert compute_hash({k: v for k, v in item.items() if k != "hash"}) == item["hash"]
    for previous, current in itertools.pairwise(items):
        assert current["prev_hash"] == previous["hash"]


async def test_auditors_and_admins_read_the_stored_envelopes_of_a_stream_in_order(
    stack: Stack,
) -> None:
    coach_id = f"coach-{uuid.uuid4().hex[:8]}"
    async with stack.client("intake") as intake, stack.client("engagement") as engagement:
        journey = await start_intake_journey(intake, coach_id)
        engagement_id = journey["engagement_id"]
        path = f"/v1/audit/streams/{engagement_id}/events"

        for role in ("auditor", "admin"):
            response = await intake.get(path, headers=auth(role, f"{role}-1"))
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["stream_id"] == engagement_id
            assert body["version"] == journey["committed_version"]
            items = body["items"]
            assert items[0]["event_type"] == "IntakeStarted"
            assert items[-1]["event_type"] == "ClientCommitted"
            assert {item["producer"] for item in items} == {"intake"}
            assert_whole_chain(items)
            assert "Ada Lovelace" not in response.text  # personal data stays encrypted

        async def opened() -> dict[str, Any] | None:
            response = await engagement.get(path, headers=auth("auditor", "auditor-1"))
            return response.json() if response.status_code == 200 else None

        body = await eventually(opened)
        assert body["items"][0]["producer"] == "engagement"
        assert_whole_chain(body["items"])

        later = await intake.get(
            path, params={"after_version": 3}, headers=auth("auditor", "auditor-1")
        )
        assert [item["stream_version"] for item in later.json()["items"]] == list(
            range(4, journey["committed_version"] + 1)
        )


async def test_the_audit_read_returns_the_stored_bytes_verbatim(stack: Stack) -> None:
    coach_id = f"coach-{uuid.uuid4().hex[:8]}"
    async with stack.client("intake") as intake:
        journey = await start_intake_journey(intake, coach_id)
        response = await intake.get(
            f"/v1/audit/streams/{journey['engagement_id']}/events",
            headers=auth("auditor", "auditor-1"),
        )
    async with stack.core("intake").pool.acquire() as conn:
        stored = [
            row["envelope"]
            for row in await conn.fetch(
                "SELECT envelope FROM events WHERE stream_id = $1 ORDER BY stream_version",
                journey["engagement_id"],
            )
        ]
    assert all(text in response.text for text in stored)
    assert [json.loads(text) for text in stored] == response.json()["items"]


@pytest.mark.parametrize("service", ["intake", "engagement"])
async def test_the_audit_read_refuses_others_and_answers_unknown_streams_with_404(
    stack: Stack, service: str
) -> None:
    coach_id = f"coach-{uuid.uuid4().hex[:8]}"
    async with stack.client("intake") as intake:
        journey = await start_intake_journey(intake, coach_id)
    path = f"/v1/audit/streams/{journey['engagement_id']}/events"
    async with stack.client(service) as client:
        anonymous = await client.get(path)
        coach = await client.get(path, headers=auth("coach", coach_id))
        unknown = await client.get(
            f"/v1/audit/streams/{uuid.uuid4()}/events", headers=auth("auditor", "a")
        )
        bad_id = await client.get(
            "/v1/audit/streams/not%20an%20id/events", headers=auth("admin", "a")
        )
    for response, status in ((anonymous, 401), (coach, 403), (unknown, 404), (bad_id, 422)):
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == status


async def test_a_long_stream_is_read_page_by_page(stack: Stack) -> None:
    async with stack.client("intake") as intake:
        journey = await start_intake_journey(intake, f"coach-{uuid.uuid4().hex[:6]}")
        stream = f"/v1/audit/streams/{journey['engagement_id']}/events"
        auditor = auth("auditor", "a-1")
        first = (await intake.get(stream, params={"limit": 2}, headers=auditor)).json()
        rest = (
            await intake.get(stream, params={"after_version": first["version"]}, headers=auditor)
        ).json()
    assert [item["stream_version"] for item in first["items"]] == [1, 2]
    assert [item["stream_version"] for item in rest["items"]] == [3, 4, 5]
    assert rest["version"] == 5
