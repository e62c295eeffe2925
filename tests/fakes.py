"""Test doubles that are not ports (the in-memory ports live beside the real ones, in
`shared.storage.memory`): a command service that records what it was sent, and the ports of a
service in memory."""

from __future__ import annotations

from collections.abc import Sequence

from shared.model.clock import Clock
from shared.model.projections import Projection
from shared.storage.memory import (
    MemoryDocuments,
    MemoryEventStore,
    MemoryUnitsOfWork,
    MemoryVault,
    memory_ports,
)
from shared.usecases.application import Sent
from shared.usecases.commands import Reply

__all__ = ["MemoryEventStore", "RecordingCommands", "ports"]


def ports(
    producer: str, clock: Clock, projections: Sequence[Projection]
) -> tuple[MemoryUnitsOfWork, MemoryDocuments, MemoryVault, MemoryEventStore]:
    """The ports of one service in memory, and the store behind them."""
    return memory_ports(producer, clock, projections)


class RecordingCommands:
    """A service behind command routes (`shared.http.routes.Commands`): remembers what it was
    sent, and answers version 2 or raises `refusal` when one is set."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.refusal: Exception | None = None

    async def act(self, sent: Sent) -> Reply:
        self.sent.append(sent)
        if self.refusal is not None:
            raise self.refusal
        return {**sent.reply, "stream_version": 2}
