"""Engagement's HTTP routes (contract section 3, engagement)."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query
from pydantic import BaseModel, Field, StrictBool, StrictInt, StringConstraints

from services.engagement.application.handlers import EngagementService, Who, checkin_rater
from services.engagement.domain import commands
from services.engagement.domain.events import (
    Factor,
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
from shared.schemas import CommandAccepted, LongText, Rfc3339Time, Scores, ShortText

PathId = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:@-]+$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=10_000)]
AsOf = Annotated[
    Rfc3339Time | None,
    Query(description="RFC 3339 time: the view as it stood then, folded from the log."),
]


class HomeworkIn(RequestBody):
    title: ShortText
    due_at: Rfc3339Time


class ClaimIn(RequestBody):
    note: LongText | None = None


class VerificationIn(RequestBody):
    outcome: Outcome
    evidence: LongText | None = None


class SessionIn(RequestBody):
    held_at: Rfc3339Time
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


Rating = Annotated[
    StrictInt, Field(ge=1, le=5, description="1 (not at all) to 5 (fully); an integer")
]


class RatingsIn(RequestBody):
    """Exactly the six factors of the relationship, each rated 1..5."""

    empathy: Rating
    active_listening: Rating
    non_judgment: Rating
    confidentiality: Rating
    collaboration: Rating
    boundaries: Rating


class CheckInIn(RequestBody):
    ratings: RatingsIn
    comment: LongText | None = None
    rater: Party | None = Field(
        None,
        description="Only for an admin recording a party's check-in (required then); a client "
        "or coach rates as themselves.",
    )


class HomeworkOut(CommandAccepted):
    homework_id: str


class ViolationOut(CommandAccepted):
    violation_id: str


class CheckInOut(CommandAccepted):
    checkin_id: str


class ByRater(BaseModel):
    client: int
    coach: int


class LatestByRater(BaseModel):
    client: dict[Factor, int] | None
    coach: dict[Factor, int] | None


class CommentsByRater(BaseModel):
    client: str | None
    coach: str | None


class RelationshipOut(BaseModel):
    """The relationship view (contract section 7)."""

    engagement_id: str
    client_id: str
    coach_id: str
    supervisor_id: str | None
    checkins: ByRater
    latest: LatestByRater
    average: dict[Party, dict[Factor, float]] = Field(
        description="Per rater with check-ins, the mean of their last 3 (2 decimals, half up)."
    )
    gaps: dict[Factor, int] = Field(
        description="Coach's latest minus client's latest; empty unless both have rated."
    )
    concerns: list[Factor]
    health: int | None = Field(ge=0, le=100)
    comments: CommentsByRater = Field(
        description="Each rater's latest comment (null without one, or once erased)."
    )
    erased: bool
    version: int


class CoachRelationshipOut(BaseModel):
    """A coach's relationship roll-up (contract section 7)."""

    coach_id: str
    engagements: int = Field(description="Engagements with at least one client check-in.")
    average: dict[Factor, float] = Field(
        description="Mean over those engagements of each one's latest client rating."
    )
    open_concerns: int
    version: int = Field(description="Events folded into the roll-up so far.")


@dataclass(frozen=True)
class CommandRoute:
    """One command of the contract: `POST /v1/engagements/{engagement_id}/<path>`."""

    path: str
    command: type[Command]
    who: Who
    body: type[RequestBody] | None = None
    body_optional: bool = False
    new_id: str | None = None  # the id of the new thing, chosen here and answered
    response: type[CommandAccepted] = CommandAccepted

    @property
    def path_id(self) -> str | None:
        """The second id in the path (`homework_id`, `violation_id`), if any."""
        found = re.search(r"\{(\w+)\}", self.path)
        return found.group(1) if found else None


COMMAND_ROUTES = (
    CommandRoute("plan", commands.StartPlan, "coach"),
    CommandRoute(
        "homework",
        commands.AssignHomework,
        "coach",
        HomeworkIn,
        new_id="homework_id",
        response=HomeworkOut,
    ),
    CommandRoute(
        "homework/{homework_id}/claim",
        commands.ClaimHomework,
        "client",
        ClaimIn,
        body_optional=True,
    ),
    CommandRoute(
        "homework/{homework_id}/verification", commands.VerifyHomework, "coach", VerificationIn
    ),
    CommandRoute("sessions", commands.HoldSession, "coach", SessionIn, new_id="session_id"),
    CommandRoute(
        "boundary-violations",
        commands.ReportViolation,
        "reporter",
        ViolationIn,
        new_id="violation_id",
        response=ViolationOut,
    ),
    CommandRoute(
        "boundary-violations/{violation_id}/resolution",
        commands.AddressViolation,
        "coach",
        ResolutionIn,
    ),
    CommandRoute(
        "boundary-reviews", commands.ReviewBoundaries, "coach", ReviewIn, body_optional=True
    ),
    CommandRoute("transformation", commands.AchieveTransformation, "coach", TransformationIn),
    CommandRoute("self-checks", commands.RecordSelfCheck, "party", SelfCheckIn),
    CommandRoute("graduation", commands.StartGraduation, "coach", GraduationIn),
    CommandRoute("graduate", commands.Graduate, "coach"),
    CommandRoute(
        "follow-ups", commands.CompleteFollowUp, "coach", FollowUpIn, new_id="follow_up_id"
    ),
    CommandRoute(
        "testimonial",
        commands.ReceiveTestimonial,
        "client",
        TestimonialIn,
        new_id="testimonial_id",
    ),
    CommandRoute("termination", commands.TerminateEngagement, "coach", TerminationIn),
    CommandRoute(
        "relationship-checkins",
        commands.RecordRelationshipCheckIn,
        "party",
        CheckInIn,
        new_id="checkin_id",
        response=CheckInOut,
    ),
)
# Who sent a command, recorded in its event, where the command has such a field.
SENDER_FIELDS = {commands.ReportViolation: "reported_by", commands.RecordSelfCheck: "recorded_by"}


