"""The command runner decides on its cached fold when it may, and never answers from a stale
one: two runners over one in-memory log stand for two instances of a service."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest

from shared.model.clock import FixedClock
from shared.model.envelope import SYSTEM_ACTOR, Envelope
from shared.model.errors import ForbiddenByState
from shared.model.events import DomainEvent, EventRegistry
from shared.model.log import EventMetadata
from shared.security.tokens import PermissionDenied
from shared.storage.memory import (
    MemoryEventStore,
    MemoryUnitOfWork,
    MemoryUnitsOfWork,
    MemoryVault,
)
from shared.usecases.commands import CommandRunner, Decider, Reply

STREAM = "tally-1"


class Counted(DomainEvent):
    event_type: ClassVar[str] = "Counted"
    total: int


class Closed(DomainEvent):
    event_type: ClassVar[str] = "Closed"


def evolve(state: tuple[int, bool], event: DomainEvent) -> tuple[int, bool]:
    total, closed = state
    if isinstance(event, Counted):
        return event.total, closed
    return total, True


DECIDER = Decider(initial=lambda: (0, False), evolve=evolve, owner=lambda state: None)
REGISTRY = EventRegistry([Counted, Closed])


class CountingStore(MemoryEventStore):
    """The in-memory log, counting the reads of a stream's newer events."""

    def __init__(self) -> None:
        super().__init__("tally", FixedClock(datetime(2026, 12, 1, 9, tzinfo=UTC)))
        self.reads = 0


class CountingUnit(MemoryUnitOfWork):
    async def read_stream_after(self, stream_id: str, version: int) -> list[Envelope]:
        assert isinstance(self.store, CountingStore)
        self.store.reads += 1
        return await super().read_stream_after(stream_id, version)


class CountingUnits(MemoryUnitsOfWork):
    def unit(self, *, transactional: bool) -> MemoryUnitOfWork:
        return CountingUnit(self.store, self.vault, transactional=transactional)


def count(state: tuple[int, bool]) -> Sequence[DomainEvent]:
    total, closed = state
    if closed:
        raise ForbiddenByState("the tally is closed")
    return [Counted(total=total + 1)]


def close(state: tuple[int, bool]) -> Sequence[DomainEvent]:
    return [Closed()]


def answer(state: tuple[int, bool], envelopes: list[Envelope]) -> Reply:
    return {"total": state[0]}


async def run(runner: CommandRunner[Any], decide: Any, *, creates: bool = False) -> Reply:
    metadata = EventMetadata(actor=SYSTEM_ACTOR, correlation_id="c")
    return await runner.execute(STREAM, decide, metadata, answer, creates=creates)


def runner_over(store: CountingStore) -> CommandRunner[tuple[int, bool]]:
    return CommandRunner(CountingUnits(store, MemoryVault()), REGISTRY, DECIDER)


async def test_a_stream_this_runner_wrote_last_is_decided_without_a_read() -> None:
    store = CountingStore()
    runner = runner_over(store)
    await run(runner, count, creates=True)
    reads = store.reads
    for _ in range(5):
        await run(runner, count)
    assert store.reads == reads  # five commands, no read
    assert (await run(runner, count))["total"] == 7


async def test_a_command_after_another_writer_appended_decides_on_the_stored_stream() -> None:
    store = CountingStore()
    mine, other = runner_over(store), runner_over(store)
    await run(mine, count, creates=True)
    await run(other, count)  # the other instance moved the stream on: version 2
    reply = await run(mine, count)  # cached at version 1: the append is refused, read, retried
    assert reply["total"] == 3
    assert [e.stream_version for e in store.events(STREAM)] == [1, 2, 3]


async def test_a_refusal_is_never_answered_from_a_stale_cache() -> None:
    store = CountingStore()
    mine, other = runner_over(store), runner_over(store)
    await run(mine, count, creates=True)
    await run(other, close)
    with pytest.raises(ForbiddenByState):
        await run(mine, count)  # refused on the stored stream, where the tally is closed
    assert len(store.events(STREAM)) == 2


async def test_concurrent_commands_of_one_runner_each_count_once() -> None:
    store = CountingStore()
    runner = runner_over(store)
    await run(runner, count, creates=True)
    await asyncio.gather(*(run(runner, count) for _ in range(20)))
    totals = [REGISTRY.load(e) for e in store.events(STREAM)]
    assert [t.total for t in totals if isinstance(t, Counted)] == list(range(1, 22))
    reads = store.reads
    for _ in range(3):  # races between its own commands leave the stream read-free again
        await run(runner, count)
    assert store.reads <= reads + 1


async def test_a_permission_refused_on_a_stale_cache_is_asked_again_of_the_stored_stream() -> None:
    store = CountingStore()
    mine, other = runner_over(store), runner_over(store)
    await run(mine, count, creates=True)
    await run(other, count)  # version 2: from here on, counting is allowed

    def count_from_two(state: tuple[int, bool]) -> Sequence[DomainEvent]:
        if state[0] < 2:
            raise PermissionDenied("not before the second count")
        return count(state)

    assert (await run(mine, count_from_two))["total"] == 3  # mine's cache still says 1
