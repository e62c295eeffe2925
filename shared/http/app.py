"""Assembling a service's ASGI app: the HTTP edge every service shares (problem+json, body
limits, health, metrics), and a lifespan that opens the service's core, builds its application
object once and hands it to its routes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from faststream.specification import AsyncAPI

from shared.http.admin_routes import admin_routes
from shared.http.api_docs import serve_docs
from shared.http.audit_routes import audit_routes
from shared.security.tokens import TokenVerifier
from shared.http.body_limit import BodyLimit
from shared.model.clock import Clock
from shared.runtime.config import Settings
from shared.security.crypto import KeyVault
from shared.storage.eventstore import EventStore
from shared.http.gate import ServiceApp
from shared.runtime.lifecycle import ServiceCore, Subscription, Worker, open_core, start_core
from shared.http.openapi import document_problems
from shared.http.operations import HealthCheck, Observe, add_operations
from shared.http.problems import ConnectionLost, add_problem_handlers
from shared.model.projections import Projection
from shared.http.routes import Edge

__all__ = ["ServiceDefinition", "create_app", "service_app"]

log = structlog.get_logger(__name__)


def create_app(
    service: str,
    *,
    version: str = "0.1.0",
    health_checks: dict[str, HealthCheck],
    lifespan: Any = None,
    description: str = "",
    on_connection_lost: ConnectionLost | None = None,
) -> ServiceApp:
    """A FastAPI app with the contract's error format, body limits, /health and /metrics,
    and the command gate in front (`shared.http.gate`).

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
    app.add_middleware(BodyLimit)
    app.add_middleware(Observe, metrics=app.metrics)
    add_operations(app, health_checks)
    return app


A = TypeVar("A")
Routes = Callable[[FastAPI, Callable[[], A], Edge], None]


@dataclass(frozen=True)
class ServiceDefinition(Generic[A]):
    """What makes one service: its log's schema and topic, its projections, and how its
    application object is built from a core and exposed (routes, Kafka subscriptions and
    background workers). A service's `bootstrap.py` writes one; `service_app` runs it."""

    name: str
    description: str
    migrations: str
    projections: Sequence[Projection]
    topic: str | None
    application: Callable[[EventStore, KeyVault, Clock], A]
    routes: Routes[A]
    subscriptions: Callable[[A], Sequence[Subscription]] | None = None
    workers: Callable[[ServiceCore, A], dict[str, Worker]] | None = None

    def app(self, settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
        """The service as an ASGI app; connections open in its lifespan."""
        return service_app(self, settings, clock=clock)


def service_app(
    definition: ServiceDefinition[A],
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
) -> FastAPI:
    """A FastAPI app whose lifespan opens the service's core, builds its application object
    from it once, and closes the core again.

    `definition.routes(app, application, edge)` attaches the routes; `application` and the
    edge's callables answer once the app runs. Every service also serves the audit read of
    its log, the parked events and its AsyncAPI document.
    """
    settings = settings or Settings()
    name = definition.name
    holder: dict[str, Any] = {}

    def current() -> ServiceCore:
        core: ServiceCore = holder["core"]
        return core

    def current_application() -> A:
        built: A = holder["application"]
        return built

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        core = await open_core(
            name,
            settings,
            migrations=definition.migrations,
            projections=definition.projections,
            topic=definition.topic,
            clock=clock,
        )
        built = definition.application(core.store, core.vault, core.clock)
        holder["core"] = core
        holder["application"] = built
        app.state.core = core
        app.state.application = built
        for subscription in definition.subscriptions(built) if definition.subscriptions else ():
            core.subscribe(subscription)
        await start_core(core, definition.workers(core, built) if definition.workers else None)
        log.info("service_started", service=name)
        try:
            yield
        finally:
            await core.close()
            log.info("service_stopped", service=name)

    async def database_ok() -> bool:
        return await current().database_ok()

    async def broker_ok() -> bool:
        return await current().broker_ok()

    async def drop_pooled_connections() -> None:
        await current().pool.expire_connections()

    description = definition.description
    app = create_app(
        name,
        health_checks={"database": database_ok, "broker": broker_ok},
        lifespan=lifespan,
        description=description,
        on_connection_lost=drop_pooled_connections,
    )

    def tokens() -> TokenVerifier:
        return current().tokens

    definition.routes(app, current_application, Edge(tokens, lambda: current().idempotency))
    audit_routes(app, lambda: current().store, tokens)
    admin_routes(app, lambda: current().parked, tokens)
    document_problems(app)

    @app.get("/asyncapi.json", tags=["operations"], include_in_schema=False)
    async def asyncapi() -> JSONResponse:
        """The service's Kafka interface (AsyncAPI 3), generated by FastStream."""
        specification = AsyncAPI(
            current().broker, title=f"Rapport {name}", description=description
        ).to_specification()
        return JSONResponse(specification.to_jsonable())

    return app
