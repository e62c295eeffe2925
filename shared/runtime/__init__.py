"""Running a service: settings, logs, its life from start to stop, the server."""

from shared.runtime.config import (
    Settings,
)
from shared.runtime.lifecycle import (
    CONSUMER_BATCH,
    MissingSecret,
    ServiceCore,
    Subscription,
    Worker,
    connect_with_retry,
    open_core,
    require,
    start_core,
)
from shared.runtime.logs import (
    configure_logging,
)
from shared.runtime.parked import (
    ParkedEvents,
    RetryFailed,
)
from shared.runtime.server import (
    embedded_server,
    http_limits,
    main,
    run_forever,
    worker_app,
)
from shared.runtime.service import (
    ServiceDefinition,
    service_app,
)

__all__ = [
    "CONSUMER_BATCH",
    "MissingSecret",
    "ParkedEvents",
    "RetryFailed",
    "ServiceCore",
    "ServiceDefinition",
    "Settings",
    "Subscription",
    "Worker",
    "configure_logging",
    "connect_with_retry",
    "embedded_server",
    "http_limits",
    "main",
    "open_core",
    "require",
    "run_forever",
    "service_app",
    "start_core",
    "worker_app",
]
