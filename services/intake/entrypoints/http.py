"""Intake's HTTP routes (contract section 3, intake)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated

from fastapi import Depends, FastAPI, Path
from pydantic import Field, StrictBool, StrictInt

from services.intake.application.handlers import IntakeService
from services.intake.domain.events import ClientDetails
from shared.auth import Principal
from shared.commands import Body, IdempotencyKey
from shared.http import IDEMPOTENCY_HEADER, authenticated
from shared.schemas import Body as RequestBody
from shared.schemas import CommandAccepted, Email, Id, LongText, Number, Scores, ShortText

EngagementId = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:@-]+$")]


class ClientIn(RequestBody):
    name: ShortText
    email: Email
    phone: Annotated[str, Field(max_length=40)] | None = None
    timezone: Annotated[str, Field(max_length=64)] | None = None


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


def build_routes(
    app: FastAPI, service: Callable[[], IntakeService], jwt_secret: Callable[[], str]
) -> None:
    """Attach the intake routes; `service` gives the running application object."""
    caller = authenticated(jwt_secret)

    def key(
        principal: Principal, route: str, value: str | None, body: object
    ) -> IdempotencyKey | None:
        return IdempotencyKey.of(f"{principal.role}:{principal.sub}:{route}", value, body)

    @app.post("/v1/intakes", status_code=201, response_model=IntakeStartedOut, tags=["intake"])
    async def start_intake(
        body: StartIntakeIn,
        principal: Principal = Depends(caller),
        idempotency_key: str | None = IDEMPOTENCY_HEADER,
    ) -> Body:
        client = ClientDetails(**body.client.model_dump())
        return await service().start(
            principal,
            body.coach_id,
            body.supervisor_id,
            client,
            idempotency=key(principal, "intakes", idempotency_key, body.model_dump(mode="json")),
        )

    @app.post(
        "/v1/intakes/{engagement_id}/assessments",
        status_code=201,
        response_model=CommandAccepted,
        tags=["intake"],
    )
    async def assess_baseline(
        engagement_id: EngagementId,
        body: AssessmentIn,
        principal: Principal = Depends(caller),
        idempotency_key: str | None = IDEMPOTENCY_HEADER,
    ) -> Body:
        route = f"intakes/{engagement_id}/assessments"
        return await service().assess(
            principal,
            engagement_id,
            body.instrument,
            body.scores,
            body.notes,
            key(principal, route, idempotency_key, body.model_dump(mode="json")),
        )

    @app.post(
        "/v1/intakes/{engagement_id}/goals",
        status_code=201,
        response_model=GoalSetOut,
        tags=["intake"],
    )
    async def set_goal(
        engagement_id: EngagementId,
        body: GoalIn,
        principal: Principal = Depends(caller),
        idempotency_key: str | None = IDEMPOTENCY_HEADER,
    ) -> Body:
        route = f"intakes/{engagement_id}/goals"
        return await service().set_goal(
            principal,
            engagement_id,
            body.model_dump(),
            key(principal, route, idempotency_key, body.model_dump(mode="json")),
        )

    @app.post(
        "/v1/intakes/{engagement_id}/agreement",
        status_code=201,
        response_model=CommandAccepted,
        tags=["intake"],
    )
    async def sign_agreement(
        engagement_id: EngagementId,
        body: AgreementIn,
        principal: Principal = Depends(caller),
        idempotency_key: str | None = IDEMPOTENCY_HEADER,
    ) -> Body:
        route = f"intakes/{engagement_id}/agreement"
        return await service().sign(
            principal,
            engagement_id,
            body.model_dump(),
            key(principal, route, idempotency_key, body.model_dump(mode="json")),
        )

    @app.post(
        "/v1/intakes/{engagement_id}/commitment",
        status_code=201,
        response_model=CommandAccepted,
        tags=["intake"],
    )
    async def commit_client(
        engagement_id: EngagementId,
        principal: Principal = Depends(caller),
        idempotency_key: str | None = IDEMPOTENCY_HEADER,
    ) -> Body:
        route = f"intakes/{engagement_id}/commitment"
        return await service().commit(
            principal, engagement_id, key(principal, route, idempotency_key, {})
        )

    @app.get("/v1/intakes/{engagement_id}", tags=["intake"])
    async def read_intake(
        engagement_id: EngagementId, principal: Principal = Depends(caller)
    ) -> Body:
        return await service().read(principal, engagement_id)

    @app.post("/v1/clients/{client_id}/erasure", status_code=201, tags=["confidentiality"])
    async def erase_client(client_id: EngagementId, principal: Principal = Depends(caller)) -> Body:
        return await service().erase_client(principal, client_id)
