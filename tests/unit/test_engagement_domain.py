"""The engagement's pure domain: stages, homework and trust, boundaries, graduation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.engagement.domain import engagement, trust
from services.engagement.domain.commands import (
    AchieveTransformation,
    AddressViolation,
    AssignHomework,
    ClaimHomework,
    CompleteFollowUp,
    Graduate,
    HoldSession,
    OpenEngagement,
    ReceiveTestimonial,
    RecordSelfCheck,
    ReportViolation,
    ReviewBoundaries,
    StartGraduation,
    StartPlan,
    TerminateEngagement,
    VerifyHomework,
)
from services.engagement.domain.events import ENGAGEMENT_EVENTS
from services.engagement.domain.state import Engagement
from shared.model.errors import DomainError, ForbiddenByState, InvalidCommand, NotFound
from shared.model.events import Command, DomainEvent, personal_fields_of

T0 = datetime(2030, 1, 1, 9, tzinfo=UTC)


def opened(cadence: int = 7, supervisor: str | None = "sup-1") -> Engagement:
    command = OpenEngagement(
        engagement_id="e-1",
        client_id="client-1",
        coach_id="coach-1",
        supervisor_id=supervisor,
        session_cadence_days=cadence,
        goals=[],
        baselines=[],
        at=T0,
    )
    return apply(engagement.initial(), command)[0]


def apply(state: Engagement, command: Command) -> tuple[Engagement, list[DomainEvent]]:
    events = list(engagement.decide(state, command))
    for event in events:
        state = engagement.evolve(state, event)
    return state, events


def run(state: Engagement, *commands: Command) -> tuple[Engagement, list[DomainEvent]]:
    produced: list[DomainEvent] = []
    for command in commands:
        state, events = apply(state, command)
        produced.extend(events)
    return state, produced


def types(events: Sequence[DomainEvent]) -> list[str]:
    return [event.event_type for event in events]


def homework(homework_id: str, at: datetime = T0) -> list[Command]:
    return [
        AssignHomework(homework_id=homework_id, title="walk", due_at=at, at=at),
        ClaimHomework(homework_id=homework_id, at=at),
    ]


def verify(homework_id: str, outcome: Any, at: datetime = T0) -> VerifyHomework:
    return VerifyHomework(homework_id=homework_id, outcome=outcome, at=at)


def violation(violation_id: str, party: Any, at: datetime, kind: Any = "other") -> ReportViolation:
    return ReportViolation(
        violation_id=violation_id,
        violated_by=party,
        kind=kind,
        description="what happened",
        reported_by="coach",
        at=at,
    )


@pytest.mark.parametrize(
    ("confirmed", "refuted", "open_violations", "expected"),
    [
        (0, 0, 0, 100),
        (1, 1, 0, 75),
        (1, 2, 0, 60),
        (1, 3, 0, 50),
        (0, 1, 0, 67),
        (0, 14, 0, 13),  # 12.5 rounds half up
        (5, 0, 3, 70),
        (0, 30, 2, 0),  # clamped at 0
        (3, 0, 0, 100),
    ],
)
def test_the_trust_score_follows_the_contract_formula(
    confirmed: int, refuted: int, open_violations: int, expected: int
) -> None:
    assert trust.score(confirmed, refuted, open_violations) == expected


def test_the_deception_pattern_looks_at_the_five_most_recent_verifications() -> None:
    assert not trust.deception_pattern([])
    assert not trust.deception_pattern(["refuted", "refuted"])
    assert trust.deception_pattern(["refuted", "confirmed", "refuted", "refuted"])
    assert not trust.deception_pattern(["refuted"] * 3 + ["confirmed"] * 3)
    assert trust.deception_pattern(["confirmed"] * 10 + ["refuted"] * 3)


def test_a_new_engagement_starts_in_commitment_and_scores_100() -> None:
    state = opened()
    assert state.stage == "commitment" and state.trust_score == 100
    assert engagement.decide(state, OpenEngagement(**{**_open_fields(), "at": T0})) == []


def _open_fields() -> dict[str, Any]:
    return {
        "engagement_id": "e-1",
        "client_id": "client-1",
        "coach_id": "coach-1",
        "supervisor_id": None,
        "session_cadence_days": 7,
        "goals": [],
        "baselines": [],
    }


def test_commands_on_an_engagement_that_never_opened_are_not_found() -> None:
    with pytest.raises(NotFound):
        engagement.decide(engagement.initial(), StartPlan(at=T0))


def test_the_first_homework_in_commitment_starts_the_plan() -> None:
    state, events = apply(
        opened(), AssignHomework(homework_id="h1", title="walk", due_at=T0, at=T0)
    )
    assert types(events) == ["PlanStarted", "HomeworkAssigned"]
    assert state.stage == "working_the_plan"
    with pytest.raises(ForbiddenByState):
        engagement.decide(state, StartPlan(at=T0))


def test_claims_are_once_per_homework_and_verification_needs_a_claim_and_happens_once() -> None:
    state, _ = run(
        opened(), StartPlan(at=T0), AssignHomework(homework_id="h1", title="t", due_at=T0, at=T0)
    )
    with pytest.raises(ForbiddenByState, match="not been claimed"):
        engagement.decide(state, verify("h1", "confirmed"))
    with pytest.raises(NotFound):
        engagement.decide(state, ClaimHomework(homework_id="nope", at=T0))
    state, _ = apply(state, ClaimHomework(homework_id="h1", at=T0))
    with pytest.raises(ForbiddenByState, match="already claimed"):
        engagement.decide(state, ClaimHomework(homework_id="h1", at=T0))
    state, events = apply(state, verify("h1", "confirmed"))
    assert types(events) == ["HomeworkVerified"]
    assert events[0].model_dump()["homework_id"] == "h1"
    with pytest.raises(ForbiddenByState, match="already verified"):
        engagement.decide(state, verify("h1", "refuted"))


def test_the_deception_pattern_is_reported_once_per_turn_to_true() -> None:
    state, _ = run(opened(), *[c for h in "abcdefgh" for c in homework(h)])
    outcomes = {
        "a": "refuted",
        "b": "refuted",
        "c": "refuted",  # turns true
        "d": "refuted",  # stays true: nothing new
        "e": "confirmed",  # a b c d e: still true
        "f": "confirmed",  # b c d e f: 3 refuted, still true
        "g": "confirmed",  # c d e f g: 2 refuted, false
        "h": "refuted",  # d e f g h: 2 refuted, still false
    }
    detections = []
    for homework_id, outcome in outcomes.items():
        state, events = apply(state, verify(homework_id, outcome))
        detections.append("DeceptionPatternDetected" in types(events))
    assert detections == [False, False, True, False, False, False, False, False]
    state, _ = run(state, *homework("i"), *homework("j"))
    state, events = apply(state, verify("i", "refuted"))  # e f g h i: 2 refuted, false
    assert "DeceptionPatternDetected" not in types(events)
    state, events = apply(state, verify("j", "refuted"))  # f g h i j: 3 refuted, true again
    assert types(events) == ["HomeworkVerified", "DeceptionPatternDetected"]
    assert state.deception_pattern and state.trust_score == trust.score(3, 7, 0)


def test_the_third_violation_by_one_party_within_90_days_recommends_supervision() -> None:
    state = opened()
    state, events = run(
        state,
        violation("v1", "client", T0),
        violation("v2", "coach", T0 + timedelta(days=1)),
        violation("v3", "client", T0 + timedelta(days=30)),
    )
    assert "SupervisionRecommended" not in types(events)
    state, events = apply(state, violation("v4", "client", T0 + timedelta(days=90)))
    assert types(events) == ["BoundaryViolated", "SupervisionRecommended"]
    recommended = events[1].model_dump()
    assert (recommended["party"], recommended["reason"]) == ("client", "persistent_violations")
    assert recommended["supervisor_id"] == "sup-1"


def test_violations_spread_over_more_than_90_days_are_not_persistent() -> None:
    state, events = run(
        opened(),
        violation("v1", "client", T0),
        violation("v2", "client", T0 + timedelta(days=50)),
        violation("v3", "client", T0 + timedelta(days=91)),
    )
    assert "SupervisionRecommended" not in types(events)
    state, events = apply(state, violation("v4", "client", T0 + timedelta(days=100)))
    assert "SupervisionRecommended" in types(events)  # v2, v3, v4 fall within 90 days


def test_every_confidentiality_breach_by_the_coach_recommends_supervision() -> None:
    breach = "confidentiality_breach"
    _, events = run(
        opened(),
        violation("v1", "coach", T0, breach),
        violation("v2", "client", T0, breach),
        violation("v3", "coach", T0 + timedelta(days=400), breach),
    )
    recommended = [e.model_dump() for e in events if e.event_type == "SupervisionRecommended"]
    assert [(r["party"], r["reason"]) for r in recommended] == [
        ("coach", "confidentiality_breach"),
        ("coach", "confidentiality_breach"),
    ]


def test_open_client_violations_cost_trust_until_addressed() -> None:
    state, _ = run(opened(), violation("v1", "client", T0), violation("v2", "coach", T0))
    assert state.trust_score == 90
    with pytest.raises(NotFound):
        engagement.decide(state, AddressViolation(violation_id="v9", steps="x", at=T0))
    state, events = apply(state, AddressViolation(violation_id="v1", steps="talked", at=T0))
    assert events[0].model_dump()["violated_by"] == "client"
    assert state.trust_score == 100
    with pytest.raises(ForbiddenByState, match="already addressed"):
        engagement.decide(state, AddressViolation(violation_id="v1", steps="again", at=T0))


def test_a_regression_in_transformation_returns_to_working_the_plan() -> None:
    state, _ = run(opened(), StartPlan(at=T0), AchieveTransformation(summary="s", at=T0))
    state, events = apply(state, RecordSelfCheck(on_track=True, recorded_by="client", at=T0))
    assert types(events) == ["SelfCheckRecorded"] and state.stage == "transformation"
    state, events = apply(state, RecordSelfCheck(on_track=False, recorded_by="coach", at=T0))
    assert types(events) == ["SelfCheckRecorded", "RegressionDetected"]
    assert state.stage == "working_the_plan"
    state, events = apply(state, RecordSelfCheck(on_track=False, recorded_by="coach", at=T0))
    assert types(events) == ["SelfCheckRecorded"]  # no regression outside transformation


def test_graduation_needs_a_longer_cadence_and_leads_to_graduated() -> None:
    state, _ = run(opened(14), StartPlan(at=T0), AchieveTransformation(summary="s", at=T0))
    for cadence in (7, 14):
        with pytest.raises(InvalidCommand) as refused:
            engagement.decide(state, StartGraduation(session_cadence_days=cadence, at=T0))
        assert refused.value.field == "session_cadence_days"
    with pytest.raises(ForbiddenByState):
        engagement.decide(state, Graduate(at=T0))
    state, _ = apply(state, StartGraduation(session_cadence_days=30, at=T0))
    assert (state.stage, state.session_cadence_days) == ("graduation", 30)
    with pytest.raises(ForbiddenByState):
        engagement.decide(state, CompleteFollowUp(follow_up_id="f", scores={}, at=T0))
    later = T0 + timedelta(days=3)
    state, events = apply(state, Graduate(at=later))
    assert state.stage == "graduated" and events[0].model_dump()["graduated_at"] == later
    state, events = run(
        state,
        CompleteFollowUp(follow_up_id="f", scores={"energy": 8}, at=T0),
        ReceiveTestimonial(testimonial_id="t", text="thanks", consent_to_publish=True, at=T0),
    )
    assert types(events) == ["FollowUpCompleted", "TestimonialReceived"]
    with pytest.raises(ForbiddenByState):
        engagement.decide(state, TerminateEngagement(reason="mutual", at=T0))


def test_a_terminated_engagement_accepts_nothing_more() -> None:
    state, _ = run(opened(), TerminateEngagement(reason="client_withdrew", at=T0))
    assert state.stage == "terminated"
    for command in (
        StartPlan(at=T0),
        AssignHomework(homework_id="h", title="t", due_at=T0, at=T0),
        HoldSession(session_id="s", held_at=T0, duration_minutes=30, at=T0),
        violation("v", "client", T0),
        ReviewBoundaries(at=T0),
        RecordSelfCheck(on_track=True, recorded_by="client", at=T0),
        TerminateEngagement(reason="other", at=T0),
    ):
        with pytest.raises(ForbiddenByState):
            engagement.decide(state, command)


def test_every_free_text_field_of_every_event_is_personal() -> None:
    free_text = {
        "title",
        "note",
        "evidence",
        "notes",
        "description",
        "steps",
        "summary",
        "text",
        "comment",
    }
    for event_type in ENGAGEMENT_EVENTS:
        fields = set(event_type.model_fields)
        assert personal_fields_of(event_type) == fields & free_text, event_type.event_type


def test_the_contract_data_fields_are_present() -> None:
    assert {"homework_id", "outcome"} <= set(_fields("HomeworkVerified"))
    assert {"violation_id", "violated_by", "kind"} <= set(_fields("BoundaryViolated"))
    assert {"graduated_at"} <= set(_fields("Graduated"))
    assert {"party", "reason"} <= set(_fields("SupervisionRecommended"))
    assert {"checkin_id", "rater", "ratings", "comment"} <= set(
        _fields("RelationshipCheckInRecorded")
    )
    assert {"factor"} <= set(_fields("RelationshipConcernRaised"))
    assert {"factor"} <= set(_fields("RelationshipConcernResolved"))
    assert {"homework_id"} <= set(_fields("HomeworkClaimed"))
    assert {"reason"} <= set(_fields("EngagementTerminated"))


def _fields(event_type: str) -> dict[str, Any]:
    model = next(e for e in ENGAGEMENT_EVENTS if e.event_type == event_type)
    return dict(model.model_fields)


def test_domain_errors_carry_the_statuses_the_edge_answers() -> None:
    assert (ForbiddenByState.status, InvalidCommand.status, NotFound.status) == (409, 422, 404)
    assert issubclass(ForbiddenByState, DomainError)


def test_a_session_is_recorded_once_held_five_minutes_of_clock_skew_allowed() -> None:
    state = opened()

    def session(held_at: datetime) -> HoldSession:
        return HoldSession(session_id="s", held_at=held_at, duration_minutes=50, at=T0)

    for held_at in (T0 - timedelta(days=2), T0, T0 + timedelta(minutes=5)):
        assert types(apply(state, session(held_at))[1]) == ["SessionHeld"]
    for held_at in (T0 + timedelta(minutes=5, seconds=1), T0 + timedelta(days=2)):
        with pytest.raises(InvalidCommand, match="once it was held") as refused:
            engagement.decide(state, session(held_at))
        assert refused.value.field == "held_at"


def test_homework_is_due_after_it_is_assigned_five_minutes_of_clock_skew_allowed() -> None:
    state = opened()

    def assigned(due_at: datetime) -> AssignHomework:
        return AssignHomework(homework_id="h", title="walk", due_at=due_at, at=T0)

    for due_at in (T0 - timedelta(minutes=5), T0, T0 + timedelta(days=7)):
        assert "HomeworkAssigned" in types(apply(state, assigned(due_at))[1])
    for due_at in (T0 - timedelta(minutes=5, seconds=1), datetime(1990, 1, 1, tzinfo=UTC)):
        with pytest.raises(InvalidCommand, match="due after it is assigned") as refused:
            engagement.decide(state, assigned(due_at))
        assert refused.value.field == "due_at"
