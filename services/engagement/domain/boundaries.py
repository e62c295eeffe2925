"""Boundaries: violations, their resolution, reviews, and when supervision is recommended."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from services.engagement.domain.commands import (
    AddressViolation,
    ReportViolation,
    ReviewBoundaries,
)
from services.engagement.domain.events import (
    BoundariesReviewed,
    BoundaryViolated,
    BoundaryViolationAddressed,
    SupervisionRecommended,
)
from services.engagement.domain.lifecycle import NOT_TERMINATED, require_stage
from services.engagement.domain.state import Engagement
from shared.model.errors import ForbiddenByState, NotFound
from shared.model.events import DomainEvent

PERSISTENCE_WINDOW = timedelta(days=90)
PERSISTENT_COUNT = 3


def violations_in_window(state: Engagement, command: ReportViolation) -> int:
    """Violations by the same party within 90 days up to this one (by event time), this included."""
    since = command.at - PERSISTENCE_WINDOW
    earlier = sum(
        1
        for violation in state.violations.values()
        if violation.party == command.violated_by and violation.at >= since
    )
    return earlier + 1


def report(state: Engagement, command: ReportViolation) -> Sequence[DomainEvent]:
    require_stage(state, NOT_TERMINATED, "reporting a boundary violation")
    if command.violation_id in state.violations:
        raise ForbiddenByState(f"violation {command.violation_id} is already reported")
    events: list[DomainEvent] = [
        BoundaryViolated(
            violation_id=command.violation_id,
            violated_by=command.violated_by,
            kind=command.kind,
            description=command.description,
            reported_by=command.reported_by,
            reported_at=command.at,
        )
    ]
    in_window = violations_in_window(state, command)
    breach = command.violated_by == "coach" and command.kind == "confidentiality_breach"
    if breach or in_window == PERSISTENT_COUNT:
        events.append(
            SupervisionRecommended(
                party=command.violated_by,
                reason="confidentiality_breach" if breach else "persistent_violations",
                violation_id=command.violation_id,
                violations_in_window=in_window,
                supervisor_id=state.supervisor_id,
            )
        )
    return events


def address(state: Engagement, command: AddressViolation) -> Sequence[DomainEvent]:
    require_stage(state, NOT_TERMINATED, "addressing a boundary violation")
    violation = state.violations.get(command.violation_id)
    if violation is None:
        raise NotFound(f"no violation {command.violation_id} in this engagement")
    if not violation.open:
        raise ForbiddenByState(f"violation {command.violation_id} is already addressed")
    return [
        BoundaryViolationAddressed(
            violation_id=command.violation_id,
            violated_by=violation.party,
            steps=command.steps,
            addressed_at=command.at,
        )
    ]


def review(state: Engagement, command: ReviewBoundaries) -> Sequence[DomainEvent]:
    require_stage(state, NOT_TERMINATED, "a boundary review")
    return [BoundariesReviewed(notes=command.notes, reviewed_at=command.at)]
