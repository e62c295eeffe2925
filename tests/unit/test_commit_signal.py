"""The commit signal: who it tells, whom it hears, and what it does when the database is away."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace
from typing import Any

import pytest

from shared.resilience.retry import Backoff
from shared.storage import commits
from shared.storage.commits import CommitSignal, Wakeup


class FakeConnection:
    """Records the listeners added and the statements run; `sent` is set at each statement."""

    def __init__(self) -> None:
        self.listeners: dict[str, Callable[..., None]] = {}
        self.executed: list[tuple[Any, ...]] = []
        self.sent = asyncio.Event()

    async def add_listener(self, channel: str, callback: Callable[..., None]) -> None:
        self.listeners[channel] = callback

    async def remove_listener(self, channel: str, callback: Callable[..., None]) -> None:
        assert self.listeners.pop(channel) == callback

    async def execute(self, query: str, *args: Any) -> None:
        self.executed.append(args)
        self.sent.set()


class FakePool:
    def __init__(self, conn: FakeConnection | None = None) -> None:
        self.conn = conn or FakeConnection()

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[FakeConnection]:
        yield self.conn


@contextlib.asynccontextmanager
async def running(signal: CommitSignal, needed: Callable[[], bool]) -> AsyncIterator[None]:
    task = asyncio.create_task(signal.run(needed))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_an_instance_hears_the_other_instances_commits_and_not_its_own() -> None:
    elsewhere = Wakeup()
    woken = elsewhere.subscribe()
    signal = CommitSignal(FakePool(), "svc", Wakeup(), elsewhere)
    conn = FakeConnection()
    await signal.listen(conn)
    heard = conn.listeners["rapport_svc_appended"]
    heard(conn, 1, signal.channel, signal.instance)
    assert not woken.is_set()
    heard(conn, 1, signal.channel, "another-instance")
    assert woken.is_set()
    await signal.unlisten(conn)
    assert conn.listeners == {}


async def test_a_commit_is_told_once_others_are_there_with_a_notify_naming_this_instance() -> None:
    appended, pool = Wakeup(), FakePool()
    signal = CommitSignal(pool, "svc", appended, Wakeup())
    async with running(signal, lambda: True):
        appended.fire()
        await pool.conn.sent.wait()
    assert pool.conn.executed == [("rapport_svc_appended", signal.instance)]


async def test_an_instance_alone_sends_no_notify() -> None:
    appended, pool = Wakeup(), FakePool()
    signal = CommitSignal(pool, "svc", appended, Wakeup())
    asked = asyncio.Event()

    def alone() -> bool:
        asked.set()
        return False

    async with running(signal, alone):
        appended.fire()
        await asked.wait()
        await asyncio.sleep(0)
    assert pool.conn.executed == []


class AwayOnce(FakeConnection):
    """A connection whose first statement fails: the database is away."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = asyncio.Event()

    async def execute(self, query: str, *args: Any) -> None:
        if not self.failed.is_set():
            self.executed.append(())
            self.failed.set()
            raise OSError("connection refused")
        await super().execute(query, *args)


async def test_a_failed_notify_is_logged_and_the_next_commit_is_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    warned: list[str] = []
    monkeypatch.setattr(
        commits, "log", SimpleNamespace(warning=lambda event, **_: warned.append(event))
    )
    conn = AwayOnce()
    appended, pool = Wakeup(), FakePool(conn)
    signal = CommitSignal(pool, "svc", appended, Wakeup(), backoff=Backoff(first=0.0001))
    async with running(signal, lambda: True):
        appended.fire()
        await conn.failed.wait()
        appended.fire()
        await conn.sent.wait()
    assert warned == ["commit_signal_failed"]
    assert conn.executed == [(), ("rapport_svc_appended", signal.instance)]
