"""The relationship itself (contract section 7), as pure rules: check-ins, concerns that open,
close and escalate, health, averages and gaps, and the two views folded from the log."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.engagement.domain import engagement, relationship
from services.engagement.domain.commands import (
    AchieveTransformation,
    Graduate,
    OpenEngagement,
    RecordRelationshipCheckIn,
    StartGraduation,
    StartPlan,
    TerminateEngagement,
)
from services.engagement.domain.events import FACTORS, SupervisionRecommended, registry
from services.engagement.domain.state import Engagement
from services.engagement.projections.coach_relationship import coach_relationship
from services.engagement.projections.coach_relationship import public as public_rollup
from services.engagement.projections.relationship_view import public as public_view
from services.engagement.projections.relationship_view import relationship_view
from shared.model.envelope import Actor, Envelope, format_time
from shared.model.errors import ForbiddenByState, InvalidCommand
from shared.model.events import Command, DomainEvent
from shared.model.projections import Document, fold_stream

T0 = datetime(2030, 1, 1, 9, tzinfo=UTC)
CONCERN_EVENTS = {"RelationshipConcernRaised", "RelationshipConcernResolved"}


def opened(engagement_id: str = "e-1", coach_id: str = "coach-1") -> OpenEngagement:
    return OpenEngagement(
        engagement_id=engagement_id,
        client_id=f"client-of-{engagement_id}",
        coach_id=coach_id,
        supervisor_id="sup-1",
        session_cadence_days=7,
        goals=[],
        baselines=[],
        at=T0,
    )


def apply(state: Engagement, command: Command) -> tuple[Engagement, list[DomainEvent]]:
    events = list(engagement.decide(state, command))
    for event in events:
        state = engagement.evolve(state, event)
    return state, events


def working(engagement_id: str = "e-1", coach_id: str = "coach-1") -> Engagement:
    state, _ = apply(engagement.initial(), opened(engagement_id, coach_id))
    state, _ = apply(state, StartPlan(at=T0))
    return state


def uniform(rating: int, **others: int) -> dict[str, int]:
    return {**dict.fromkeys(FACTORS, rating), **others}


def check_in(
    ratings: dict[str, int], rater: Any = "client", *, n: int = 0, comment: str | None = None
) -> RecordRelationshipCheckIn:
    return RecordRelationshipCheckIn(
        checkin_id=f"c-{n}",
        rater=rater,
        ratings=ratings,  # type: ignore[arg-type]
        comment=comment,
        at=T0 + timedelta(days=n),
    )


def play(
    state: Engagement, *checkins: RecordRelationshipCheckIn
) -> tuple[Engagement, list[list[DomainEvent]]]:
    decided = []
    for command in checkins:
        state, events = apply(state, command)
        decided.append(events)
    return state, decided


def summary(events: Sequence[DomainEvent]) -> list[tuple[str, str | None]]:
    """(event type, factor or reason) of what a check-in decided besides the check-in itself."""
    return [
        (event.event_type, getattr(event, "reason", None) or getattr(event, "factor", None))
        for event in events[1:]
    ]


# ----------------------------------------------------------------------------- check-ins


def test_a_check_in_records_the_rater_the_six_ratings_in_the_contracts_order_and_the_coach() -> (
    None
):
    ratings = dict(reversed(list(uniform(4, empathy=2).items())))
    _, events = apply(working(), check_in(ratings, "coach", comment="we work well"))
    [recorded] = events
    dumped = recorded.model_dump()
    assert recorded.event_type == "RelationshipCheckInRecorded"
    assert list(dumped["ratings"]) == list(FACTORS)
    assert dumped["ratings"]["empathy"] == 2
    assert (dumped["rater"], dumped["comment"], dumped["coach_id"]) == (
        "coach",
        "we work well",
        "coach-1",
    )


@pytest.mark.parametrize("stage_commands", [[], [TerminateEngagement(reason="mutual", at=T0)]])
def test_a_check_in_before_the_plan_or_after_termination_is_refused(
    stage_commands: list[Command],
) -> None:
    state, _ = apply(engagement.initial(), opened())
    for command in stage_commands:
        state, _ = apply(state, command)
    with pytest.raises(ForbiddenByState):
        engagement.decide(state, check_in(uniform(3)))


def test_check_ins_are_accepted_in_working_the_plan_transformation_and_graduation_only() -> None:
    state = working()
    accepted = []
    for command in (
        None,
        AchieveTransformation(summary="s", at=T0),
        StartGraduation(session_cadence_days=30, at=T0),
        Graduate(at=T0),
    ):
        if command is not None:
            state, _ = apply(state, command)
        try:
            engagement.decide(state, check_in(uniform(3)))
            accepted.append(state.stage)
        except ForbiddenByState:
            pass
    assert accepted == ["working_the_plan", "transformation", "graduation"]


def test_an_admins_check_in_that_names_no_rater_is_invalid() -> None:
    with pytest.raises(InvalidCommand) as refused:
        engagement.decide(working(), check_in(uniform(3), None))
    assert refused.value.field == "rater"


def test_a_check_in_missing_a_factor_is_invalid() -> None:
    ratings = uniform(3)
    del ratings["boundaries"]
    with pytest.raises(InvalidCommand):
        engagement.decide(working(), check_in(ratings))


# ----------------------------------------------------------------------------- concerns


def test_two_consecutive_low_client_ratings_of_a_factor_open_a_concern_on_it() -> None:
    _, decided = play(
        working(),
        check_in(uniform(4, empathy=2), n=1),
        check_in(uniform(4, empathy=1), n=2),
    )
    assert summary(decided[0]) == []
    assert summary(decided[1]) == [("RelationshipConcernRaised", "empathy")]


def test_a_rating_above_2_in_between_breaks_the_run() -> None:
    _, decided = play(
        working(),
        check_in(uniform(4, empathy=2), n=1),
        check_in(uniform(4, empathy=3), n=2),
        check_in(uniform(4, empathy=2), n=3),
    )
    assert all(summary(events) == [] for events in decided)


def test_coach_check_ins_never_open_a_concern_nor_break_the_clients_run() -> None:
    _, decided = play(
        working(),
        check_in(uniform(1), "coach", n=1),
        check_in(uniform(1), "coach", n=2),
        check_in(uniform(2, collaboration=5), "client", n=3),
        check_in(uniform(5), "coach", n=4),
        check_in(uniform(2, collaboration=5), "client", n=5),
    )
    assert [summary(events) for events in decided[:4]] == [[], [], [], []]
    raised = {factor for _, factor in summary(decided[4])}
    assert raised == set(FACTORS) - {"collaboration"}


def test_the_next_client_rating_of_4_or_more_closes_the_concern_and_a_3_keeps_it_open() -> None:
    state, decided = play(
        working(),
        check_in(uniform(5, non_judgment=2), n=1),
        check_in(uniform(5, non_judgment=2), n=2),
        check_in(uniform(5, non_judgment=3), n=3),
    )
    assert [summary(events) for events in decided] == [
        [],
        [("RelationshipConcernRaised", "non_judgment")],
        [],
    ]
    assert dict(state.concerns.open) == {"non_judgment": False}
    state, [closed] = play(state, check_in(uniform(5, non_judgment=4), n=4))
    assert summary(closed) == [("RelationshipConcernResolved", "non_judgment")]
    assert dict(state.concerns.open) == {}


def test_a_factor_has_at_most_one_open_concern_and_supervision_comes_once_per_concern() -> None:
    low = [check_in(uniform(5, active_listening=1), n=n) for n in range(1, 6)]
    state, decided = play(working(), *low)
    assert [summary(events) for events in decided] == [
        [],
        [("RelationshipConcernRaised", "active_listening")],
        [("SupervisionRecommended", "relationship:active_listening")],
        [],
        [],
    ]
    recommended = decided[2][1]
    assert isinstance(recommended, SupervisionRecommended)
    assert recommended.model_dump() == {
        "party": "coach",
        "reason": "relationship:active_listening",
        "violation_id": None,
        "violations_in_window": None,
        "checkin_id": "c-3",
        "factor": "active_listening",
        "supervisor_id": "sup-1",
    }
    # resolved, then a new concern on the same factor escalates again
    again = [check_in(uniform(5), n=6)] + [
        check_in(uniform(5, active_listening=2), n=n) for n in range(7, 10)
    ]
    _, decided = play(state, *again)
    assert [summary(events) for events in decided] == [
        [("RelationshipConcernResolved", "active_listening")],
        [],
        [("RelationshipConcernRaised", "active_listening")],
        [("SupervisionRecommended", "relationship:active_listening")],
    ]


def test_a_concern_kept_open_by_a_3_escalates_at_a_new_third_consecutive_low_rating() -> None:
    ratings = [2, 2, 3, 2, 2, 2]
    _, decided = play(
        working(), *(check_in(uniform(5, boundaries=r), n=n) for n, r in enumerate(ratings))
    )
    assert [summary(events) for events in decided] == [
        [],
        [("RelationshipConcernRaised", "boundaries")],
        [],
        [],
        [],  # still open: no second concern
        [("SupervisionRecommended", "relationship:boundaries")],
    ]


# ----------------------------------------------------------------------------- figures


@pytest.mark.parametrize(
    ("ratings", "expected"),
    [
        (uniform(5), 100),
        (uniform(1), 0),
        (uniform(3), 50),
        ({**uniform(3), "empathy": 4}, 54),  # mean 3.1667: 54.17 + 0.5
        ({**uniform(1), "empathy": 4}, 13),  # mean 1.5: 12.5 + 0.5 = 13 (half up)
        (dict(zip(FACTORS, [1, 2, 3, 4, 5, 5], strict=True)), 58),
    ],
)
def test_health_follows_the_contract_formula(ratings: dict[str, int], expected: int) -> None:
    assert relationship.health(ratings) == expected  # type: ignore[arg-type]


def test_health_equals_the_contract_formula_for_every_sum_of_six_ratings() -> None:
    for total in range(6, 31):
        ratings = dict(zip(FACTORS, spread(total), strict=True))
        mean = Fraction(total, 6)
        assert relationship.health(ratings) == math.floor(100 * (mean - 1) / 4 + Fraction(1, 2))


def spread(total: int) -> list[int]:
    """Six ratings 1..5 summing to `total`."""
    ratings = [1] * 6
    for index in range(total - 6):
        ratings[index % 6] += 1
    return ratings


@given(st.integers(0, 10_000), st.integers(1, 500))
def test_two_decimal_means_round_half_up_exactly(numerator: int, denominator: int) -> None:
    expected = (Decimal(numerator) / Decimal(denominator)).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP
    )
    exact = Fraction(numerator, denominator)
    halfway = (exact * 100).denominator == 2
    if halfway:  # Decimal division is exact here, so the two rules agree
        assert relationship.rounded(numerator, denominator) == float(expected)
    assert relationship.rounded(numerator, denominator) == math.floor(exact * 100 + 0.5) / 100


def test_means_of_five_eighths_and_two_thirds_round_half_up() -> None:
    assert relationship.rounded(5, 8) == 0.63  # banker's rounding would say 0.62
    assert relationship.rounded(2, 3) == 0.67
    assert relationship.rounded(7, 3) == 2.33


def test_gaps_are_coach_minus_client_and_only_where_both_rated() -> None:
    coach = uniform(5, empathy=3)
    client = uniform(2)
    assert relationship.gaps(coach, None) == {} == relationship.gaps(None, client)  # type: ignore[arg-type]
    assert relationship.gaps(coach, client) == {**dict.fromkeys(FACTORS, 3), "empathy": 1}  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- properties

ratings_strategy = st.fixed_dictionaries({factor: st.integers(1, 5) for factor in FACTORS})
# Low ratings are likelier than uniform draws would make them, so concerns open and escalate.
skewed = st.fixed_dictionaries(
    {factor: st.sampled_from([1, 2, 2, 2, 3, 4, 5]) for factor in FACTORS}
)
checkins_strategy = st.lists(
    st.tuples(st.sampled_from(["client", "client", "coach"]), skewed), min_size=1, max_size=40
)


@dataclass
class Run:
    state: Engagement
    decided: list[tuple[str, dict[str, int], list[DomainEvent]]] = field(default_factory=list)
    log: list[DomainEvent] = field(default_factory=list)


def run_checkins(sequence: list[tuple[str, dict[str, int]]], engagement_id: str = "e-1") -> Run:
    run = Run(engagement.initial())
    for command in (opened(engagement_id), StartPlan(at=T0)):
        run.state, events = apply(run.state, command)
        run.log.extend(events)
    for n, (rater, ratings) in enumerate(sequence):
        run.state, events = apply(run.state, check_in(ratings, rater, n=n))
        run.decided.append((rater, ratings, events))
        run.log.extend(events)
    return run


@settings(max_examples=300, deadline=None)
@given(checkins_strategy)
def test_concerns_open_close_and_escalate_exactly_as_the_contract_says(
    sequence: list[tuple[str, dict[str, int]]],
) -> None:
    run = run_checkins(sequence)
    for factor in FACTORS:
        client_ratings: list[int] = []
        is_open = supervised = False
        for rater, ratings, events in run.decided:
            mine = [e for e in events[1:] if getattr(e, "factor", None) == factor]
            kinds = [e.event_type for e in mine]
            if rater == "coach":
                assert events[1:] == []  # a coach check-in only records itself
                continue
            client_ratings.append(ratings[factor])
            last_two_low = len(client_ratings) >= 2 and max(client_ratings[-2:]) <= 2
            last_three_low = len(client_ratings) >= 3 and max(client_ratings[-3:]) <= 2
            if not is_open:
                expected = ["RelationshipConcernRaised"] if last_two_low else []
            elif ratings[factor] >= 4:
                expected = ["RelationshipConcernResolved"]
            elif last_three_low and not supervised:
                expected = ["SupervisionRecommended"]
            else:
                expected = []
            assert kinds == expected, (factor, client_ratings, kinds)
            if kinds == ["RelationshipConcernRaised"]:
                is_open, supervised = True, False
            elif kinds == ["RelationshipConcernResolved"]:
                is_open = False
            elif kinds == ["SupervisionRecommended"]:
                supervised = True
        assert (factor in run.state.concerns.open) == is_open


def envelopes(log: Sequence[DomainEvent], stream_id: str = "e-1") -> list[Envelope]:
    return [
        Envelope(
            event_id=f"{stream_id}-{version}",
            event_type=event.event_type,
            schema_version=event.schema_version,
            stream_id=stream_id,
            stream_version=version,
            occurred_at=format_time(T0 + timedelta(minutes=version)),
            recorded_at=format_time(T0 + timedelta(minutes=version)),
            producer="engagement",
            correlation_id="c",
            causation_id=None,
            actor=Actor(role="coach", id="coach-1"),
            data=event.model_dump(mode="json"),
            prev_hash="0" * 64,
            hash="0" * 64,
        )
        for version, event in enumerate(log, 1)
    ]


def mean(values: Sequence[int]) -> float:
    return float(
        (Decimal(sum(values)) / Decimal(len(values))).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP
        )
    )


@settings(max_examples=200, deadline=None)
@given(checkins_strategy)
def test_the_relationship_view_agrees_with_the_domain_and_the_contracts_figures(
    sequence: list[tuple[str, dict[str, int]]],
) -> None:
    run = run_checkins(sequence)
    log = envelopes(run.log)
    document = fold_stream(relationship_view, log)
    assert document is not None
    view = public_view(document)
    by_rater = {
        rater: [ratings for who, ratings in sequence if who == rater]
        for rater in ("client", "coach")
    }
    assert view["checkins"] == {rater: len(r) for rater, r in by_rater.items()}
    assert view["latest"] == {rater: (r[-1] if r else None) for rater, r in by_rater.items()}
    assert view["average"] == {
        rater: {factor: mean([x[factor] for x in r[-3:]]) for factor in FACTORS}
        for rater, r in by_rater.items()
        if r
    }
    client, coach = by_rater["client"], by_rater["coach"]
    if client and coach:
        assert view["gaps"] == {f: coach[-1][f] - client[-1][f] for f in FACTORS}
    else:
        assert view["gaps"] == {}
    assert view["concerns"] == [f for f in FACTORS if f in run.state.concerns.open]
    if client:
        exact = Fraction(sum(client[-1].values()), 6)
        assert view["health"] == math.floor(100 * (exact - 1) / 4 + Fraction(1, 2))
        assert 0 <= view["health"] <= 100
    else:
        assert view["health"] is None
    assert "recent" not in view


def test_every_opened_engagement_has_a_relationship_view_with_nothing_in_it() -> None:
    log = envelopes(engagement.decide(engagement.initial(), opened()))
    document = fold_stream(relationship_view, log)
    assert document is not None
    assert public_view(document) == {
        "engagement_id": "e-1",
        "client_id": "client-of-e-1",
        "coach_id": "coach-1",
        "supervisor_id": "sup-1",
        "checkins": {"client": 0, "coach": 0},
        "latest": {"client": None, "coach": None},
        "average": {},
        "gaps": {},
        "concerns": [],
        "health": None,
        "comments": {"client": None, "coach": None},
    }


@settings(max_examples=100, deadline=None)
@given(st.lists(checkins_strategy, min_size=1, max_size=4), st.randoms(use_true_random=False))
def test_the_coach_roll_up_is_the_fold_of_each_engagements_latest_client_ratings_and_concerns(
    sequences: list[list[tuple[str, dict[str, int]]]], shuffler: Any
) -> None:
    runs = [run_checkins(sequence, f"e-{n}") for n, sequence in enumerate(sequences)]
    streams = [envelopes(run.log, f"e-{n}") for n, run in enumerate(runs)]
    # the engagements' events interleave in the global log; each stream keeps its own order
    interleaved: list[Envelope] = []
    cursors = [0] * len(streams)
    while any(cursor < len(stream) for cursor, stream in zip(cursors, streams, strict=True)):
        pending = [n for n, stream in enumerate(streams) if cursors[n] < len(stream)]
        chosen = shuffler.choice(pending)
        interleaved.append(streams[chosen][cursors[chosen]])
        cursors[chosen] += 1
    rollup: Document | None = None
    for envelope in interleaved:
        if coach_relationship.key(envelope) == "coach-1":
            rollup = coach_relationship.apply(rollup, envelope)
    assert rollup is not None
    latest = [
        [ratings for who, ratings in sequence if who == "client"][-1]
        for sequence in sequences
        if any(who == "client" for who, _ in sequence)
    ]
    assert public_rollup(rollup) == {
        "coach_id": "coach-1",
        "engagements": len(latest),
        "average": (
            {factor: mean([ratings[factor] for ratings in latest]) for factor in FACTORS}
            if latest
            else {}
        ),
        "open_concerns": sum(len(run.state.concerns.open) for run in runs),
        "version": sum(1 for e in interleaved if coach_relationship.key(e) is not None),
    }
    assert rollup["supervisors"] == ["sup-1"]


def test_a_stored_version_1_supervision_recommendation_reads_as_version_2() -> None:
    stored = envelopes(
        [
            SupervisionRecommended(
                party="client",
                reason="persistent_violations",
                violation_id="v-3",
                violations_in_window=3,
                supervisor_id=None,
            )
        ]
    )[0]
    data = {k: v for k, v in stored.data.items() if k not in ("checkin_id", "factor")}
    old = stored.model_copy(update={"schema_version": 1, "data": data})
    loaded = registry.load(old)
    assert isinstance(loaded, SupervisionRecommended)
    assert (loaded.violation_id, loaded.checkin_id, loaded.factor) == ("v-3", None, None)
    assert registry.upcast_envelope(old).schema_version == 2
