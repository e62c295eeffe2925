"""The ports of the application layer, in the domain's words: a unit of work on a service's log
(appending, reading a stream, sealing personal data, remembering answers), the key vault's read
side, and the read documents.

A use case asks `UnitsOfWork` for a unit of work and does everything that must commit together
through it; it never holds a database connection. PostgreSQL implements the ports in
`shared.storage` (`PostgresUnitsOfWork`, `KeyVault`, `StoredDocuments`), memory beside them in
`shared.storage.memory` for fast unit tests. A service's own adapters (its tables) take the
unit of work they were handed and reach their storage through it (`shared.storage.connection_of`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from shared.model.envelope import Envelope
from shared.model.events import DomainEvent
from shared.model.log import EventMetadata, Head
from shared.model.projections import Document, Projection
from shared.security.crypto import Protect, Record, Revealed
from shared.usecases.idempotency import IdempotencyKey

__all__ = ["Documents", "Found", "UnitOfWork", "UnitsOfWork", "Vault"]


class UnitOfWork(Protocol):
    """What one unit of work does on a service's log: inside a transaction everything it does
    commits together or not at all; outside one (`UnitsOfWork.statements`) each append commits
    on its own."""

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
        """Append events if the stream still ends at `expected_version` (None: wherever it
        ends), else raise `ConcurrencyConflict` and write nothing."""
        ...

    async def read_stream_after(self, stream_id: str, version: int) -> list[Envelope]:
        """A stream's events after `version`, in order."""
        ...

    async def head(self, stream_id: str) -> Head:
        """Where the stream ends (version 0 and the genesis hash if empty)."""
        ...

    async def sealer(self, record: Record) -> Protect:
        """Seals personal values into `record` with its client's key (created if new)."""
        ...

    async def erase_key(self, client_id: str) -> bool:
        """Destroy the client's key; True if one was destroyed now."""
        ...

    async def remembered(self, key: IdempotencyKey) -> dict[str, Any] | None:
        """The first answer given under this key within its retention, or None; 422 if the
        request differs."""
        ...

    async def remember(self, key: IdempotencyKey, status: int, reply: dict[str, Any]) -> None:
        """Keep the answer under this key (`IdempotencyRace` if another got there first)."""
        ...

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Run `hook` once what this unit of work did so far is committed."""
        ...


class UnitsOfWork(Protocol):
    """Where units of work come from."""

    def transaction(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """A unit of work in one transaction, committed when the block ends without error."""
        ...

    def statements(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """A unit of work whose appends each commit on their own (one atomic statement each,
        grouped with other commands' where the store can)."""
        ...


class Vault(Protocol):
    """The key vault's read side: personal data opened from one `Record` (a client's stream)
    only, erasure looked up, and service secrets sealed for storage."""

    async def is_erased(self, client_id: str) -> bool:
        """Whether the client's key was destroyed."""
        ...

    async def reveal(self, tree: Any, record: Record) -> Revealed:
        """The tree read from `record` with every sealed value opened (None when erased or
        unreadable)."""
        ...

    def seal_secret(self, value: str, purpose: str) -> str:
        """A service secret sealed for storage."""
        ...

    def open_secret(self, stored: str, purpose: str) -> str:
        """The secret `seal_secret` sealed for the same purpose."""
        ...


class Found(NamedTuple):
    """One document a query found: its id, its content and the version folded into it."""

    id: str
    doc: Document
    version: int


class Documents(Protocol):
    """What reads need: the projections' documents, and views folded from the log."""

    async def view(
        self, projection: Projection, stream_id: str, *, as_of: datetime | None = None
    ) -> tuple[Document, int] | None:
        """A stream's view, live or as it stood at `as_of`; None: no such stream."""
        ...

    async def get(self, projection: str, key: str) -> tuple[Document, int] | None:
        """One document of a projection, with its version."""
        ...

    async def find(
        self,
        projection: str,
        *,
        where: Mapping[str, str | None],
        order_by: Sequence[str] = (),
        limit: int | None = None,
    ) -> list[Found]:
        """A projection's documents whose top-level fields equal `where`'s values (a None value
        does not filter), ordered by the `order_by` fields then by id."""
        ...
