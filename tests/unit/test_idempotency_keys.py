"""What the idempotency table keeps of a request: a hash under the server's key that confirms
nothing without it, and a scope that always fits the table's index."""

from __future__ import annotations

import hashlib
import importlib
import re

import pytest

from rapport.registry import SERVICES
from shared.http.routes import idempotency_for
from shared.http.schemas import ID_LENGTH
from shared.model.envelope import canonical_json
from shared.model.errors import InvalidCommand
from shared.security.crypto import decode_master_key, generate_master_key
from shared.security.tokens import ROLES, SUB_MAX_LENGTH, Principal
from shared.usecases.idempotency import (
    IDEMPOTENCY_KEY_MAX_LENGTH,
    KEYED_HASH_PREFIX,
    IdempotencyKeys,
)

# PostgreSQL's largest B-tree entry on 8 kB pages (a third of a page, less its headers).
INDEX_ROW_BYTES = 2704
REQUEST = {"recipient": "coach:c-1", "url": "https://example.org/hook", "secret": "s3cret"}


def keys() -> IdempotencyKeys:
    return IdempotencyKeys(decode_master_key(generate_master_key()))


def test_the_stored_hash_is_keyed_and_not_the_plain_hash_of_the_body() -> None:
    key = keys().of("coach:c-1:webhooks", "k-1", REQUEST)
    assert key is not None
    plain = hashlib.sha256(canonical_json(REQUEST)).hexdigest()
    assert key.request_hash.startswith(KEYED_HASH_PREFIX)
    assert plain not in key.request_hash
    assert key.legacy_hash == plain  # what rows from before keyed hashes hold


def test_the_hash_depends_on_the_server_key_the_scope_and_the_key() -> None:
    server = keys()
    first = server.of("coach:c-1:webhooks", "k-1", REQUEST)
    again = server.of("coach:c-1:webhooks", "k-1", REQUEST)
    assert first is not None and again is not None
    assert first.request_hash == again.request_hash
    others = [
        keys().of("coach:c-1:webhooks", "k-1", REQUEST),
        server.of("coach:c-1:webhooks", "k-2", REQUEST),
        server.of("coach:c-2:webhooks", "k-1", REQUEST),
        server.of("coach:c-1:webhooks", "k-1", {**REQUEST, "secret": "other"}),
    ]
    assert all(other is not None for other in others)
    hashes = {other.request_hash for other in others if other is not None}
    assert first.request_hash not in hashes and len(hashes) == len(others)


@pytest.mark.parametrize("value", ["", "k" * (IDEMPOTENCY_KEY_MAX_LENGTH + 1)])
def test_a_key_that_is_empty_or_too_long_is_refused(value: str) -> None:
    with pytest.raises(InvalidCommand):
        keys().of("coach:c-1:webhooks", value, REQUEST)


def test_no_key_is_no_idempotency() -> None:
    assert keys().of("coach:c-1:webhooks", None, REQUEST) is None


@pytest.mark.parametrize("service", SERVICES)
def test_the_longest_scope_of_every_command_route_fits_an_index_row(service: str) -> None:
    routes = importlib.import_module(f"services.{service}.entrypoints.http").COMMAND_ROUTES
    widest = "\U0010fffd" * SUB_MAX_LENGTH  # four bytes each in UTF-8
    longest_key = "\xff" * IDEMPOTENCY_KEY_MAX_LENGTH  # a header byte, two in UTF-8
    for role in ROLES:
        for route in routes:
            target = re.sub(r"\{\w+\}", "i" * ID_LENGTH, route.path.removeprefix("/v1/"))
            key = idempotency_for(keys(), Principal(role, widest), target, longest_key, {})
            assert key is not None
            size = len(key.scope.encode()) + len(key.key.encode())
            assert size + 64 < INDEX_ROW_BYTES, (route.path, size)
