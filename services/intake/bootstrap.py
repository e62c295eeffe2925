"""Intake's composition root: the one place that wires its parts together."""

from __future__ import annotations

from fastapi import FastAPI

from services.intake.application.handlers import IntakeService
from services.intake.entrypoints.http import build_routes
from services.intake.projections import PROJECTIONS
from shared.clock import Clock
from shared.config import Settings
from shared.kafka import INTAKE_TOPIC
from shared.service import ServiceCore, open_core, service_app

NAME = "intake"


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """The intake service as an ASGI app; connections open in its lifespan."""
    settings = settings or Settings()

    async def core() -> ServiceCore:
        return await open_core(
            NAME,
            settings,
            migrations="services.intake.adapters.migrations",
            projections=PROJECTIONS,
            topic=INTAKE_TOPIC,
            clock=clock,
        )

    def application(core: ServiceCore) -> IntakeService:
        return IntakeService(core.store, core.vault, core.clock)

    return service_app(
        core,
        application,
        build_routes,
        name=NAME,
        description="Onboarding up to the coaching agreement: stream ClientCommitted.",
    )
