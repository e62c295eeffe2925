"""Engagement's composition root: the one place that wires its parts together."""

from __future__ import annotations

from collections.abc import Sequence

from services.engagement.application.access import ACCESS
from services.engagement.application.services import EngagementService
from services.engagement.entrypoints.http import build_routes
from services.engagement.projections import PROJECTIONS
from shared.model.clock import Clock
from shared.runtime.lifecycle import Subscription
from shared.runtime.service import ServiceDefinition
from shared.storage.documents import StoredDocuments
from shared.storage.eventstore import EventStore
from shared.storage.keyvault import KeyVault
from shared.storage.units import PostgresUnitsOfWork

NAME = "engagement"
TOPIC = "engagement.events"  # contract section 4
INTAKE_EVENTS = "intake.events"  # what the intake publishes (contract section 4)


def build(store: EventStore, vault: KeyVault, clock: Clock) -> EngagementService:
    """The engagement's application object, built once per running service."""
    return EngagementService(
        PostgresUnitsOfWork(store, vault), StoredDocuments(store), vault, clock
    )


def subscriptions(service: EngagementService) -> Sequence[Subscription]:
    """The intake's events open engagements and erase their clients' data."""
    return [
        Subscription(
            [INTAKE_EVENTS],
            "engagement-intake",
            service.on_intake_event,
            handles=EngagementService.INTAKE_EVENTS,
        )
    ]


SERVICE = ServiceDefinition(
    name=NAME,
    port=8002,
    description="The working relationship, trust scores and stage views.",
    migrations="services.engagement.adapters.migrations",
    projections=PROJECTIONS,
    topic=TOPIC,
    application=build,
    routes=build_routes,
    access=ACCESS,
    subscriptions=subscriptions,
)


create_app = SERVICE.app  # the ASGI app; `python -m services.engagement` serves it
