"""The one retry helper: its budget, its backoff, and which errors it retries."""

from __future__ import annotations

import pytest

from shared.resilience.faults import DependencyUnavailable
from shared.resilience.retry import Backoff, Retry, retrying

QUICK = Backoff(first=0.0001, most=0.001)


class Flaky:
    """Fails with `error` the first `failures` times, then answers `done`."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "done"


def test_backoff_doubles_from_its_first_delay_up_to_its_most() -> None:
    backoff = Backoff(first=0.1, most=1.0)
    assert [backoff.delay(n) for n in range(1, 7)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_jitter_draws_each_delay_between_its_share_and_the_whole() -> None:
    low = Backoff(first=1.0, jitter=0.5, draw=lambda: 1.0)
    high = Backoff(first=1.0, jitter=0.5, draw=lambda: 0.0)
    assert (low.delay(1), high.delay(1)) == (0.5, 1.0)


def test_a_pacer_starts_over_after_a_success() -> None:
    pacer = Backoff(first=1.0, most=8.0).pacer()
    assert [pacer.failed() for _ in range(3)] == [1.0, 2.0, 4.0]
    pacer.succeeded()
    assert pacer.failed() == 1.0


async def test_a_transient_fault_is_retried_until_it_passes() -> None:
    flaky = Flaky(3, DependencyUnavailable("database", "restarting"))
    told: list[int] = []
    answer = await retrying(
        flaky, Retry(attempts=5, backoff=QUICK), on_retry=lambda _, n, __: told.append(n)
    )
    assert (answer, flaky.calls, told) == ("done", 4, [1, 2, 3])


async def test_an_error_not_worth_retrying_is_raised_at_once() -> None:
    flaky = Flaky(1, ValueError("bad input"))
    with pytest.raises(ValueError):
        await retrying(flaky, Retry(attempts=5, backoff=QUICK))
    assert flaky.calls == 1


async def test_the_last_error_is_raised_once_the_attempts_are_spent() -> None:
    flaky = Flaky(10, OSError("refused"))
    with pytest.raises(OSError):
        await retrying(flaky, Retry(attempts=3, backoff=QUICK))
    assert flaky.calls == 3


async def test_a_time_budget_stops_retrying_before_a_pause_would_pass_it() -> None:
    now = 0.0

    async def sleep(pause: float) -> None:
        nonlocal now
        now += pause

    flaky = Flaky(10, OSError("refused"))
    every_second = Backoff(first=1.0, most=1.0)
    with pytest.raises(OSError):
        await retrying(
            flaky,
            Retry(attempts=None, seconds=3.0, backoff=every_second),
            clock=lambda: now,
            sleep=sleep,
        )
    assert (flaky.calls, now) == (4, 3.0)


async def test_what_is_worth_retrying_is_the_callers_choice() -> None:
    class Conflict(Exception):
        pass

    flaky = Flaky(2, Conflict())
    retry = Retry(attempts=3, backoff=QUICK, worth=lambda error: isinstance(error, Conflict))
    assert await retrying(flaky, retry) == "done"


def test_a_retry_makes_at_least_one_attempt() -> None:
    with pytest.raises(ValueError):
        Retry(attempts=0)
