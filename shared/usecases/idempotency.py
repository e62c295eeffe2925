"""Idempotency keys: what is kept of a request sent with an `Idempotency-Key`, for how long,
and how a retry is recognised (the records themselves and their pruner are storage's:
`shared.storage.idempotency`).

A record is kept for a retention (`RAPPORT_IDEMPOTENCY_RETENTION`, 24 h by default, as payment
APIs keep theirs); a key sent again after that is a new request. Every service's background
work prunes expired records; several instances prune at once without waiting on each other
(each deletes a batch the others have not locked).

Of the request, the table holds `v2:` and an HMAC-SHA256 of its scope, key and canonical JSON
under a key derived from the master key (HKDF-SHA256, for this purpose only). A reader of the
table (a backup, a replica, an operator) cannot confirm a guessed body, a client's name or a
webhook secret say, and two records of the same body do not even look alike. Records written
before hold a plain SHA-256 of the body: a retry of one is still recognised by that form
(`IdempotencyKey.matches`) until it expires.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shared.model.envelope import canonical_json
from shared.model.errors import InvalidCommand

__all__ = [
    "IDEMPOTENCY_KEY_MAX_LENGTH",
    "KEYED_HASH_PREFIX",
    "RETENTION",
    "IdempotencyKey",
    "IdempotencyKeys",
    "IdempotencyRace",
]

IDEMPOTENCY_KEY_MAX_LENGTH = 200
RETENTION = timedelta(hours=24)
KEYED_HASH_PREFIX = "v2:"
"""How a stored request hash made under the server's key begins."""
# HKDF's `info`: the derived key serves this one purpose, whatever else the master key does.
_PURPOSE = b"rapport idempotency request hash v2"


@dataclass(frozen=True)
class IdempotencyKey:
    """A client's `Idempotency-Key`, scoped to the caller and route, with the request's keyed
    hash, how long its first answer is kept (`retention`), and the plain SHA-256 of the
    request that records written before keyed hashes hold (`legacy_hash`)."""

    scope: str
    key: str
    request_hash: str
    legacy_hash: str
    retention: timedelta

    def matches(self, stored: str) -> bool:
        """Whether a record's hash is this request's, by the record's version: a keyed hash
        (`v2:<hmac>`), or a plain SHA-256 of the body from before them."""
        if stored.startswith(KEYED_HASH_PREFIX):
            return hmac.compare_digest(stored, self.request_hash)
        return hmac.compare_digest(stored, self.legacy_hash)

    def differs(self) -> InvalidCommand:
        """The refusal of a key already used with another request."""
        return InvalidCommand(
            "this Idempotency-Key was already used with a different request",
            field="Idempotency-Key",
        )


class IdempotencyRace(Exception):
    """Two requests with the same `Idempotency-Key` ran at once and the other one committed
    first: nothing was written; running again answers its reply."""

    def __init__(self, key: IdempotencyKey) -> None:
        super().__init__(f"Idempotency-Key {key.key!r} of {key.scope} answered concurrently")
        self.key = key


class IdempotencyKeys:
    """Makes the `IdempotencyKey` of a request: its scope and key, its keyed hash and how long
    its answer is kept."""

    def __init__(self, master_key: bytes, *, retention: timedelta = RETENTION) -> None:
        self._key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_PURPOSE).derive(
            master_key
        )
        self.retention = retention

    def of(self, scope: str, key: str | None, request: Any) -> IdempotencyKey | None:
        """The key a client sent for `request` within `scope` (None: it sent none); 422 for a
        key that is empty or too long."""
        if key is None:
            return None
        if not key or len(key) > IDEMPOTENCY_KEY_MAX_LENGTH:
            raise InvalidCommand(
                f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} characters",
                field="Idempotency-Key",
            )
        keyed = hmac.new(self._key, canonical_json([scope, key, request]), hashlib.sha256)
        return IdempotencyKey(
            scope=scope,
            key=key,
            request_hash=KEYED_HASH_PREFIX + keyed.hexdigest(),
            legacy_hash=hashlib.sha256(canonical_json(request)).hexdigest(),
            retention=self.retention,
        )
