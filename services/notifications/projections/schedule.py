"""The notification schedule: one document per notification, folded from the log.

Status as folded: `scheduled` until dispatched; `delivered` as soon as one webhook of the
recipient acknowledged it with a 2xx (the notification reached its recipient; other webhooks
keep their own retries, every attempt counted); `failed` only when every webhook it was
dispatched to spent its retry budget without a 2xx; `pending` otherwise. Reads turn
`scheduled` into `pending` once `due_at` has passed.
"""

from __future__ import annotations

from typing import Any

from services.notifications.domain.events import registry
from shared.model.envelope import Envelope
from shared.model.projections import Document, Projection

EVENTS = {
    "NotificationScheduled",
    "NotificationDispatched",
    "NotificationDeliveryAttempted",
    "NotificationDelivered",
    "NotificationFailed",
}
PUBLIC_FIELDS = (
    "notification_id",
    "kind",
    "recipient",
    "engagement_id",
    "status",
    "due_at",
    "attempts",
    "created_at",
)


def key(envelope: Envelope) -> str | None:
    if envelope.event_type not in EVENTS:
        return None
    notification_id = envelope.data.get("notification_id")
    return str(notification_id) if notification_id else None


def _status(webhooks: dict[str, str]) -> str:
    states = set(webhooks.values())
    if "delivered" in states:
        return "delivered"
    return "pending" if "pending" in states else "failed"


def fold(document: Document | None, envelope: Envelope) -> Document | None:
    data: dict[str, Any] = envelope.data
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
            "webhooks": {},
        }
    if document is None:
        return None
    view = dict(document)
    webhooks = dict(view.get("webhooks") or {})
    match envelope.event_type:
        case "NotificationDispatched":
            webhooks = {webhook_id: "pending" for webhook_id in data["webhook_ids"]}
        case "NotificationDeliveryAttempted":
            view["attempts"] = int(view["attempts"]) + 1
            return view
        case "NotificationDelivered":
            webhooks[data["webhook_id"]] = "delivered"
        case "NotificationFailed":
            webhooks[data["webhook_id"]] = "failed"
    view["webhooks"] = webhooks
    view["status"] = _status(webhooks) if webhooks else view["status"]
    return view


def public(document: Document) -> Document:
    """The fields the contract lists for a notification."""
    return {name: document[name] for name in PUBLIC_FIELDS}


schedule = Projection(name="notification_schedule", key=key, fold=fold, registry=registry)
