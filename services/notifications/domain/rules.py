"""Notification rules: a pure function from an incoming event to the notifications it causes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

NAMESPACE = uuid.UUID("7d0c5f1e-6c1f-4b8e-9a59-3f1d6f0b2a10")


@dataclass(frozen=True)
class Planned:
    """One notification an event calls for."""

    notification_id: str
    kind: str
    recipient: str
    engagement_id: str
    due_at: datetime


def notification_id(cause_event_id: str, kind: str, recipient: str, due_at: datetime) -> str:
    """Deterministic, so a redelivered event plans the same ids."""
    return str(uuid.uuid5(NAMESPACE, f"{cause_event_id}|{kind}|{recipient}|{due_at.isoformat()}"))


def _plan(
    cause_event_id: str, engagement_id: str, kind: str, recipients: list[str], due_at: datetime
) -> list[Planned]:
    return [
        Planned(notification_id(cause_event_id, kind, r, due_at), kind, r, engagement_id, due_at)
        for r in recipients
    ]


def notifications_for(
    event_type: str, event_id: str, engagement_id: str, occurred_at: datetime, data: dict[str, Any]
) -> list[Planned]:
    """The notifications an event causes; the same event always gives the same list."""
    if event_type == "ClientCommitted":
        recipients = [f"client:{data['client_id']}", f"coach:{data['coach_id']}"]
        return _plan(event_id, engagement_id, "welcome", recipients, occurred_at)
    return []
