"""The schedule projection folds a notification's life from the log, and the delivery policy."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

from services.notifications.domain.delivery import Notice, headers, retry_delay, signature
from services.notifications.projections.schedule import public, schedule
from shared.model.projections import fold_stream
from tests.unit.test_notification_rules import envelope

NOTIFICATION = "9b7f1c9e-8a70-5a11-9d35-1f1e5c8f1a01"


def life(*steps: tuple[str, dict[str, object]]) -> dict[str, object]:
    scheduled = (
        "NotificationScheduled",
        {
            "notification_id": NOTIFICATION,
            "kind": "welcome",
            "recipient": "coach:co-1",
            "engagement_id": "e-1",
            "due_at": "2026-03-01T09:30:00Z",
            "cause_event_id": "c",
        },
    )
    events = [envelope(t, {"notification_id": NOTIFICATION, **d}) for t, d in (scheduled, *steps)]
    document = fold_stream(schedule, events)
    assert document is not None
    return public(document)


def attempted(webhook_id: str) -> tuple[str, dict[str, object]]:
    return ("NotificationDeliveryAttempted", {"webhook_id": webhook_id})


def test_a_new_notification_is_scheduled_with_no_attempts() -> None:
    view = life()
    assert view["status"] == "scheduled" and view["attempts"] == 0
    assert set(view) == {
        "notification_id",
        "kind",
        "recipient",
        "engagement_id",
        "status",
        "due_at",
        "attempts",
        "created_at",
    }


def test_a_dispatched_notification_is_pending_until_a_webhook_acknowledges_it() -> None:
    dispatched = ("NotificationDispatched", {"webhook_ids": ["w-1", "w-2"]})
    delivered_1 = ("NotificationDelivered", {"webhook_id": "w-1"})
    delivered_2 = ("NotificationDelivered", {"webhook_id": "w-2"})
    assert life(dispatched)["status"] == "pending"
    assert life(dispatched, attempted("w-2"))["status"] == "pending"
    assert life(dispatched, attempted("w-1"), delivered_1)["status"] == "delivered"
    done = life(dispatched, attempted("w-1"), delivered_1, attempted("w-2"), delivered_2)
    assert done["status"] == "delivered" and done["attempts"] == 2


def test_a_notification_delivered_to_one_webhook_stays_delivered_when_another_fails() -> None:
    dispatched = ("NotificationDispatched", {"webhook_ids": ["w-ok", "w-dead"]})
    delivered = ("NotificationDelivered", {"webhook_id": "w-ok"})
    failed = ("NotificationFailed", {"webhook_id": "w-dead"})
    retries = [attempted("w-dead") for _ in range(4)]
    view = life(dispatched, attempted("w-ok"), delivered, *retries, failed)
    assert view["status"] == "delivered" and view["attempts"] == 5
    view = life(dispatched, *retries, failed, attempted("w-ok"), delivered)
    assert view["status"] == "delivered"


def test_a_notification_fails_only_when_every_webhook_spent_its_budget() -> None:
    dispatched = ("NotificationDispatched", {"webhook_ids": ["w-1", "w-2"]})
    failed_1 = ("NotificationFailed", {"webhook_id": "w-1"})
    failed_2 = ("NotificationFailed", {"webhook_id": "w-2"})
    view = life(dispatched, *(attempted("w-1") for _ in range(4)), failed_1)
    assert view["status"] == "pending"
    view = life(dispatched, *(attempted("w-1") for _ in range(4)), failed_1, failed_2)
    assert view["status"] == "failed" and view["attempts"] == 4


def test_the_webhook_body_is_exactly_the_six_fields_and_its_signature_verifies() -> None:
    notice = Notice(NOTIFICATION, "welcome", "coach:co-1", "e-1", "2026-03-01T09:30:00Z", "x")
    body = notice.body()
    assert set(json.loads(body)) == {
        "notification_id",
        "kind",
        "recipient",
        "engagement_id",
        "due_at",
        "created_at",
    }
    sent = headers(notice, body, "s3cret")
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert sent["X-Rapport-Signature"] == f"sha256={expected}" == signature(body, "s3cret")
    assert sent["X-Rapport-Notification-Id"] == NOTIFICATION


def test_backoff_doubles_per_attempt_within_its_jitter_and_is_capped() -> None:
    for attempt in range(1, 8):
        nominal = 0.5 * 2 ** (attempt - 1)
        low, high = retry_delay(attempt, 0.5, 0.0), retry_delay(attempt, 0.5, 0.999)
        assert low == timedelta(seconds=nominal * 0.5)
        assert timedelta(seconds=nominal) < high < timedelta(seconds=nominal * 1.5)
    assert retry_delay(60, 1.0, 0.5) == timedelta(hours=1)
