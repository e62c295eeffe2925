"""Notifications end to end: events through Kafka, webhooks over real HTTP, a movable clock,
and a restart in the middle of deliveries."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from services.engagement.bootstrap import TOPIC as ENGAGEMENT_TOPIC
from services.notifications.bootstrap import create_app as notifications_app
from shared.messaging.kafka import KafkaPublisher, envelope_message
from shared.model.envelope import format_time, parse_time
from tests.integration.webhook_support import holds, receiver, sealed
from tests.support import Stack, auth, eventually, start_intake_journey

ADMIN = auth("admin", "ops")


@pytest.fixture
async def publisher(stack: Stack) -> AsyncIterator[KafkaPublisher]:
    assert stack.settings.kafka_bootstrap
    kafka = KafkaPublisher(stack.settings.kafka_bootstrap, "test-engagement")
    yield kafka
    await kafka.stop()


async def engagement(stack: Stack, *, supervisor: bool = True) -> dict[str, str]:
    """An engagement committed through the intake: its id and its parties' ids."""
    coach_id = f"coach-{uuid.uuid4().hex[:8]}"
    supervisor_id = f"sup-{uuid.uuid4().hex[:8]}" if supervisor else None
    async with stack.client("intake") as intake:
        journey = await start_intake_journey(intake, coach_id, supervisor_id=supervisor_id)
    return {
        "engagement_id": journey["engagement_id"],
        "coach": f"coach:{coach_id}",
        "client": f"client:{journey['client_id']}",
        "supervisor": f"supervisor:{supervisor_id}",
    }


async def publish(
    kafka: KafkaPublisher,
    engagement_id: str,
    event_type: str,
    data: dict[str, Any],
    at: datetime,
) -> None:
    envelope = sealed(event_type, engagement_id, data, at=at, version=100)
    await kafka.publish([envelope_message(ENGAGEMENT_TOPIC, envelope)])


async def notifications(stack: Stack, recipient: str, engagement_id: str) -> list[dict[str, Any]]:
    async with stack.client("notifications") as http:
        response = await http.get(
            "/v1/notifications", params={"recipient": recipient}, headers=ADMIN
        )
    assert response.status_code == 200, response.text
    return [i for i in response.json()["items"] if i["engagement_id"] == engagement_id]


async def kinds_when(
    stack: Stack, recipient: str, engagement_id: str, expected: list[str]
) -> list[dict[str, Any]]:
    """The recipient's notifications once their kinds are `expected` (sorted)."""

    async def probe() -> list[dict[str, Any]] | None:
        items = await notifications(stack, recipient, engagement_id)
        return items if sorted(i["kind"] for i in items) == sorted(expected) else None

    return await eventually(probe, timeout=30)


async def register(
    stack: Stack, recipient: str, url: str, secret: str, headers: dict[str, str]
) -> httpx.Response:
    async with stack.client("notifications") as http:
        return await http.post(
            "/v1/webhooks",
            json={"recipient": recipient, "url": url, "secret": secret},
            headers=headers,
        )


