"""Engagement's HTTP routes (contract section 3, engagement)."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Annotated

from fastapi import Depends, FastAPI, Query
from pydantic import BaseModel, Field, StrictBool, StrictInt, StringConstraints

from services.engagement.application.services import EngagementService
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
from shared.security.tokens import Principal
from shared.http.bearer import authenticated
from shared.usecases.commands import Reply
from shared.http.routes import CommandRoute, Edge, add_command_routes
from shared.http.schemas import (
    CommandAccepted,
    LongText,
    PathId,
    RequestBody,
    Rfc3339Time,
    Scores,
    ShortText,
)

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
        description="Each rater's latest comment (null without one, once erased, or unreadable)."
    )
    erased: bool
    unreadable: int = Field(
        ge=0, description="Personal values that did not decrypt under this engagement's key."
    )
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


ENGAGEMENT = "/v1/engagements/{engagement_id}"
COMMAND_ROUTES = (
    CommandRoute(f"{ENGAGEMENT}/plan", commands.StartPlan, "coach"),
    CommandRoute(
        f"{ENGAGEMENT}/homework",
        commands.AssignHomework,
        "coach",
        HomeworkIn,
        new_ids=("homework_id",),
        response=HomeworkOut,
    ),
    CommandRoute(
        f"{ENGAGEMENT}/homework/{{homework_id}}/claim",
        commands.ClaimHomework,
        "client",
        ClaimIn,
        body_optional=True,
    ),
    CommandRoute(
        f"{ENGAGEMENT}/homework/{{homework_id}}/verification",
        commands.VerifyHomework,
        "coach",
        VerificationIn,
    ),
    CommandRoute(
        f"{ENGAGEMENT}/sessions", commands.HoldSession, "coach", SessionIn, new_ids=("session_id",)
    ),
    CommandRoute(
        f"{ENGAGEMENT}/boundary-violations",
        commands.ReportViolation,
        "reporter",
        ViolationIn,
        new_ids=("violation_id",),
        response=ViolationOut,
    ),
    CommandRoute(
        f"{ENGAGEMENT}/boundary-violations/{{violation_id}}/resolution",
        commands.AddressViolation,
        "coach",
        ResolutionIn,
    ),
    CommandRoute(
        f"{ENGAGEMENT}/boundary-reviews",
        commands.ReviewBoundaries,
        "coach",
        ReviewIn,
        body_optional=True,
    ),
    CommandRoute(
        f"{ENGAGEMENT}/transformation", commands.AchieveTransformation, "coach", TransformationIn
    ),
    CommandRoute(f"{ENGAGEMENT}/self-checks", commands.RecordSelfCheck, "party", SelfCheckIn),
    CommandRoute(f"{ENGAGEMENT}/graduation", commands.StartGraduation, "coach", GraduationIn),
    CommandRoute(f"{ENGAGEMENT}/graduate", commands.Graduate, "coach"),
    CommandRoute(
        f"{ENGAGEMENT}/follow-ups",
        commands.CompleteFollowUp,
        "coach",
        FollowUpIn,
        new_ids=("follow_up_id",),
    ),
    CommandRoute(
        f"{ENGAGEMENT}/testimonial",
        commands.ReceiveTestimonial,
        "client",
        TestimonialIn,
        new_ids=("testimonial_id",),
    ),
    CommandRoute(f"{ENGAGEMENT}/termination", commands.TerminateEngagement, "coach", TerminationIn),
    CommandRoute(
        f"{ENGAGEMENT}/relationship-checkins",
        commands.RecordRelationshipCheckIn,
        "party",
        CheckInIn,
        new_ids=("checkin_id",),
        response=CheckInOut,
    ),
)


def build_routes(app: FastAPI, service: Callable[[], EngagementService], edge: Edge) -> None:
    """Attach the engagement routes; `service` gives the running application object."""
    caller = authenticated(edge.tokens)
    tags: list[str | Enum] = ["engagement"]

    add_command_routes(app, COMMAND_ROUTES, edge=edge, service=service, tags=tags)

    @app.get("/v1/engagements/{engagement_id}", tags=tags)
    async def read_engagement(
        engagement_id: PathId, as_of: AsOf = None, principal: Principal = Depends(caller)
    ) -> Reply:
        """The stage view, with `stage_history`; `?as_of=` folds the log up to that time."""
        return await service().read(principal, engagement_id, as_of=as_of)

    @app.get("/v1/engagements/{engagement_id}/trust", tags=tags)
    async def read_trust(
        engagement_id: PathId, as_of: AsOf = None, principal: Principal = Depends(caller)
    ) -> Reply:
        """The trust view: score, verifications, open client violations, deception pattern."""
        return await service().read(principal, engagement_id, projection=trust_view, as_of=as_of)

    @app.get(
        "/v1/engagements/{engagement_id}/relationship",
        tags=tags,
        response_model=RelationshipOut,
    )
    async def read_relationship(
        engagement_id: PathId, as_of: AsOf = None, principal: Principal = Depends(caller)
    ) -> Reply:
        """The relationship view: check-in counts, latest ratings, averages of the last three,
        coach-vs-client gaps, open concerns, health; `?as_of=` folds the log up to that time."""
        return await service().relationship(principal, engagement_id, as_of=as_of)

    @app.get(
        "/v1/coaches/{coach_id}/relationship",
        tags=tags,
        response_model=CoachRelationshipOut,
    )
    async def coach_relationship(coach_id: PathId, principal: Principal = Depends(caller)) -> Reply:
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
    ) -> Reply:
        """The coach's engagements as stage views, optionally only those in `stage`."""
        return await service().coach_engagements(principal, coach_id, stage, limit=limit)
