"""The services of Rapport, their projections, event registries, topics and port settings: the
one list the CLI's commands (`dev`, `audit`, `backup`, `schemas`, the report), the process
launcher, the bench and the fault suite read."""

from __future__ import annotations

import importlib
from typing import Any

from shared.model.events import EventRegistry
from shared.model.projections import Projection
from shared.runtime.config import Settings
from shared.runtime.service import ServiceDefinition

__all__ = [
    "SERVICES",
    "definition_of",
    "events_of",
    "port_of",
    "port_variable",
    "projections_of",
    "service_module",
    "topic_of",
]

# In start order; each keeps its log in the database schema of its name.
SERVICES = ("intake", "engagement", "notifications")


def projections_of(service: str) -> tuple[Projection, ...]:
    """The service's projection registry: `PROJECTIONS` of its projections package (imported
    only when asked for, so that commands which do not fold start fast)."""
    package = importlib.import_module(f"{service_module(service)}.projections")
    projections: tuple[Projection, ...] = tuple(package.PROJECTIONS)
    return projections


def events_of(service: str) -> EventRegistry:
    """The service's event registry: `registry` of its `domain.events` module."""
    module = importlib.import_module(f"{service_module(service)}.domain.events")
    registry: EventRegistry = module.registry
    return registry


def topic_of(service: str) -> str:
    """The Kafka topic the service publishes its log on, from its `ServiceDefinition`."""
    module = importlib.import_module(f"{service_module(service)}.bootstrap")
    topic: str | None = module.SERVICE.topic
    if topic is None:
        raise ValueError(f"service {service!r} publishes no topic")
    return topic


def service_module(service: str) -> str:
    """The package `python -m` runs for the service."""
    return f"services.{_known(service)}"


def port_variable(service: str) -> str:
    """The setting that gives the service's port (`RAPPORT_INTAKE_PORT`, ...)."""
    return f"RAPPORT_{_known(service).upper()}_PORT"


def _known(service: str) -> str:
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; one of {', '.join(SERVICES)}")
    return service


def definition_of(service: str) -> ServiceDefinition[Any]:
    """The service's declaration: `SERVICE` of its `bootstrap` module."""
    module = importlib.import_module(f"services.{_known(service)}.bootstrap")
    definition: ServiceDefinition[Any] = module.SERVICE
    return definition


def port_of(service: str, settings: Settings) -> int:
    """The port the service serves on: `RAPPORT_<SERVICE>_PORT`, else its declared default."""
    return settings.port_of(service, definition_of(service).port)
