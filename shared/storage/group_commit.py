"""Group commit: concurrent writes share one statement.

Under load, many commands append at the same moment, each in a statement (and a commit) of its
own: a round trip, a parse and a WAL flush per command. `GroupCommit` lets the first of them
run at once (a lone write waits for nothing) and queues the ones that arrive while its
statement is in flight; when it is done, the oldest queued writer leads the next statement and
carries every queued write it can (one per key: two writes to one stream never share a
statement). Each writer gets its own outcome, or its own error.

The statement runs on the leader's own connection, so a group takes no connection of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import asyncpg
from prometheus_client import Histogram

__all__ = ["GROUP_SIZE", "GroupCommit"]

T = TypeVar("T")
R = TypeVar("R")

GROUP_SIZE = Histogram(
    "rapport_append_group_size",
    "Appends carried by one statement (group commit)",
    ["service"],
    buckets=(1, 2, 4, 8, 16, 32, 64),
)


class _Lead:
    """Handed to a queued writer: run the next statement."""


_LEAD = _Lead()


@dataclass(eq=False)
class _Write(Generic[T, R]):
    item: T
    key: Hashable
    answer: asyncio.Future[R | _Lead] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class GroupCommit(Generic[T, R]):
    """Writes of one kind, grouped into statements as they arrive (see the module).

    `execute(conn, items)` writes the items in one statement and answers one outcome per item,
    in order; an exception it raises is every item's error.
    """

    def __init__(
        self,
        execute: Callable[[asyncpg.Connection, Sequence[T]], Awaitable[Sequence[R | Exception]]],
        key: Callable[[T], Hashable],
        *,
        service: str,
        limit: int = 64,
    ) -> None:
        self._execute = execute
        self._key = key
        self._limit = limit
        self._sizes = GROUP_SIZE.labels(service)
        self._queued: list[_Write[T, R]] = []
        self._leading = False

    async def submit(self, conn: asyncpg.Connection, item: T) -> R:
        """Write `item` (on `conn` if this writer leads a statement); its outcome."""
        write: _Write[T, R] = _Write(item, self._key(item))
        self._queued.append(write)
        if self._leading:
            try:
                answered = await write.answer
            except asyncio.CancelledError:
                self._abandon(write)
                raise
            if not isinstance(answered, _Lead):
                return answered
            write.answer = asyncio.get_running_loop().create_future()
        self._leading = True
        try:
            await self._lead(conn, write)
        finally:
            self._pass_on()
        answered = write.answer.result()
        assert not isinstance(answered, _Lead)
        return answered

    async def _lead(self, conn: asyncpg.Connection, leader: _Write[T, R]) -> None:
        group = self._take(leader)
        self._sizes.observe(len(group))
        try:
            outcomes = await self._execute(conn, [write.item for write in group])
        except Exception as error:
            outcomes = [error] * len(group)
        except BaseException:
            failed = asyncpg.InterfaceError("the statement carrying this write was interrupted")
            for write in group:
                _settle(write, failed)
            raise
        for write, outcome in zip(group, outcomes, strict=True):
            _settle(write, outcome)

    def _take(self, leader: _Write[T, R]) -> list[_Write[T, R]]:
        """The leader and the queued writes that may join it, out of the queue."""
        group = [leader]
        keys = {leader.key}
        rest: list[_Write[T, R]] = []
        for write in self._queued:
            if write is leader or write.answer.done():
                continue  # the leader itself, or a writer that gave up
            if len(group) < self._limit and write.key not in keys:
                group.append(write)
                keys.add(write.key)
            else:
                rest.append(write)
        self._queued = rest
        return group

    def _pass_on(self) -> None:
        """Hand the next statement to the oldest queued writer, if any."""
        self._queued = [write for write in self._queued if not write.answer.done()]
        if self._queued:
            self._queued[0].answer.set_result(_LEAD)
        else:
            self._leading = False

    def _abandon(self, write: _Write[T, R]) -> None:
        """A queued writer was cancelled: if it had been handed the lead, hand it on."""
        handed = (
            write.answer.done()
            and not write.answer.cancelled()
            and isinstance(write.answer.result(), _Lead)
        )
        self._queued = [queued for queued in self._queued if queued is not write]
        if handed:
            self._pass_on()


def _settle(write: _Write[T, R], outcome: R | BaseException) -> None:
    if write.answer.done():
        return  # its writer gave up waiting
    if isinstance(outcome, BaseException):
        write.answer.set_exception(outcome)
    else:
        write.answer.set_result(outcome)
