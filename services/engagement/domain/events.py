"""Events of the engagement stream, named exactly as the contract names them.

Every free-text field is personal data (`PersonalStr`): the store encrypts it with the
client's key. Times a rule needs later (the 90-day window, graduation) travel in the data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal, get_args

from shared.model.events import DomainEvent, EventRegistry, OptionalPersonalStr, PersonalStr

Stage = Literal[
    "commitment", "working_the_plan", "transformation", "graduation", "graduated", "terminated"
]
Outcome = Literal["confirmed", "refuted"]
Party = Literal["coach", "client"]
ViolationKind = Literal[
    "role_overstep",
    "inappropriate_disclosure",
    "confidentiality_breach",
    "outside_agreed_contact",
    "power_imbalance",
    "other",
]
TerminationReason = Literal["broken_trust", "boundaries", "client_withdrew", "mutual", "other"]
# The six factors of a therapeutic relationship (contract section 7), in the contract's order.
Factor = Literal[
    "empathy", "active_listening", "non_judgment", "confidentiality", "collaboration", "boundaries"
]
FACTORS: tuple[Factor, ...] = get_args(Factor)
SupervisionReason = Literal[
    "persistent_violations",
    "confidentiality_breach",
    "relationship:empathy",
    "relationship:active_listening",
    "relationship:non_judgment",
    "relationship:confidentiality",
    "relationship:collaboration",
    "relationship:boundaries",
]


class EngagementOpened(DomainEvent):
    """The engagement began, from the intake's `ClientCommitted`."""

    event_type = "EngagementOpened"

    engagement_id: str
    client_id: str
    coach_id: str
    supervisor_id: str | None
    session_cadence_days: int
    goals: list[dict[str, Any]]
    baselines: list[dict[str, Any]]
    opened_at: datetime


class PlanStarted(DomainEvent):
    """commitment → working_the_plan."""

    event_type = "PlanStarted"

    started_at: datetime


class HomeworkAssigned(DomainEvent):
    event_type = "HomeworkAssigned"

    homework_id: str
    title: PersonalStr
    due_at: datetime


class HomeworkClaimed(DomainEvent):
    """The client says the homework is done; the coach is to verify it."""

    event_type = "HomeworkClaimed"

    homework_id: str
    note: OptionalPersonalStr = None
    claimed_at: datetime


class HomeworkVerified(DomainEvent):
    event_type = "HomeworkVerified"

    homework_id: str
    outcome: Outcome
    evidence: OptionalPersonalStr = None
    verified_at: datetime


class DeceptionPatternDetected(DomainEvent):
    """At least 3 of the 5 most recent verifications are refuted (appended on each turn to true)."""

    event_type = "DeceptionPatternDetected"

    refuted: int
    of_recent: int
    homework_id: str


class SessionHeld(DomainEvent):
    event_type = "SessionHeld"

    session_id: str
    held_at: datetime
    duration_minutes: int
    notes: OptionalPersonalStr = None


class BoundaryViolated(DomainEvent):
    event_type = "BoundaryViolated"

    violation_id: str
    violated_by: Party
    kind: ViolationKind
    description: PersonalStr
    reported_by: str
    reported_at: datetime


class SupervisionRecommended(DomainEvent):
    """Appended with the third violation by one party within 90 days, with every
    confidentiality breach by the coach, and when a relationship concern is still open after
    the client's third consecutive low rating of its factor.

    Version 2 names its cause: a violation (`violation_id`, `violations_in_window`) or a
    relationship check-in (`checkin_id`, `factor`, reason `relationship:<factor>`); the other
    cause's fields are null. Version 1 rows (violations only) are upcast on read.
    """

    event_type = "SupervisionRecommended"
    schema_version = 2

    party: Party
    reason: SupervisionReason
    violation_id: str | None = None
    violations_in_window: int | None = None
    checkin_id: str | None = None
    factor: Factor | None = None
    supervisor_id: str | None


class BoundaryViolationAddressed(DomainEvent):
    event_type = "BoundaryViolationAddressed"

    violation_id: str
    violated_by: Party
    steps: PersonalStr
    addressed_at: datetime


class BoundariesReviewed(DomainEvent):
    event_type = "BoundariesReviewed"

    notes: OptionalPersonalStr = None
    reviewed_at: datetime


