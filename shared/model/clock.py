"""Time as a port: rules never read the wall clock themselves."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

__all__ = [
    "Clock",
    "FixedClock",
    "SystemClock",
]


class Clock(Protocol):
    """Tells the current time (timezone-aware, UTC)."""

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...


class SystemClock:
    """The wall clock, for production wiring."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock tests move by hand."""

    def __init__(self, at: datetime) -> None:
        self._at = at

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = at
