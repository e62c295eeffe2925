"""Running a command against an event-sourced stream: fold, decide, append, remember.

The same loop serves every service: the stream is folded with the pure `evolve`, the pure
`decide` returns new events (or raises a DomainError), and the append is checked against the
version folded. A lost race is retried against the new state. A command with an
`Idempotency-Key` returns its first answer again and writes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import asyncpg

from shared.crypto import KeyVault
from shared.envelope import Envelope, canonical_json
from shared.errors import InvalidCommand, NotFound
from shared.events import DomainEvent, EventRegistry
from shared.eventstore import ConcurrencyConflict, EventMetadata, EventStore

S = TypeVar("S")
Body = dict[str, Any]


@dataclass(frozen=True)
class Decider(Generic[S]):
    """A stream's pure behaviour: its empty state, how events change it, whose data it holds."""

    initial: Callable[[], S]
    evolve: Callable[[S, DomainEvent], S]
    owner: Callable[[S], str | None]


@dataclass(frozen=True)
class IdempotencyKey:
    """A client's `Idempotency-Key`, scoped to the caller and route, with the request's hash."""

    scope: str
    key: str
    request_hash: str

    @staticmethod
    def of(scope: str, key: str | None, request: Any) -> IdempotencyKey | None:
        if key is None:
            return None
        if not key or len(key) > 200:
            raise InvalidCommand(
                "Idempotency-Key must be 1 to 200 characters", field="Idempotency-Key"
            )
        digest = hashlib.sha256(canonical_json(request)).hexdigest()
        return IdempotencyKey(scope, key, digest)


async def remembered(conn: asyncpg.Connection, key: IdempotencyKey) -> Body | None:
    """The first answer given under this key, or None; 422 if the request differs."""
    row = await conn.fetchrow(
        "SELECT request_hash, response FROM idempotency_keys WHERE scope = $1 AND key = $2",
        key.scope,
        key.key,
    )
    if row is None:
        return None
    if row["request_hash"] != key.request_hash:
        raise InvalidCommand(
            "this Idempotency-Key was already used with a different request",
            field="Idempotency-Key",
        )
    body: Body = json.loads(row["response"])
    return body


async def remember(conn: asyncpg.Connection, key: IdempotencyKey, status: int, body: Body) -> None:
    """Keep the answer under this key, in the command's transaction."""
    inserted = await conn.execute(
        "INSERT INTO idempotency_keys (scope, key, request_hash, status_code, response)"
        " VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT DO NOTHING",
        key.scope,
        key.key,
        key.request_hash,
        status,
        json.dumps(body),
    )
    if inserted.endswith(" 0"):
        raise ConcurrencyConflict(key.scope, None, None)  # the same key raced: answer the first


@dataclass
class Folded(Generic[S]):
    """A stream's state and the version it was folded up to."""

    state: S
    version: int


async def fold(
    store: EventStore,
    registry: EventRegistry,
    decider: Decider[S],
    conn: asyncpg.Connection,
    stream_id: str,
) -> Folded[S]:
    """The stream's current state, folded from its events as they stream in."""
    state = decider.initial()
    version = 0
    async for envelope in store.read_stream(conn, stream_id):
        state = decider.evolve(state, registry.load(envelope))
        version = envelope.stream_version
    return Folded(state, version)


class CommandRunner(Generic[S]):
    """Executes commands on one kind of stream for a service."""

    def __init__(
        self,
        store: EventStore,
        registry: EventRegistry,
        decider: Decider[S],
        vault: KeyVault,
        *,
        retries: int = 12,
    ) -> None:
        self.store = store
        self.registry = registry
        self.decider = decider
        self.vault = vault
        self.retries = retries

    async def execute(
        self,
        stream_id: str,
        decide: Callable[[S], Sequence[DomainEvent]],
        metadata: EventMetadata,
        respond: Callable[[S, list[Envelope]], Body],
        *,
        creates: bool = False,
        idempotency: IdempotencyKey | None = None,
    ) -> Body:
        """Fold, decide, append; retry on a lost race; answer the first answer to a retried key."""
        for attempt in range(self.retries + 1):
            try:
                async with self.store.transaction() as conn:
                    return await self.execute_in(
                        conn,
                        stream_id,
                        decide,
                        metadata,
                        respond,
                        creates=creates,
                        idempotency=idempotency,
                    )
            except ConcurrencyConflict:
                if attempt == self.retries:
                    raise
                # another command won the race: decide again against the new state, after a
                # short random pause so a crowd of writers spreads out instead of colliding
                await asyncio.sleep(random.uniform(0, 0.002 * 2 ** min(attempt, 6)))
        raise AssertionError("unreachable")

    async def execute_in(
        self,
        conn: asyncpg.Connection,
        stream_id: str,
        decide: Callable[[S], Sequence[DomainEvent]],
        metadata: EventMetadata,
        respond: Callable[[S, list[Envelope]], Body],
        *,
        creates: bool = False,
        idempotency: IdempotencyKey | None = None,
    ) -> Body:
        """One attempt inside the caller's transaction (a consumer's inbox, say)."""
        if idempotency is not None:
            previous = await remembered(conn, idempotency)
            if previous is not None:
                return previous
        current = await fold(self.store, self.registry, self.decider, conn, stream_id)
        if current.version == 0 and not creates:
            raise NotFound(f"no such stream: {stream_id}")
        events = list(decide(current.state))
        state = current.state
        for event in events:
            state = self.decider.evolve(state, event)
        owner = self.decider.owner(state)
        protect = await self.vault.encryptor(conn, owner) if owner and events else None
        envelopes = await self.store.append(
            conn, stream_id, current.version, events, metadata, protect=protect
        )
        body = respond(state, envelopes)
        if "stream_version" not in body:
            body["stream_version"] = envelopes[-1].stream_version if envelopes else current.version
        if idempotency is not None:
            await remember(conn, idempotency, 201, body)
        return body
