"""Engagement use cases: reacting to the intake's events, commands and reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.engagement.application.access import COMMANDS, LISTS_COACH, READS, READS_ROLLUP
from services.engagement.domain import commands, engagement
from services.engagement.domain.commands import EraseClientData, OpenEngagement
from services.engagement.domain.events import Party, Stage, registry
from services.engagement.projections.coach_relationship import coach_relationship
from services.engagement.projections.coach_relationship import empty as empty_rollup
from services.engagement.projections.coach_relationship import public as public_rollup
from services.engagement.projections.relationship_view import public as public_relationship
from services.engagement.projections.relationship_view import relationship_view
from services.engagement.projections.stage_view import stage_view
from shared.model.clock import Clock
from shared.model.envelope import Envelope
from shared.model.errors import InvalidCommand, NotFound
from shared.model.events import Command
from shared.model.log import EventMetadata
from shared.model.projections import Projection
from shared.security.crypto import Record
from shared.security.tokens import Principal
from shared.usecases.access import Parties, Subject, require
from shared.usecases.application import ApplicationService
from shared.usecases.commands import Decider, Reply
from shared.usecases.ports import Documents, UnitOfWork, UnitsOfWork, Vault

DECIDER = Decider(initial=engagement.initial, evolve=engagement.evolve, owner=engagement.owner)
# Who sent a command, recorded in its event, where the command has such a field.
SENDER_FIELDS: dict[type[Command], str] = {
    commands.ReportViolation: "reported_by",
    commands.RecordSelfCheck: "recorded_by",
}


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


def parties(state: engagement.Engagement) -> Parties:
    return Parties(state.coach_id, state.client_id, state.supervisor_id)


class EngagementService(ApplicationService[engagement.Engagement]):
    """The engagement's reactions, commands and reads, with the contract's access rules."""

    noun = "engagement"
    INTAKE_EVENTS = frozenset({"ClientCommitted", "ClientErased"})

    def __init__(
        self, units: UnitsOfWork, documents: Documents, vault: Vault, clock: Clock
    ) -> None:
        super().__init__(units, documents, vault, clock, registry, DECIDER, engagement.decide)

    async def on_intake_event(self, unit: UnitOfWork, envelope: Envelope) -> None:
        """Open the engagement when the intake's `ClientCommitted` arrives; record the erasure
        of its client's personal data when `ClientErased` does."""
        if envelope.event_type == "ClientErased":
            await self._on_client_erased(unit, envelope)
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
            unit,
            command.engagement_id,
            lambda state: engagement.decide(state, command),
            EventMetadata.caused_by(envelope),
            lambda state, _: {},
            creates=True,
        )

    async def _on_client_erased(self, unit: UnitOfWork, envelope: Envelope) -> None:
        erase = EraseClientData(client_id=envelope.data["client_id"], at=envelope.occurred)
        await self.runner.execute_in(
            unit,
            envelope.stream_id,
            lambda state: engagement.decide(state, erase),
            EventMetadata.caused_by(envelope),
            lambda state, _: {},
            creates=True,  # an intake erased before its commitment opened nothing: no event
        )

    def completed(
        self, principal: Principal, command_type: type[Command], fields: dict[str, Any]
    ) -> dict[str, Any]:
        """The sender's role fills the command's sender field (and a check-in's rater)."""
        fields = dict(fields)
        if command_type in SENDER_FIELDS:
            fields[SENDER_FIELDS[command_type]] = principal.role
        if command_type is commands.RecordRelationshipCheckIn:
            fields["rater"] = checkin_rater(principal, fields.get("rater"))
        return fields

    def permit(
        self,
        principal: Principal,
        state: engagement.Engagement,
        stream_id: str,
        who: str,
        command: Command,
    ) -> None:
        """An opened engagement, and a caller who is `who` of its parties (or an admin)."""
        if not state.opened:
            raise NotFound(f"no engagement {stream_id}")
        refusal = f"{principal.role} {principal.sub} may not do this here"
        require(principal, COMMANDS[who], Subject(parties(state)), refusal)

    async def read(
        self,
        principal: Principal,
        engagement_id: str,
        *,
        projection: Projection = stage_view,
        as_of: datetime | None = None,
    ) -> Reply:
        """A single view, live or as it stood at `as_of` (folded from the log up to then)."""
        document, version = await self.view(
            projection, engagement_id, f"no engagement {engagement_id}", as_of=as_of
        )
        require(principal, READS, Subject(Parties.of(document)), "not a party to this engagement")
        erased = bool(document.get("erased")) or await self.vault.is_erased(document["client_id"])
        return {**document, "erased": erased, "version": version}

    async def relationship(
        self, principal: Principal, engagement_id: str, *, as_of: datetime | None = None
    ) -> Reply:
        """The relationship view, comments decrypted (null once the client is erased)."""
        view = await self.read(principal, engagement_id, projection=relationship_view, as_of=as_of)
        revealed = await self.vault.reveal(view, Record(view["client_id"], engagement_id))
        return {**public_relationship(revealed.tree), "unreadable": revealed.unreadable}

    async def coach_relationship(self, principal: Principal, coach_id: str) -> Reply:
        """The coach's roll-up: that coach, a supervisor of one of the coach's engagements,
        auditors and admins. A coach without engagements reads zeros."""
        found = await self.documents.get(coach_relationship.name, coach_id)
        view = found[0] if found is not None else empty_rollup(coach_id)
        subject = Subject(Parties(coach_id), supervisors=view["supervisors"])
        refusal = "not this coach, nor a supervisor of their engagements"
        require(principal, READS_ROLLUP, subject, refusal)
        return public_rollup(view)

    async def coach_engagements(
        self, principal: Principal, coach_id: str, stage: Stage | None, *, limit: int = 1000
    ) -> Reply:
        """The coach's engagements (stage views), optionally only those in one stage."""
        refusal = "a coach may only list their own engagements"
        require(principal, LISTS_COACH, Subject(Parties(coach_id)), refusal)
        found = await self.documents.find(
            stage_view.name,
            where={"coach_id": coach_id, "stage": stage},
            order_by=("opened_at",),
            limit=limit,
        )
        return {
            "items": [{"erased": False, **doc, "version": version} for _, doc, version in found]
        }