class TransformationAchieved(DomainEvent):
    """working_the_plan → transformation."""

    event_type = "TransformationAchieved"

    summary: PersonalStr
    achieved_at: datetime


class SelfCheckRecorded(DomainEvent):
    event_type = "SelfCheckRecorded"

    on_track: bool
    notes: OptionalPersonalStr = None
    recorded_by: str
    recorded_at: datetime


class RegressionDetected(DomainEvent):
    """A not-on-track self-check in transformation: back to working_the_plan."""

    event_type = "RegressionDetected"

    from_stage: Stage
    to_stage: Stage
    detected_at: datetime


class GraduationStarted(DomainEvent):
    """transformation → graduation, with a longer session cadence."""

    event_type = "GraduationStarted"

    session_cadence_days: int
    previous_session_cadence_days: int
    started_at: datetime


class Graduated(DomainEvent):
    """graduation → graduated."""

    event_type = "Graduated"

    graduated_at: datetime


class FollowUpCompleted(DomainEvent):
    event_type = "FollowUpCompleted"

    follow_up_id: str
    scores: dict[str, float]
    notes: OptionalPersonalStr = None
    completed_at: datetime


class TestimonialReceived(DomainEvent):
    event_type = "TestimonialReceived"
    __test__: ClassVar[bool] = False  # not a pytest class, despite its name

    testimonial_id: str
    text: PersonalStr
    consent_to_publish: bool
    received_at: datetime


class EngagementTerminated(DomainEvent):
    """Any stage but graduated → terminated."""

    event_type = "EngagementTerminated"

    reason: TerminationReason
    notes: OptionalPersonalStr = None
    from_stage: Stage
    terminated_at: datetime


class RelationshipCheckInRecorded(DomainEvent):
    """A party rated the relationship on each of the six factors, 1..5 (contract section 7).
    `coach_id` lets the coach's roll-up find the engagement's coach in the event itself."""

    event_type = "RelationshipCheckInRecorded"

    checkin_id: str
    rater: Party
    ratings: dict[Factor, int]
    comment: OptionalPersonalStr = None
    coach_id: str
    recorded_at: datetime


class RelationshipConcernRaised(DomainEvent):
    """The client rated `factor` 2 or lower in two consecutive client check-ins."""

    event_type = "RelationshipConcernRaised"

    factor: Factor
    checkin_id: str
    coach_id: str
    raised_at: datetime


class RelationshipConcernResolved(DomainEvent):
    """The client rated the factor of an open concern 4 or higher."""

    event_type = "RelationshipConcernResolved"

    factor: Factor
    checkin_id: str
    coach_id: str
    resolved_at: datetime


class ClientDataErased(DomainEvent):
    """The client's key was destroyed (the intake's `ClientErased` arrived): the personal
    fields of this stream read null from now on. No count, score or stage changes."""

    event_type = "ClientDataErased"

    client_id: str
    erased_at: datetime


ENGAGEMENT_EVENTS: tuple[type[DomainEvent], ...] = (
    EngagementOpened,
    PlanStarted,
    HomeworkAssigned,
    HomeworkClaimed,
    HomeworkVerified,
    DeceptionPatternDetected,
    SessionHeld,
    BoundaryViolated,
    SupervisionRecommended,
    BoundaryViolationAddressed,
    BoundariesReviewed,
    TransformationAchieved,
    SelfCheckRecorded,
    RegressionDetected,
    GraduationStarted,
    Graduated,
    FollowUpCompleted,
    TestimonialReceived,
    EngagementTerminated,
    ClientDataErased,
    RelationshipCheckInRecorded,
    RelationshipConcernRaised,
    RelationshipConcernResolved,
)

registry = EventRegistry(ENGAGEMENT_EVENTS)


@registry.historical
class SupervisionRecommendedV1(DomainEvent):
    """SupervisionRecommended as version 1 wrote it: caused by boundary violations only."""

    event_type = "SupervisionRecommended"
    schema_version = 1

    party: Party
    reason: Literal["persistent_violations", "confidentiality_breach"]
    violation_id: str
    violations_in_window: int
    supervisor_id: str | None


@registry.upcaster("SupervisionRecommended", 1)
def supervision_recommended_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 was only ever caused by a violation: it had no check-in and no factor.
    Stored v1 rows stay as they are; they are upcast whenever they are read."""
    return {**data, "checkin_id": None, "factor": None}
