"""New ids are random version-4 UUIDs in their canonical spelling."""

from __future__ import annotations

import uuid

from shared.envelope import new_id


def test_a_new_id_is_a_random_version_4_uuid_spelt_canonically() -> None:
    ids = [new_id() for _ in range(2000)]
    for value in ids:
        parsed = uuid.UUID(value)
        assert str(parsed) == value
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
    assert len(set(ids)) == len(ids)
