"""Notifications' composition root: the one place that wires its parts together."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.notifications.adapters import tables
from services.notifications.application.access import ACCESS
from services.notifications.application.delivery import DeliveryWorker
from services.notifications.application.services import NotificationService
from services.notifications.domain.rules import HANDLED
from services.notifications.entrypoints.http import build_routes
from services.notifications.projections import PROJECTIONS
from shared.model.clock import Clock
from shared.runtime.config import Settings
from shared.runtime.lifecycle import ServiceCore, Subscription, Worker
from shared.runtime.service import ServiceDefinition
from shared.storage.documents import StoredDocuments
from shared.storage.eventstore import EventStore
from shared.storage.keyvault import KeyVault
from shared.storage.units import PostgresUnitsOfWork

NAME = "notifications"
TOPIC = "notifications.events"  # contract section 4
# What the intake and the engagement publish (contract section 4).
INTAKE_EVENTS, ENGAGEMENT_EVENTS = "intake.events", "engagement.events"


def build(store: EventStore, vault: KeyVault, clock: Clock) -> NotificationService:
    """The notifications' application object, built once per running service."""
    units = PostgresUnitsOfWork(store, vault)
    return NotificationService(units, StoredDocuments(store), vault, clock, tables)


def delivery_worker(
    store: EventStore, vault: KeyVault, clock: Clock, settings: Settings, **options: Any
) -> DeliveryWorker:
    """A worker delivering due notifications to their webhooks (`options`: its knobs), woken
    by every commit of this instance."""
    units = PostgresUnitsOfWork(store, vault)
    wake = store.appended.subscribe()
    return DeliveryWorker(units, vault, clock, settings, wake=wake, **options)


def subscriptions(service: NotificationService) -> Sequence[Subscription]:
    """Both topics' events are planned into notifications."""
    return [
        Subscription(
            [INTAKE_EVENTS, ENGAGEMENT_EVENTS],
            "notifications-rules",
            service.on_event,
            handles=HANDLED,
        )
    ]


def workers(core: ServiceCore, service: NotificationService) -> dict[str, Worker]:
    return {"deliveries": delivery_worker(core.store, core.vault, core.clock, core.settings).run}


SERVICE = ServiceDefinition(
    name=NAME,
    port=8003,
    description="Notification rules, schedules and webhook delivery.",
    migrations="services.notifications.adapters.migrations",
    projections=PROJECTIONS,
    topic=TOPIC,
    application=build,
    routes=build_routes,
    access=ACCESS,
    subscriptions=subscriptions,
    workers=workers,
)


create_app = SERVICE.app  # the ASGI app; `python -m services.notifications` serves it
