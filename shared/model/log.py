"""What appending to a stream says besides the events: who and why (`EventMetadata`), where
the stream ended (`Head`), and the refusal when it moved on meanwhile (`ConcurrencyConflict`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from shared.model.envelope import (
    GENESIS_HASH,
    SYSTEM_ACTOR,
    Actor,
    Envelope,
    format_time,
    new_id,
    seal,
)
from shared.model.events import DomainEvent, dump_protected

__all__ = ["EMPTY", "ConcurrencyConflict", "EventMetadata", "Head", "chained"]


class ConcurrencyConflict(Exception):
    """The stream moved on since it was read: nothing was written."""

    def __init__(self, stream_id: str, expected: int | None, actual: int | None) -> None:
        super().__init__(f"stream {stream_id}: expected version {expected}, found {actual}")
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


@dataclass(frozen=True)
class EventMetadata:
    """What an append records besides the events themselves."""

    actor: Actor
    correlation_id: str
    causation_id: str | None = None
    occurred_at: datetime | None = None

    @classmethod
    def caused_by(cls, cause: Envelope, *, occurred_at: datetime | None = None) -> EventMetadata:
        """Metadata of the system's reaction to another event: same correlation, caused by it,
        at the cause's time unless told otherwise."""
        return cls(
            actor=SYSTEM_ACTOR,
            correlation_id=cause.correlation_id,
            causation_id=cause.event_id,
            occurred_at=occurred_at or cause.occurred,
        )


class Head(NamedTuple):
    """Where a stream ends: its last version and that event's hash."""

    version: int
    hash: str


EMPTY = Head(0, GENESIS_HASH)


def chained(
    stream_id: str,
    head: Head,
    events: Sequence[DomainEvent],
    metadata: EventMetadata,
    *,
    producer: str,
    recorded_at: datetime,
    protect: Callable[[str, str], str] | None = None,
) -> list[Envelope]:
    """The envelopes of `events` appended after `head`: numbered on from its version, each
    hash-chained to the one before, personal fields passed through `protect`."""
    version, prev_hash = head
    recorded = format_time(recorded_at)
    occurred = format_time(metadata.occurred_at or recorded_at)
    actor = metadata.actor.model_dump()
    envelopes: list[Envelope] = []
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
                "producer": producer,
                "correlation_id": metadata.correlation_id,
                "causation_id": metadata.causation_id,
                "actor": actor,
                "data": dump_protected(event, protect or (lambda _, value: value)),
                "prev_hash": prev_hash,
            }
        )
        prev_hash = envelope.hash
        envelopes.append(envelope)
    return envelopes