async def test_each_kind_is_produced_by_its_event_for_the_right_recipients(
    stack: Stack, publisher: KafkaPublisher
) -> None:
    first = await engagement(stack)
    at = stack.clock.now()
    engagement_id = first["engagement_id"]
    for event_type, data in [
        ("HomeworkClaimed", {"homework_id": "h-1"}),
        ("DeceptionPatternDetected", {}),
        ("BoundaryViolated", {"violation_id": "v-1", "violated_by": "coach", "kind": "other"}),
        ("BoundaryViolated", {"violation_id": "v-2", "violated_by": "client", "kind": "other"}),
        ("SupervisionRecommended", {"party": "coach", "reason": "confidentiality_breach"}),
        ("EngagementTerminated", {"reason": "boundaries"}),
    ]:
        await publish(publisher, engagement_id, event_type, data, at)
    await kinds_when(
        stack,
        first["coach"],
        engagement_id,
        [
            "welcome",
            "claim_to_verify",
            "deception_pattern",
            "boundary_violation",
            "boundary_violation",
            "supervision_recommended",
            "engagement_ended",
        ],
    )
    await kinds_when(stack, first["client"], engagement_id, ["welcome", "engagement_ended"])
    await kinds_when(
        stack,
        first["supervisor"],
        engagement_id,
        ["boundary_violation", "supervision_recommended"],
    )

    second = await engagement(stack)
    graduated_at = stack.clock.now()
    await publish(
        publisher,
        second["engagement_id"],
        "Graduated",
        {"graduated_at": format_time(graduated_at)},
        graduated_at,
    )
    follow_ups = ["follow_up_due", "follow_up_due"]
    await kinds_when(stack, second["coach"], second["engagement_id"], ["welcome", *follow_ups])
    await kinds_when(
        stack,
        second["client"],
        second["engagement_id"],
        ["welcome", *follow_ups, "testimonial_request"],
    )
    assert await notifications(stack, second["supervisor"], second["engagement_id"]) == []


async def test_a_redelivered_event_creates_nothing_new(
    stack: Stack, publisher: KafkaPublisher
) -> None:
    parties = await engagement(stack, supervisor=False)
    engagement_id = parties["engagement_id"]
    claimed = sealed("HomeworkClaimed", engagement_id, {"homework_id": "h"}, at=stack.clock.now())
    marker = sealed("DeceptionPatternDetected", engagement_id, {}, at=stack.clock.now())
    for envelope in (claimed, claimed, marker, claimed):
        await publisher.publish([envelope_message(ENGAGEMENT_TOPIC, envelope)])
    items = await kinds_when(
        stack, parties["coach"], engagement_id, ["welcome", "claim_to_verify", "deception_pattern"]
    )
    assert len({item["notification_id"] for item in items}) == 3


async def test_follow_ups_and_the_testimonial_request_are_delivered_once_the_clock_passes_them(
    stack: Stack, publisher: KafkaPublisher
) -> None:
    parties = await engagement(stack, supervisor=False)
    engagement_id = parties["engagement_id"]
    async with receiver() as coach_hook, receiver() as client_hook:
        for role, hook in (("coach", coach_hook), ("client", client_hook)):
            sub = parties[role].split(":", 1)[1]
            headers = auth("coach", sub) if role == "coach" else auth("client", sub)
            response = await register(stack, parties[role], hook.url, f"{role}-secret", headers)
            assert response.status_code == 201, response.text
            assert set(response.json()) >= {"webhook_id"}
        graduated_at = stack.clock.now()
        await publish(
            publisher,
            engagement_id,
            "Graduated",
            {"graduated_at": format_time(graduated_at)},
            graduated_at,
        )
        items = await kinds_when(
            stack,
            parties["client"],
            engagement_id,
            ["welcome", "follow_up_due", "follow_up_due", "testimonial_request"],
        )
        later = {(i["kind"], parse_time(i["due_at"])) for i in items if i["kind"] != "welcome"}
        day90, day180 = graduated_at + timedelta(days=90), graduated_at + timedelta(days=180)
        assert later == {
            ("follow_up_due", day90),
            ("follow_up_due", day180),
            ("testimonial_request", day90),
        }
        assert {i["status"] for i in items if i["kind"] != "welcome"} == {"scheduled"}
        await eventually(holds(lambda: len(client_hook.received) == 1))  # the welcome only

        stack.clock.advance(timedelta(days=91))
        await eventually(holds(lambda: len(client_hook.received) == 3))
        await eventually(holds(lambda: len(coach_hook.received) == 2))
        assert sorted(r.json["kind"] for r in client_hook.received) == [
            "follow_up_due",
            "testimonial_request",
            "welcome",
        ]
        expected = [
            ("follow_up_due", "delivered"),
            ("follow_up_due", "scheduled"),
            ("welcome", "delivered"),
        ]

        async def coach_statuses() -> bool:
            items = await notifications(stack, parties["coach"], engagement_id)
            return sorted((i["kind"], i["status"]) for i in items) == expected

        await eventually(coach_statuses)

        stack.clock.advance(timedelta(days=90))
        await eventually(holds(lambda: len(coach_hook.received) == 3))
        await eventually(holds(lambda: len(client_hook.received) == 4))
        for hook, role in ((coach_hook, "coach"), (client_hook, "client")):
            assert all(r.signed_with(f"{role}-secret") for r in hook.received)
            assert all(r.json["recipient"] == parties[role] for r in hook.received)
            assert len(set(hook.ids())) == len(hook.received)


