"""In-memory fakes of the application layer's ports (`shared.usecases.ports`), for unit tests only.

`MemoryEventStore` keeps streams in a dict and seals envelopes as the PostgreSQL store does (the
same hash chain, personal fields protected); a transaction's appends become visible when it
commits, and a stream that moved on meanwhile is a `ConcurrencyConflict`. `MemoryDocuments`
folds the committed log with the service's own projections on each read. `MemoryVault` seals
personal values as the key vault does, with keys in memory, and forgets a key on erasure. No
SQL runs: what needs PostgreSQL (idempotency keys, the projection runner) is tested in
tests/integration and e2e.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.model.clock import Clock
from shared.model.envelope import GENESIS_HASH, Envelope, format_time, new_id, parse_time, seal
from shared.model.events import DomainEvent, dump_protected
from shared.model.log import ConcurrencyConflict, EventMetadata, Head
from shared.model.projections import Document, Projection
from shared.security.crypto import Protect, Record, Revealed, protector, reveal_tree
from shared.usecases.application import Sent
from shared.usecases.commands import Reply
from shared.usecases.ports import Found


@dataclass(eq=False)
class MemoryConnection:
    """A connection of the in-memory store: what it appended, not yet committed."""

    transactional: bool
    pending: dict[str, list[Envelope]] = field(default_factory=dict)
    hooks: list[Callable[[], None]] = field(default_factory=list)


class MemoryEventStore:
    """The event store port in memory; `log` is every committed envelope in commit order."""

    def __init__(self, producer: str, clock: Clock) -> None:
        self.producer = producer
        self.clock = clock
        self.streams: dict[str, list[Envelope]] = {}
        self.log: list[Envelope] = []
        self.transactions = 0

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[MemoryConnection]:
        yield MemoryConnection(transactional=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[MemoryConnection]:
        conn = MemoryConnection(transactional=True)
        yield conn
        for stream_id, envelopes in conn.pending.items():
            if self._version(stream_id) != envelopes[0].stream_version - 1:
                raise ConcurrencyConflict(stream_id, envelopes[0].stream_version - 1, None)
        for envelopes in conn.pending.values():
            self._commit(envelopes)
        self.transactions += 1
        for hook in conn.hooks:
            hook()

    def after_commit(self, conn: MemoryConnection, hook: Callable[[], None]) -> None:
        if conn.transactional:
            conn.hooks.append(hook)
        else:
            hook()

    async def append(
        self,
        conn: MemoryConnection,
        stream_id: str,
        expected_version: int | None,
        events: Sequence[DomainEvent],
        metadata: EventMetadata,
        *,
        protect: Callable[[str, str], str] | None = None,
        head: Head | None = None,
    ) -> list[Envelope]:
        if not events:
            return []
        current = await self.head(conn, stream_id)
        if expected_version is not None and current.version != expected_version:
            raise ConcurrencyConflict(stream_id, expected_version, current.version)
        version, prev_hash = current
        recorded = format_time(self.clock.now())
        occurred = format_time(metadata.occurred_at or parse_time(recorded))
        envelopes = []
        for event in events:
            version += 1
            envelope = seal(
                {
                    "event_id": new_id(),
                    "event_type": event.event_type,
                    "schema_version": event.schema_version,
                    "stream_id": stream_id,
                    "stream_version": version,
                    "occurred_at": occurred,
                    "recorded_at": recorded,
                    "producer": self.producer,
                    "correlation_id": metadata.correlation_id,
                    "causation_id": metadata.causation_id,
                    "actor": metadata.actor.model_dump(),
                    "data": dump_protected(event, protect or (lambda _, value: value)),
                    "prev_hash": prev_hash,
                }
            )
            prev_hash = envelope.hash
            envelopes.append(envelope)
        if conn.transactional:
            conn.pending.setdefault(stream_id, []).extend(envelopes)
        else:
            self._commit(envelopes)
        return envelopes

    async def read_stream_after(
        self, conn: MemoryConnection, stream_id: str, version: int
    ) -> list[Envelope]:
        stream = [*self.streams.get(stream_id, []), *conn.pending.get(stream_id, [])]
        return [envelope for envelope in stream if envelope.stream_version > version]

    async def head(self, conn: MemoryConnection, stream_id: str) -> Head:
        stream = [*self.streams.get(stream_id, []), *conn.pending.get(stream_id, [])]
        return Head(stream[-1].stream_version, stream[-1].hash) if stream else Head(0, GENESIS_HASH)

    def events(self, stream_id: str) -> list[Envelope]:
        """A stream's committed envelopes."""
        return list(self.streams.get(stream_id, []))

    def _version(self, stream_id: str) -> int:
        stream = self.streams.get(stream_id, [])
        return stream[-1].stream_version if stream else 0

    def _commit(self, envelopes: list[Envelope]) -> None:
        for envelope in envelopes:
            self.streams.setdefault(envelope.stream_id, []).append(envelope)
            self.log.append(envelope)


