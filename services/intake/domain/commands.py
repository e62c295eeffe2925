"""Commands of the intake, in the imperative; `at` is the time the caller's clock gave."""

from __future__ import annotations

from datetime import date, datetime

from services.intake.domain.events import ClientDetails
from shared.model.events import Command


class StartIntake(Command):
    engagement_id: str
    client_id: str
    coach_id: str
    supervisor_id: str | None
    client: ClientDetails


class AssessBaseline(Command):
    assessment_id: str
    instrument: str
    scores: dict[str, float]
    notes: str | None = None


class SetGoal(Command):
    goal_id: str
    title: str
    measure: str
    baseline: float
    target: float
    target_date: date | None = None


class SignAgreement(Command):
    role_explained: bool
    confidentiality_limits_acknowledged: bool
    signed_by_client: bool
    signed_by_coach: bool
    contact_channels: list[str]
    contact_hours: str
    session_cadence_days: int


class CommitClient(Command):
    at: datetime


class EraseClient(Command):
    client_id: str
    at: datetime
