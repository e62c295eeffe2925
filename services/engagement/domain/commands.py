"""Commands of the engagement, in the imperative; `at` is the time the caller's clock gave.

Ids of new things (homework, violations, sessions, ...) are chosen by the caller, so a decision
stays a pure function of the state and the command.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.engagement.domain.events import (
    Factor,
    Outcome,
    Party,
    TerminationReason,
    ViolationKind,
)
from shared.model.events import Command


class OpenEngagement(Command):
    engagement_id: str
    client_id: str
    coach_id: str
    supervisor_id: str | None
    session_cadence_days: int
    goals: list[dict[str, Any]]
    baselines: list[dict[str, Any]]
    at: datetime


class StartPlan(Command):
    at: datetime


class AssignHomework(Command):
    homework_id: str
    title: str
    due_at: datetime
    at: datetime


class ClaimHomework(Command):
    homework_id: str
    note: str | None = None
    at: datetime


class VerifyHomework(Command):
    homework_id: str
    outcome: Outcome
    evidence: str | None = None
    at: datetime


class HoldSession(Command):
    session_id: str
    held_at: datetime
    duration_minutes: int
    notes: str | None = None
    at: datetime


class ReportViolation(Command):
    violation_id: str
    violated_by: Party
    kind: ViolationKind
    description: str
    reported_by: str
    at: datetime


class AddressViolation(Command):
    violation_id: str
    steps: str
    at: datetime


class ReviewBoundaries(Command):
    notes: str | None = None
    at: datetime


class AchieveTransformation(Command):
    summary: str
    at: datetime


class RecordSelfCheck(Command):
    on_track: bool
    notes: str | None = None
    recorded_by: str
    at: datetime


class StartGraduation(Command):
    session_cadence_days: int
    at: datetime


class Graduate(Command):
    at: datetime


class CompleteFollowUp(Command):
    follow_up_id: str
    scores: dict[str, float]
    notes: str | None = None
    at: datetime


class ReceiveTestimonial(Command):
    testimonial_id: str
    text: str
    consent_to_publish: bool
    at: datetime


class RecordRelationshipCheckIn(Command):
    """Six ratings of the relationship by one party. `rater` is the sender's own role; an
    admin names it (None: an admin who did not, refused by the rule)."""

    checkin_id: str
    rater: Party | None
    ratings: dict[Factor, int]
    comment: str | None = None
    at: datetime


class EraseClientData(Command):
    """The intake erased this client: record that their personal fields are gone."""

    client_id: str
    at: datetime


class TerminateEngagement(Command):
    reason: TerminationReason
    notes: str | None = None
    at: datetime
