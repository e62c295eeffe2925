"""`rapport dev`'s supervisor: the pause before restarting a child doubles while it keeps
exiting soon after its start, and the stack gives up on a child that keeps failing at start."""

from __future__ import annotations

from rapport.infra.launcher import RestartPolicy, Restarts

POLICY = RestartPolicy()


def test_a_child_that_keeps_failing_at_start_waits_longer_each_time_then_is_given_up() -> None:
    restarts = Restarts(POLICY)
    delays = [restarts.exited(ran_for=1.0, was_healthy=False) for _ in range(5)]
    assert delays == [0.5, 1.0, 2.0, 4.0, None]  # the fifth failed start in a row: give up


def test_a_child_that_crashes_soon_after_each_healthy_start_backs_off_up_to_the_cap() -> None:
    restarts = Restarts(POLICY)
    delays = []
    for _ in range(10):
        restarts.healthy()
        delays.append(restarts.exited(ran_for=5.0, was_healthy=True))
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]  # never gives up


def test_a_child_that_ran_a_while_starts_again_at_once_and_its_failures_start_over() -> None:
    restarts = Restarts(POLICY)
    for _ in range(4):
        restarts.exited(ran_for=1.0, was_healthy=False)
    assert restarts.exited(ran_for=POLICY.stable_after, was_healthy=True) == POLICY.first_delay
    assert restarts.failed_starts == 0
    assert restarts.exited(ran_for=1.0, was_healthy=False) == 1.0  # a quick exit again


def test_a_slow_start_that_never_answered_is_not_a_failed_start() -> None:
    restarts = Restarts(POLICY)
    for _ in range(POLICY.max_failed_starts + 2):
        delay = restarts.exited(ran_for=POLICY.start_window + 1, was_healthy=False)
        assert delay is not None
    assert restarts.failed_starts == 0
