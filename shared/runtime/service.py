"""A service as one declaration (`ServiceDefinition`) and the ASGI app that runs it: a lifespan
that opens the service's core, builds its application object once and hands it to its routes,
which the shared HTTP edge (`shared.http.app`) serves."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import structlog
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from faststream.specification import AsyncAPI

from shared.http.admin_routes import admin_routes
from shared.http.app import create_app
from shared.http.audit_routes import audit_routes
from shared.http.openapi import document_problems
from shared.http.routes import Edge
from shared.model.clock import Clock
from shared.model.projections import Projection
from shared.runtime.config import Settings
from shared.runtime.lifecycle import ServiceCore, Subscription, Worker, open_core, start_core
from shared.security.tokens import TokenVerifier
from shared.storage.eventstore import EventStore
from shared.storage.keyvault import KeyVault
from shared.usecases.access import Rule

__all__ = ["ServiceDefinition", "service_app"]

log = structlog.get_logger(__name__)


A = TypeVar("A")
Routes = Callable[[FastAPI, Callable[[], A], Edge], None]


@dataclass(frozen=True)
class ServiceDefinition(Generic[A]):
    """What makes one service, declared once: its name (its log's schema), the port it serves
    on unless `RAPPORT_<NAME>_PORT` says otherwise, the topic it publishes its log to (the
    topics it consumes are its subscriptions'), its projections, and how its application
    object is built from a core and exposed (routes, Kafka subscriptions and background
    workers). A service's `bootstrap.py` writes one; `service_app` runs it, `python -m
    services.<name>` serves it (`shared.runtime.server.main`)."""

    name: str
    port: int
    description: str
    migrations: str
    projections: Sequence[Projection]
    topic: str | None
    application: Callable[[EventStore, KeyVault, Clock], A]
    routes: Routes[A]
    subscriptions: Callable[[A], Sequence[Subscription]] | None = None
    workers: Callable[[ServiceCore, A], dict[str, Worker]] | None = None
    access: Mapping[str, Rule] = field(default_factory=dict)
    """The rules of the one access policy this service's use cases apply, by what they guard."""

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
