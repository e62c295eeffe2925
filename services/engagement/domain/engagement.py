"""The engagement as a pure decider: `decide(state, command) -> events`, `evolve(state, event)`.

The rules live one module per concern (lifecycle, homework and trust, boundaries, graduation,
relationship check-ins);
this module only dispatches a command to its rule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from services.engagement.domain import boundaries, checkins, graduation, homework, lifecycle
from services.engagement.domain.commands import (
    AchieveTransformation,
    AddressViolation,
    AssignHomework,
    ClaimHomework,
    CompleteFollowUp,
    EraseClientData,
    Graduate,
    HoldSession,
    OpenEngagement,
    ReceiveTestimonial,
    RecordRelationshipCheckIn,
    RecordSelfCheck,
    ReportViolation,
    ReviewBoundaries,
    StartGraduation,
    StartPlan,
    TerminateEngagement,
    VerifyHomework,
)
from services.engagement.domain.state import Engagement, evolve, initial, owner
from shared.model.events import Command, DomainEvent

__all__ = ["Engagement", "decide", "evolve", "initial", "owner"]

Rule = Callable[[Engagement, Any], Sequence[DomainEvent]]

RULES: dict[type[Command], Rule] = {
    OpenEngagement: lifecycle.open_engagement,
    StartPlan: lifecycle.start_plan,
    HoldSession: lifecycle.hold_session,
    AchieveTransformation: lifecycle.achieve_transformation,
    RecordSelfCheck: lifecycle.record_self_check,
    TerminateEngagement: lifecycle.terminate,
    EraseClientData: lifecycle.erase_client_data,
    AssignHomework: homework.assign,
    ClaimHomework: homework.claim,
    VerifyHomework: homework.verify,
    ReportViolation: boundaries.report,
    AddressViolation: boundaries.address,
    ReviewBoundaries: boundaries.review,
    StartGraduation: graduation.start_graduation,
    Graduate: graduation.graduate,
    CompleteFollowUp: graduation.follow_up,
    ReceiveTestimonial: graduation.testimonial,
    RecordRelationshipCheckIn: checkins.record,
}


def decide(state: Engagement, command: Command) -> Sequence[DomainEvent]:
    """The events a command causes in this state, or a DomainError (nothing is written)."""
    rule = RULES.get(type(command))
    if rule is None:
        raise TypeError(f"engagement cannot handle {type(command).__name__}")
    return rule(state, command)
