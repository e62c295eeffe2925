"""The intake as a pure decider: `decide(state, command) -> events`, `evolve(state, event)`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from services.intake.domain.commands import (
    AssessBaseline,
    CommitClient,
    EraseClient,
    SetGoal,
    SignAgreement,
    StartIntake,
)
from services.intake.domain.events import (
    AgreementSigned,
    Baseline,
    BaselineAssessed,
    ClientCommitted,
    ClientErased,
    Goal,
    GoalSet,
    IntakeStarted,
    goal_direction,
)
from shared.model.errors import ForbiddenByState, InvalidCommand
from shared.model.events import Command, DomainEvent


@dataclass(frozen=True)
class Intake:
    """What the rules need to know about one intake."""

    engagement_id: str | None = None
    client_id: str | None = None
    coach_id: str | None = None
    supervisor_id: str | None = None
    baselines: tuple[Baseline, ...] = ()
    goals: tuple[Goal, ...] = ()
    agreement: AgreementSigned | None = None
    committed: bool = False
    erased: bool = False

    @property
    def started(self) -> bool:
        return self.engagement_id is not None


def initial() -> Intake:
    return Intake()


def owner(state: Intake) -> str | None:
    return state.client_id


def evolve(state: Intake, event: DomainEvent) -> Intake:
    match event:
        case IntakeStarted():
            return replace(
                state,
                engagement_id=event.engagement_id,
                client_id=event.client_id,
                coach_id=event.coach_id,
                supervisor_id=event.supervisor_id,
            )
        case BaselineAssessed():
            baseline = Baseline(
                assessment_id=event.assessment_id,
                instrument=event.instrument,
                scores=event.scores,
                notes=event.notes,
            )
            return replace(state, baselines=(*state.baselines, baseline))
        case GoalSet():
            goal = Goal(**event.model_dump(exclude={"direction"}))
            return replace(state, goals=(*state.goals, goal))
        case AgreementSigned():
            return replace(state, agreement=event)
        case ClientCommitted():
            return replace(state, committed=True)
        case ClientErased():
            return replace(state, erased=True)
    return state


def _open(state: Intake) -> None:
    if state.committed:
        raise ForbiddenByState("the client is already committed; the intake is closed")


def decide(state: Intake, command: Command) -> Sequence[DomainEvent]:
    match command:
        case StartIntake():
            if state.started:
                raise ForbiddenByState("this intake already exists")
            return [
                IntakeStarted(
                    engagement_id=command.engagement_id,
                    client_id=command.client_id,
                    coach_id=command.coach_id,
                    supervisor_id=command.supervisor_id,
                    client=command.client,
                )
            ]
        case AssessBaseline():
            _open(state)
            return [BaselineAssessed(**command.model_dump())]
        case SetGoal():
            _open(state)
            direction = goal_direction(command.baseline, command.target)
            return [GoalSet(**command.model_dump(), direction=direction)]
        case SignAgreement():
            _open(state)
            unsigned = [
                name
                for name in (
                    "role_explained",
                    "confidentiality_limits_acknowledged",
                    "signed_by_client",
                    "signed_by_coach",
                )
                if not getattr(command, name)
            ]
            if unsigned:
                raise InvalidCommand(
                    f"the agreement needs {', '.join(unsigned)} to be true", field=unsigned[0]
                )
            if state.agreement is not None:
                raise ForbiddenByState("the agreement is already signed")
            return [AgreementSigned(**command.model_dump())]
        case CommitClient():
            _open(state)
            missing = [
                what
                for what, present in (
                    ("a baseline assessment", state.baselines),
                    ("a goal", state.goals),
                    ("a signed agreement", state.agreement),
                )
                if not present
            ]
            if missing:
                raise ForbiddenByState(f"commitment needs {', '.join(missing)}")
            assert state.agreement is not None
            assert state.engagement_id and state.client_id and state.coach_id
            return [
                ClientCommitted(
                    engagement_id=state.engagement_id,
                    client_id=state.client_id,
                    coach_id=state.coach_id,
                    supervisor_id=state.supervisor_id,
                    goals=list(state.goals),
                    baselines=list(state.baselines),
                    session_cadence_days=state.agreement.session_cadence_days,
                    contact_channels=state.agreement.contact_channels,
                    contact_hours=state.agreement.contact_hours,
                    committed_at=command.at,
                )
            ]
        case EraseClient():
            if state.erased:
                return []
            return [ClientErased(client_id=command.client_id, erased_at=command.at)]
    raise TypeError(f"intake cannot handle {type(command).__name__}")
