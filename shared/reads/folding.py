"""Folding stored events into projections' documents, a round at a time.

A round folds whole batches of new events in memory: one statement loads every document the
batch touches, one writes back those that changed (`shared.storage.documents`), and the caller
moves its checkpoints in the same transaction, so a crash never double-applies. An event a fold
cannot handle (or a stored row that no longer parses) is left out as `Unapplied`, for the
caller to park; the others still apply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg

from shared.model.envelope import Envelope
from shared.model.projections import Document, Projection
from shared.storage.documents import DocumentKey, load_documents, write_documents
from shared.storage.eventstore import StoredEvent
from shared.storage.parking import Parking

__all__ = ["Unapplied", "apply_batch", "apply_round", "reapply"]


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
    wanted: list[DocumentKey] = [(f.projection.name, key) for f in foldings for key, _ in f.keyed]
    loaded = await load_documents(conn, wanted)
    by_name = {folding.projection.name: folding for folding in foldings}
    for (projection_name, key), (document, version) in loaded.items():
        by_name[projection_name].documents[key] = document
        by_name[projection_name].versions[key] = version
    items = {item.event_id: item for _, batch in work for item in batch}
    for folding in foldings:
        unapplied.extend(_fold(folding, items, skip_folded))
        touched[folding.projection.name] = folding.touched
    await write_documents(
        conn,
        [
            ((f.projection.name, key), f.documents[key], f.versions[key])
            for f in foldings
            for key in sorted(f.changed)
        ],
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


async def reapply(conn: asyncpg.Connection, projection: Projection, item: StoredEvent) -> None:
    """Fold one (parked) event into its document as the document stands now; raises what
    the fold raises."""
    _, unapplied = await apply_batch(conn, projection, [item], skip_folded=False)
    if unapplied:
        raise ValueError(unapplied[0].error)
