"""Events of the engagement stream, named exactly as the contract names them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.events import DomainEvent, EventRegistry


class EngagementOpened(DomainEvent):
    """The engagement began, from the intake's `ClientCommitted`."""

    event_type = "EngagementOpened"

    engagement_id: str
    client_id: str
    coach_id: str
    supervisor_id: str | None
    session_cadence_days: int
    goals: list[dict[str, Any]]
    baselines: list[dict[str, Any]]
    opened_at: datetime


registry = EventRegistry([EngagementOpened])
