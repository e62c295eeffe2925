"""Webhook delivery against real HTTP receivers on localhost and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from rapport.infra import Endpoints
from services.notifications.domain.webhooks import MAX_WEBHOOKS_PER_RECIPIENT
from shared.security.tokens import PermissionDenied, Principal
from shared.storage.db import migrate
from shared.model.envelope import format_time
from shared.model.errors import ForbiddenByState
from shared.storage.eventstore import START
from tests.integration.webhook_support import (
    ADMIN,
    Notifier,
    client_committed,
    holds,
    notifier,
    receiver,
    running,
    sealed,
)
from tests.support import eventually


def event_types(events: list[Any]) -> list[str]:
    return [event.event_type for event in events]


async def only(n: Notifier, recipient: str, status: str | None = None) -> list[dict[str, Any]]:
    items = await n.notifications(recipient)
    return [item for item in items if status is None or item["status"] == status]


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_due_notification_reaches_its_webhook_signed_with_the_secret(
    infra: Endpoints,
) -> None:
    delivered_before = metric("rapport_notification_deliveries_total", outcome="delivered")
    async with notifier(infra.database_url) as n, receiver() as hook:
        await n.webhook("coach:c-1", hook.url, secret="top-secret")
        engagement_id = await n.commit("c-1")
        async with running(n.worker()):
            await eventually(lambda: only(n, "coach:c-1", "delivered"))
        [request] = hook.received
        assert request.signed_with("top-secret")
        assert not request.signed_with("another-secret")
        assert request.headers["content-type"] == "application/json"
        [item] = await n.notifications("coach:c-1")
        assert item["attempts"] == 1 and item["engagement_id"] == engagement_id
        assert request.notification_id == item["notification_id"]
        assert request.json == {
            name: item[name]
            for name in ("notification_id", "kind", "recipient", "engagement_id", "due_at")
        } | {"created_at": item["created_at"]}
        types = event_types(await n.events(engagement_id))
        assert types.count("NotificationDeliveryAttempted") == 1
        assert types.count("NotificationDelivered") == 1
    assert metric("rapport_notification_deliveries_total", outcome="delivered") > delivered_before


async def test_a_receiver_answering_500_twice_then_200_gets_it_on_the_third_attempt(
    infra: Endpoints,
) -> None:
    async with (
        notifier(infra.database_url) as n,
        receiver(answer=lambda count: 500 if count <= 2 else 200) as hook,
    ):
        await n.webhook("coach:c-2", hook.url)
        engagement_id = await n.commit("c-2")
        async with running(n.worker()):
            [item] = await eventually(lambda: only(n, "coach:c-2", "delivered"))
        assert item["attempts"] == 3
        assert len(hook.received) == 3
        assert {request.notification_id for request in hook.received} == {item["notification_id"]}
        assert len({request.body for request in hook.received}) == 1
        events = await n.events(engagement_id)
        attempts = [e.data for e in events if e.event_type == "NotificationDeliveryAttempted"]
        assert [(a["attempt"], a["status_code"], a["succeeded"]) for a in attempts] == [
            (1, 500, False),
            (2, 500, False),
            (3, 200, True),
        ]
        assert attempts[0]["error"] == "http_500" and attempts[0]["next_attempt_at"]
        assert event_types(events).count("NotificationDelivered") == 1


async def test_a_receiver_that_never_answers_fails_after_the_budget_while_another_keeps_receiving(
    infra: Endpoints,
) -> None:
    async with (
        notifier(infra.database_url, webhook_timeout_seconds=0.3) as n,
        receiver(answer=lambda count: None) as dead,
        receiver() as alive,
    ):
        await n.webhook("coach:dead", dead.url)
        await n.webhook("coach:alive", alive.url)
        for _ in range(6):
            await n.commit("dead")
        async with running(n.worker(concurrency=8, per_webhook=3)):
            await eventually(holds(lambda: len(dead.received) >= 3))
            for _ in range(6):
                await n.commit("alive")
            await eventually(lambda: only(n, "coach:alive", "delivered"))
            delivered = await eventually(
                lambda: _all(only(n, "coach:alive", "delivered"), 6), timeout=30
            )
            still_trying = await only(n, "coach:dead")
            assert all(item["status"] == "pending" for item in still_trying)
            failed = await eventually(lambda: _all(only(n, "coach:dead", "failed"), 6), timeout=60)
        assert len(delivered) == 6 and len(alive.received) == 6
        assert all(item["attempts"] == 4 for item in failed)
        assert Counter(dead.ids()) == {item["notification_id"]: 4 for item in failed}
        assert dead.most_in_flight <= 3
        rows = await n.delivery_rows()
        assert sorted(row["status"] for row in rows) == ["delivered"] * 6 + ["failed"] * 6
        assert all(row["last_error"] == "timeout" for row in rows if row["status"] == "failed")


async def _all(items: Any, count: int) -> list[dict[str, Any]] | None:
    found: list[dict[str, Any]] = await items
    return found if len(found) == count else None


async def test_two_workers_never_deliver_the_same_attempt_at_once(infra: Endpoints) -> None:
    async with notifier(infra.database_url) as n, receiver(delay=0.02) as hook:
        await n.webhook("coach:busy", hook.url)
        for _ in range(30):
            await n.commit("busy")
        async with running(n.worker(per_webhook=8), n.worker(per_webhook=8)):
            await eventually(lambda: _all(only(n, "coach:busy", "delivered"), 30), timeout=60)
        assert sorted(Counter(hook.ids()).values()) == [1] * 30
        assert all(item["attempts"] == 1 for item in await n.notifications("coach:busy"))


async def test_a_future_notification_stays_scheduled_until_the_clock_passes_it(
    infra: Endpoints,
) -> None:
    async with notifier(infra.database_url) as n, receiver() as hook:
        await n.webhook("client:cl-9", hook.url)
        engagement_id = await n.commit("c-9", "cl-9")
        graduated_at = n.clock.now()
        await n.receive(
            sealed(
                "Graduated",
                engagement_id,
                {"graduated_at": format_time(graduated_at)},
                at=graduated_at,
            )
        )
        async with running(n.worker()):
            await eventually(lambda: only(n, "client:cl-9", "delivered"))  # the welcome
            later = await only(n, "client:cl-9", "scheduled")
            assert sorted((i["kind"], i["due_at"]) for i in later) == sorted(
                [
                    ("follow_up_due", format_due(graduated_at + timedelta(days=90))),
                    ("testimonial_request", format_due(graduated_at + timedelta(days=90))),
                    ("follow_up_due", format_due(graduated_at + timedelta(days=180))),
                ]
            )
            n.clock.advance(timedelta(days=90, minutes=1))
            await eventually(lambda: _all(only(n, "client:cl-9", "delivered"), 3))
            assert [i["kind"] for i in await only(n, "client:cl-9", "scheduled")] == [
                "follow_up_due"
            ]
            n.clock.advance(timedelta(days=90))
            await eventually(lambda: _all(only(n, "client:cl-9", "delivered"), 4))
        assert sorted(r.json["kind"] for r in hook.received) == [
            "follow_up_due",
            "follow_up_due",
            "testimonial_request",
            "welcome",
        ]


def format_due(moment: Any) -> str:
    """How a due time reads back (pydantic's JSON spelling of a UTC datetime)."""
    return json.loads(json.dumps(moment.isoformat().replace("+00:00", "Z")))


async def test_an_engagement_event_before_its_parties_is_planned_when_they_arrive(
    infra: Endpoints,
) -> None:
    async with notifier(infra.database_url) as n:
        engagement_id = "e-early"
        at = n.clock.now()
        claimed = sealed("HomeworkClaimed", engagement_id, {"homework_id": "h-1"}, at=at)
        await n.receive(claimed)
        assert await n.events(engagement_id) == []
        assert await n.pool.fetchval("SELECT count(*) FROM parked_events") == 1
        await n.receive(client_committed(engagement_id, "c-early", "cl-early", at=at))
        await n.receive(claimed)  # redelivered: nothing new
        kinds = sorted(i["kind"] for i in await n.notifications("coach:c-early"))
        assert kinds == ["claim_to_verify", "welcome"]
        assert await n.pool.fetchval("SELECT count(*) FROM parked_events") == 0
        types = event_types(await n.events(engagement_id))
        assert types[0] == "EngagementPartiesRecorded"
        assert types.count("NotificationScheduled") == 3


async def test_a_webhook_registered_later_receives_notifications_already_due(
    infra: Endpoints,
) -> None:
    async with notifier(infra.database_url) as n, receiver() as hook:
        await n.commit("c-late")
        async with running(n.worker()):
            [item] = await n.notifications("coach:c-late")
            assert item["status"] == "pending"
            await n.webhook("coach:c-late", hook.url)
            await eventually(lambda: only(n, "coach:c-late", "delivered"))
        assert hook.ids() == [item["notification_id"]]


async def test_the_worker_reports_queue_depth_and_the_oldest_pending_age(
    infra: Endpoints,
) -> None:
    async with notifier(infra.database_url) as n, receiver(answer=lambda count: 503) as hook:
        await n.webhook("coach:c-m", hook.url)
        await n.commit("c-m")
        n.clock.advance(timedelta(minutes=10))
        worker = n.worker(stats_seconds=0.0)
        async with running(worker):
            await eventually(holds(lambda: len(hook.received) >= 2))
        await worker.update_stats()
        assert metric("rapport_notification_queue_depth") == 1
        assert metric("rapport_notification_oldest_pending_seconds") >= 600
        assert metric("rapport_notification_deliveries_total", outcome="retried") >= 1


async def test_an_admin_webhook_for_every_recipient_receives_everyone_s_notifications(
    infra: Endpoints,
) -> None:
    async with notifier(infra.database_url) as n, receiver() as everyone, receiver() as own:
        await n.webhook("*", everyone.url)
        await n.webhook("coach:c-star", own.url)
        await n.commit("c-star", "cl-star")
        async with running(n.worker()):
            await eventually(lambda: only(n, "client:cl-star", "delivered"))
            await eventually(lambda: only(n, "coach:c-star", "delivered"))

            async def both_webhooks_attempted() -> bool:
                [item] = await n.notifications("coach:c-star")
                return bool(item["attempts"] == 2)

            await eventually(both_webhooks_attempted)
        assert sorted(r.json["recipient"] for r in everyone.received) == [
            "client:cl-star",
            "coach:c-star",
        ]
        assert [r.json["recipient"] for r in own.received] == ["coach:c-star"]
        [coach_item] = await n.notifications("coach:c-star")
        assert coach_item["attempts"] == 2  # one per webhook


async def test_only_the_recipient_or_an_admin_may_register_a_webhook(infra: Endpoints) -> None:
    async with notifier(infra.database_url) as n:
        url = "https://hooks.example.org/x"
        own = Principal(role="coach", sub="c-1")
        assert await n.service.register_webhook(own, "coach:c-1", url, "s", None)
        for principal, recipient in [
            (own, "coach:c-2"),
            (own, "*"),
            (Principal(role="auditor", sub="a"), "coach:c-1"),
            (Principal(role="client", sub="c-1"), "coach:c-1"),
        ]:
            with pytest.raises(PermissionDenied):
                await n.service.register_webhook(principal, recipient, url, "s", None)
        assert await n.service.register_webhook(ADMIN, "*", url, "s", None)
        stored = await n.pool.fetch("SELECT recipient, secret FROM webhooks ORDER BY recipient")
        assert [row["recipient"] for row in stored] == ["*", "coach:c-1"]
        types = [e.event_type async for e in _all_events(n)]
        assert types == []  # configuration, not events: no secret ever reaches the log


async def _all_events(n: Notifier) -> AsyncIterator[Any]:
    async with n.store.snapshot() as conn:
        for item in await n.store.read_after(conn, START, 1000):
            yield item.envelope


async def test_a_notification_that_reached_one_webhook_reads_delivered_while_another_fails(
    infra: Endpoints,
) -> None:
    async with (
        notifier(infra.database_url) as n,
        receiver() as working,
        receiver(answer=lambda count: 500) as broken,
    ):
        await n.webhook("coach:two-hooks", working.url)
        await n.webhook("coach:two-hooks", broken.url)
        engagement_id = await n.commit("two-hooks")
        async with running(n.worker()):
            [item] = await eventually(lambda: only(n, "coach:two-hooks", "delivered"))
            assert working.ids() == [item["notification_id"]]
            await eventually(lambda: _has(n, engagement_id, "NotificationFailed"), timeout=60)
            [after] = await only(n, "coach:two-hooks")
        assert after["status"] == "delivered"
        assert after["attempts"] == 1 + len(broken.received) > 1


async def _has(n: Any, engagement_id: str, event_type: str) -> bool:
    return event_type in event_types(await n.events(engagement_id))


async def test_a_webhook_secret_is_stored_sealed_and_still_signs_deliveries(
    infra: Endpoints,
) -> None:
    async with notifier(infra.database_url) as n, receiver() as hook:
        secret = f"very-secret-{uuid.uuid4().hex}"
        await n.webhook("coach:sealed", hook.url, secret=secret)
        stored = await n.pool.fetchval(
            "SELECT secret FROM webhooks WHERE recipient = 'coach:sealed'"
        )
        assert secret not in stored and stored.startswith("sealed:v1:")
        await n.commit("sealed")
        async with running(n.worker()):
            await eventually(lambda: only(n, "coach:sealed", "delivered"))
        assert hook.received[0].signed_with(secret)


async def test_concurrent_registrations_with_one_idempotency_key_register_once(
    infra: Endpoints,
) -> None:
    from shared.security.crypto import decode_master_key, generate_master_key
    from shared.usecases.idempotency import IdempotencyKeys
    from tests.integration.webhook_support import ADMIN

    async with notifier(infra.database_url) as n:
        request = {"recipient": "coach:idem", "url": "http://127.0.0.1:9/hook", "secret": "s"}
        keys = IdempotencyKeys(decode_master_key(generate_master_key()))
        key = keys.of("admin:ops:webhooks", f"k-{uuid.uuid4()}", request)
        answers = await asyncio.gather(
            *(
                n.service.register_webhook(ADMIN, "coach:idem", "http://127.0.0.1:9/hook", "s", key)
                for _ in range(10)
            )
        )
        assert len({answer["webhook_id"] for answer in answers}) == 1
        stored = await n.pool.fetchval(
            "SELECT count(*) FROM webhooks WHERE recipient = 'coach:idem'"
        )
        assert stored == 1


@pytest.mark.parametrize("host", ["127.0.0.1", "LOCALHOST."])
async def test_a_webhook_inside_the_private_network_is_refused_unless_allowed(
    infra: Endpoints, host: str
) -> None:
    async with (
        notifier(infra.database_url, webhook_allow_private_targets=False) as n,
        receiver() as internal,
    ):
        await n.webhook("coach:ssrf", internal.url.replace("127.0.0.1", host))
        engagement_id = await n.commit("ssrf")
        async with running(n.worker()):
            [item] = await eventually(lambda: only(n, "coach:ssrf", "failed"), timeout=30)
        assert internal.received == []
        attempts = [
            e.data
            for e in await n.events(engagement_id)
            if e.event_type == "NotificationDeliveryAttempted"
        ]
        assert attempts and {a["error"] for a in attempts} == {"blocked_target"}
        assert item["attempts"] == len(attempts)


async def test_concurrent_registrations_for_one_recipient_never_get_past_twenty(
    infra: Endpoints,
) -> None:
    async with notifier(infra.database_url) as n:
        await n.webhook("coach:crowd", "https://hooks.example.org/first")

        async def register(number: int) -> str:
            try:
                await n.webhook("coach:crowd", f"https://hooks.example.org/{number}")
            except ForbiddenByState:
                return "refused"
            return "registered"

        outcomes = Counter(await asyncio.gather(*(register(i) for i in range(30))))
        assert outcomes == {"registered": 19, "refused": 11}
        stored = await n.pool.fetchval(
            "SELECT count(*) FROM webhooks WHERE recipient = 'coach:crowd'"
        )
        assert stored == MAX_WEBHOOKS_PER_RECIPIENT == 20
        # every other recipient still has room, `*` included
        await n.webhook("coach:another", "https://hooks.example.org/h")
        await n.webhook("*", "https://hooks.example.org/h")


async def test_a_webhook_url_stored_with_credentials_before_loses_them_on_migrating(
    infra: Endpoints,
) -> None:
    async with notifier(infra.database_url) as n:
        urls = {
            "coach:old-1": "https://user:pa%40ss@hooks.example.org:8443/h?x=1",
            "coach:old-2": "http://token@10.0.0.1/h#@frag",
            "coach:old-3": "https://hooks.example.org/path@with-at?q=a@b",
        }
        for recipient, url in urls.items():
            await n.pool.execute(
                "INSERT INTO webhooks (webhook_id, recipient, url, secret, created_by, created_at)"
                " VALUES ($1, $2, $3, 'sealed', 'admin:ops', now())",
                uuid.uuid4(),
                recipient,
                url,
            )
        migration = "services.notifications.adapters.migrations:003_webhook_url_credentials.sql"
        await n.pool.execute("DELETE FROM schema_migrations WHERE name = $1", migration)
        schema = await n.pool.fetchval("SELECT current_schema()")
        assert await migrate(n.pool, schema, ["services.notifications.adapters.migrations"]) == [
            migration
        ]
        rows = await n.pool.fetch("SELECT recipient, url FROM webhooks ORDER BY recipient")
        assert {row["recipient"]: row["url"] for row in rows} == {
            "coach:old-1": "https://hooks.example.org:8443/h?x=1",
            "coach:old-2": "http://10.0.0.1/h#@frag",
            "coach:old-3": "https://hooks.example.org/path@with-at?q=a@b",
        }
