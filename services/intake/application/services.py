"""Intake use cases: each turns a request into a command run against the intake stream."""

from __future__ import annotations

from services.intake.application.access import ERASES, READS, RUNS
from services.intake.domain import intake
from services.intake.domain.commands import EraseClient, StartIntake
from services.intake.domain.events import registry
from services.intake.projections.intake_view import intake_view
from shared.model.clock import Clock
from shared.model.errors import NotFound
from shared.model.events import Command
from shared.security.crypto import Record
from shared.security.tokens import Principal
from shared.usecases.access import Parties, Subject, require
from shared.usecases.application import ApplicationService, issued_by
from shared.usecases.commands import Decider, Reply
from shared.usecases.ports import Documents, UnitsOfWork, Vault

DECIDER = Decider(initial=intake.initial, evolve=intake.evolve, owner=intake.owner)


class IntakeService(ApplicationService[intake.Intake]):
    """The intake's commands and reads, with the contract's access rules."""

    noun = "intake"

    def __init__(
        self, units: UnitsOfWork, documents: Documents, vault: Vault, clock: Clock
    ) -> None:
        super().__init__(units, documents, vault, clock, registry, DECIDER, intake.decide)

    def opens(self, principal: Principal, command: Command) -> bool:
        """`StartIntake` opens an intake, for the coach it names (or by an admin)."""
        if not isinstance(command, StartIntake):
            return False
        require(
            principal,
            RUNS,
            Subject(Parties(command.coach_id)),
            "a coach may only start their own intakes",
        )
        return True

    def permit(
        self,
        principal: Principal,
        state: intake.Intake,
        stream_id: str,
        who: str,
        command: Command,
    ) -> None:
        """Every other command is its coach's (or an admin's)."""
        if not isinstance(command, StartIntake):
            require(principal, RUNS, Subject(Parties(state.coach_id)), "not this coach's intake")

    async def read(self, principal: Principal, engagement_id: str) -> Reply:
        document, version = await self.view(
            intake_view, engagement_id, f"no intake {engagement_id}"
        )
        require(principal, READS, Subject(Parties.of(document)), "not this coach's intake")
        revealed = await self.vault.reveal(document, Record(document["client_id"], engagement_id))
        return {
            **revealed.tree,
            "erased": revealed.erased,
            "unreadable": revealed.unreadable,
            "version": version,
        }

    async def erase_client(self, principal: Principal, client_id: str) -> Reply:
        require(principal, ERASES, Subject(), "only an admin may erase a client")
        found = await self.documents.find(intake_view.name, where={"client_id": client_id})
        if not found:
            raise NotFound(f"no client {client_id}")
        # The key goes first: whatever happens next, the data is unreadable from now on.
        # Each stream then records ClientErased; a retried erasure completes what a crash
        # interrupted (the decider appends it once per stream).
        async with self.units.transaction() as unit:
            await unit.erase_key(client_id)
        at = self.clock.now()
        erase = EraseClient(client_id=client_id, at=at)
        metadata = issued_by(principal, at)
        versions = {}
        for stream in found:
            reply = await self.runner.execute(
                stream.id,
                lambda state: intake.decide(state, erase),
                metadata,
                lambda state, _: {},
            )
            versions[stream.id] = reply["stream_version"]
        return {"client_id": client_id, "erased": True, "stream_versions": versions}
