"""The one way to try again: an attempt budget, exponential backoff with full jitter, and a
classification of what is worth retrying (by default the kernel's one idea of a transient
fault, `shared.resilience.faults.is_transient`).

`retrying` runs an operation until it succeeds, fails with an error not worth retrying, or
spends its budget (attempts, or seconds). `Backoff` alone paces loops that run for ever (a
relay, a projection runner): a failure waits longer each time, a success starts again from the
first delay. Each caller keeps its own budget and its own logging (`on_retry`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from shared.resilience.faults import is_transient

__all__ = ["Backoff", "Pacer", "Retry", "retrying"]

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Delays growing by `factor` from `first` up to `most`, each drawn at random between
    `(1 - jitter)` and 1 of its value, so a crowd of retrying callers spreads out."""

    first: float = 0.1
    most: float = 5.0
    factor: float = 2.0
    jitter: float = 0.0
    draw: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def delay(self, failures: int) -> float:
        """The pause after the `failures`-th failure in a row (1 for the first)."""
        ceiling = min(self.first * self.factor ** max(failures - 1, 0), self.most)
        return ceiling * (1.0 - self.jitter * self.draw())

    def pacer(self) -> Pacer:
        """A fresh count of failures in a row, for a loop that runs for ever."""
        return Pacer(self)


class Pacer:
    """A loop's failures in a row: `failed()` is the pause to take now, `succeeded()` starts
    over from the first delay."""

    def __init__(self, backoff: Backoff) -> None:
        self._backoff = backoff
        self.failures = 0

    def failed(self) -> float:
        self.failures += 1
        return self._backoff.delay(self.failures)

    def succeeded(self) -> None:
        self.failures = 0


@dataclass(frozen=True)
class Retry:
    """How to retry one operation: at most `attempts` tries (None: no limit) within
    `seconds` (None: no limit), pausing by `backoff`, only after errors `worth` retrying."""

    attempts: int | None = 5
    seconds: float | None = None
    backoff: Backoff = Backoff()
    worth: Callable[[BaseException], bool] = is_transient

    def __post_init__(self) -> None:
        if self.attempts is not None and self.attempts < 1:
            raise ValueError("a retry makes at least one attempt")


OnRetry = Callable[[BaseException, int, float], None]
"""Told of each failure that will be retried: the error, the attempt that failed, the pause."""


async def retrying(
    operation: Callable[[], Awaitable[T]],
    retry: Retry,
    *,
    on_retry: OnRetry | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """`operation()`'s result, trying again after each failure `retry` says is worth it; the
    last error is raised once the budget is spent (or at once, when not worth retrying)."""
    started = clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            return await operation()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if not retry.worth(error):
                raise
            if retry.attempts is not None and attempt >= retry.attempts:
                raise
            pause = retry.backoff.delay(attempt)
            if retry.seconds is not None and clock() + pause - started > retry.seconds:
                raise
            if on_retry is not None:
                on_retry(error, attempt, pause)
            await sleep(pause)
