"""Waking the readers of a log after a commit: in this process at once (`Wakeup`), in the
service's other instances through PostgreSQL's NOTIFY on the service's channel
(`CommitSignal`), coalesced and never inside an append's transaction."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import asyncpg
import structlog

from shared.resilience.retry import Backoff

__all__ = ["CommitSignal", "Wakeup"]

log = structlog.get_logger(__name__)

# After a failed NOTIFY (the database away), the next commit's is sent a second later.
SIGNAL_BACKOFF = Backoff(first=1.0, most=1.0)


class Wakeup:
    """An in-process signal: fired after a commit that appended, awaited by background loops."""

    def __init__(self) -> None:
        self._events: list[asyncio.Event] = []

    def subscribe(self, event: asyncio.Event | None = None) -> asyncio.Event:
        """An event set at every `fire` (`event`, or a new one); the subscriber clears it."""
        event = event or asyncio.Event()
        self._events.append(event)
        return event

    def fire(self) -> None:
        """Wake every subscriber."""
        for event in self._events:
            event.set()


class CommitSignal:
    """Tells the service's other instances that this one committed events, and hears them.

    `run` sends at most one NOTIFY per `interval` after `appended` fired, on a connection of
    its own, and only while `needed()` (others are there); its payload names this instance.
    A connection that `listen`s fires `elsewhere` when another instance's NOTIFY arrives, and
    ignores this instance's own (its commits woke the readers here already).
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        service: str,
        appended: Wakeup,
        elsewhere: Wakeup,
        *,
        interval: float = 0.005,
        backoff: Backoff = SIGNAL_BACKOFF,
    ) -> None:
        self.channel = f"rapport_{service}_appended"
        self.instance = uuid.uuid4().hex[:12]
        self._pool = pool
        self._wake = appended.subscribe()
        self._elsewhere = elsewhere
        self._interval = interval
        self._backoff = backoff

    async def listen(self, conn: asyncpg.Connection) -> None:
        """Hear the other instances' commits on `conn` (a connection kept for it)."""
        await conn.add_listener(self.channel, self._heard)

    async def unlisten(self, conn: asyncpg.Connection) -> None:
        """Stop hearing them on `conn` (asyncpg sends UNLISTEN), before it goes back."""
        await conn.remove_listener(self.channel, self._heard)

    def _heard(self, _conn: object, _pid: int, _channel: str, sender: str) -> None:
        if sender != self.instance:
            self._elsewhere.fire()

    async def run(self, needed: Callable[[], bool] = lambda: True) -> None:
        """Signal this instance's commits until cancelled; a failed NOTIFY is logged, and
        the next commit's is sent after a pause (`backoff`)."""
        pacer = self._backoff.pacer()
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not needed():  # nobody else to tell
                continue
            try:
                async with self._pool.acquire() as conn:
                    await conn.execute("SELECT pg_notify($1, $2)", self.channel, self.instance)
            except Exception as error:
                log.warning("commit_signal_failed", error=repr(error))
                await asyncio.sleep(pacer.failed())
            else:
                pacer.succeeded()
            await asyncio.sleep(self._interval)