async def test_a_restart_in_the_middle_of_deliveries_loses_nothing_and_repeats_only_in_flight(
    stack: Stack, publisher: KafkaPublisher
) -> None:
    parties = await engagement(stack, supervisor=False)
    engagement_id = parties["engagement_id"]
    async with receiver(delay=0.3) as hook:
        response = await register(stack, parties["coach"], hook.url, "restart", ADMIN)
        assert response.status_code == 201, response.text
        at = stack.clock.now()
        for number in range(24):
            await publish(
                publisher, engagement_id, "HomeworkClaimed", {"homework_id": f"h-{number}"}, at
            )
        await eventually(holds(lambda: len(hook.received) >= 4))
        await stack.stop("notifications")
        received_before_restart = set(hook.ids())
        assert len(received_before_restart) < 25  # stopped in the middle
        await stack.start("notifications", notifications_app)

        async def all_delivered() -> list[dict[str, Any]] | None:
            items = await notifications(stack, parties["coach"], engagement_id)
            done = [i for i in items if i["status"] == "delivered"]
            return items if len(items) == 25 and len(done) == 25 else None

        items = await eventually(all_delivered, timeout=60)
    expected = {item["notification_id"] for item in items}
    assert set(hook.ids()) == expected
    times = Counter(hook.ids())
    repeated = {nid for nid, count in times.items() if count > 1}
    assert repeated <= received_before_restart, times
    # at most the attempts in flight for this webhook when the service stopped
    assert len(repeated) <= 4 and max(times.values()) <= 2, times
    assert all(r.signed_with("restart") for r in hook.received)


async def test_webhooks_are_registered_only_for_oneself_unless_admin(stack: Stack) -> None:
    url = "https://hooks.example.org/rapport"
    mine = await register(stack, "coach:c-own", url, "s", auth("coach", "c-own"))
    assert mine.status_code == 201 and uuid.UUID(mine.json()["webhook_id"])
    for recipient, headers in [
        ("coach:c-other", auth("coach", "c-own")),
        ("*", auth("coach", "c-own")),
        ("client:c-own", auth("coach", "c-own")),
        ("coach:c-own", auth("auditor", "a-1")),
    ]:
        refused = await register(stack, recipient, url, "s", headers)
        assert refused.status_code == 403, (recipient, refused.text)
    assert (await register(stack, "client:cl-own", url, "s", auth("client", "cl-own"))).is_success
    assert (await register(stack, "supervisor:s-1", url, "s", ADMIN)).status_code == 201
    async with stack.client("notifications") as http:
        anonymous = await http.post(
            "/v1/webhooks", json={"recipient": "coach:c-own", "url": url, "secret": "s"}
        )
    assert anonymous.status_code == 401


async def stored_webhooks(stack: Stack, recipient: str) -> int:
    async with stack.core("notifications").store.pool.acquire() as conn:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM notifications.webhooks WHERE recipient = $1", recipient
        )
    return count


