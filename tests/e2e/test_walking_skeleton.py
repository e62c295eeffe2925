"""ClientCommitted travels intake → Kafka → engagement and notifications, over real HTTP."""

from __future__ import annotations

import time
import uuid
from typing import Any

from tests.support import Stack, auth, eventually, start_intake_journey


async def test_an_intake_journey_opens_the_engagement_and_welcomes_both_parties(
    stack: Stack,
) -> None:
    coach_id = f"coach-{uuid.uuid4().hex[:8]}"
    async with (
        stack.client("intake") as intake,
        stack.client("engagement") as engagement,
        stack.client("notifications") as notifications,
    ):
        journey = await start_intake_journey(intake, coach_id)
        committed_at = time.perf_counter()
        engagement_id, client_id = journey["engagement_id"], journey["client_id"]

        async def stage_view() -> dict[str, Any] | None:
            response = await engagement.get(
                f"/v1/engagements/{engagement_id}", headers=auth("coach", coach_id)
            )
            return response.json() if response.status_code == 200 else None

        view = await eventually(stage_view)
        propagation = time.perf_counter() - committed_at
        print(f"ClientCommitted reached the engagement view in {propagation * 1000:.0f} ms")
        assert view["stage"] == "commitment"
        assert view["coach_id"] == coach_id and view["client_id"] == client_id
        assert view["stage_history"][0]["stage"] == "commitment"
        assert view["version"] == 1

        async def welcomes(recipient: str) -> list[dict[str, Any]] | None:
            response = await notifications.get(
                "/v1/notifications", params={"recipient": recipient}, headers=auth("admin", "ops")
            )
            assert response.status_code == 200, response.text
            items = [i for i in response.json()["items"] if i["engagement_id"] == engagement_id]
            return items or None

        for recipient in (f"client:{client_id}", f"coach:{coach_id}"):
            items = await eventually(lambda r=recipient: welcomes(r))
            assert [item["kind"] for item in items] == ["welcome"]
            assert set(items[0]) >= {
                "notification_id",
                "kind",
                "recipient",
                "engagement_id",
                "status",
                "due_at",
                "attempts",
                "created_at",
            }

        intake_view = await intake.get(
            f"/v1/intakes/{engagement_id}", headers=auth("coach", coach_id)
        )
        assert intake_view.status_code == 200
        body = intake_view.json()
        assert body["status"] == "committed"
        assert body["agreement_signed"] is True
        assert len(body["assessments"]) == 1 and len(body["goals"]) == 1
        assert body["goals"][0]["title"] == "Run 5k"
        assert body["version"] == journey["committed_version"]


async def test_invalid_bodies_get_problem_details_naming_the_fields(stack: Stack) -> None:
    async with stack.client("intake") as intake:
        response = await intake.post(
            "/v1/intakes",
            json={"coach_id": "c1", "client": {"email": "not-an-email"}},
            headers=auth("coach", "c1"),
        )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 422 and problem["title"] and problem["detail"]
    fields = {error["field"] for error in problem["errors"]}
    assert {"client.name", "client.email"} <= fields


async def test_an_unsigned_agreement_is_refused_with_422_and_commitment_needs_everything(
    stack: Stack,
) -> None:
    coach = auth("coach", "c2")
    async with stack.client("intake") as intake:
        started = await intake.post(
            "/v1/intakes",
            json={"coach_id": "c2", "client": {"name": "B", "email": "b@example.org"}},
            headers=coach,
        )
        engagement_id = started.json()["engagement_id"]
        early = await intake.post(f"/v1/intakes/{engagement_id}/commitment", headers=coach)
        assert early.status_code == 409
        unsigned = await intake.post(
            f"/v1/intakes/{engagement_id}/agreement",
            json={
                "role_explained": True,
                "confidentiality_limits_acknowledged": False,
                "signed_by_client": True,
                "signed_by_coach": True,
                "contact_channels": ["phone"],
                "contact_hours": "any",
                "session_cadence_days": 14,
            },
            headers=coach,
        )
        assert unsigned.status_code == 422
        assert unsigned.json()["errors"][0]["field"] == "confidentiality_limits_acknowledged"
        view = await eventually(
            lambda: _ok(intake.get(f"/v1/intakes/{engagement_id}", headers=coach))
        )
        assert view["version"] == 1 and view["agreement_signed"] is False


