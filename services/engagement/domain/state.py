"""The engagement's state and how each event changes it: `evolve(state, event) -> state`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from services.engagement.domain import relationship, trust
from services.engagement.domain.events import (
    BoundaryViolated,
    BoundaryViolationAddressed,
    ClientDataErased,
    EngagementOpened,
    EngagementTerminated,
    Graduated,
    GraduationStarted,
    HomeworkAssigned,
    HomeworkClaimed,
    HomeworkVerified,
    Outcome,
    Party,
    PlanStarted,
    RegressionDetected,
    RelationshipCheckInRecorded,
    RelationshipConcernRaised,
    RelationshipConcernResolved,
    SessionHeld,
    Stage,
    SupervisionRecommended,
    TransformationAchieved,
    ViolationKind,
)
from shared.model.events import DomainEvent

# Every stage change the contract allows (`None` is before the engagement opened).
TRANSITIONS: frozenset[tuple[Stage | None, Stage]] = frozenset(
    {
        (None, "commitment"),
        ("commitment", "working_the_plan"),
        ("working_the_plan", "transformation"),
        ("transformation", "working_the_plan"),
        ("transformation", "graduation"),
        ("graduation", "graduated"),
        *(
            (stage, "terminated")
            for stage in ("commitment", "working_the_plan", "transformation", "graduation")
        ),
    }
)


@dataclass(frozen=True)
class Homework:
    claimed: bool = False
    outcome: Outcome | None = None


@dataclass(frozen=True)
class Violation:
    party: Party
    kind: ViolationKind
    at: datetime
    open: bool = True


@dataclass(frozen=True)
class Engagement:
    """What the rules need to know about one engagement."""

    engagement_id: str | None = None
    client_id: str | None = None
    coach_id: str | None = None
    supervisor_id: str | None = None
    stage: Stage | None = None
    session_cadence_days: int | None = None
    homework: Mapping[str, Homework] = field(default_factory=dict)
    confirmed: int = 0
    refuted: int = 0
    recent_outcomes: tuple[Outcome, ...] = ()
    violations: Mapping[str, Violation] = field(default_factory=dict)
    sessions_held: int = 0
    graduated_at: datetime | None = None
    erased: bool = False
    concerns: relationship.Concerns = field(default_factory=relationship.Concerns)

    @property
    def opened(self) -> bool:
        return self.engagement_id is not None

    @property
    def deception_pattern(self) -> bool:
        return trust.deception_pattern(self.recent_outcomes)

    @property
    def open_client_violations(self) -> int:
        return sum(1 for v in self.violations.values() if v.open and v.party == "client")

    @property
    def trust_score(self) -> int:
        return trust.score(self.confirmed, self.refuted, self.open_client_violations)


def initial() -> Engagement:
    return Engagement()


def owner(state: Engagement) -> str | None:
    """Whose key encrypts this stream's personal fields: the client's."""
    return state.client_id


def _homework(state: Engagement, homework_id: str, item: Homework) -> Engagement:
    return replace(state, homework={**state.homework, homework_id: item})


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
        case PlanStarted():
            return replace(state, stage="working_the_plan")
        case HomeworkAssigned():
            return _homework(state, event.homework_id, Homework())
        case HomeworkClaimed():
            return _homework(state, event.homework_id, Homework(claimed=True))
        case HomeworkVerified():
            state = _homework(state, event.homework_id, Homework(True, event.outcome))
            confirmed = event.outcome == "confirmed"
            return replace(
                state,
                confirmed=state.confirmed + confirmed,
                refuted=state.refuted + (not confirmed),
                recent_outcomes=trust.most_recent(state.recent_outcomes, event.outcome),
            )
        case SessionHeld():
            return replace(state, sessions_held=state.sessions_held + 1)
        case BoundaryViolated():
            violation = Violation(event.violated_by, event.kind, event.reported_at)
            return replace(state, violations={**state.violations, event.violation_id: violation})
        case BoundaryViolationAddressed():
            addressed = replace(state.violations[event.violation_id], open=False)
            return replace(state, violations={**state.violations, event.violation_id: addressed})
        case TransformationAchieved():
            return replace(state, stage="transformation")
        case RegressionDetected():
            return replace(state, stage=event.to_stage)
        case GraduationStarted():
            return replace(
                state, stage="graduation", session_cadence_days=event.session_cadence_days
            )
        case Graduated():
            return replace(state, stage="graduated", graduated_at=event.graduated_at)
        case EngagementTerminated():
            return replace(state, stage="terminated")
        case ClientDataErased():
            return replace(state, erased=True)
        case (
            RelationshipCheckInRecorded()
            | RelationshipConcernRaised()
            | RelationshipConcernResolved()
            | SupervisionRecommended()
        ):
            return replace(state, concerns=relationship.evolve(state.concerns, event))
    return state
