"""Notifications' composition root: the one place that wires its parts together."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI

from services.notifications.application.delivery import DeliveryWorker
from services.notifications.application.handlers import NotificationService
from services.notifications.domain.rules import HANDLED
from services.notifications.entrypoints.http import build_routes
from services.notifications.projections import PROJECTIONS
from shared.clock import Clock
from shared.config import Settings
from shared.kafka import ENGAGEMENT_TOPIC, INTAKE_TOPIC, NOTIFICATIONS_TOPIC
from shared.service import ServiceCore, Subscription, Worker, open_core, service_app

NAME = "notifications"


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """The notifications service as an ASGI app; connections open in its lifespan."""
    settings = settings or Settings()

    async def core() -> ServiceCore:
        return await open_core(
            NAME,
            settings,
            migrations="services.notifications.adapters.migrations",
            projections=PROJECTIONS,
            topic=NOTIFICATIONS_TOPIC,
            clock=clock,
        )

    def application(core: ServiceCore) -> NotificationService:
        return NotificationService(core.store, core.vault, core.clock)

    def subscriptions(service: NotificationService) -> Sequence[Subscription]:
        return [
            Subscription(
                [INTAKE_TOPIC, ENGAGEMENT_TOPIC],
                "notifications-rules",
                service.on_event,
                handles=HANDLED,
            )
        ]

    def workers(core: ServiceCore, service: NotificationService) -> dict[str, Worker]:
        worker = DeliveryWorker(core.store, core.vault, core.clock, core.settings)
        return {"deliveries": worker.run}

    return service_app(
        core,
        application,
        build_routes,
        name=NAME,
        description="Notification rules, schedules and webhook delivery.",
        subscriptions=subscriptions,
        workers=workers,
    )