class MemoryDocuments:
    """The read port over a `MemoryEventStore`: documents folded from its log when asked."""

    def __init__(self, store: MemoryEventStore, projections: Sequence[Projection]) -> None:
        self.store = store
        self.projections = {projection.name: projection for projection in projections}

    def _fold(
        self, projection: Projection, envelopes: Sequence[Envelope]
    ) -> dict[str, tuple[Document, int]]:
        documents: dict[str, tuple[Document, int]] = {}
        for envelope in envelopes:
            key = projection.key(envelope)
            if key is None:
                continue
            document = documents.get(key, (None, 0))[0]
            folded = projection.apply(document, envelope)
            if folded is not None:
                documents[key] = (folded, envelope.stream_version)
        return documents

    async def view(
        self, projection: Projection, stream_id: str, *, as_of: datetime | None = None
    ) -> tuple[Document, int] | None:
        stream = [
            envelope
            for envelope in self.store.events(stream_id)
            if as_of is None or envelope.occurred <= as_of
        ]
        return self._fold(projection, stream).get(stream_id)

    async def get(self, projection: str, key: str) -> tuple[Document, int] | None:
        return self._fold(self.projections[projection], self.store.log).get(key)

    async def find(
        self,
        projection: str,
        *,
        where: Mapping[str, str | None],
        order_by: Sequence[str] = (),
        limit: int | None = None,
    ) -> list[Found]:
        folded = self._fold(self.projections[projection], self.store.log)
        found = [
            Found(key, document, version)
            for key, (document, version) in folded.items()
            if all(value is None or document.get(name) == value for name, value in where.items())
        ]
        found.sort(key=lambda item: (*(str(item.doc.get(name)) for name in order_by), item.id))
        return found if limit is None else found[:limit]


class MemoryVault:
    """The key vault port in memory: the same sealing and binding as `KeyVault`
    (`shared.security.crypto.protector`, `reveal_tree`), with keys in a dict; erasure forgets
    a key."""

    def __init__(self) -> None:
        self.keys: dict[str, bytes] = {}
        self.erased: set[str] = set()

    @property
    def clients(self) -> set[str]:
        return set(self.keys) | self.erased

    async def sealer(self, conn: Any, record: Record) -> Protect:
        if record.client_id in self.erased:
            return protector(None, record)
        key = self.keys.setdefault(record.client_id, AESGCM.generate_key(bit_length=256))
        return protector(key, record)

    async def erase(self, conn: Any, client_id: str) -> bool:
        fresh = client_id not in self.erased
        self.erased.add(client_id)
        self.keys.pop(client_id, None)
        return fresh

    async def is_erased(self, client_id: str) -> bool:
        return client_id in self.erased

    async def reveal(self, tree: Any, record: Record) -> Revealed:
        erased = record.client_id in self.erased
        return reveal_tree(tree, self.keys.get(record.client_id), record, erased=erased)

    def seal_secret(self, value: str, purpose: str) -> str:
        return f"sealed:test:{purpose}:{value}"

    def open_secret(self, stored: str, purpose: str) -> str:
        return stored.removeprefix(f"sealed:test:{purpose}:")


def ports(
    producer: str, clock: Clock, projections: Sequence[Projection]
) -> tuple[MemoryEventStore, MemoryDocuments, MemoryVault]:
    """The three ports of one service, in memory."""
    store = MemoryEventStore(producer, clock)
    return store, MemoryDocuments(store, projections), MemoryVault()


class RecordingCommands:
    """A service behind command routes (`shared.http.routes.Commands`): remembers what it was
    sent, and answers version 2 or raises `refusal` when one is set."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.refusal: Exception | None = None

    async def act(self, sent: Sent) -> Reply:
        self.sent.append(sent)
        if self.refusal is not None:
            raise self.refusal
        return {**sent.reply, "stream_version": 2}
