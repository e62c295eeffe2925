"""Trust rules (contract §3): pure functions of counts taken from the log."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T", bound=str)

RECENT_VERIFICATIONS = 5
REFUTED_FOR_PATTERN = 3
VIOLATION_PENALTY = 10
NEW_ENGAGEMENT_SCORE = 100


def score(confirmed: int, refuted: int, open_client_violations: int) -> int:
    """floor(100 * (confirmed + 2) / (confirmed + refuted + 2) + 0.5) - 10 * open client
    violations, clamped to 0..100; exact in integers (floor(a/b + 1/2) = (2a + b) // 2b)."""
    numerator = 100 * (confirmed + 2)
    denominator = confirmed + refuted + 2
    rounded = (2 * numerator + denominator) // (2 * denominator)
    return max(0, min(100, rounded - VIOLATION_PENALTY * open_client_violations))


def most_recent(outcomes: Sequence[T], outcome: T) -> tuple[T, ...]:
    """The window of the most recent verification outcomes after one more."""
    return (*outcomes, outcome)[-RECENT_VERIFICATIONS:]


def deception_pattern(recent_outcomes: Sequence[str]) -> bool:
    """True when at least 3 of the 5 most recent verifications are refuted."""
    window = list(recent_outcomes)[-RECENT_VERIFICATIONS:]
    return sum(1 for outcome in window if outcome == "refuted") >= REFUTED_FOR_PATTERN
