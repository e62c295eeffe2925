"""Engagement use cases: reacting to the intake's events, commands and reads."""

from __future__ import annotations

import asyncpg

from services.engagement.domain import engagement
from services.engagement.domain.commands import OpenEngagement
from services.engagement.domain.events import registry
from services.engagement.projections.stage_view import stage_view
from shared.auth import PermissionDenied, Principal
from shared.clock import Clock
from shared.commands import Body, CommandRunner, Decider
from shared.crypto import KeyVault
from shared.envelope import SYSTEM_ACTOR, Envelope
from shared.errors import NotFound
from shared.eventstore import EventMetadata, EventStore
from shared.projections import load_document

DECIDER = Decider(initial=engagement.initial, evolve=engagement.evolve, owner=engagement.owner)


def may_read(principal: Principal, view: Body) -> bool:
    return (
        principal.role in ("admin", "auditor")
        or (principal.role == "coach" and principal.sub == view.get("coach_id"))
        or (principal.role == "client" and principal.sub == view.get("client_id"))
        or (principal.role == "supervisor" and principal.sub == view.get("supervisor_id"))
    )


class EngagementService:
    """The engagement's reactions, commands and reads."""

    def __init__(self, store: EventStore, vault: KeyVault, clock: Clock) -> None:
        self.store = store
        self.vault = vault
        self.clock = clock
        self.runner = CommandRunner(store, registry, DECIDER, vault)

    async def on_intake_event(self, conn: asyncpg.Connection, envelope: Envelope) -> None:
        """Open the engagement when the intake's `ClientCommitted` arrives."""
        if envelope.event_type != "ClientCommitted":
            return
        data = envelope.data
        command = OpenEngagement(
            engagement_id=data["engagement_id"],
            client_id=data["client_id"],
            coach_id=data["coach_id"],
            supervisor_id=data.get("supervisor_id"),
            session_cadence_days=data["session_cadence_days"],
            goals=data.get("goals", []),
            baselines=data.get("baselines", []),
            at=envelope.occurred,
        )
        await self.runner.execute_in(
            conn,
            command.engagement_id,
            lambda state: engagement.decide(state, command),
            EventMetadata(
                actor=SYSTEM_ACTOR,
                correlation_id=envelope.correlation_id,
                causation_id=envelope.event_id,
                occurred_at=envelope.occurred,
            ),
            lambda state, _: {},
            creates=True,
        )

    async def read(self, principal: Principal, engagement_id: str) -> Body:
        async with self.store.pool.acquire() as conn:
            found = await load_document(conn, stage_view.name, engagement_id)
        if found is None:
            raise NotFound(f"no engagement {engagement_id}")
        document, version = found
        if not may_read(principal, document):
            raise PermissionDenied("not a party to this engagement")
        return {**document, "version": version}
