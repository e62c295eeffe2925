"""The engagement as a pure decider: `decide(state, command) -> events`, `evolve(state, event)`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from services.engagement.domain.commands import OpenEngagement
from services.engagement.domain.events import EngagementOpened
from shared.events import Command, DomainEvent


@dataclass(frozen=True)
class Engagement:
    engagement_id: str | None = None
    client_id: str | None = None
    coach_id: str | None = None
    supervisor_id: str | None = None
    stage: str | None = None
    session_cadence_days: int | None = None


def initial() -> Engagement:
    return Engagement()


def owner(state: Engagement) -> str | None:
    return state.client_id


def evolve(state: Engagement, event: DomainEvent) -> Engagement:
    match event:
        case EngagementOpened():
            return replace(
                state,
                engagement_id=event.engagement_id,
                client_id=event.client_id,
                coach_id=event.coach_id,
                supervisor_id=event.supervisor_id,
                stage="commitment",
                session_cadence_days=event.session_cadence_days,
            )
    return state


def decide(state: Engagement, command: Command) -> Sequence[DomainEvent]:
    match command:
        case OpenEngagement():
            if state.engagement_id is not None:
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
    raise TypeError(f"engagement cannot handle {type(command).__name__}")
