"""The notification schedule: one document per notification, folded from the log."""

from __future__ import annotations

from shared.envelope import Envelope
from shared.projections import Document, Projection


def key(envelope: Envelope) -> str | None:
    notification_id = envelope.data.get("notification_id")
    return str(notification_id) if notification_id else None


def fold(document: Document | None, envelope: Envelope) -> Document | None:
    data = envelope.data
    if envelope.event_type == "NotificationScheduled":
        return {
            "notification_id": data["notification_id"],
            "kind": data["kind"],
            "recipient": data["recipient"],
            "engagement_id": data["engagement_id"],
            "status": "scheduled",
            "due_at": data["due_at"],
            "attempts": 0,
            "created_at": envelope.occurred_at,
        }
    return document


schedule = Projection(name="notification_schedule", key=key, fold=fold)
