"""Events of the notifications service's streams (one stream per engagement)."""

from __future__ import annotations

from datetime import datetime

from shared.events import DomainEvent, EventRegistry


class NotificationScheduled(DomainEvent):
    """A notification was decided; it is due at `due_at`. Ids, kinds and times only."""

    event_type = "NotificationScheduled"

    notification_id: str
    kind: str
    recipient: str
    engagement_id: str
    due_at: datetime
    cause_event_id: str


registry = EventRegistry([NotificationScheduled])
