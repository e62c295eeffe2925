"""Intake's composition root: the one place that wires its parts together."""

from __future__ import annotations

from services.intake.application.access import ACCESS
from services.intake.application.services import IntakeService
from services.intake.entrypoints.http import build_routes
from services.intake.projections import PROJECTIONS
from shared.model.clock import Clock
from shared.runtime.service import ServiceDefinition
from shared.storage.documents import StoredDocuments
from shared.storage.eventstore import EventStore
from shared.storage.keyvault import KeyVault
from shared.storage.units import PostgresUnitsOfWork

NAME = "intake"
TOPIC = "intake.events"  # contract section 4


def build(store: EventStore, vault: KeyVault, clock: Clock) -> IntakeService:
    """The intake's application object, built once per running service."""
    return IntakeService(PostgresUnitsOfWork(store, vault), StoredDocuments(store), vault, clock)


SERVICE = ServiceDefinition(
    name=NAME,
    port=8001,
    description="Onboarding up to the coaching agreement: stream ClientCommitted.",
    migrations="services.intake.adapters.migrations",
    projections=PROJECTIONS,
    topic=TOPIC,
    application=build,
    routes=build_routes,
    access=ACCESS,
)


create_app = SERVICE.app  # the ASGI app; `python -m services.intake` serves it
