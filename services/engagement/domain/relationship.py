"""The relationship itself (contract section 7): pure rules over six-factor check-ins.

Concerns: a concern opens on a factor when the client rates it 2 or lower in two consecutive
client check-ins, and closes when the client next rates that factor 4 or higher; a factor has
at most one open concern. When a concern is still open at the client's third consecutive low
rating of its factor, supervision is recommended, once per concern. Coach check-ins never
touch concerns.

The figures the views show: health (from the client's latest ratings), the mean of a rater's
last three check-ins, and the gap between the coach's and the client's latest ratings. Means
are rounded to 2 decimals half up, exactly (in integers), so every replay prints the same
digits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from services.engagement.domain.events import (
    FACTORS,
    Factor,
    RelationshipCheckInRecorded,
    RelationshipConcernRaised,
    RelationshipConcernResolved,
    SupervisionRecommended,
)
from shared.model.events import DomainEvent

LOWEST, HIGHEST = 1, 5
LOW = 2  # a rating at or below this is low
RESOLVING = 4  # a rating at or above this closes an open concern
LOWS_TO_RAISE = 2  # consecutive low client ratings that open a concern
LOWS_TO_SUPERVISE = 3  # consecutive low client ratings, concern still open: supervision
RECENT_CHECKINS = 3  # the averages are over each rater's last three check-ins

Ratings = Mapping[Factor, int]


@dataclass(frozen=True)
class Concerns:
    """What the concern rules remember of the client's check-ins.

    `low_streaks`: per factor, how many consecutive client check-ins rated it low (up to now).
    `open`: the factors with an open concern, each with whether supervision was already
    recommended for that concern.
    """

    low_streaks: Mapping[Factor, int] = field(default_factory=dict)
    open: Mapping[Factor, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Judgement:
    """What one client check-in does to the concerns, each in the order of `FACTORS`."""

    raised: tuple[Factor, ...] = ()
    resolved: tuple[Factor, ...] = ()
    supervise: tuple[Factor, ...] = ()


def streaks_after(streaks: Mapping[Factor, int], ratings: Ratings) -> dict[Factor, int]:
    """The consecutive-low counts after one more client check-in."""
    return {
        factor: streaks.get(factor, 0) + 1 if ratings[factor] <= LOW else 0 for factor in FACTORS
    }


def judge(concerns: Concerns, ratings: Ratings) -> Judgement:
    """The concerns a client check-in with these ratings opens, closes or escalates."""
    streaks = streaks_after(concerns.low_streaks, ratings)
    raised: list[Factor] = []
    resolved: list[Factor] = []
    supervise: list[Factor] = []
    for factor in FACTORS:
        is_open = factor in concerns.open
        if is_open and ratings[factor] >= RESOLVING:
            resolved.append(factor)
        elif not is_open and streaks[factor] >= LOWS_TO_RAISE:
            raised.append(factor)
        elif is_open and streaks[factor] >= LOWS_TO_SUPERVISE and not concerns.open[factor]:
            supervise.append(factor)
    return Judgement(tuple(raised), tuple(resolved), tuple(supervise))


def evolve(concerns: Concerns, event: DomainEvent) -> Concerns:
    """The concerns after an event of the engagement stream (others leave them as they are)."""
    match event:
        case RelationshipCheckInRecorded(rater="client"):
            return replace(concerns, low_streaks=streaks_after(concerns.low_streaks, event.ratings))
        case RelationshipConcernRaised():
            return replace(concerns, open={**concerns.open, event.factor: False})
        case RelationshipConcernResolved():
            remaining = {f: s for f, s in concerns.open.items() if f != event.factor}
            return replace(concerns, open=remaining)
        case SupervisionRecommended() if event.factor in concerns.open:
            assert event.factor is not None
            return replace(concerns, open={**concerns.open, event.factor: True})
    return concerns


def in_order(ratings: Ratings) -> dict[Factor, int]:
    """The six ratings in the contract's order of factors."""
    return {factor: ratings[factor] for factor in FACTORS}


def rounded(numerator: int, denominator: int) -> float:
    """numerator / denominator rounded half up to 2 decimals, computed exactly in integers
    (floor(100 n / d + 1/2) / 100) for non-negative figures."""
    hundredths = (200 * numerator + denominator) // (2 * denominator)
    return hundredths / 100


def health(ratings: Ratings) -> int:
    """floor(100 * (mean of the six ratings - 1) / 4 + 0.5), exactly: with s the sum of the
    six, that is floor((50 * (s - 6) + 6) / 12)."""
    total = sum(ratings[factor] for factor in FACTORS)
    return (50 * (total - len(FACTORS)) + 6) // 12


def means(check_ins: Sequence[Ratings]) -> dict[Factor, float]:
    """Per factor, the mean of these check-ins' ratings (2 decimals); empty for none."""
    if not check_ins:
        return {}
    return {
        factor: rounded(sum(ratings[factor] for ratings in check_ins), len(check_ins))
        for factor in FACTORS
    }


def recent(check_ins: Iterable[Ratings], ratings: Ratings) -> list[dict[Factor, int]]:
    """The window of a rater's most recent check-ins after one more."""
    return [dict(r) for r in [*check_ins, ratings][-RECENT_CHECKINS:]]


def gaps(coach: Ratings | None, client: Ratings | None) -> dict[Factor, int]:
    """Coach's latest minus client's latest, per factor; empty unless both rated."""
    if coach is None or client is None:
        return {}
    return {factor: coach[factor] - client[factor] for factor in FACTORS}
