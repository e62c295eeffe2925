"""Engagement's composition root: the one place that wires its parts together."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI

from services.engagement.application.handlers import EngagementService
from services.engagement.entrypoints.http import build_routes
from services.engagement.projections import PROJECTIONS
from shared.clock import Clock
from shared.config import Settings
from shared.kafka import ENGAGEMENT_TOPIC, INTAKE_TOPIC
from shared.service import ServiceCore, Subscription, open_core, service_app

NAME = "engagement"


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """The engagement service as an ASGI app; connections open in its lifespan."""
    settings = settings or Settings()

    async def core() -> ServiceCore:
        return await open_core(
            NAME,
            settings,
            migrations="services.engagement.adapters.migrations",
            projections=PROJECTIONS,
            topic=ENGAGEMENT_TOPIC,
            clock=clock,
        )

    def application(core: ServiceCore) -> EngagementService:
        return EngagementService(core.store, core.vault, core.clock)

    def subscriptions(service: EngagementService) -> Sequence[Subscription]:
        return [
            Subscription(
                [INTAKE_TOPIC],
                "engagement-intake",
                service.on_intake_event,
                handles=EngagementService.INTAKE_EVENTS,
            )
        ]

    return service_app(
        core,
        application,
        build_routes,
        name=NAME,
        description="The working relationship, trust scores and stage views.",
        subscriptions=subscriptions,
    )
