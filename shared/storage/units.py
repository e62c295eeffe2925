"""Units of work on PostgreSQL: the use cases' port (`shared.usecases.ports.UnitOfWork`) over
one pooled connection of a service's event store, its key vault and its idempotency records.

A use case never sees the connection. A service's own adapters (the SQL of its own tables) take
the unit of work a use case hands them and ask `connection_of` for it, so that their writes
commit with the command's.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar

import asyncpg

from shared.model.envelope import Envelope
from shared.model.events import DomainEvent
from shared.model.log import EventMetadata, Head
from shared.security.crypto import Protect, Record
from shared.storage import idempotency
from shared.storage.eventstore import EventStore
from shared.storage.keyvault import KeyVault
from shared.usecases.idempotency import IdempotencyKey
from shared.usecases.ports import UnitOfWork

__all__ = ["PostgresUnitOfWork", "PostgresUnitsOfWork", "connection_of", "on_connection"]

P = ParamSpec("P")
T = TypeVar("T")


class PostgresUnitOfWork:
    """One unit of work on one connection (in a transaction, or statement by statement)."""

    def __init__(self, store: EventStore, vault: KeyVault, conn: asyncpg.Connection) -> None:
        self.store = store
        self.vault = vault
        self.connection = conn

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
        return await self.store.append(
            self.connection,
            stream_id,
            expected_version,
            events,
            metadata,
            protect=protect,
            head=head,
        )

    async def read_stream_after(self, stream_id: str, version: int) -> list[Envelope]:
        return await self.store.read_stream_after(self.connection, stream_id, version)

    async def head(self, stream_id: str) -> Head:
        return await self.store.head(self.connection, stream_id)

    async def sealer(self, record: Record) -> Protect:
        return await self.vault.sealer(self.connection, record)

    async def erase_key(self, client_id: str) -> bool:
        return await self.vault.erase(self.connection, client_id)

    async def remembered(self, key: IdempotencyKey) -> dict[str, Any] | None:
        return await idempotency.remembered(self.connection, key)

    async def remember(self, key: IdempotencyKey, status: int, reply: dict[str, Any]) -> None:
        await idempotency.remember(self.connection, key, status, reply)

    def after_commit(self, hook: Callable[[], None]) -> None:
        self.store.after_commit(self.connection, hook)


class PostgresUnitsOfWork:
    """A service's units of work: its event store and key vault on one database."""

    def __init__(self, store: EventStore, vault: KeyVault) -> None:
        self.store = store
        self.vault = vault

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresUnitOfWork]:
        async with self.store.transaction() as conn:
            yield PostgresUnitOfWork(self.store, self.vault, conn)

    @asynccontextmanager
    async def statements(self) -> AsyncIterator[PostgresUnitOfWork]:
        async with self.store.connection() as conn:
            yield PostgresUnitOfWork(self.store, self.vault, conn)

    def within(self, conn: asyncpg.Connection) -> PostgresUnitOfWork:
        """A unit of work inside a transaction an adapter opened itself (a consumer's inbox)."""
        return PostgresUnitOfWork(self.store, self.vault, conn)


def connection_of(unit: object) -> asyncpg.Connection:
    """The connection a PostgreSQL unit of work runs on, for a service's own adapters."""
    if not isinstance(unit, PostgresUnitOfWork):
        raise TypeError(f"not a PostgreSQL unit of work: {type(unit).__name__}")
    return unit.connection


def on_connection(
    query: Callable[Concatenate[asyncpg.Connection, P], Awaitable[T]],
) -> Callable[Concatenate[UnitOfWork, P], Coroutine[Any, Any, T]]:
    """A service adapter's query on a connection, called with the unit of work it runs in (the
    use case hands it the unit of work; only the adapter sees the connection)."""

    async def in_unit(unit: UnitOfWork, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await query(connection_of(unit), *args, **kwargs)

    functools.update_wrapper(in_unit, query)
    return in_unit
