"""Which failures are transient: retried (and answered 503), never dead-lettered."""

from __future__ import annotations

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError, RequestTimedOutError, UnknownTopicOrPartitionError

from shared.storage.eventstore import ConcurrencyConflict
from shared.resilience.faults import DependencyUnavailable, is_connection_lost, is_transient
from shared.messaging.inbox import is_retryable


@pytest.mark.parametrize(
    "error",
    [
        FileNotFoundError(2, "No such file or directory"),  # the unix socket of a stopped server
        ConnectionRefusedError(111, "Connection refused"),
        ConnectionResetError(104, "reset"),
        TimeoutError(),
        asyncpg.InterfaceError("connection is closed"),
        asyncpg.InternalClientError(
            "cannot switch to state 15; another operation (2) is in progress"
        ),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.TooManyConnectionsError("too many clients"),
        asyncpg.exceptions.SerializationError("could not serialize"),
        asyncpg.exceptions.DeadlockDetectedError("deadlock"),
        KafkaConnectionError("broker away"),
        RequestTimedOutError(),
        UnknownTopicOrPartitionError(),  # a broker that lost its topics, until they are back
        DependencyUnavailable("broker", "down"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_a_dependency_away_busy_or_restarting_is_transient(error: Exception) -> None:
    assert is_transient(error)
    assert is_retryable(error)


@pytest.mark.parametrize(
    "error",
    [
        ValueError("a fold that cannot handle this"),
        KeyError("client_id"),
        asyncpg.DataError("invalid input for query argument"),
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
        asyncpg.exceptions.UndefinedColumnError("no such column"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_a_bad_message_or_a_bug_is_not_transient(error: Exception) -> None:
    assert not is_transient(error)


def test_a_lost_race_is_retried_but_is_no_outage() -> None:
    conflict = ConcurrencyConflict("s", 1, 2)
    assert is_retryable(conflict)
    assert not is_transient(conflict)


def test_a_broken_connection_makes_the_pooled_ones_suspect_but_a_busy_server_does_not() -> None:
    assert is_connection_lost(FileNotFoundError(2, "socket"))
    assert is_connection_lost(asyncpg.exceptions.AdminShutdownError("terminating"))
    assert is_connection_lost(asyncpg.InternalClientError("cannot switch to state 12"))
    assert not is_connection_lost(asyncpg.exceptions.SerializationError("retry"))
    assert not is_connection_lost(asyncpg.exceptions.TooManyConnectionsError("too many"))
