"""New ids are random version-4 UUIDs in their canonical spelling; a sealed envelope keeps the
JSON its hash covers."""

from __future__ import annotations

import uuid

import orjson

from shared.model.envelope import GENESIS_HASH, Envelope, canonical_json, new_id, seal


def test_a_new_id_is_a_random_version_4_uuid_spelt_canonically() -> None:
    ids = [new_id() for _ in range(2000)]
    for value in ids:
        parsed = uuid.UUID(value)
        assert str(parsed) == value
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
    assert len(set(ids)) == len(ids)


def test_a_sealed_envelope_answers_the_json_its_hash_was_computed_over() -> None:
    sealed = seal(
        {
            "event_id": new_id(),
            "event_type": "Pinged",
            "schema_version": 1,
            "stream_id": "s-1",
            "stream_version": 1,
            "occurred_at": "2026-12-01T10:00:00.000000Z",
            "recorded_at": "2026-12-01T10:00:00.000000Z",
            "producer": "test",
            "correlation_id": "c-1",
            "causation_id": None,
            "actor": {"role": "admin", "id": "a-1"},
            "data": {"n": 1, "text": "é"},
            "prev_hash": GENESIS_HASH,
        }
    )
    assert sealed.to_json() == canonical_json(sealed.model_dump(mode="json"))
    parsed = Envelope.model_validate_json(sealed.to_json())
    assert parsed.to_json() == sealed.to_json()
    assert parsed.is_intact()
    changed = sealed.model_copy(update={"data": {"n": 2}})
    assert orjson.loads(changed.to_json())["data"] == {"n": 2}  # spelt afresh, not kept
