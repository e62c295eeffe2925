"""Which failures are transient: the database or broker away, busy or restarting.

One classification serves every caller: the inbox retries a transient failure and never
dead-letters it, the HTTP edge answers it with 503 and `Retry-After`, the relay and the
projection runner back off and try again. Anything else is a fault of the message or the code:
dead-lettered or parked, answered with 500.
"""

from __future__ import annotations

import asyncpg
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

__all__ = [
    "TRANSIENT_SQLSTATE_CLASSES",
    "DependencyUnavailable",
    "is_connection_lost",
    "is_transient",
]

# SQLSTATE classes that say "the database is away or busy", not "this request is bad":
# connection exceptions, transaction rollbacks (serialization, deadlock), insufficient
# resources (too many connections), operator intervention (shutdown, cannot connect now).
TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "57")


class DependencyUnavailable(Exception):
    """A dependency (database or broker) cannot be reached right now; try again later."""

    def __init__(self, dependency: str, detail: str) -> None:
        super().__init__(f"{dependency} unavailable: {detail}")
        self.dependency = dependency
        self.detail = detail


def _sqlstate_is_transient(error: BaseException) -> bool:
    sqlstate = str(getattr(error, "sqlstate", "") or "")
    return sqlstate[:2] in TRANSIENT_SQLSTATE_CLASSES


def is_transient(error: BaseException) -> bool:
    """Whether trying the same thing again later may succeed.

    Transient: the socket refused, missing or reset (`OSError`), a timeout, asyncpg's
    interface and protocol-state errors (a connection broken mid-operation, e.g.
    "cannot switch to state 15; another operation (2) is in progress" after the server
    terminated it), SQLSTATE classes 08/40/53/57, our own `DependencyUnavailable`, and
    Kafka's connection, timeout and retriable errors. Not transient: bad data
    (`asyncpg.DataError`), constraint violations, and every other error.
    """
    if isinstance(error, DependencyUnavailable | TimeoutError | OSError):
        return True
    if isinstance(error, asyncpg.DataError):
        return False
    if isinstance(error, asyncpg.InterfaceError | asyncpg.InternalClientError):
        return True
    if isinstance(error, asyncpg.PostgresError):
        return _sqlstate_is_transient(error)
    if isinstance(error, KafkaConnectionError | KafkaTimeoutError):
        return True
    return isinstance(error, KafkaError) and bool(getattr(error, "retriable", False))


def is_connection_lost(error: BaseException) -> bool:
    """Whether the failure says a database connection (or every connection) is gone: the
    pool's idle connections are then suspect too."""
    if isinstance(error, OSError | asyncpg.InternalClientError):
        return True
    if isinstance(error, asyncpg.DataError):
        return False
    if isinstance(error, asyncpg.InterfaceError):
        return True
    sqlstate = str(getattr(error, "sqlstate", "") or "")
    return sqlstate[:2] == "08" or sqlstate in ("57P01", "57P02", "57P03")
