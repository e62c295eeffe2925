"""The ports of the application layer: what a service's use cases need of the event store, the
key vault and the read documents, as Protocols.

PostgreSQL implements them (`shared.storage.eventstore.EventStore`, `shared.security.crypto.KeyVault`,
`shared.storage.documents.StoredDocuments`); the unit tests' in-memory fakes (`tests/fakes.py`)
implement the same ports, so each service's application layer is tested without a database.
A connection is asyncpg's in production and the fake's own object in the unit tests: use
cases only pass it back to the store, the vault and their own adapters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, NamedTuple, Protocol

import asyncpg

from shared.security.crypto import Protect, Record, Revealed
from shared.model.envelope import Envelope
from shared.model.events import DomainEvent
from shared.storage.eventstore import EventMetadata, Head
from shared.model.projections import Document, Projection

__all__ = ["Documents", "EventLog", "Found", "Vault"]


class EventLog(Protocol):
    """What running a command needs of an event store (`shared.usecases.commands.CommandRunner`)."""

    def connection(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        """A connection on which each statement commits on its own."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        """A connection in a transaction, committed when the block ends without error."""
        ...

    def after_commit(self, conn: asyncpg.Connection, hook: Callable[[], None]) -> None:
        """Run `hook` once what `conn` did so far is committed."""
        ...

    async def append(
        self,
        conn: asyncpg.Connection,
        stream_id: str,
        expected_version: int | None,
        events: Sequence[DomainEvent],
        metadata: EventMetadata,
        *,
        protect: Protect | None = None,
        head: Head | None = None,
    ) -> list[Envelope]:
        """Append events if the stream still ends at `expected_version`, else raise
        `ConcurrencyConflict` and write nothing."""
        ...

    async def read_stream_after(
        self, conn: asyncpg.Connection, stream_id: str, version: int
    ) -> list[Envelope]:
        """A stream's events after `version`, in order."""
        ...

    async def head(self, conn: asyncpg.Connection, stream_id: str) -> Head:
        """Where the stream ends (version 0 and the genesis hash if empty)."""
        ...


class Vault(Protocol):
    """Per-client data keys: personal data sealed on write, revealed on read, erased for good.
    Values are sealed into, and opened from, one `Record` (a client's stream) only."""

    async def sealer(self, conn: asyncpg.Connection, record: Record) -> Protect:
        """Seals personal values into `record` with its client's key."""
        ...

    async def erase(self, conn: asyncpg.Connection, client_id: str) -> bool:
        """Destroy the client's key."""
        ...

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
