"""Which failures are transient, and the one way to try again."""

from shared.resilience.faults import (
    TRANSIENT_SQLSTATE_CLASSES,
    DependencyUnavailable,
    is_connection_lost,
    is_transient,
)
from shared.resilience.retry import (
    Backoff,
    Pacer,
    Retry,
    retrying,
)

__all__ = [
    "TRANSIENT_SQLSTATE_CLASSES",
    "Backoff",
    "DependencyUnavailable",
    "Pacer",
    "Retry",
    "is_connection_lost",
    "is_transient",
    "retrying",
]
