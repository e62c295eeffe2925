"""Graduation: a longer cadence, graduating, and what follows it (follow-ups, testimonials)."""

from __future__ import annotations

from collections.abc import Sequence

from services.engagement.domain.commands import (
    CompleteFollowUp,
    Graduate,
    ReceiveTestimonial,
    StartGraduation,
)
from services.engagement.domain.events import (
    FollowUpCompleted,
    Graduated,
    GraduationStarted,
    TestimonialReceived,
)
from services.engagement.domain.lifecycle import require_stage
from services.engagement.domain.state import Engagement
from shared.model.errors import InvalidCommand
from shared.model.events import DomainEvent


def start_graduation(state: Engagement, command: StartGraduation) -> Sequence[DomainEvent]:
    require_stage(state, ["transformation"], "graduation")
    current = state.session_cadence_days or 0
    if command.session_cadence_days <= current:
        raise InvalidCommand(
            f"graduation needs a session cadence longer than the current {current} days",
            field="session_cadence_days",
        )
    return [
        GraduationStarted(
            session_cadence_days=command.session_cadence_days,
            previous_session_cadence_days=current,
            started_at=command.at,
        )
    ]


def graduate(state: Engagement, command: Graduate) -> Sequence[DomainEvent]:
    require_stage(state, ["graduation"], "graduating")
    return [Graduated(graduated_at=command.at)]


def follow_up(state: Engagement, command: CompleteFollowUp) -> Sequence[DomainEvent]:
    require_stage(state, ["graduated"], "a follow-up")
    return [
        FollowUpCompleted(
            follow_up_id=command.follow_up_id,
            scores=command.scores,
            notes=command.notes,
            completed_at=command.at,
        )
    ]


def testimonial(state: Engagement, command: ReceiveTestimonial) -> Sequence[DomainEvent]:
    require_stage(state, ["graduated"], "a testimonial")
    return [
        TestimonialReceived(
            testimonial_id=command.testimonial_id,
            text=command.text,
            consent_to_publish=command.consent_to_publish,
            received_at=command.at,
        )
    ]
