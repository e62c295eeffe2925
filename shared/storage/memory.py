"""The ports in memory, beside their PostgreSQL implementations, for fast unit tests of use cases
(as faststream ships its fake producer beside the real one). They never stand in for the real
servers in integration or end-to-end tests.

`MemoryEventStore` keeps streams in a dict and seals envelopes as the PostgreSQL store does (the
same hash chain, personal fields protected). `MemoryUnitsOfWork` gives units of work over it: a
transaction's appends become visible when it commits, and a stream that moved on meanwhile is a
`ConcurrencyConflict`; idempotency records are kept in a dict. `MemoryDocuments` folds the
committed log with the service's own projections on each read. `MemoryVault` seals personal
values as the key vault does (`shared.security.crypto`), with keys in memory, and forgets a key
on erasure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.model.clock import Clock
from shared.model.envelope import GENESIS_HASH, Envelope
from shared.model.events import DomainEvent
from shared.model.log import ConcurrencyConflict, EventMetadata, Head, chained
from shared.model.projections import Document, Projection
from shared.security.crypto import Protect, Record, Revealed, protector, reveal_tree
from shared.usecases.idempotency import IdempotencyKey, IdempotencyRace
from shared.usecases.ports import Found

Kept = tuple[IdempotencyKey, dict[str, Any]]
"""An answer kept under its key."""

__all__ = [
    "MemoryDocuments",
    "MemoryEventStore",
    "MemoryUnitOfWork",
    "MemoryUnitsOfWork",
    "MemoryVault",
    "memory_ports",
]


class MemoryVault:
    """The key vault in memory: the same sealing and binding as `KeyVault`, with keys in a
    dict; erasure forgets a key."""

    def __init__(self) -> None:
        self.keys: dict[str, bytes] = {}
        self.erased: set[str] = set()

    @property
    def clients(self) -> set[str]:
        return set(self.keys) | self.erased

    def sealer(self, record: Record) -> Protect:
        if record.client_id in self.erased:
            return protector(None, record)
        key = self.keys.setdefault(record.client_id, AESGCM.generate_key(bit_length=256))
        return protector(key, record)

    def erase(self, client_id: str) -> bool:
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


class MemoryEventStore:
    """A service's log in memory; `log` is every committed envelope in commit order."""

    def __init__(self, producer: str, clock: Clock) -> None:
        self.producer = producer
        self.clock = clock
        self.streams: dict[str, list[Envelope]] = {}
        self.log: list[Envelope] = []
        self.remembered: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
        self.transactions = 0

    def events(self, stream_id: str) -> list[Envelope]:
        """A stream's committed envelopes."""
        return list(self.streams.get(stream_id, []))

    def version(self, stream_id: str) -> int:
        stream = self.streams.get(stream_id, [])
        return stream[-1].stream_version if stream else 0

    def seal(
        self,
        stream_id: str,
        head: Head,
        events: Sequence[DomainEvent],
        metadata: EventMetadata,
        protect: Protect | None,
    ) -> list[Envelope]:
        """The envelopes of `events` after `head`, hash-chained as the PostgreSQL store makes
        them."""
        return chained(
            stream_id,
            head,
            events,
            metadata,
            producer=self.producer,
            recorded_at=self.clock.now(),
            protect=protect,
        )

    def keep(self, answers: Mapping[tuple[str, str], Kept]) -> None:
        """Remember committed answers by their keys."""
        for scoped, (key, reply) in answers.items():
            self.remembered[scoped] = (key.request_hash, reply)

    def commit(self, envelopes: list[Envelope]) -> None:
        for envelope in envelopes:
            self.streams.setdefault(envelope.stream_id, []).append(envelope)
            self.log.append(envelope)


