"""Properties of the engagement's pure domain, for random command sequences (hypothesis):
no invalid stage transition is ever accepted, the score stays within 0..100, folding the
events again gives the same state, and the projections agree with the domain."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import event as observe
from hypothesis import given, settings
from hypothesis import strategies as st

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
    RecordRelationshipCheckIn,
    RecordSelfCheck,
    ReportViolation,
    ReviewBoundaries,
    StartGraduation,
    StartPlan,
    TerminateEngagement,
    VerifyHomework,
)
from services.engagement.domain.events import FACTORS, SupervisionRecommended
from services.engagement.domain.state import TRANSITIONS, Engagement
from services.engagement.projections.relationship_view import relationship_view
from services.engagement.projections.stage_view import stage_view
from services.engagement.projections.trust_view import trust_view
from shared.model.envelope import Actor, Envelope, format_time
from shared.model.errors import DomainError
from shared.model.events import Command, DomainEvent
from shared.model.projections import fold_stream

T0 = datetime(2030, 1, 1, tzinfo=UTC)
OPEN = OpenEngagement(
    engagement_id="e-1",
    client_id="client-1",
    coach_id="coach-1",
    supervisor_id="sup-1",
    session_cadence_days=7,
    goals=[],
    baselines=[],
    at=T0,
)

homework_ids = st.sampled_from(["h1", "h2", "h3", "h4", "h5", "h6"])
violation_ids = st.sampled_from(["v1", "v2", "v3", "v4", "v5"])
parties = st.sampled_from(["coach", "client"])
kinds = st.sampled_from(["role_overstep", "confidentiality_breach", "outside_agreed_contact"])
text = st.just("free text")
ratings = st.fixed_dictionaries({factor: st.sampled_from([1, 2, 4]) for factor in FACTORS})


def builds(model: type[Command], **fields: Any) -> st.SearchStrategy[Command]:
    return st.builds(model, at=st.just(T0), **fields)


commands: st.SearchStrategy[Command] = st.one_of(
    builds(StartPlan),
    builds(AssignHomework, homework_id=homework_ids, title=text, due_at=st.just(T0)),
    builds(AssignHomework, homework_id=homework_ids, title=text, due_at=st.just(T0)),
    builds(ClaimHomework, homework_id=homework_ids),
    builds(ClaimHomework, homework_id=homework_ids),
    builds(VerifyHomework, homework_id=homework_ids, outcome=st.sampled_from(["refuted"])),
    builds(VerifyHomework, homework_id=homework_ids, outcome=st.sampled_from(["confirmed"])),
    builds(HoldSession, session_id=st.just("s"), held_at=st.just(T0), duration_minutes=st.just(50)),
    builds(
        ReportViolation,
        violation_id=violation_ids,
        violated_by=parties,
        kind=kinds,
        description=text,
        reported_by=st.just("coach"),
    ),
    builds(AddressViolation, violation_id=violation_ids, steps=text),
    builds(ReviewBoundaries),
    builds(AchieveTransformation, summary=text),
    builds(RecordSelfCheck, on_track=st.booleans(), recorded_by=st.just("client")),
    builds(StartGraduation, session_cadence_days=st.integers(1, 30)),
    builds(Graduate),
    builds(CompleteFollowUp, follow_up_id=st.just("f"), scores=st.just({"energy": 5.0})),
    builds(
        ReceiveTestimonial, testimonial_id=st.just("t"), text=text, consent_to_publish=st.just(True)
    ),
    builds(
        RecordRelationshipCheckIn,
        checkin_id=st.just("c"),
        rater=parties,
        ratings=ratings,
        comment=st.none() | text,
    ),
)
ending = builds(TerminateEngagement, reason=st.sampled_from(["broken_trust", "mutual"]))
# Moving forward is likelier than ending, so random runs reach every stage.
forward: st.SearchStrategy[Command] = st.one_of(
    builds(StartPlan),
    builds(AchieveTransformation, summary=text),
    builds(StartGraduation, session_cadence_days=st.integers(5, 30)),
    builds(Graduate),
)
everything = st.one_of(commands, forward, forward)
# Ending is absorbing: keep it rare (1 in 40) so that runs also get far before it.
commands = st.integers(0, 39).flatmap(lambda n: ending if n == 0 else everything)
# Each step waits 0..40 days first, so the 90-day window is crossed both ways.
steps = st.lists(st.tuples(st.integers(0, 40), commands), min_size=10, max_size=80)


@dataclass
class Run:
    state: Engagement
    events: list[DomainEvent] = field(default_factory=list)
    times: list[datetime] = field(default_factory=list)
    refused: int = 0


def play(sequence: list[tuple[int, Command]]) -> Run:
    """Decide each command in turn; refused ones must change nothing."""
    run = Run(engagement.initial())
    moment = T0
    for days, command in [(0, OPEN), *sequence]:
        moment += timedelta(days=days)
        timed = command.model_copy(update={"at": moment})
        try:
            decided = list(engagement.decide(run.state, timed))
        except DomainError:
            run.refused += 1
            continue
        before = run.state
        for event in decided:
            after = engagement.evolve(run.state, event)
            if after.stage != run.state.stage:
                assert (run.state.stage, after.stage) in TRANSITIONS, (
                    f"{type(command).__name__}: {run.state.stage} -> {after.stage}"
                )
            run.state = after
            run.events.append(event)
            run.times.append(moment)
        check_rules(before, run.state, decided)
    return run


def check_rules(before: Engagement, after: Engagement, decided: list[DomainEvent]) -> None:
    names = [event.event_type for event in decided]
    detected = names.count("DeceptionPatternDetected")
    assert detected == (after.deception_pattern and not before.deception_pattern)
    if "SupervisionRecommended" in names and names[0] == "BoundaryViolated":
        assert names.count("SupervisionRecommended") == 1
    elif "SupervisionRecommended" in names:  # one per escalated concern, at most one a factor
        assert names[0] == "RelationshipCheckInRecorded"
        factors = [e.factor for e in decided if isinstance(e, SupervisionRecommended)]
        assert len(factors) == len(set(factors)) and set(factors) <= set(after.concerns.open)
    assert 0 <= after.trust_score <= 100


def envelopes(run: Run) -> list[Envelope]:
    return [
        Envelope(
            event_id=f"ev-{version}",
            event_type=event.event_type,
            schema_version=event.schema_version,
            stream_id="e-1",
            stream_version=version,
            occurred_at=format_time(moment),
            recorded_at=format_time(moment),
            producer="engagement",
            correlation_id="c",
            causation_id=None,
            actor=Actor(role="coach", id="coach-1"),
            data=event.model_dump(mode="json"),
            prev_hash="0" * 64,
            hash="0" * 64,
        )
        for version, (event, moment) in enumerate(zip(run.events, run.times, strict=True), 1)
    ]


@settings(max_examples=300, deadline=None)
@given(steps)
def test_random_commands_never_make_an_invalid_stage_transition_and_the_score_stays_in_range(
    sequence: list[tuple[int, Command]],
) -> None:
    run = play(sequence)
    assert run.state.stage is not None
    observe(f"ends in {run.state.stage}")
    assert 0 <= run.state.trust_score <= 100


@settings(max_examples=300, deadline=None)
@given(steps)
def test_folding_the_decided_events_again_gives_the_same_state(
    sequence: list[tuple[int, Command]],
) -> None:
    run = play(sequence)
    refolded = engagement.initial()
    for event in run.events:
        refolded = engagement.evolve(refolded, event)
    assert refolded == run.state


@settings(max_examples=200, deadline=None)
@given(steps)
def test_the_stage_and_trust_views_agree_with_the_domain(
    sequence: list[tuple[int, Command]],
) -> None:
    run = play(sequence)
    log = envelopes(run)
    stage = fold_stream(stage_view, log)
    scores = fold_stream(trust_view, log)
    bond = fold_stream(relationship_view, log)
    assert stage is not None and scores is not None and bond is not None
    state = run.state
    assert stage["stage"] == state.stage
    assert stage["stage_history"][-1]["stage"] == state.stage
    assert stage["session_cadence_days"] == state.session_cadence_days
    assert stage["open_violations"] == sum(1 for v in state.violations.values() if v.open)
    assert stage["homework"]["assigned"] == len(state.homework)
    assert (scores["confirmed"], scores["refuted"]) == (state.confirmed, state.refuted)
    assert (
        scores["score"]
        == state.trust_score
        == trust.score(state.confirmed, state.refuted, state.open_client_violations)
    )
    assert scores["deception_pattern"] == state.deception_pattern
    awaiting = sum(1 for h in state.homework.values() if h.claimed and h.outcome is None)
    assert scores["awaiting_verification"] == stage["homework"]["awaiting_verification"] == awaiting
    assert bond["concerns"] == [factor for factor in FACTORS if factor in state.concerns.open]
