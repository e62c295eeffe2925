"""Projections: pure folds of the log into read documents, kept up to date by a runner.

A projection names the document an event touches (`key`) and folds the event into it
(`fold`). The runner folds a whole batch of new events in memory: one query loads every
document the batch touches, one statement writes back those that changed, and the checkpoint
moves in the same transaction, so a crash never double-applies. An event a fold cannot
handle (or a stored row that no longer parses) is parked and the projection goes on; a
transient failure (the database away) leaves the projection at its checkpoint to try again.
`rebuild` folds the whole log again into any tables the connection's search path points at.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import orjson
import structlog

from shared.model.envelope import Envelope, canonical_json
from shared.model.events import EventRegistry
from shared.storage.eventstore import EventStore, StoredEvent
from shared.storage.parking import Parking

__all__ = [
    "Document",
    "Projection",
    "Unapplied",
    "apply_batch",
    "apply_round",
    "digest",
    "fold_as_of",
    "fold_stream",
    "load_document",
    "read_view",
    "reapply",
]

log = structlog.get_logger(__name__)


Document = dict[str, Any]


@dataclass(frozen=True)
class Projection:
    """A pure fold of envelopes into documents, keyed by `key(envelope)` (None: not mine).

    With a `registry`, envelopes of older schema versions are upcast before the fold sees
    them, so folds only ever read current data (stored rows are never rewritten).

    `partitioned` (the usual case) says every document's events come from one stream, in
    version order: such a projection can be folded in stream-hash segments by several
    instances, and an event at or below the version a document already folded is skipped,
    so applying a stretch of the log twice changes nothing. A document folded across streams
    (a coach's roll-up) is not partitioned. `event_types`, when given, are the only types
    `key` ever answers for: a rebuild reads no other.
    """

    name: str
    key: Callable[[Envelope], str | None]
    fold: Callable[[Document | None, Envelope], Document | None]
    registry: EventRegistry | None = None
    partitioned: bool = True
    event_types: frozenset[str] | None = None

    def apply(self, document: Document | None, envelope: Envelope) -> Document | None:
        """Fold one envelope, upcast to its current schema version."""
        if self.registry is not None:
            envelope = self.registry.upcast_envelope(envelope)
        return self.fold(document, envelope)


@dataclass(frozen=True)
class Unapplied:
    """An event a projection could not fold, and why."""

    projection: str
    item: StoredEvent
    error: str

    def parking(self) -> Parking:
        return Parking(
            kind="projection",
            name=self.projection,
            event_id=self.item.event_id,
            message=self.item.raw.encode(),
            error=self.error,
            stream_id=self.item.stream_id,
            event_type=self.item.event_type,
            position=self.item.position,
        )


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
    return orjson.loads(row["doc"]), int(row["version"])


# A round's documents, of every projection it folds: one load, one write.
_LOAD_MANY_SQL = (
    "SELECT d.projection, d.id, d.doc, d.version FROM documents d"
    " JOIN unnest($1::text[], $2::text[]) AS k(projection, id)"
    " ON d.projection = k.projection AND d.id = k.id"
    " ORDER BY d.projection, d.id FOR UPDATE OF d"
)
_WRITE_MANY_SQL = (
    "INSERT INTO documents (projection, id, doc, version, updated_at)"
    " SELECT d.projection, d.id, d.doc, d.version, now()"
    " FROM unnest($1::text[], $2::text[], $3::jsonb[], $4::integer[])"
    " AS d(projection, id, doc, version)"
    " ON CONFLICT (projection, id) DO UPDATE"
    " SET doc = EXCLUDED.doc, version = EXCLUDED.version, updated_at = now()"
)


@dataclass
class _Folding:
    """Documents of one projection being folded in memory."""

    projection: Projection
    keyed: list[tuple[str, Envelope]] = field(default_factory=list)
    documents: dict[str, Document] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    changed: set[str] = field(default_factory=set)
    touched: int = 0


async def apply_batch(
    conn: asyncpg.Connection,
    projection: Projection,
    batch: Sequence[StoredEvent],
    *,
    skip_folded: bool = True,
) -> tuple[int, list[Unapplied]]:
    """Fold a batch of events into one projection's documents (see `apply_round`)."""
    touched, unapplied = await apply_round(conn, [(projection, batch)], skip_folded=skip_folded)
    return touched[projection.name], unapplied


async def apply_round(
    conn: asyncpg.Connection,
    work: Sequence[tuple[Projection, Sequence[StoredEvent]]],
    *,
    skip_folded: bool = True,
) -> tuple[dict[str, int], list[Unapplied]]:
    """Fold batches of events into their projections' documents: one load and one write for
    all of them (the documents locked in one order, projection then id).

    Returns how many events touched each projection, and the events a projection could not
    fold (unparseable rows, folds that raised); those are left out, the rest still apply. A
    partitioned projection skips events its documents folded already, unless not
    `skip_folded` (a parked event applied late, after later ones).
    """
    unapplied: list[Unapplied] = []
    foldings: list[_Folding] = []
    for projection, batch in work:
        folding = _Folding(projection)
        for item in batch:
            try:
                envelope = item.envelope
                key = projection.key(envelope)
            except Exception as error:
                unapplied.append(
                    Unapplied(projection.name, item, f"{type(error).__name__}: {error}")
                )
                continue
            if key is not None:
                folding.keyed.append((key, envelope))
        if folding.keyed:
            foldings.append(folding)
    touched = {projection.name: 0 for projection, _ in work}
    if not foldings:
        return touched, unapplied
    wanted = sorted({(f.projection.name, key) for f in foldings for key, _ in f.keyed})
    rows = await conn.fetch(_LOAD_MANY_SQL, [p for p, _ in wanted], [k for _, k in wanted])
    by_name = {folding.projection.name: folding for folding in foldings}
    for row in rows:
        loaded = by_name[row["projection"]]
        loaded.documents[row["id"]] = orjson.loads(row["doc"])
        loaded.versions[row["id"]] = int(row["version"])
    items = {item.event_id: item for _, batch in work for item in batch}
    for folding in foldings:
        unapplied.extend(_fold(folding, items, skip_folded))
        touched[folding.projection.name] = folding.touched
    changed = [(f, key) for f in foldings for key in sorted(f.changed)]
    if changed:
        await conn.execute(
            _WRITE_MANY_SQL,
            [f.projection.name for f, _ in changed],
            [key for _, key in changed],
            [_json(f.documents[key]) for f, key in changed],
            [f.versions[key] for f, key in changed],
        )
    return touched, unapplied


def _fold(folding: _Folding, items: dict[str, StoredEvent], skip_folded: bool) -> list[Unapplied]:
    """Fold one projection's keyed events into its loaded documents, in memory."""
    projection = folding.projection
    unapplied: list[Unapplied] = []
    for key, envelope in folding.keyed:
        folded = folding.versions.get(key, 0)
        if skip_folded and projection.partitioned and envelope.stream_version <= folded:
            continue  # folded already (a stretch of the log applied again)
        try:
            document = projection.apply(folding.documents.get(key), envelope)
        except Exception as error:
            item = items[envelope.event_id]
            unapplied.append(Unapplied(projection.name, item, f"{type(error).__name__}: {error}"))
            continue
        folding.touched += 1
        if document is None:
            continue
        folding.documents[key] = document
        version = envelope.stream_version
        folding.versions[key] = max(folded, version) if projection.partitioned else version
        folding.changed.add(key)
    return unapplied


def _json(document: Document) -> str:
    return orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS).decode()


async def reapply(conn: asyncpg.Connection, projection: Projection, item: StoredEvent) -> None:
    """Fold one (parked) event into its document as the document stands now; raises what
    the fold raises."""
    _, unapplied = await apply_batch(conn, projection, [item], skip_folded=False)
    if unapplied:
        raise ValueError(unapplied[0].error)


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
        sha.update(canonical_json([row["id"], orjson.loads(row["doc"]), row["version"]]))
        sha.update(b"\n")
        count += 1
    return sha.hexdigest(), count