def build_routes(
    app: FastAPI, service: Callable[[], EngagementService], jwt_secret: Callable[[], str]
) -> None:
    """Attach the engagement routes; `service` gives the running application object."""
    caller = authenticated(jwt_secret)
    tags: list[str | Enum] = ["engagement"]

    def add_command(route: CommandRoute) -> None:
        async def endpoint(
            engagement_id: str,
            principal: Principal,
            idempotency_key: str | None,
            body: RequestBody | None = None,
            **path_ids: str,
        ) -> Body:
            sent = body.model_dump(mode="json") if body is not None else {}
            target = f"engagements/{engagement_id}/{route.path.format(**path_ids)}"
            scope = f"{principal.role}:{principal.sub}:{target}"
            key = IdempotencyKey.of(scope, idempotency_key, sent)
            fields = {**(body.model_dump() if body is not None else {}), **path_ids}
            extra: Body = {}
            if route.new_id is not None:
                fields[route.new_id] = extra[route.new_id] = new_id()
            if route.command in SENDER_FIELDS:
                fields[SENDER_FIELDS[route.command]] = principal.role
            if route.command is commands.RecordRelationshipCheckIn:
                fields["rater"] = checkin_rater(principal, fields.get("rater"))
            return await service().act(
                principal,
                engagement_id,
                route.who,
                route.command,
                fields,
                idempotency=key,
                extra=extra,
            )

        keyword = inspect.Parameter.KEYWORD_ONLY
        parameters = [inspect.Parameter("engagement_id", keyword, annotation=PathId)]
        if route.path_id is not None:
            parameters.append(inspect.Parameter(route.path_id, keyword, annotation=PathId))
        if route.body is not None:
            annotation: Any = route.body | None if route.body_optional else route.body
            default = None if route.body_optional else inspect.Parameter.empty
            parameters.append(
                inspect.Parameter("body", keyword, annotation=annotation, default=default)
            )
        parameters += [
            inspect.Parameter("principal", keyword, annotation=Principal, default=Depends(caller)),
            inspect.Parameter(
                "idempotency_key", keyword, annotation=str | None, default=IDEMPOTENCY_HEADER
            ),
        ]
        endpoint.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        app.add_api_route(
            f"/v1/engagements/{{engagement_id}}/{route.path}",
            endpoint,
            methods=["POST"],
            status_code=201,
            response_model=route.response,
            tags=tags,
            name=route.command.__name__,
            summary=f"{route.command.__name__} ({route.who})",
        )

    for route in COMMAND_ROUTES:
        add_command(route)

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

    @app.get(
        "/v1/engagements/{engagement_id}/relationship",
        tags=tags,
        response_model=RelationshipOut,
    )
    async def read_relationship(
        engagement_id: PathId, as_of: AsOf = None, principal: Principal = Depends(caller)
    ) -> Body:
        """The relationship view: check-in counts, latest ratings, averages of the last three,
        coach-vs-client gaps, open concerns, health; `?as_of=` folds the log up to that time."""
        return await service().relationship(principal, engagement_id, as_of=as_of)

    @app.get(
        "/v1/coaches/{coach_id}/relationship",
        tags=tags,
        response_model=CoachRelationshipOut,
    )
    async def coach_relationship(coach_id: PathId, principal: Principal = Depends(caller)) -> Body:
        """The coach's roll-up over engagements with client check-ins: that coach, a
        supervisor of one of their engagements, auditor, admin."""
        return await service().coach_relationship(principal, coach_id)

    @app.get("/v1/coaches/{coach_id}/engagements", tags=tags)
    async def coach_engagements(
        coach_id: PathId,
        stage: Stage | None = None,
        limit: Annotated[
            int, Query(ge=1, le=10_000, description="At most this many, oldest first.")
        ] = 1000,
        principal: Principal = Depends(caller),
    ) -> Body:
        """The coach's engagements as stage views, optionally only those in `stage`."""
        return await service().coach_engagements(principal, coach_id, stage, limit=limit)
