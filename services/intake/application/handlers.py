"""Intake use cases: each turns a request into a command run against the intake stream."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from services.intake.domain import intake
from services.intake.domain.commands import (
    AssessBaseline,
    CommitClient,
    EraseClient,
    SetGoal,
    SignAgreement,
    StartIntake,
)
from services.intake.domain.events import ClientDetails, registry
from services.intake.projections.intake_view import intake_view
from shared.auth import PermissionDenied, Principal
from shared.clock import Clock
from shared.commands import Body, CommandRunner, Decider, IdempotencyKey
from shared.crypto import KeyVault
from shared.envelope import Actor, new_id
from shared.errors import NotFound
from shared.events import DomainEvent
from shared.eventstore import EventMetadata, EventStore
from shared.projections import read_view

DECIDER = Decider(initial=intake.initial, evolve=intake.evolve, owner=intake.owner)


def actor_of(principal: Principal) -> Actor:
    return Actor(role=principal.role, id=principal.sub)


def may_act_for_coach(principal: Principal, coach_id: str | None) -> bool:
    return principal.is_admin or (principal.role == "coach" and principal.sub == coach_id)


class IntakeService:
    """The intake's commands and reads, with the contract's access rules."""

    def __init__(self, store: EventStore, vault: KeyVault, clock: Clock) -> None:
        self.store = store
        self.vault = vault
        self.clock = clock
        self.runner = CommandRunner(store, registry, DECIDER, vault)

    def _metadata(
        self, principal: Principal, correlation_id: str | None, at: datetime | None = None
    ) -> EventMetadata:
        return EventMetadata(
            actor=actor_of(principal),
            correlation_id=correlation_id or new_id(),
            occurred_at=at or self.clock.now(),
        )

    async def start(
        self,
        principal: Principal,
        coach_id: str,
        supervisor_id: str | None,
        client: ClientDetails,
        *,
        idempotency: IdempotencyKey | None,
        correlation_id: str | None = None,
    ) -> Body:
        if not may_act_for_coach(principal, coach_id):
            raise PermissionDenied("a coach may only start their own intakes")
        engagement_id, client_id = new_id(), new_id()
        command = StartIntake(
            engagement_id=engagement_id,
            client_id=client_id,
            coach_id=coach_id,
            supervisor_id=supervisor_id,
            client=client,
        )
        return await self.runner.execute(
            engagement_id,
            lambda state: intake.decide(state, command),
            self._metadata(principal, correlation_id),
            lambda state, _: {"engagement_id": engagement_id, "client_id": client_id},
            creates=True,
            idempotency=idempotency,
        )

    async def command(
        self,
        principal: Principal,
        engagement_id: str,
        command: AssessBaseline | SetGoal | SignAgreement | CommitClient,
        *,
        idempotency: IdempotencyKey | None,
        extra: Body | None = None,
        correlation_id: str | None = None,
        at: datetime | None = None,
    ) -> Body:
        def decide(state: intake.Intake) -> Sequence[DomainEvent]:
            if not may_act_for_coach(principal, state.coach_id):
                raise PermissionDenied("not this coach's intake")
            return intake.decide(state, command)

        return await self.runner.execute(
            engagement_id,
            decide,
            self._metadata(principal, correlation_id, at),
            lambda state, _: dict(extra or {}),
            idempotency=idempotency,
        )

    async def assess(
        self,
        principal: Principal,
        engagement_id: str,
        instrument: str,
        scores: dict[str, float],
        notes: str | None,
        idempotency: IdempotencyKey | None,
    ) -> Body:
        assessment_id = new_id()
        command = AssessBaseline(
            assessment_id=assessment_id, instrument=instrument, scores=scores, notes=notes
        )
        return await self.command(
            principal,
            engagement_id,
            command,
            idempotency=idempotency,
            extra={"assessment_id": assessment_id},
        )

    async def set_goal(
        self,
        principal: Principal,
        engagement_id: str,
        fields: dict[str, Any],
        idempotency: IdempotencyKey | None,
    ) -> Body:
        goal_id = new_id()
        command = SetGoal(goal_id=goal_id, **fields)
        return await self.command(
            principal, engagement_id, command, idempotency=idempotency, extra={"goal_id": goal_id}
        )

    async def sign(
        self,
        principal: Principal,
        engagement_id: str,
        fields: dict[str, Any],
        idempotency: IdempotencyKey | None,
    ) -> Body:
        return await self.command(
            principal, engagement_id, SignAgreement(**fields), idempotency=idempotency
        )

    async def commit(
        self, principal: Principal, engagement_id: str, idempotency: IdempotencyKey | None
    ) -> Body:
        at = self.clock.now()
        return await self.command(
            principal, engagement_id, CommitClient(at=at), idempotency=idempotency, at=at
        )

    async def read(self, principal: Principal, engagement_id: str) -> Body:
        found = await read_view(self.store, intake_view, engagement_id)
        if found is None:
            raise NotFound(f"no intake {engagement_id}")
        document, version = found
        if not (may_act_for_coach(principal, document["coach_id"]) or principal.role == "auditor"):
            raise PermissionDenied("not this coach's intake")
        revealed, erased = await self.vault.reveal(document)
        return {**revealed, "erased": erased, "version": version}

    async def erase_client(self, principal: Principal, client_id: str) -> Body:
        if not principal.is_admin:
            raise PermissionDenied("only an admin may erase a client")
        async with self.store.pool.acquire() as conn:
            streams = [
                row["id"]
                for row in await conn.fetch(
                    "SELECT id FROM documents WHERE projection = $1 AND doc->>'client_id' = $2",
                    intake_view.name,
                    client_id,
                )
            ]
        if not streams:
            raise NotFound(f"no client {client_id}")
        # The key goes first: whatever happens next, the data is unreadable from now on.
        # Each stream then records ClientErased; a retried erasure completes what a crash
        # interrupted (the decider appends it once per stream).
        async with self.store.transaction() as conn:
            await self.vault.erase(conn, client_id)
        at = self.clock.now()
        erase = EraseClient(client_id=client_id, at=at)
        metadata = self._metadata(principal, None, at)
        versions = {}
        for engagement_id in streams:
            body = await self.runner.execute(
                engagement_id,
                lambda state: intake.decide(state, erase),
                metadata,
                lambda state, _: {},
            )
            versions[engagement_id] = body["stream_version"]
        return {"client_id": client_id, "erased": True, "stream_versions": versions}
