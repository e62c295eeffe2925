"""The chain verifier's pure core: every way a stored log can be broken is named."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from shared.model.envelope import GENESIS_HASH, canonical_json, seal
from shared.reads.audit import ChainVerifier
from shared.storage.bulk import StoredRow


def chain(stream_id: str, count: int) -> list[StoredRow]:
    rows = []
    prev = GENESIS_HASH
    for version in range(1, count + 1):
        envelope = seal(
            {
                "event_id": f"00000000-0000-0000-0000-{version:012d}",
                "event_type": "Pinged",
                "schema_version": 1,
                "stream_id": stream_id,
                "stream_version": version,
                "occurred_at": "2025-01-01T00:00:00.000000Z",
                "recorded_at": "2025-01-01T00:00:00.000000Z",
                "producer": "test",
                "correlation_id": "c",
                "causation_id": None,
                "actor": {"role": "admin", "id": "a"},
                "data": {"n": version},
                "prev_hash": prev,
            }
        )
        prev = envelope.hash
        rows.append(
            StoredRow(
                stream_id=stream_id,
                stream_version=version,
                event_id=envelope.event_id,
                event_type=envelope.event_type,
                schema_version=1,
                hash=envelope.hash,
                envelope=envelope.to_json().decode(),
            )
        )
    return rows


def first_problem(rows: list[StoredRow]) -> Any:
    verifier = ChainVerifier("svc")
    for row in rows:
        bad = verifier.feed(row)
        if bad is not None:
            return bad
    return verifier


def test_an_untouched_log_of_several_streams_verifies_and_is_counted() -> None:
    verifier = first_problem(chain("a", 3) + chain("b", 2))
    assert isinstance(verifier, ChainVerifier)
    assert (verifier.streams, verifier.events) == (2, 5)


def test_a_changed_byte_in_the_data_is_a_hash_mismatch_at_that_version() -> None:
    rows = chain("a", 3)
    rows[1] = replace(rows[1], envelope=rows[1].envelope.replace('"n":2', '"n":7'))
    bad = first_problem(rows)
    assert (bad.stream_id, bad.stream_version) == ("a", 2)
    assert bad.reason.startswith("hash mismatch")
    assert "service=svc stream=a version=2" in str(bad)


def test_a_missing_version_is_a_gap() -> None:
    rows = chain("a", 3)
    bad = first_problem([rows[0], rows[2]])
    assert bad.stream_version == 3
    assert "expected version 2" in bad.reason


def test_a_stream_that_does_not_start_at_version_one_is_a_gap() -> None:
    bad = first_problem(chain("a", 2)[1:])
    assert "expected version 1" in bad.reason


def test_a_resealed_event_breaks_the_link_from_its_successor() -> None:
    rows = chain("a", 3)
    body = json.loads(rows[1].envelope)
    body["data"] = {"n": 99}
    del body["hash"]
    forged = seal(body)
    rows[1] = replace(rows[1], envelope=forged.to_json().decode(), hash=forged.hash)
    bad = first_problem(rows)
    assert bad.stream_version == 3
    assert bad.reason.startswith("broken link")


def test_an_envelope_that_is_not_json_is_named() -> None:
    rows = chain("a", 1)
    rows[0] = replace(rows[0], envelope=rows[0].envelope[:-1])
    assert "not valid JSON" in first_problem(rows).reason


def test_an_envelope_missing_a_contract_field_is_named() -> None:
    rows = chain("a", 1)
    body = json.loads(rows[0].envelope)
    del body["producer"]
    rows[0] = replace(rows[0], envelope=canonical_json(body).decode())
    assert "contract's shape" in first_problem(rows).reason


def test_a_row_whose_columns_disagree_with_its_envelope_is_named() -> None:
    rows = chain("a", 2)
    rows[1] = replace(rows[1], event_type="Ponged")
    bad = first_problem(rows)
    assert bad.stream_version == 2
    assert "column event_type" in bad.reason
