"""Projections: pure folds of the log into read documents.

A projection names the document an event touches (`key`) and folds the event into it
(`fold`). The read side (`shared.reads`) keeps the documents caught up with the log and
rebuilds them; storage (`shared.storage.documents`) keeps them in PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from shared.model.envelope import Envelope
from shared.model.events import EventRegistry

__all__ = ["Document", "Projection", "fold_stream"]

Document = dict[str, Any]
"""A read document: a JSON object."""


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


def fold_stream(
    projection: Projection, envelopes: Sequence[Envelope], document: Document | None = None
) -> Document | None:
    """The pure fold of a sequence of one key's envelopes."""
    for envelope in envelopes:
        if projection.key(envelope) is not None:
            document = projection.apply(document, envelope) or document
    return document
