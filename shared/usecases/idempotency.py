"""Idempotency records: what the table keeps of a request sent with an `Idempotency-Key`, for
how long, and the pruner that deletes it afterwards.

A record is kept for a retention (`RAPPORT_IDEMPOTENCY_RETENTION`, 24 h by default, as payment
APIs keep theirs); a key sent again after that is a new request. Every service's background
work prunes expired records; several instances prune at once without waiting on each other
(each deletes a batch the others have not locked).

Of the request, the table holds `v2:` and an HMAC-SHA256 of its scope, key and canonical JSON
under a key derived from the master key (HKDF-SHA256, for this purpose only). A reader of the
table (a backup, a replica, an operator) cannot confirm a guessed body, a client's name or a
webhook secret say, and two records of the same body do not even look alike. Records written
before hold a plain SHA-256 of the body: a retry of one is still recognised by that form
(`shared.usecases.commands.remembered`) until it expires.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import asyncpg
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shared.usecases.commands import KEYED_HASH_PREFIX, IdempotencyKey
from shared.model.envelope import canonical_json
from shared.model.errors import InvalidCommand

__all__ = [
    "IDEMPOTENCY_KEY_MAX_LENGTH",
    "RETENTION",
    "IdempotencyKeys",
    "prune_expired",
    "pruner",
]

IDEMPOTENCY_KEY_MAX_LENGTH = 200
RETENTION = timedelta(hours=24)
PRUNE_BATCH = 1000
# HKDF's `info`: the derived key serves this one purpose, whatever else the master key does.
_PURPOSE = b"rapport idempotency request hash v2"


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


async def prune_expired(
    pool: asyncpg.Pool, retention: timedelta, *, batch: int = PRUNE_BATCH
) -> int:
    """Delete up to `batch` records older than `retention` (skipping those another pruner or a
    command holds); how many were deleted."""
    status = await pool.execute(
        "DELETE FROM idempotency_keys WHERE (scope, key) IN ("
        " SELECT scope, key FROM idempotency_keys WHERE created_at <= now() - $1::interval"
        " LIMIT $2 FOR UPDATE SKIP LOCKED)",
        retention,
        batch,
    )
    return int(status.rsplit(" ", 1)[-1])


def pruner(
    pool: asyncpg.Pool, retention: timedelta, *, every: float
) -> Callable[[], Awaitable[None]]:
    """A background worker: prune expired records at once, then every `every` seconds (batch
    after batch while full ones come)."""

    async def run() -> None:
        while True:
            while await prune_expired(pool, retention) == PRUNE_BATCH:
                pass
            await asyncio.sleep(every)

    return run
