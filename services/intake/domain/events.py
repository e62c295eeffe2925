"""Events of the intake stream, named exactly as the contract names them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from shared.model.events import DomainEvent, EventRegistry, OptionalPersonalStr, PersonalStr


class ClientDetails(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: PersonalStr
    email: PersonalStr
    phone: OptionalPersonalStr = None
    timezone: OptionalPersonalStr = None


class Goal(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    goal_id: str
    title: PersonalStr
    measure: PersonalStr
    baseline: float
    target: float
    target_date: date | None = None


class Baseline(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    assessment_id: str
    instrument: str
    scores: dict[str, float]
    notes: OptionalPersonalStr = None


class IntakeStarted(DomainEvent):
    event_type = "IntakeStarted"

    engagement_id: str
    client_id: str
    coach_id: str
    supervisor_id: str | None
    client: ClientDetails


class BaselineAssessed(DomainEvent):
    event_type = "BaselineAssessed"

    assessment_id: str
    instrument: str
    scores: dict[str, float]
    notes: OptionalPersonalStr = None


Direction = Literal["increase", "decrease", "maintain"]


def goal_direction(baseline: float, target: float) -> Direction:
    """Which way the measure has to move from the baseline to reach the target."""
    if target > baseline:
        return "increase"
    return "decrease" if target < baseline else "maintain"


class GoalSet(DomainEvent):
    """Version 2 adds `direction`; version 1 rows are upcast on read."""

    event_type = "GoalSet"
    schema_version = 2

    goal_id: str
    title: PersonalStr
    measure: PersonalStr
    baseline: float
    target: float
    target_date: date | None = None
    direction: Direction


class AgreementSigned(DomainEvent):
    event_type = "AgreementSigned"

    role_explained: bool
    confidentiality_limits_acknowledged: bool
    signed_by_client: bool
    signed_by_coach: bool
    contact_channels: list[str]
    contact_hours: PersonalStr
    session_cadence_days: int


class ClientCommitted(DomainEvent):
    event_type = "ClientCommitted"

    engagement_id: str
    client_id: str
    coach_id: str
    supervisor_id: str | None
    goals: list[Goal]
    baselines: list[Baseline]
    session_cadence_days: int
    contact_channels: list[str]
    contact_hours: PersonalStr
    committed_at: datetime


class ClientErased(DomainEvent):
    """The client's key was destroyed; their personal fields now read as erased."""

    event_type = "ClientErased"

    client_id: str
    erased_at: datetime


registry = EventRegistry(
    [IntakeStarted, BaselineAssessed, GoalSet, AgreementSigned, ClientCommitted, ClientErased]
)


@registry.historical
class GoalSetV1(DomainEvent):
    """GoalSet as version 1 wrote it: no `direction`, and `measure` not yet encrypted."""

    event_type = "GoalSet"
    schema_version = 1

    goal_id: str
    title: PersonalStr
    measure: str
    baseline: float
    target: float
    target_date: date | None = None


@registry.upcaster("GoalSet", 1)
def goal_set_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """GoalSet v1 had no `direction`: it follows from the baseline and the target it carried.
    Stored v1 rows stay as they are; they are upcast whenever they are read."""
    return {**data, "direction": goal_direction(data["baseline"], data["target"])}