class MemoryUnitOfWork:
    """A unit of work in memory: what it appended and remembered stays pending until its
    transaction commits (at once outside one)."""

    def __init__(self, store: MemoryEventStore, vault: MemoryVault, *, transactional: bool):
        self.store = store
        self.vault = vault
        self.transactional = transactional
        self.pending: dict[str, list[Envelope]] = {}
        self.answers: dict[tuple[str, str], Kept] = {}
        self.hooks: list[Callable[[], None]] = []

    async def append(
        self,
        stream_id: str,
        expected_version: int | None,
        events: Sequence[DomainEvent],
        metadata: EventMetadata,
        *,
        protect: Protect | None = None,
        head: Head | None = None,
    ) -> list[Envelope]:
        if not events:
            return []
        current = await self.head(stream_id)
        if expected_version is not None and current.version != expected_version:
            raise ConcurrencyConflict(stream_id, expected_version, current.version)
        envelopes = self.store.seal(stream_id, current, events, metadata, protect)
        if self.transactional:
            self.pending.setdefault(stream_id, []).extend(envelopes)
        else:
            self.store.commit(envelopes)
        return envelopes

    async def read_stream_after(self, stream_id: str, version: int) -> list[Envelope]:
        stream = [*self.store.streams.get(stream_id, []), *self.pending.get(stream_id, [])]
        return [envelope for envelope in stream if envelope.stream_version > version]

    async def head(self, stream_id: str) -> Head:
        stream = [*self.store.streams.get(stream_id, []), *self.pending.get(stream_id, [])]
        return Head(stream[-1].stream_version, stream[-1].hash) if stream else Head(0, GENESIS_HASH)

    async def sealer(self, record: Record) -> Protect:
        return self.vault.sealer(record)

    async def erase_key(self, client_id: str) -> bool:
        return self.vault.erase(client_id)

    async def remembered(self, key: IdempotencyKey) -> dict[str, Any] | None:
        pending = self.answers.get((key.scope, key.key))
        found = self.store.remembered.get((key.scope, key.key))
        if pending is not None:
            found = (pending[0].request_hash, pending[1])
        if found is None:
            return None
        if not key.matches(found[0]):
            raise key.differs()
        return dict(found[1])

    async def remember(self, key: IdempotencyKey, status: int, reply: dict[str, Any]) -> None:
        if (key.scope, key.key) in self.store.remembered:
            raise IdempotencyRace(key)
        self.answers[(key.scope, key.key)] = (key, dict(reply))
        if not self.transactional:
            self.store.keep(self.answers)

    def after_commit(self, hook: Callable[[], None]) -> None:
        if self.transactional:
            self.hooks.append(hook)
        else:
            hook()


class MemoryUnitsOfWork:
    """Units of work over a `MemoryEventStore`."""

    def __init__(self, store: MemoryEventStore, vault: MemoryVault) -> None:
        self.store = store
        self.vault = vault

    def unit(self, *, transactional: bool) -> MemoryUnitOfWork:
        """A new unit of work (tests that watch what use cases do may return their own)."""
        return MemoryUnitOfWork(self.store, self.vault, transactional=transactional)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[MemoryUnitOfWork]:
        unit = self.unit(transactional=True)
        yield unit
        for stream_id, envelopes in unit.pending.items():
            if self.store.version(stream_id) != envelopes[0].stream_version - 1:
                raise ConcurrencyConflict(stream_id, envelopes[0].stream_version - 1, None)
        for scoped, (key, _) in unit.answers.items():
            if scoped in self.store.remembered:
                raise IdempotencyRace(key)
        for envelopes in unit.pending.values():
            self.store.commit(envelopes)
        self.store.keep(unit.answers)
        self.store.transactions += 1
        for hook in unit.hooks:
            hook()

    @asynccontextmanager
    async def statements(self) -> AsyncIterator[MemoryUnitOfWork]:
        yield self.unit(transactional=False)


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


def memory_ports(
    producer: str, clock: Clock, projections: Sequence[Projection]
) -> tuple[MemoryUnitsOfWork, MemoryDocuments, MemoryVault, MemoryEventStore]:
    """The ports of one service in memory, and the store behind them (to look at its log)."""
    store = MemoryEventStore(producer, clock)
    vault = MemoryVault()
    return MemoryUnitsOfWork(store, vault), MemoryDocuments(store, projections), vault, store
