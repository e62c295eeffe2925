"""The services of Rapport and their projections: the one list the CLI's commands (`dev`,
`audit`, `backup`, the report) read."""

from __future__ import annotations

import importlib

from shared.projections import Projection

__all__ = ["SERVICES", "projections_of"]

# In start order; each keeps its log in the database schema of its name.
SERVICES = ("intake", "engagement", "notifications")


def projections_of(service: str) -> tuple[Projection, ...]:
    """The service's projection registry: `PROJECTIONS` of its projections package (imported
    only when asked for, so that commands which do not fold start fast)."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; one of {', '.join(SERVICES)}")
    package = importlib.import_module(f"services.{service}.projections")
    projections: tuple[Projection, ...] = tuple(package.PROJECTIONS)
    return projections