async def test_invalid_webhooks_are_refused_with_the_fields_named(stack: Stack) -> None:
    coach = auth("coach", "c-v")
    for body, field in [
        ({"recipient": "coach:c-v", "url": "ftp://example.org/x", "secret": "s"}, "url"),
        ({"recipient": "coach:c-v", "url": "not a url", "secret": "s"}, "url"),
        ({"recipient": "coach:c-v", "url": "https://x.org/" + "a" * 2100, "secret": "s"}, "url"),
        ({"recipient": "coach:c-v", "url": "http://127.0.0.1:18099:99/", "secret": "s"}, "url"),
        ({"recipient": "coach:c-v", "url": "http://xn--/", "secret": "s"}, "url"),
        ({"recipient": "coach:c-v", "url": "http://x.org/a\x01b", "secret": "s"}, "url"),
        ({"recipient": "coach:c-v", "url": "http://x.org/\r\nX: y", "secret": "s"}, "url"),
        ({"recipient": "coach:c-v", "url": "http://127.1/", "secret": "s"}, "url"),
        ({"recipient": "coach:c-v", "url": "https://x.org/h"}, "secret"),
        ({"recipient": "someone", "url": "https://x.org/h", "secret": "s"}, "recipient"),
    ]:
        async with stack.client("notifications") as http:
            response = await http.post("/v1/webhooks", json=body, headers=coach)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert field in {error["field"] for error in response.json()["errors"]}
    assert await stored_webhooks(stack, "coach:c-v") == 0


async def test_a_webhook_url_with_credentials_is_refused_and_stored_nowhere(stack: Stack) -> None:
    secret_part = f"pw-{uuid.uuid4().hex}"
    url = f"https://hook-user:{secret_part}@hooks.example.org/h"
    headers = {**auth("coach", "c-creds"), "Idempotency-Key": f"k-{uuid.uuid4()}"}
    async with stack.client("notifications") as http:
        response = await http.post(
            "/v1/webhooks",
            json={"recipient": "coach:c-creds", "url": url, "secret": "s"},
            headers=headers,
        )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    [error] = response.json()["errors"]
    assert error["field"] == "url" and "credentials" in error["message"]
    assert secret_part not in response.text
    async with stack.core("notifications").store.pool.acquire() as conn:
        webhooks = await conn.fetchval(
            "SELECT count(*) FROM notifications.webhooks WHERE position($1 in url) > 0",
            secret_part,
        )
        remembered = await conn.fetchval(
            "SELECT count(*) FROM notifications.idempotency_keys"
            " WHERE position($1 in response::text) > 0",
            secret_part,
        )
    assert webhooks == remembered == 0


async def test_a_recipient_s_twenty_first_webhook_answers_409_and_writes_nothing(
    stack: Stack,
) -> None:
    coach_id = f"c-limit-{uuid.uuid4().hex[:8]}"
    recipient, coach = f"coach:{coach_id}", auth("coach", coach_id)
    for number in range(20):
        registered = await register(stack, recipient, f"https://x.org/{number}", "s", coach)
        assert registered.status_code == 201, registered.text
    refused = await register(stack, recipient, "https://x.org/21", "s", coach)
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "20 webhooks" in refused.json()["detail"]
    assert await stored_webhooks(stack, recipient) == 20
    # an admin is held to the same limit for that recipient; another recipient is not affected
    assert (await register(stack, recipient, "https://x.org/a", "s", ADMIN)).status_code == 409
    other = await register(stack, f"client:{coach_id}", "https://x.org/c", "s", ADMIN)
    assert other.status_code == 201, other.text
    assert await stored_webhooks(stack, recipient) == 20


async def test_a_retried_registration_with_an_idempotency_key_registers_once(
    stack: Stack,
) -> None:
    headers = {**auth("coach", "c-idem"), "Idempotency-Key": f"k-{uuid.uuid4()}"}
    body = {"recipient": "coach:c-idem", "url": "https://x.org/h", "secret": "s"}
    async with stack.client("notifications") as http:
        first = await http.post("/v1/webhooks", json=body, headers=headers)
        second = await http.post("/v1/webhooks", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()


async def test_metrics_report_deliveries_queue_depth_and_oldest_pending_age(stack: Stack) -> None:
    async with stack.client("notifications") as http:
        text = (await http.get("/metrics")).text
    for name in (
        "rapport_notification_deliveries_total",
        "rapport_notification_queue_depth",
        "rapport_notification_oldest_pending_seconds",
    ):
        assert name in text
