"""The base of every service's application object: its ports (units of work, read documents,
the key vault's read side, a clock), a command runner for its kind of stream, and the steps
every use case shares."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from shared.model.clock import Clock
from shared.model.envelope import Actor, new_id
from shared.model.errors import NotFound
from shared.model.events import Command, DomainEvent, EventRegistry
from shared.model.log import EventMetadata
from shared.model.projections import Document, Projection
from shared.security.tokens import Principal
from shared.usecases.commands import CommandRunner, Decider, Reply
from shared.usecases.idempotency import IdempotencyKey
from shared.usecases.ports import Documents, UnitsOfWork, Vault

__all__ = ["ApplicationService", "Sent", "issued_by"]

S = TypeVar("S")


@dataclass(frozen=True)
class Sent:
    """A command as a caller sent it: to which stream (if it runs on one), with what fields,
    meant for whom (`who`, in the access policy's terms), and what to answer besides the
    stream's version (the ids the command created). `validated`: the fields come from a
    request body its route validated already (and ids the route chose), so the command is
    built from them as they are, not validated a second time."""

    principal: Principal
    stream_id: str | None
    command_type: type[Command]
    fields: dict[str, Any]
    who: str
    idempotency: IdempotencyKey | None = None
    reply: Reply = field(default_factory=dict)
    correlation_id: str | None = None
    validated: bool = False


def issued_by(
    principal: Principal, at: datetime, correlation_id: str | None = None
) -> EventMetadata:
    """Metadata of a command a caller sent at `at` (a new correlation unless one is given)."""
    return EventMetadata(
        actor=Actor(role=principal.role, id=principal.sub),
        correlation_id=correlation_id or new_id(),
        occurred_at=at,
    )


class ApplicationService(Generic[S]):
    """A service's use cases over its ports; `runner` runs commands on its streams, each
    one `noun` (an intake, an engagement, ...)."""

    noun = "stream"

    def __init__(
        self,
        units: UnitsOfWork,
        documents: Documents,
        vault: Vault,
        clock: Clock,
        registry: EventRegistry,
        decider: Decider[S],
        rules: Callable[[S, Command], Sequence[DomainEvent]],
    ) -> None:
        self.units = units
        self.documents = documents
        self.vault = vault
        self.clock = clock
        self.rules = rules
        self.runner = CommandRunner(units, registry, decider, noun=self.noun)

    async def act(self, sent: Sent) -> Reply:
        """Run one command a caller sent to a stream: the time comes from the clock once, for
        the command and its events; `permit` checks the caller against the stream's state,
        then the pure rules decide. The reply is `sent.reply` and the stream's version."""
        principal, stream_id, command_type = sent.principal, sent.stream_id, sent.command_type
        if stream_id is None:
            raise ValueError(f"{command_type.__name__} runs on a stream")
        at = self.clock.now()
        fields = self.completed(principal, command_type, sent.fields)
        command = self.command(command_type, fields, at, validated=sent.validated)
        creates = self.opens(principal, command)

        def decide(state: S) -> Sequence[DomainEvent]:
            self.permit(principal, state, stream_id, sent.who, command)
            return self.rules(state, command)

        return await self.runner.execute(
            stream_id,
            decide,
            issued_by(principal, at, sent.correlation_id),
            lambda state, _: dict(sent.reply),
            creates=creates,
            idempotency=sent.idempotency,
        )

    def completed(
        self, principal: Principal, command_type: type[Command], fields: dict[str, Any]
    ) -> dict[str, Any]:
        """The command's fields with what the caller implies (none by default)."""
        return fields

    def opens(self, principal: Principal, command: Command) -> bool:
        """Whether the command opens its stream (checked against the caller first)."""
        return False

    def permit(
        self, principal: Principal, state: S, stream_id: str, who: str, command: Command
    ) -> None:
        """Raise unless the caller may send the command to a stream in this state."""
        raise NotImplementedError

    @staticmethod
    def command(
        command_type: type[Command],
        fields: dict[str, Any],
        at: datetime,
        *,
        validated: bool = False,
    ) -> Command:
        """The command from a request's fields, at the clock's time if it records one; built
        as it is from fields a route validated, validated from any others."""
        values = {**fields, "at": at} if "at" in command_type.model_fields else fields
        if validated:
            return command_type.model_construct(**values)
        return command_type.model_validate(values)

    async def view(
        self,
        projection: Projection,
        stream_id: str,
        missing: str,
        *,
        as_of: datetime | None = None,
    ) -> tuple[Document, int]:
        """A stream's view and its version (live, or as it stood at `as_of`), or NotFound."""
        found = await self.documents.view(projection, stream_id, as_of=as_of)
        if found is None:
            raise NotFound(missing)
        return found
