"""Engagement use cases: reacting to the intake's events, commands and reads."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import asyncpg

from services.engagement.domain import engagement
from services.engagement.domain.commands import EraseClientData, OpenEngagement
from services.engagement.domain.events import Party, Stage, registry
from services.engagement.projections.coach_relationship import coach_relationship
from services.engagement.projections.coach_relationship import empty as empty_rollup
from services.engagement.projections.coach_relationship import public as public_rollup
from services.engagement.projections.relationship_view import public as public_relationship
from services.engagement.projections.relationship_view import relationship_view
from services.engagement.projections.stage_view import stage_view
from shared.auth import PermissionDenied, Principal
from shared.clock import Clock
from shared.commands import Body, CommandRunner, Decider, IdempotencyKey
from shared.crypto import KeyVault
from shared.envelope import Actor, Envelope, new_id
from shared.errors import InvalidCommand, NotFound
from shared.events import Command, DomainEvent
from shared.eventstore import EventMetadata, EventStore
from shared.projections import Projection, load_document, read_view

DECIDER = Decider(initial=engagement.initial, evolve=engagement.evolve, owner=engagement.owner)

# Who may send a command: the engagement's coach, its client, either of them, or anyone who
# may report a boundary violation (coach, client, the engagement's supervisor). Admins always.
Who = Literal["coach", "client", "party", "reporter"]


def may_act(principal: Principal, state: engagement.Engagement, who: Who) -> bool:
    if principal.is_admin:
        return True
    coach = principal.role == "coach" and principal.sub == state.coach_id
    client = principal.role == "client" and principal.sub == state.client_id
    supervisor = (
        principal.role == "supervisor"
        and state.supervisor_id is not None
        and principal.sub == state.supervisor_id
    )
    match who:
        case "coach":
            return coach
        case "client":
            return client
        case "party":
            return coach or client
        case "reporter":
            return coach or client or supervisor
    return False


def checkin_rater(principal: Principal, named: Party | None) -> Party | None:
    """Who rates in a relationship check-in: the sender's own role when a client or coach
    sends it (naming another rater is invalid), the rater the body names when an admin does
    (None if it names none: the rule refuses that). Others get None and are refused access."""
    if principal.is_admin:
        return named
    if principal.role not in ("client", "coach"):
        return None
    if named is not None and named != principal.role:
        raise InvalidCommand(
            "rater is the sender's own role; only an admin names another", field="rater"
        )
    return "client" if principal.role == "client" else "coach"


def may_read(principal: Principal, view: Body) -> bool:
    return (
        principal.role in ("admin", "auditor")
        or (principal.role == "coach" and principal.sub == view.get("coach_id"))
        or (principal.role == "client" and principal.sub == view.get("client_id"))
        or (principal.role == "supervisor" and principal.sub == view.get("supervisor_id"))
    )


class EngagementService:
    """The engagement's reactions, commands and reads, with the contract's access rules."""

    INTAKE_EVENTS = frozenset({"ClientCommitted", "ClientErased"})

    def __init__(self, store: EventStore, vault: KeyVault, clock: Clock) -> None:
        self.store = store
        self.vault = vault
        self.clock = clock
        self.runner = CommandRunner(store, registry, DECIDER, vault)

    async def on_intake_event(self, conn: asyncpg.Connection, envelope: Envelope) -> None:
        """Open the engagement when the intake's `ClientCommitted` arrives; record the erasure
        of its client's personal data when `ClientErased` does."""
        if envelope.event_type == "ClientErased":
            await self._on_client_erased(conn, envelope)
            return
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
            EventMetadata.caused_by(envelope),
            lambda state, _: {},
            creates=True,
        )

    async def _on_client_erased(self, conn: asyncpg.Connection, envelope: Envelope) -> None:
        erase = EraseClientData(client_id=envelope.data["client_id"], at=envelope.occurred)
        await self.runner.execute_in(
            conn,
            envelope.stream_id,
            lambda state: engagement.decide(state, erase),
            EventMetadata.caused_by(envelope),
            lambda state, _: {},
            creates=True,  # an intake erased before its commitment opened nothing: no event
        )

    async def act(
        self,
        principal: Principal,
        engagement_id: str,
        who: Who,
        command_type: type[Command],
        fields: dict[str, Any],
        *,
        idempotency: IdempotencyKey | None,
        extra: Body | None = None,
        correlation_id: str | None = None,
    ) -> Body:
        """Run one command: the time comes from the clock once, for the command and its events."""
        at = self.clock.now()
        command = command_type.model_validate({**fields, "at": at})

        def decide(state: engagement.Engagement) -> Sequence[DomainEvent]:
            if not state.opened:
                raise NotFound(f"no engagement {engagement_id}")
            if not may_act(principal, state, who):
                raise PermissionDenied(f"{principal.role} {principal.sub} may not do this here")
            return engagement.decide(state, command)

        metadata = EventMetadata(
            actor=Actor(role=principal.role, id=principal.sub),
            correlation_id=correlation_id or new_id(),
            occurred_at=at,
        )
        return await self.runner.execute(
            engagement_id,
            decide,
            metadata,
            lambda state, _: dict(extra or {}),
            idempotency=idempotency,
        )

    async def read(
        self,
        principal: Principal,
        engagement_id: str,
        *,
        projection: Projection = stage_view,
        as_of: datetime | None = None,
    ) -> Body:
        """A single view, live or as it stood at `as_of` (folded from the log up to then)."""
        found = await read_view(self.store, projection, engagement_id, as_of=as_of)
        if found is None:
            raise NotFound(f"no engagement {engagement_id}")
        document, version = found
        if not may_read(principal, document):
            raise PermissionDenied("not a party to this engagement")
        erased = bool(document.get("erased")) or await self.vault.is_erased(document["client_id"])
        return {**document, "erased": erased, "version": version}

    async def relationship(
        self, principal: Principal, engagement_id: str, *, as_of: datetime | None = None
    ) -> Body:
        """The relationship view, comments decrypted (null once the client is erased)."""
        view = await self.read(principal, engagement_id, projection=relationship_view, as_of=as_of)
        revealed, _ = await self.vault.reveal(view)
        return public_relationship(revealed)

    async def coach_relationship(self, principal: Principal, coach_id: str) -> Body:
        """The coach's roll-up: that coach, a supervisor of one of the coach's engagements,
        auditors and admins. A coach without engagements reads zeros."""
        async with self.store.pool.acquire() as conn:
            found = await load_document(conn, coach_relationship.name, coach_id)
        view = found[0] if found is not None else empty_rollup(coach_id)
        allowed = (
            principal.role in ("admin", "auditor")
            or (principal.role == "coach" and principal.sub == coach_id)
            or (principal.role == "supervisor" and principal.sub in view["supervisors"])
        )
        if not allowed:
            raise PermissionDenied("not this coach, nor a supervisor of their engagements")
        return public_rollup(view)

    async def coach_engagements(
        self, principal: Principal, coach_id: str, stage: Stage | None, *, limit: int = 1000
    ) -> Body:
        """The coach's engagements (stage views), optionally only those in one stage."""
        allowed = principal.role in ("admin", "auditor") or (
            principal.role == "coach" and principal.sub == coach_id
        )
        if not allowed:
            raise PermissionDenied("a coach may only list their own engagements")
        async with self.store.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT doc, version FROM documents WHERE projection = $1"
                " AND doc->>'coach_id' = $2 AND ($3::text IS NULL OR doc->>'stage' = $3)"
                " ORDER BY doc->>'opened_at', id LIMIT $4",
                stage_view.name,
                coach_id,
                stage,
                limit,
            )
        items = []
        for row in rows:
            document: Body = json.loads(row["doc"])
            items.append({"erased": False, **document, "version": int(row["version"])})
        return {"items": items}
