"""Assembling a service's ASGI app: the one pipeline every request passes
(`shared.http.pipeline`: metrics, problem+json, body limits), health, metrics and docs, around
the service's routes."""

from __future__ import annotations

from typing import Any

from shared.http.api_docs import serve_docs
from shared.http.operations import HealthCheck, add_operations
from shared.http.pipeline import ServiceApp
from shared.http.problems import ConnectionLost, add_problem_handlers

__all__ = ["create_app"]


def create_app(
    service: str,
    *,
    version: str = "0.1.0",
    health_checks: dict[str, HealthCheck],
    lifespan: Any = None,
    description: str = "",
    on_connection_lost: ConnectionLost | None = None,
) -> ServiceApp:
    """A FastAPI app behind the one pipeline, with the contract's error format, /health,
    /metrics and /docs.

    `on_connection_lost` is called when a request failed because a database connection
    broke (the service then drops its pooled connections instead of failing on each).
    """
    app = ServiceApp(
        service,
        title=f"Rapport {service}",
        version=version,
        lifespan=lifespan,
        description=description,
        docs_url=None,  # `serve_docs` serves it, from a package instead of a CDN
        redoc_url=None,  # ReDoc would load from a CDN too; Swagger UI is the one docs page
    )
    serve_docs(app)
    add_problem_handlers(app, on_connection_lost)
    add_operations(app, health_checks)
    return app