async def _ok(request: Any) -> dict[str, Any] | None:
    response = await request
    return response.json() if response.status_code == 200 else None


async def test_unknown_ids_answer_404_in_every_service(stack: Stack) -> None:
    unknown = str(uuid.uuid4())
    admin = auth("admin", "ops")
    async with stack.client("intake") as intake, stack.client("engagement") as engagement:
        for response in (
            await intake.get(f"/v1/intakes/{unknown}", headers=admin),
            await intake.post(
                f"/v1/intakes/{unknown}/goals",
                json={"title": "t", "measure": "m", "baseline": 0, "target": 1},
                headers=admin,
            ),
            await engagement.get(f"/v1/engagements/{unknown}", headers=admin),
        ):
            assert response.status_code == 404
            assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_retried_command_with_an_idempotency_key_writes_once(stack: Stack) -> None:
    coach = auth("coach", "c3")
    async with stack.client("intake") as intake:
        payload = {"coach_id": "c3", "client": {"name": "C", "email": "c@example.org"}}
        headers = {**coach, "Idempotency-Key": f"k-{uuid.uuid4()}"}
        first = await intake.post("/v1/intakes", json=payload, headers=headers)
        second = await intake.post("/v1/intakes", json=payload, headers=headers)
        assert first.status_code == second.status_code == 201
        assert first.json() == second.json()
        other = await intake.post(
            "/v1/intakes", json={**payload, "coach_id": "c3", "supervisor_id": "s"}, headers=headers
        )
        assert other.status_code == 422


async def test_every_service_documents_its_kafka_interface_as_asyncapi(stack: Stack) -> None:
    expected = {
        "intake": ("intake.events", []),
        "engagement": ("engagement.events", ["intake.events"]),
        "notifications": ("notifications.events", ["intake.events", "engagement.events"]),
    }
    for name, (published, consumed) in expected.items():
        async with stack.client(name) as client:
            response = await client.get("/asyncapi.json")
        assert response.status_code == 200
        document = response.json()
        assert document["asyncapi"].startswith("3.")
        addresses = {channel["address"] for channel in document["channels"].values()}
        assert published in addresses
        assert set(consumed) <= addresses


async def test_a_new_intake_reads_back_at_once_even_before_its_view_is_projected(
    stack: Stack,
) -> None:
    coach = auth("coach", "c-read-your-writes")
    async with stack.client("intake") as intake:
        for _ in range(5):
            started = await intake.post(
                "/v1/intakes",
                json={"coach_id": "c-read-your-writes", "client": {"name": "R", "email": "r@x.io"}},
                headers=coach,
            )
            engagement_id = started.json()["engagement_id"]
            view = await intake.get(f"/v1/intakes/{engagement_id}", headers=coach)
            assert view.status_code == 200
            assert view.json()["status"] == "open" and view.json()["version"] == 1
            assert view.json()["client"]["name"] == "R"


async def test_an_admin_lists_every_recipient_s_notifications_with_a_star(stack: Stack) -> None:
    coach_id = f"coach-{uuid.uuid4().hex[:8]}"
    async with stack.client("intake") as intake, stack.client("notifications") as notifications:
        journey = await start_intake_journey(intake, coach_id)

        async def listed() -> set[str] | None:
            response = await notifications.get(
                "/v1/notifications",
                params={"recipient": "*", "limit": 10_000},
                headers=auth("admin", "ops"),
            )
            assert response.status_code == 200
            mine = {
                item["recipient"]
                for item in response.json()["items"]
                if item["engagement_id"] == journey["engagement_id"]
            }
            return mine if len(mine) == 2 else None

        assert await eventually(listed) == {f"coach:{coach_id}", f"client:{journey['client_id']}"}
        refused = await notifications.get(
            "/v1/notifications", params={"recipient": "*"}, headers=auth("coach", coach_id)
        )
        assert refused.status_code == 403
