"""Helpers for the webhook tests: a real HTTP receiver on localhost, and the notifications
service's parts wired on a fresh schema by its own bootstrap (no broker needed). No tests
live here."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from services.notifications import bootstrap
from services.notifications.application.delivery import DeliveryWorker
from services.notifications.application.services import NotificationService
from services.notifications.projections import PROJECTIONS
from shared.model.envelope import GENESIS_HASH, Envelope, format_time, seal
from shared.reads.runner import ProjectionRunner
from shared.runtime.config import Settings
from shared.security.crypto import decode_master_key, generate_master_key
from shared.security.tokens import Principal
from shared.storage.db import create_pool, migrate
from shared.storage.eventstore import EventStore
from shared.storage.keyvault import KeyVault
from tests.support import MovableClock

ADMIN = Principal(role="admin", sub="ops")


@dataclass(frozen=True)
class Received:
    """One request a receiver got."""

    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    @property
    def notification_id(self) -> str:
        return self.headers["x-rapport-notification-id"]

    def signed_with(self, secret: str) -> bool:
        digest = hmac.new(secret.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(self.headers["x-rapport-signature"], f"sha256={digest}")


@dataclass
class Receiver:
    """A webhook receiver on a real localhost port. `answer(n)` gives the status for the n-th
    request (1-based), or None to never answer; `delay` seconds pass before each answer."""

    answer: Callable[[int], int | None] = lambda n: 200
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    _server: asyncio.Server | None = None
    _closing: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hook"

    def ids(self) -> list[str]:
        return [request.notification_id for request in self.received]

    async def start(self) -> Receiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def close(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")[1:]
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines if line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.received.append(Received(headers, body))
            status = self.answer(len(self.received))
            if self.delay:
                await asyncio.sleep(self.delay)
            if status is None:  # hold the request until the client gives up (or we close)
                closing = asyncio.ensure_future(self._closing.wait())
                gone = asyncio.ensure_future(reader.read())
                await asyncio.wait({closing, gone}, return_when=asyncio.FIRST_COMPLETED)
                closing.cancel()
                gone.cancel()
                return
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.in_flight -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


@contextlib.asynccontextmanager
async def receiver(
    answer: Callable[[int], int | None] = lambda n: 200, delay: float = 0.0
) -> AsyncIterator[Receiver]:
    started = await Receiver(answer=answer, delay=delay).start()
    try:
        yield started
    finally:
        await started.close()


def sealed(
    event_type: str,
    engagement_id: str,
    data: dict[str, Any],
    *,
    at: datetime,
    producer: str = "engagement",
    version: int = 1,
) -> Envelope:
    """A well-formed envelope as another service would publish it."""
    return seal(
        {
            "event_id": str(uuid.uuid4()),
            "event_type": event_type,
            "schema_version": 1,
            "stream_id": engagement_id,
            "stream_version": version,
            "occurred_at": format_time(at),
            "recorded_at": format_time(at),
            "producer": producer,
            "correlation_id": str(uuid.uuid4()),
            "causation_id": None,
            "actor": {"role": "system", "id": "test"},
            "data": data,
            "prev_hash": GENESIS_HASH,
        }
    )


def client_committed(
    engagement_id: str,
    coach_id: str,
    client_id: str,
    *,
    at: datetime,
    supervisor_id: str | None = None,
) -> Envelope:
    return sealed(
        "ClientCommitted",
        engagement_id,
        {
            "engagement_id": engagement_id,
            "client_id": client_id,
            "coach_id": coach_id,
            "supervisor_id": supervisor_id,
            "goals": [],
            "baselines": [],
            "session_cadence_days": 7,
            "contact_channels": ["video"],
            "contact_hours": "any",
            "committed_at": format_time(at),
        },
        at=at,
        producer="intake",
    )


@dataclass
class Notifier:
    """The notifications service's parts on their own schema, with a movable clock."""

    pool: asyncpg.Pool
    store: EventStore
    vault: KeyVault
    clock: MovableClock
    settings: Settings
    service: NotificationService
    projections: ProjectionRunner

    def worker(self, **options: Any) -> DeliveryWorker:
        options.setdefault("poll_seconds", 0.05)
        return bootstrap.delivery_worker(
            self.store, self.vault, self.clock, self.settings, **options
        )

    async def receive(self, envelope: Envelope) -> None:
        """What the Kafka consumer does with one event (inside the inbox's transaction)."""
        async with self.service.units.transaction() as unit:
            await self.service.on_event(unit, envelope)

    async def commit(self, coach_id: str, client_id: str | None = None) -> str:
        engagement_id = str(uuid.uuid4())
        client = client_id or f"client-{uuid.uuid4().hex[:8]}"
        await self.receive(client_committed(engagement_id, coach_id, client, at=self.clock.now()))
        return engagement_id

    async def webhook(self, recipient: str, url: str, secret: str = "s3cret") -> str:
        body = await self.service.register_webhook(ADMIN, recipient, url, secret, None)
        return str(body["webhook_id"])

    async def notifications(self, recipient: str) -> list[dict[str, Any]]:
        await self.projections.catch_up_all()
        body = await self.service.list_for(ADMIN, recipient)
        items: list[dict[str, Any]] = body["items"]
        return items

    async def events(self, engagement_id: str) -> list[Envelope]:
        async with self.store.snapshot() as conn:
            return [e async for e in self.store.read_stream(conn, engagement_id)]

    async def delivery_rows(self) -> list[dict[str, Any]]:
        rows = await self.pool.fetch("SELECT * FROM deliveries ORDER BY notification_id")
        return [dict(row) for row in rows]


@contextlib.asynccontextmanager
async def notifier(database_url: str, **settings: Any) -> AsyncIterator[Notifier]:
    schema = f"n_{uuid.uuid4().hex[:12]}"
    pool = await create_pool(database_url, schema, max_size=20)
    try:
        await migrate(pool, schema, ["services.notifications.adapters.migrations"])
        clock = MovableClock()
        store = EventStore(pool, "notifications", clock)
        vault = KeyVault(pool, decode_master_key(generate_master_key()))
        options: dict[str, Any] = {
            "webhook_timeout_seconds": 1.0,
            "webhook_max_attempts": 4,
            "webhook_base_backoff_seconds": 0.05,
            "webhook_allow_private_targets": True,
            **settings,
        }
        yield Notifier(
            pool=pool,
            store=store,
            vault=vault,
            clock=clock,
            settings=Settings(**options),
            service=bootstrap.build(store, vault, clock),
            projections=ProjectionRunner(store, PROJECTIONS),
        )
    finally:
        await pool.close()


def holds(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    """A probe for `eventually` from a plain condition."""

    async def probe() -> bool:
        return check()

    return probe


@contextlib.asynccontextmanager
async def running(*workers: DeliveryWorker) -> AsyncIterator[None]:
    """Workers delivering in the background for the duration of the block."""
    tasks = [asyncio.create_task(worker.run()) for worker in workers]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
