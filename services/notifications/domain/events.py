"""Events of the notifications service's streams (one stream per engagement).

Every field is an id, a kind, a number or a time: a notification never carries personal data.
"""

from __future__ import annotations

from datetime import datetime

from shared.model.events import DomainEvent, EventRegistry


class EngagementPartiesRecorded(DomainEvent):
    """Who takes part in an engagement, learnt from `ClientCommitted` (ids only)."""

    event_type = "EngagementPartiesRecorded"

    engagement_id: str
    client_id: str
    coach_id: str
    supervisor_id: str | None
    cause_event_id: str


class NotificationScheduled(DomainEvent):
    """A notification was decided; it is due at `due_at`. Ids, kinds and times only."""

    event_type = "NotificationScheduled"

    notification_id: str
    kind: str
    recipient: str
    engagement_id: str
    due_at: datetime
    cause_event_id: str


class NotificationDispatched(DomainEvent):
    """A due notification was handed to the webhooks registered for its recipient then."""

    event_type = "NotificationDispatched"

    notification_id: str
    webhook_ids: list[str]
    dispatched_at: datetime


class NotificationDeliveryAttempted(DomainEvent):
    """One POST to one webhook and how it went (`error` is a short code, never a body)."""

    event_type = "NotificationDeliveryAttempted"

    notification_id: str
    webhook_id: str
    attempt: int
    succeeded: bool
    status_code: int | None
    error: str | None
    attempted_at: datetime
    next_attempt_at: datetime | None


class NotificationDelivered(DomainEvent):
    """A webhook acknowledged the notification with a 2xx answer."""

    event_type = "NotificationDelivered"

    notification_id: str
    webhook_id: str
    attempts: int
    delivered_at: datetime


class NotificationFailed(DomainEvent):
    """The retry budget for one webhook is spent without a 2xx answer."""

    event_type = "NotificationFailed"

    notification_id: str
    webhook_id: str
    attempts: int
    last_error: str | None
    failed_at: datetime


registry = EventRegistry(
    [
        EngagementPartiesRecorded,
        NotificationScheduled,
        NotificationDispatched,
        NotificationDeliveryAttempted,
        NotificationDelivered,
        NotificationFailed,
    ]
)
