"""Projections: pure folds of the log into read documents, kept up to date by a runner.

A projection names the document an event touches (`key`) and folds the event into it
(`fold`). The runner applies new events from the local log in commit-safe order and saves
its checkpoint in the same transaction, so a crash never double-applies. `rebuild` folds the
whole log again into any tables the connection's search path points at.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import structlog
from prometheus_client import Counter

from shared.envelope import Envelope, canonical_json
from shared.events import EventRegistry
from shared.eventstore import START, EventStore, StoredEvent, load_checkpoint, save_checkpoint

log = structlog.get_logger(__name__)

APPLIED = Counter("rapport_projection_events_total", "Events folded", ["service", "projection"])
FAILED = Counter(
    "rapport_projection_failures_total",
    "Failed catch-up rounds (the projection waits at its checkpoint)",
    ["service", "projection"],
)

Document = dict[str, Any]


@dataclass(frozen=True)
class Projection:
    """A pure fold of envelopes into documents, keyed by `key(envelope)` (None: not mine).

    With a `registry`, envelopes of older schema versions are upcast before the fold sees
    them, so folds only ever read current data (stored rows are never rewritten).
    """

    name: str
    key: Callable[[Envelope], str | None]
    fold: Callable[[Document | None, Envelope], Document | None]
    registry: EventRegistry | None = None

    def apply(self, document: Document | None, envelope: Envelope) -> Document | None:
        """Fold one envelope, upcast to its current schema version."""
        if self.registry is not None:
            envelope = self.registry.upcast_envelope(envelope)
        return self.fold(document, envelope)


async def load_document(
    conn: asyncpg.Connection, projection: str, key: str, *, for_update: bool = False
) -> tuple[Document, int] | None:
    """A projection's document and the stream version folded into it, or None."""
    row = await conn.fetchrow(
        "SELECT doc, version FROM documents WHERE projection = $1 AND id = $2"
        + (" FOR UPDATE" if for_update else ""),
        projection,
        key,
    )
    if row is None:
        return None
    return json.loads(row["doc"]), int(row["version"])


async def apply_event(conn: asyncpg.Connection, projection: Projection, envelope: Envelope) -> bool:
    """Fold one event into its document; returns whether the projection was touched."""
    key = projection.key(envelope)
    if key is None:
        return False
    current = await load_document(conn, projection.name, key, for_update=True)
    document = projection.apply(None if current is None else current[0], envelope)
    if document is None:
        return False
    await conn.execute(
        "INSERT INTO documents (projection, id, doc, version, updated_at)"
        " VALUES ($1, $2, $3::jsonb, $4, now())"
        " ON CONFLICT (projection, id) DO UPDATE"
        " SET doc = EXCLUDED.doc, version = EXCLUDED.version, updated_at = now()",
        projection.name,
        key,
        json.dumps(document),
        envelope.stream_version,
    )
    return True


def fold_stream(
    projection: Projection, envelopes: Sequence[Envelope], document: Document | None = None
) -> Document | None:
    """The pure fold of a sequence of one key's envelopes."""
    for envelope in envelopes:
        if projection.key(envelope) is not None:
            document = projection.apply(document, envelope) or document
    return document


async def fold_as_of(
    store: EventStore, projection: Projection, stream_id: str, as_of: datetime | None
) -> tuple[Document, int] | None:
    """A stream's document as it stood at `as_of`, folded from the log (streamed)."""
    document: Document | None = None
    version = 0
    async with store.snapshot() as conn:
        async for envelope in store.read_stream(conn, stream_id, until=as_of):
            if projection.key(envelope) is not None:
                document = projection.apply(document, envelope) or document
                version = envelope.stream_version
    return None if document is None else (document, version)


async def read_view(
    store: EventStore, projection: Projection, stream_id: str, *, as_of: datetime | None = None
) -> tuple[Document, int] | None:
    """A stream's view: the live document, or, for a stream the runner has not reached yet
    (its first commit a moment ago) or for `as_of`, the fold of its log. None: no stream."""
    if as_of is None:
        async with store.pool.acquire() as conn:
            found = await load_document(conn, projection.name, stream_id)
        if found is not None:
            return found
    return await fold_as_of(store, projection, stream_id, as_of)


async def digest(conn: asyncpg.Connection, projection: str) -> tuple[str, int]:
    """SHA-256 over the projection's documents in id order, and how many there are."""
    sha = hashlib.sha256()
    count = 0
    async for row in conn.cursor(
        "SELECT id, doc, version FROM documents WHERE projection = $1 ORDER BY id", projection
    ):
        sha.update(canonical_json([row["id"], json.loads(row["doc"]), row["version"]]))
        sha.update(b"\n")
        count += 1
    return sha.hexdigest(), count


class ProjectionRunner:
    """Keeps a service's projections caught up with its log."""

    def __init__(
        self,
        store: EventStore,
        projections: Sequence[Projection],
        *,
        batch_size: int = 500,
        poll_interval: float = 0.5,
    ) -> None:
        self._store = store
        self.projections = list(projections)
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._wake = store.appended.subscribe()

    async def catch_up(self, projection: Projection) -> int:
        """Apply every committed event past the projection's checkpoint."""
        applied = 0
        name = f"projection:{projection.name}"
        while True:
            async with self._store.pool.acquire() as conn, conn.transaction():
                checkpoint = await load_checkpoint(conn, name, lock=True)
                batch = await self._store.read_after(conn, checkpoint, self._batch_size)
                if not batch:
                    return applied
                for item in batch:
                    await apply_event(conn, projection, item.envelope)
                await save_checkpoint(conn, name, batch[-1].checkpoint)
            applied += len(batch)
            APPLIED.labels(self._store.producer, projection.name).inc(len(batch))

    async def catch_up_all(self) -> None:
        """Catch every projection up, in turn (errors propagate)."""
        for projection in self.projections:
            await self.catch_up(projection)

    async def run(self) -> None:
        """Catch up on every wake-up and poll tick until cancelled. A projection that fails
        waits at its checkpoint and is retried; the others go on."""
        while True:
            self._wake.clear()
            failed = False
            for projection in self.projections:
                try:
                    await self.catch_up(projection)
                except Exception as error:
                    failed = True
                    FAILED.labels(self._store.producer, projection.name).inc()
                    log.error(
                        "projection_failed",
                        service=self._store.producer,
                        projection=projection.name,
                        error=repr(error),
                    )
            if failed:
                await asyncio.sleep(1.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval)


async def rebuild(
    store: EventStore,
    conn: asyncpg.Connection,
    projections: Sequence[Projection],
    *,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Fold the whole committed log into the `documents` table the connection resolves to.

    Each batch is applied in its own short transaction (a savepoint inside a caller's), so a
    long rebuild never holds back the commit horizon the live readers follow; `progress` is
    told how many events each batch folded.
    """
    checkpoint = START
    total = 0
    while True:
        async with conn.transaction():
            batch: list[StoredEvent] = await store.read_after(conn, checkpoint, 1000)
            for item in batch:
                for projection in projections:
                    await apply_event(conn, projection, item.envelope)
        if not batch:
            return total
        checkpoint = batch[-1].checkpoint
        total += len(batch)
        if progress is not None:
            progress(len(batch))
