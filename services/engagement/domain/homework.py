"""Homework and trust: assignments, the client's claims, the coach's verifications, and the
deception pattern that verifications can turn true."""

from __future__ import annotations

from collections.abc import Sequence

from services.engagement.domain import trust
from services.engagement.domain.commands import AssignHomework, ClaimHomework, VerifyHomework
from services.engagement.domain.events import (
    DeceptionPatternDetected,
    HomeworkAssigned,
    HomeworkClaimed,
    HomeworkVerified,
    PlanStarted,
    Stage,
)
from services.engagement.domain.lifecycle import ACTIVE, CLOCK_SKEW, require_stage
from services.engagement.domain.state import Engagement, Homework
from shared.model.errors import ForbiddenByState, InvalidCommand, NotFound
from shared.model.events import DomainEvent

WORKING: tuple[Stage, ...] = ("working_the_plan", "transformation", "graduation")


def _existing(state: Engagement, homework_id: str) -> Homework:
    item = state.homework.get(homework_id)
    if item is None:
        raise NotFound(f"no homework {homework_id} in this engagement")
    return item


def assign(state: Engagement, command: AssignHomework) -> Sequence[DomainEvent]:
    stage = require_stage(state, ACTIVE, "assigning homework")
    if command.homework_id in state.homework:
        raise ForbiddenByState(f"homework {command.homework_id} is already assigned")
    if command.due_at < command.at - CLOCK_SKEW:
        raise InvalidCommand(
            "homework is due after it is assigned: due_at is earlier than the time of the"
            " request (by more than 5 minutes of clock skew)",
            field="due_at",
        )
    assigned = HomeworkAssigned(
        homework_id=command.homework_id, title=command.title, due_at=command.due_at
    )
    if stage == "commitment":  # the first homework starts the plan
        return [PlanStarted(started_at=command.at), assigned]
    return [assigned]


def claim(state: Engagement, command: ClaimHomework) -> Sequence[DomainEvent]:
    require_stage(state, WORKING, "claiming homework")
    if _existing(state, command.homework_id).claimed:
        raise ForbiddenByState(f"homework {command.homework_id} is already claimed")
    return [
        HomeworkClaimed(homework_id=command.homework_id, note=command.note, claimed_at=command.at)
    ]


def verify(state: Engagement, command: VerifyHomework) -> Sequence[DomainEvent]:
    require_stage(state, WORKING, "verifying homework")
    item = _existing(state, command.homework_id)
    if not item.claimed:
        raise ForbiddenByState(f"homework {command.homework_id} has not been claimed")
    if item.outcome is not None:
        raise ForbiddenByState(f"homework {command.homework_id} is already verified")
    events: list[DomainEvent] = [
        HomeworkVerified(
            homework_id=command.homework_id,
            outcome=command.outcome,
            evidence=command.evidence,
            verified_at=command.at,
        )
    ]
    recent = trust.most_recent(state.recent_outcomes, command.outcome)
    if trust.deception_pattern(recent) and not state.deception_pattern:
        events.append(
            DeceptionPatternDetected(
                refuted=sum(1 for outcome in recent if outcome == "refuted"),
                of_recent=len(recent),
                homework_id=command.homework_id,
            )
        )
    return events
