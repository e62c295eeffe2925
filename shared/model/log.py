"""What appending to a stream says besides the events: who and why (`EventMetadata`), where
the stream ended (`Head`), and the refusal when it moved on meanwhile (`ConcurrencyConflict`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from shared.model.envelope import GENESIS_HASH, SYSTEM_ACTOR, Actor, Envelope

__all__ = ["EMPTY", "ConcurrencyConflict", "EventMetadata", "Head"]


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
