"""Lifecycle and stages: opening, the plan, sessions, self-checks and regressions, termination.

Stages: commitment → working_the_plan → transformation → graduation → graduated;
transformation → working_the_plan on a regression; any stage but graduated → terminated.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from services.engagement.domain.commands import (
    AchieveTransformation,
    EraseClientData,
    HoldSession,
    OpenEngagement,
    RecordSelfCheck,
    StartPlan,
    TerminateEngagement,
)
from services.engagement.domain.events import (
    ClientDataErased,
    EngagementOpened,
    EngagementTerminated,
    PlanStarted,
    RegressionDetected,
    SelfCheckRecorded,
    SessionHeld,
    Stage,
    TransformationAchieved,
)
from services.engagement.domain.state import Engagement
from shared.model.errors import ForbiddenByState, InvalidCommand, NotFound
from shared.model.events import DomainEvent

ACTIVE: tuple[Stage, ...] = ("commitment", "working_the_plan", "transformation", "graduation")
NOT_TERMINATED: tuple[Stage, ...] = (*ACTIVE, "graduated")
# How far a caller's clock may be ahead of ours (or a time it sends behind): a time up to
# this much on the wrong side of the request's time is taken as meant.
CLOCK_SKEW = timedelta(minutes=5)


def require_stage(state: Engagement, stages: Sequence[Stage], action: str) -> Stage:
    """The current stage if `action` is allowed in it, else ForbiddenByState (409)."""
    if state.stage is None:
        raise NotFound("no such engagement")
    if state.stage not in stages:
        raise ForbiddenByState(
            f"{action} is not allowed in stage {state.stage} (only in {', '.join(stages)})"
        )
    return state.stage


def open_engagement(state: Engagement, command: OpenEngagement) -> Sequence[DomainEvent]:
    if state.opened:
        return []  # the intake's commitment was seen already
    return [
        EngagementOpened(
            engagement_id=command.engagement_id,
            client_id=command.client_id,
            coach_id=command.coach_id,
            supervisor_id=command.supervisor_id,
            session_cadence_days=command.session_cadence_days,
            goals=command.goals,
            baselines=command.baselines,
            opened_at=command.at,
        )
    ]


def start_plan(state: Engagement, command: StartPlan) -> Sequence[DomainEvent]:
    require_stage(state, ["commitment"], "starting the plan")
    return [PlanStarted(started_at=command.at)]


def hold_session(state: Engagement, command: HoldSession) -> Sequence[DomainEvent]:
    require_stage(state, ACTIVE, "recording a session")
    if command.held_at > command.at + CLOCK_SKEW:
        raise InvalidCommand(
            "a session is recorded once it was held: held_at is later than the time of the"
            " request (by more than 5 minutes of clock skew)",
            field="held_at",
        )
    return [
        SessionHeld(
            session_id=command.session_id,
            held_at=command.held_at,
            duration_minutes=command.duration_minutes,
            notes=command.notes,
        )
    ]


def achieve_transformation(
    state: Engagement, command: AchieveTransformation
) -> Sequence[DomainEvent]:
    require_stage(state, ["working_the_plan"], "transformation")
    return [TransformationAchieved(summary=command.summary, achieved_at=command.at)]


def record_self_check(state: Engagement, command: RecordSelfCheck) -> Sequence[DomainEvent]:
    stage = require_stage(state, ACTIVE, "a self-check")
    events: list[DomainEvent] = [
        SelfCheckRecorded(
            on_track=command.on_track,
            notes=command.notes,
            recorded_by=command.recorded_by,
            recorded_at=command.at,
        )
    ]
    if stage == "transformation" and not command.on_track:
        events.append(
            RegressionDetected(
                from_stage="transformation", to_stage="working_the_plan", detected_at=command.at
            )
        )
    return events


def terminate(state: Engagement, command: TerminateEngagement) -> Sequence[DomainEvent]:
    stage = require_stage(state, ACTIVE, "termination")
    return [
        EngagementTerminated(
            reason=command.reason, notes=command.notes, from_stage=stage, terminated_at=command.at
        )
    ]


def erase_client_data(state: Engagement, command: EraseClientData) -> Sequence[DomainEvent]:
    """Once per engagement of that client, in any stage; nothing for an engagement that never
    opened (an intake erased before its commitment) or belongs to someone else."""
    if not state.opened or state.erased or state.client_id != command.client_id:
        return []
    return [ClientDataErased(client_id=command.client_id, erased_at=command.at)]
