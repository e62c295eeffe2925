"""Engagement's HTTP routes (contract section 3, engagement)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query
from pydantic import AwareDatetime, Field, StrictBool, StrictInt, StringConstraints

from services.engagement.application.handlers import EngagementService, Who
from services.engagement.domain import commands
from services.engagement.domain.events import (
    Outcome,
    Party,
    Stage,
    TerminationReason,
    ViolationKind,
)
from services.engagement.projections.trust_view import trust_view
from shared.auth import Principal
from shared.commands import Body, IdempotencyKey
from shared.envelope import new_id
from shared.events import Command
from shared.http import IDEMPOTENCY_HEADER, authenticated
from shared.schemas import Body as RequestBody
from shared.schemas import CommandAccepted, LongText, Scores, ShortText
from shared.service import ServiceCore

PathId = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:@-]+$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=10_000)]
AsOf = Annotated[
    AwareDatetime | None,
    Query(description="RFC 3339 time: the view as it stood then, folded from the log."),
]


class HomeworkIn(RequestBody):
    title: ShortText
    due_at: AwareDatetime


class ClaimIn(RequestBody):
    note: LongText | None = None


class VerificationIn(RequestBody):
    outcome: Outcome
    evidence: LongText | None = None


class SessionIn(RequestBody):
    held_at: AwareDatetime
    duration_minutes: Annotated[StrictInt, Field(ge=1, le=24 * 60)]
    notes: LongText | None = None


class ViolationIn(RequestBody):
    violated_by: Party
    kind: ViolationKind
    description: Text


class ResolutionIn(RequestBody):
    steps: Text


class ReviewIn(RequestBody):
    notes: LongText | None = None


class TransformationIn(RequestBody):
    summary: Text


class SelfCheckIn(RequestBody):
    on_track: StrictBool
    notes: LongText | None = None


class GraduationIn(RequestBody):
    session_cadence_days: Annotated[StrictInt, Field(ge=1, le=3650)]


class FollowUpIn(RequestBody):
    scores: Scores
    notes: LongText | None = None


class TestimonialIn(RequestBody):
    __test__ = False  # not a pytest class, despite its name

    text: Text
    consent_to_publish: StrictBool


class TerminationIn(RequestBody):
    reason: TerminationReason
    notes: LongText | None = None


class HomeworkOut(CommandAccepted):
    homework_id: str


class ViolationOut(CommandAccepted):
    violation_id: str


def build_routes(app: FastAPI, current: Callable[[], ServiceCore]) -> None:
    """Attach the engagement routes; `current` gives the running service core."""
    caller = authenticated(lambda: current().jwt_secret)

    def service() -> EngagementService:
        core = current()
        return EngagementService(core.store, core.vault, core.clock)

    async def run(
        principal: Principal,
        engagement_id: str,
        route: str,
        idempotency_key: str | None,
        who: Who,
        command: type[Command],
        request: RequestBody | None,
        fields: dict[str, Any] | None = None,
        extra: Body | None = None,
    ) -> Body:
        """Run a command; the idempotency hash covers the request body as sent."""
        sent = request.model_dump(mode="json") if request is not None else {}
        key = IdempotencyKey.of(
            f"{principal.role}:{principal.sub}:engagements/{engagement_id}/{route}",
            idempotency_key,
            sent,
        )
        values = {**(request.model_dump() if request is not None else {}), **(fields or {})}
        return await service().act(
            principal, engagement_id, who, command, values, idempotency=key, extra=extra
        )

    accepted: dict[str, Any] = {"status_code": 201, "response_model": CommandAccepted}
    tags: list[str | Any] = ["engagement"]

    @app.post("/v1/engagements/{engagement_id}/plan", **accepted, tags=tags)
    async def start_plan(
        engagement_id: PathId,
        principal: Principal = Depends(caller),
        idempotency_key: str | None = IDEMPOTENCY_HEADER,
    ) -> Body:
        return await run(
            principal, engagement_id, "plan", idempotency_key, "coach", commands.StartPlan, None
        )

    @app.post(
        "/v1/engagements/{engagement_id}/homework",
        status_code=201,
        response_model=HomeworkOut,
        tags=tags,
    )
    async def assign_homework(
        engagement_id: PathId,
        body: HomeworkIn,
        principal: Principal = Depends(caller),
        idempotency_key: str | None = IDEMPOTENCY_HEADER,
    ) -> Body:
        homework_id = new_id()
        return await run(
            principal,
            engagement_id,
            "homework",
            idempotency_key,
            "coach",
            commands.AssignHomework,
            body,
            {"homework_id": homework_id},
            {"homework_id": homework_id},
        )

    @app.post("/v1/engagements/{engagement_id}/homework/{homework_id}/claim", **accepted, tags=tags)
    async def claim_homework(
        engagement_id: PathId,
        homework_id: PathId,
        body: ClaimIn | None = None,
        principal: Principal = Depends(caller),
        idempotency_key: str | None = IDEMPOTENCY_HEADER,
    ) -> Body:
        return await run(
            principal,
            engagement_id,
            f"homework/{homework_id}/claim",
            idempotency_key,
            "client",
            commands.ClaimHomework,
            body,
            {"homework_id": homework_id},
        )

    @app.post(
        "/v1/engagements/{engagement_id}/homework/{homework_id}/verification",
        **accepted,
        tags=tags,
    )
    async def verify_homework(
        engagement_id: PathId,
        homework_id: PathId,
        body: VerificationIn,
        principal: Principal = Depends(caller),
        idempotency_key: str | None = IDEMPOTENCY_HEADER,
    ) -> Body:
        return await run(
            principal,
            engagement_id,
            f"homework/{homework_id}/verification",
            idempotency_key,
            "coach",
            commands.VerifyHomework,
            body,
            {"homework_id": homework_id},
        )

    @app.post("/v1/engagements/{engagement_id}/sessions", **accepted, tags=tags)
    async def hold_session(
        engagement_id: PathId,
        body: SessionIn,
        principal: Principal = Depends(caller),
        idempotency_key: str | None = IDEMPOTENCY_HEADER,
    ) -> Body:
        session_id = new_id()
        return await run(
            principal,
            engagement_id,
            "sessions",
            idempotency_key,
            "coach",
            commands.HoldSession,
            body,
            {"session_id": session_id},
            {"session_id": session_id},
        )

    @app.post(
        "/v1/engagements/{engagement_id}/boundary-violations",
        status_code=201,
        response_model=ViolationOut,
        tags=tags,
    )
    async def report_violation(
        engagement_id: PathId,
        body: ViolationIn,
        principal: Principal = Depends(caller),
        idempotency_key: str | None = IDEMPOTENCY_HEADER,
    ) -> Body:
        violation_id = new_id()
        return await run(
            principal,
            engagement_id,
            "boundary-violations",
            idempotency_key,
            "reporter",
            commands.ReportViolation,
            body,
            {"violation_id": violation_id, "reported_by": principal.role},
            {"violation_id": violation_id},
        )

    @app.post(
        "/v1/engagements/{engagement_id}/boundary-violations/{violation_id}/resolution",
        **accepted,
        tags=tags,
    )
    async def address_violation(
        engagement_id: PathId,
        violation_id: PathId,
        body: ResolutionIn,
        principal: Principal = Depends(caller),
        idempotency_key: str | None = IDEMPOTENCY_HEADER,
    ) -> Body:
        return await run(
            principal,
            engagement_id,
            f"boundary-violations/{violation_id}/resolution",
            idempotency_key,
            "coach",
            commands.AddressViolation,
            body,
            {"violation_id": violation_id},
        )

    @app.post("/v1/engagements/{engagement_id}/boundary-reviews", **accepted, tags=tags)
    async def review_boundaries(
        engagement_id: PathId,
        body: ReviewIn | None = None,
        principal: Principal = Depends(caller),
        idempotency_key: str | None = IDEMPOTENCY_HEADER,
    ) -> Body:
        return await run(
            principal,
            engagement_id,
            "boundary-reviews",
            idempotency_key,
            "coach",
            commands.ReviewBoundaries,
            body,
        )

    @app.post("/v1/engagements/{engagement_id}/transformation", **accepted, tags=tags)
    async def achieve_transformation(
        engagement_id: PathId,
        body: TransformationIn,
        principal: Principal = Depends(caller),
        idempotency_key: str | None = IDEMPOTENCY_HEADER,
    ) -> Body:
        return await run(
            principal,
            engagement_id,
            "transformation",
            idempotency_key,
            "coach",
            commands.AchieveTransformation,
            body,
        )

    @app.post("/v1/engagements/{engagement_id}/self-checks", **accepted, tags=tags)
    async def record_self_check(
        engagement_id: PathId,
        body: SelfCheckIn,
        principal: Principal = Depends(caller),
        idempotency_key: str | None = IDEMPOTENCY_HEADER,
    ) -> Body:
        return await run(
            principal,
            engagement_id,
            "self-checks",
            idempotency_key,
            "party",
            commands.RecordSelfCheck,
            body,
            {"recorded_by": principal.role},
        )

    @app.post("/v1/engagements/{engagement_id}/graduation", **accepted, tags=tags)
    async def start_graduation(
        engagement_id: PathId,
        body: GraduationIn,
        principal: Principal = Depends(caller),
        idempotency_key: str | None = IDEMPOTENCY_HEADER,
    ) -> Body:
        return await run(
            principal,
            engagement_id,
            "graduation",
            idempotency_key,
            "coach",
            commands.StartGraduation,
            body,
        )

    @app.post("/v1/engagements/{engagement_id}/graduate", **accepted, tags=tags)
    async def graduate(
        engagement_id: PathId,
        principal: Principal = Depends(caller),
        idempotency_key: str | None = IDEMPOTENCY_HEADER,
    ) -> Body:
        return await run(
            principal, engagement_id, "graduate", idempotency_key, "coach", commands.Graduate, None
        )

    @app.post("/v1/engagements/{engagement_id}/follow-ups", **accepted, tags=tags)
    async def complete_follow_up(
        engagement_id: PathId,
        body: FollowUpIn,
        principal: Principal = Depends(caller),
        idempotency_key: str | None = IDEMPOTENCY_HEADER,
    ) -> Body:
        follow_up_id = new_id()
        return await run(
            principal,
            engagement_id,
            "follow-ups",
            idempotency_key,
            "coach",
            commands.CompleteFollowUp,
            body,
            {"follow_up_id": follow_up_id},
            {"follow_up_id": follow_up_id},
        )

    @app.post("/v1/engagements/{engagement_id}/testimonial", **accepted, tags=tags)
    async def receive_testimonial(
        engagement_id: PathId,
        body: TestimonialIn,
        principal: Principal = Depends(caller),
        idempotency_key: str | None = IDEMPOTENCY_HEADER,
    ) -> Body:
        testimonial_id = new_id()
        return await run(
            principal,
            engagement_id,
            "testimonial",
            idempotency_key,
            "client",
            commands.ReceiveTestimonial,
            body,
            {"testimonial_id": testimonial_id},
            {"testimonial_id": testimonial_id},
        )

    @app.post("/v1/engagements/{engagement_id}/termination", **accepted, tags=tags)
    async def terminate(
        engagement_id: PathId,
        body: TerminationIn,
        principal: Principal = Depends(caller),
        idempotency_key: str | None = IDEMPOTENCY_HEADER,
    ) -> Body:
        return await run(
            principal,
            engagement_id,
            "termination",
            idempotency_key,
            "coach",
            commands.TerminateEngagement,
            body,
        )

    @app.get("/v1/engagements/{engagement_id}", tags=tags)
    async def read_engagement(
        engagement_id: PathId, as_of: AsOf = None, principal: Principal = Depends(caller)
    ) -> Body:
        """The stage view, with `stage_history`; `?as_of=` folds the log up to that time."""
        return await service().read(principal, engagement_id, as_of=as_of)

    @app.get("/v1/engagements/{engagement_id}/trust", tags=tags)
    async def read_trust(
        engagement_id: PathId, as_of: AsOf = None, principal: Principal = Depends(caller)
    ) -> Body:
        """The trust view: score, verifications, open client violations, deception pattern."""
        return await service().read(principal, engagement_id, projection=trust_view, as_of=as_of)

    @app.get("/v1/coaches/{coach_id}/engagements", tags=tags)
    async def coach_engagements(
        coach_id: PathId,
        stage: Stage | None = None,
        principal: Principal = Depends(caller),
    ) -> Body:
        """The coach's engagements as stage views, optionally only those in `stage`."""
        return await service().coach_engagements(principal, coach_id, stage)
