"""A replay's plan: the pass that cannot be split first, then segments enough for every worker
to finish close to the others; the log's events are counted once. And its fold: an envelope
upcast once per registry, a row that does not parse noted for every projection."""

from __future__ import annotations

from typing import Any

from services.engagement.projections import PROJECTIONS
from shared.model.envelope import GENESIS_HASH, Envelope, new_id, seal
from shared.model.events import DomainEvent, EventRegistry
from shared.model.projections import Document, Projection
from shared.reads.rebuild import SEGMENTS_PER_WORKER, _counts_the_log, _fold, _folds, plan_passes


def test_the_spanning_pass_comes_first_and_segments_are_shared_out_finely() -> None:
    passes = plan_passes(PROJECTIONS, streams=10_000, workers=2)
    first, *segments = passes
    assert first.segment is None
    assert all(not p.partitioned for p in first.projections)
    assert len(passes) == SEGMENTS_PER_WORKER * 2  # the whole-log pass takes a segment's place
    assert sorted(s.segment.index for s in segments if s.segment) == list(range(len(segments)))
    assert [_counts_the_log(p, passes) for p in passes] == [False] + [True] * len(segments)


def test_a_single_worker_folds_the_partitioned_projections_in_one_pass() -> None:
    passes = plan_passes(PROJECTIONS, streams=10_000, workers=1)
    assert [p.segment for p in passes] == [None, None]


def test_a_log_too_large_for_memory_gets_more_segments() -> None:
    partitioned = [p for p in PROJECTIONS if p.partitioned]
    passes = plan_passes(partitioned, streams=1_000_000, workers=2)
    assert len(passes) == 50  # 20,000 streams' documents per pass at most
    assert all(_counts_the_log(p, passes) for p in passes)


class Noted(DomainEvent):
    event_type = "Noted"
    schema_version = 2

    text: str


def test_a_replay_upcasts_an_envelope_once_for_the_projections_that_share_a_registry() -> None:
    registry = EventRegistry([Noted])
    upcasts: list[int] = []

    @registry.upcaster("Noted", 1)
    def renamed(data: dict[str, Any]) -> dict[str, Any]:
        upcasts.append(1)
        return {"text": data["note"]}

    def fold(document: Document | None, envelope: Envelope) -> Document:
        return {"texts": [*(document or {}).get("texts", []), envelope.data["text"]]}

    projections = [
        Projection(name, key=lambda e: e.stream_id, fold=fold, registry=registry)
        for name in ("first", "second")
    ]
    stored = seal(
        {
            "event_id": new_id(),
            "event_type": "Noted",
            "schema_version": 1,
            "stream_id": "s",
            "stream_version": 1,
            "occurred_at": "2026-01-01T00:00:00.000000Z",
            "recorded_at": "2026-01-01T00:00:00.000000Z",
            "producer": "unit",
            "correlation_id": "c",
            "causation_id": None,
            "actor": {"role": "system", "id": "rapport"},
            "data": {"note": "hello"},
            "prev_hash": GENESIS_HASH,
        }
    )
    documents: dict[tuple[str, str], Document] = {}
    versions: dict[tuple[str, str], int] = {}
    failed: list[tuple[int, str, str]] = []

    _fold(7, stored.to_json().decode(), _folds(projections), documents, versions, failed)

    assert upcasts == [1]
    assert documents == {
        ("first", "s"): {"texts": ["hello"]},
        ("second", "s"): {"texts": ["hello"]},
    }
    assert versions == {("first", "s"): 1, ("second", "s"): 1}
    assert failed == []


def test_a_row_that_is_no_envelope_is_noted_for_every_projection_and_folds_nothing() -> None:
    documents: dict[tuple[str, str], Document] = {}
    failed: list[tuple[int, str, str]] = []

    _fold(9, '{"not": "an envelope"}', _folds(PROJECTIONS), documents, {}, failed)

    assert documents == {}
    assert [(position, name) for position, name, _ in failed] == [(9, p.name) for p in PROJECTIONS]
    assert all("ValidationError" in why for _, _, why in failed)
