"""The engagement's reaction to a client's erasure, as pure rules and folds."""

from __future__ import annotations

from dataclasses import replace

from services.engagement.domain import engagement
from services.engagement.domain.commands import EraseClientData
from services.engagement.projections import stage_view, trust_view
from shared.model.envelope import GENESIS_HASH, Actor, Envelope, format_time, seal
from tests.unit.test_engagement_domain import T0, apply, homework, opened, run, types, verify


def erase(client_id: str = "client-1") -> EraseClientData:
    return EraseClientData(client_id=client_id, at=T0)


def test_an_opened_engagement_records_its_clients_erasure_once() -> None:
    state, events = apply(opened(), erase())
    assert types(events) == ["ClientDataErased"] and state.erased
    assert list(engagement.decide(state, erase())) == []


def test_an_erasure_changes_no_stage_count_or_score() -> None:
    before, _ = run(opened(), *homework("h1"), verify("h1", "refuted"))
    after, _ = apply(before, erase())
    assert replace(after, erased=False) == before
    assert after.trust_score == before.trust_score


def test_an_engagement_never_opened_or_of_another_client_records_nothing() -> None:
    assert list(engagement.decide(engagement.initial(), erase())) == []
    assert list(engagement.decide(opened(), erase("client-2"))) == []


def envelope(event_type: str, version: int, data: dict[str, object]) -> Envelope:
    return seal(
        {
            "event_id": f"00000000-0000-0000-0000-{version:012d}",
            "event_type": event_type,
            "schema_version": 1,
            "stream_id": "e-1",
            "stream_version": version,
            "occurred_at": format_time(T0),
            "recorded_at": format_time(T0),
            "producer": "engagement",
            "correlation_id": "c",
            "causation_id": None,
            "actor": Actor(role="system", id="engagement").model_dump(),
            "data": data,
            "prev_hash": GENESIS_HASH,
        }
    )


def test_the_views_say_erased_and_keep_every_number() -> None:
    opening = envelope(
        "EngagementOpened",
        1,
        {
            "engagement_id": "e-1",
            "client_id": "client-1",
            "coach_id": "coach-1",
            "supervisor_id": None,
            "session_cadence_days": 7,
            "goals": [],
            "baselines": [],
            "opened_at": format_time(T0),
        },
    )
    erased = envelope("ClientDataErased", 2, {"client_id": "client-1", "erased_at": "x"})
    for projection in (stage_view, trust_view):
        before = projection.fold(None, opening)
        after = projection.fold(before, erased)
        assert before is not None and after is not None
        assert after == {**before, "erased": True}
