"""The base of every service's application object: its ports (event log, read documents, key
vault, clock), a command runner for its kind of stream, and the steps every use case shares."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from shared.auth import Principal
from shared.clock import Clock
from shared.commands import CommandRunner, Decider
from shared.envelope import Actor, new_id
from shared.errors import NotFound
from shared.events import Command, EventRegistry
from shared.eventstore import EventMetadata
from shared.ports import Documents, EventLog, Vault
from shared.projections import Document, Projection

__all__ = ["ApplicationService", "issued_by"]

S = TypeVar("S")


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
    """A service's use cases over its ports; `runner` runs commands on its streams."""

    def __init__(
        self,
        store: EventLog,
        documents: Documents,
        vault: Vault,
        clock: Clock,
        registry: EventRegistry,
        decider: Decider[S],
    ) -> None:
        self.store = store
        self.documents = documents
        self.vault = vault
        self.clock = clock
        self.runner = CommandRunner(store, registry, decider, vault)

    @staticmethod
    def command(command_type: type[Command], fields: dict[str, Any], at: datetime) -> Command:
        """The command from a request's fields, at the clock's time if it records one."""
        values = {**fields, "at": at} if "at" in command_type.model_fields else fields
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
