"""Intake's HTTP routes (contract section 3, intake)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated

from fastapi import Depends, FastAPI
from pydantic import Field, StrictBool, StrictInt

from services.intake.application.services import IntakeService
from services.intake.domain import commands
from shared.http.bearer import authenticated
from shared.http.routes import CommandRoute, Edge, add_command_routes
from shared.http.schemas import (
    CommandAccepted,
    Email,
    Id,
    LongText,
    Number,
    PathId,
    RequestBody,
    Scores,
    ShortText,
    TimeZoneName,
)
from shared.security.tokens import Principal
from shared.usecases.commands import Reply


class ClientIn(RequestBody):
    name: ShortText
    email: Email
    phone: Annotated[str, Field(max_length=40)] | None = None
    timezone: TimeZoneName | None = None


class StartIntakeIn(RequestBody):
    coach_id: Id
    supervisor_id: Id | None = None
    client: ClientIn


class IntakeStartedOut(CommandAccepted):
    engagement_id: str
    client_id: str


class AssessmentIn(RequestBody):
    instrument: ShortText
    scores: Scores
    notes: LongText | None = None


class GoalIn(RequestBody):
    title: ShortText
    measure: ShortText
    baseline: Number
    target: Number
    target_date: date | None = None


class GoalSetOut(CommandAccepted):
    goal_id: str


class AgreementIn(RequestBody):
    role_explained: StrictBool
    confidentiality_limits_acknowledged: StrictBool
    signed_by_client: StrictBool
    signed_by_coach: StrictBool
    contact_channels: Annotated[list[ShortText], Field(min_length=1, max_length=20)]
    contact_hours: ShortText
    session_cadence_days: Annotated[StrictInt, Field(ge=1, le=365)]


INTAKE = "/v1/intakes/{engagement_id}"
COMMAND_ROUTES = (
    CommandRoute(
        "/v1/intakes",
        commands.StartIntake,
        "coach",
        StartIntakeIn,
        new_ids=("engagement_id", "client_id"),
        response=IntakeStartedOut,
    ),
    CommandRoute(
        f"{INTAKE}/assessments",
        commands.AssessBaseline,
        "coach",
        AssessmentIn,
        new_ids=("assessment_id",),
    ),
    CommandRoute(
        f"{INTAKE}/goals",
        commands.SetGoal,
        "coach",
        GoalIn,
        new_ids=("goal_id",),
        response=GoalSetOut,
    ),
    CommandRoute(f"{INTAKE}/agreement", commands.SignAgreement, "coach", AgreementIn),
    CommandRoute(f"{INTAKE}/commitment", commands.CommitClient, "coach"),
)


def build_routes(app: FastAPI, service: Callable[[], IntakeService], edge: Edge) -> None:
    """Attach the intake routes; `service` gives the running application object."""
    caller = authenticated(edge.tokens)

    add_command_routes(app, COMMAND_ROUTES, edge=edge, service=service, tags=["intake"])

    @app.get("/v1/intakes/{engagement_id}", tags=["intake"])
    async def read_intake(engagement_id: PathId, principal: Principal = Depends(caller)) -> Reply:
        return await service().read(principal, engagement_id)

    @app.post("/v1/clients/{client_id}/erasure", status_code=201, tags=["confidentiality"])
    async def erase_client(client_id: PathId, principal: Principal = Depends(caller)) -> Reply:
        return await service().erase_client(principal, client_id)
