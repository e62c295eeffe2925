"""Commands of the engagement, in the imperative."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.events import Command


class OpenEngagement(Command):
    engagement_id: str
    client_id: str
    coach_id: str
    supervisor_id: str | None
    session_cadence_days: int
    goals: list[dict[str, Any]]
    baselines: list[dict[str, Any]]
    at: datetime
