"""Managing parked events: list them, retry one (apply it now) or skip it.

A consumer's parked message is applied through its inbox (so it applies at most once); a
projection's parked event is folded into its document as the document stands now. A retry
that fails again keeps the entry parked with the new error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from shared.messaging.inbox import Handler, Inbox, NotApplied
from shared.model.errors import ForbiddenByState, NotFound
from shared.model.projections import Projection
from shared.reads.folding import reapply
from shared.storage.eventstore import EventStore, event_by_id
from shared.storage.parking import (
    ParkedEvent,
    Status,
    count_open,
    find,
    list_parked,
    record_failure,
    resolve,
)

__all__ = ["ParkedEvents", "RetryFailed"]


class RetryFailed(ForbiddenByState):
    """The parked event still cannot be applied: 409, and it stays parked."""


@dataclass
class ParkedEvents:
    """The parked events of one service, and what can apply them again."""

    store: EventStore
    projection: Callable[[str], Projection | None]
    consumers: Mapping[str, tuple[Inbox, Handler]]

    async def list(self, *, status: Status | None, after_id: int, limit: int) -> dict[str, Any]:
        async with self.store.pool.acquire() as conn:
            entries = await list_parked(conn, status=status, after_id=after_id, limit=limit)
        return {"items": [entry.public() for entry in entries]}

    async def skip(self, parked_id: int) -> dict[str, Any]:
        async with self.store.transaction() as conn:
            entry = await self._open(conn, parked_id)
            await resolve(conn, entry.id, "skipped")
        await count_open(self.store.pool, self.store.producer)
        return {"id": parked_id, "status": "skipped"}

    async def retry(self, parked_id: int) -> dict[str, Any]:
        async with self.store.pool.acquire() as conn:
            entry = await find(conn, parked_id)
        if entry is None:
            raise NotFound(f"no parked event {parked_id}")
        if entry.status != "parked":
            raise ForbiddenByState(f"parked event {parked_id} is already {entry.status}")
        try:
            if entry.kind == "consumer":
                outcome = await self._retry_consumer(entry)
            else:
                outcome = await self._retry_projection(entry)
        except NotApplied as error:
            async with self.store.transaction() as conn:
                await record_failure(conn, entry.id, str(error))
            raise RetryFailed(f"still cannot apply event {entry.event_id}: {error}") from error
        await count_open(self.store.pool, self.store.producer)
        return {"id": parked_id, "status": "retried", "outcome": outcome}

    async def _open(self, conn: asyncpg.Connection, parked_id: int) -> ParkedEvent:
        entry = await find(conn, parked_id, lock=True)
        if entry is None:
            raise NotFound(f"no parked event {parked_id}")
        if entry.status != "parked":
            raise ForbiddenByState(f"parked event {parked_id} is already {entry.status}")
        return entry

    async def _retry_consumer(self, entry: ParkedEvent) -> str:
        """Through the consumer's inbox: applied at most once, however often retried."""
        found = self.consumers.get(entry.name)
        if found is None:
            raise NotApplied(f"this service has no consumer {entry.name}")
        inbox, handler = found
        outcome = await inbox.retry(entry, handler)
        async with self.store.transaction() as conn:
            await self._open(conn, entry.id)
            await resolve(conn, entry.id, "retried")
        return outcome

    async def _retry_projection(self, entry: ParkedEvent) -> str:
        """Folded into the document as it stands, in the transaction that closes the entry."""
        projection = self.projection(entry.name)
        if projection is None:
            raise NotApplied(f"this service has no projection {entry.name}")
        async with self.store.transaction() as conn:
            await self._open(conn, entry.id)
            stored = await event_by_id(conn, entry.event_id)
            if stored is None:
                raise NotApplied(f"event {entry.event_id} is not in the log")
            try:
                await reapply(conn, projection, stored)
            except ValueError as error:
                raise NotApplied(str(error)) from error
            await resolve(conn, entry.id, "retried")
        return "applied"
