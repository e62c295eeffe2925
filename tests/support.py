"""Test harness: real infrastructure, services in-process on real ports, tokens, polling."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import uvicorn
from fastapi import FastAPI

from shared.http.routes import Edge
from shared.runtime.config import Settings
from shared.runtime.server import embedded_server, http_limits
from shared.security.crypto import decode_master_key, generate_master_key
from shared.security.tokens import Role, TokenVerifier, issue_token
from shared.storage.eventstore import EventStore
from shared.storage.keyvault import KeyVault
from shared.storage.units import PostgresUnitsOfWork
from shared.usecases.idempotency import IdempotencyKeys

T = TypeVar("T")
JWT_SECRET = "test-secret-for-rapport-tests-only-32b"


class MovableClock:
    """The wall clock plus an offset tests can move forward."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


def units_of(store: EventStore) -> PostgresUnitsOfWork:
    """Units of work over a test's own event store, with a key vault of their own."""
    return PostgresUnitsOfWork(
        store, KeyVault(store.pool, decode_master_key(generate_master_key()))
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def token(
    role: Role, sub: str, *, secret: str = JWT_SECRET, ttl: timedelta = timedelta(hours=1)
) -> str:
    return issue_token(secret, role, sub, now=datetime.now(UTC), ttl=ttl)


def auth(role: Role, sub: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, sub)}"}


def routes_edge() -> Edge:
    """What routes need of a running service, for routes tested without one: tokens signed
    with `JWT_SECRET`, idempotency keys under a master key of its own."""
    tokens = TokenVerifier(JWT_SECRET)
    keys = IdempotencyKeys(decode_master_key(generate_master_key()))
    return Edge(lambda: tokens, lambda: keys)


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout: float = 15.0, interval: float = 0.02
) -> T:
    """Poll until `probe` returns something truthy; fail with the last value after `timeout`."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: T | None = None
    while asyncio.get_running_loop().time() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


@dataclass
class RunningService:
    name: str
    app: FastAPI
    url: str
    server: uvicorn.Server
    task: asyncio.Task[None]


@dataclass
class Stack:
    """The three services running in this process against the real database and broker."""

    settings: Settings
    clock: MovableClock
    services: dict[str, RunningService] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return self.services[name].url

    def client(self, name: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url(name), timeout=30.0)

    def core(self, name: str) -> Any:
        return self.services[name].app.state.core

    async def start(self, name: str, factory: Callable[..., FastAPI]) -> RunningService:
        port = free_port()
        app = factory(self.settings, clock=self.clock)
        server = embedded_server(app, "127.0.0.1", port, limits=http_limits(self.settings))
        task = asyncio.create_task(server.serve())
        service = RunningService(name, app, f"http://127.0.0.1:{port}", server, task)
        self.services[name] = service

        async def healthy() -> bool:
            if task.done():
                task.result()
            try:
                async with httpx.AsyncClient(timeout=2.0) as client:
                    response = await client.get(f"{service.url}/health")
                return response.status_code == 200
            except httpx.HTTPError:
                return False

        await eventually(healthy, timeout=60.0, interval=0.1)
        return service

    async def stop(self, name: str) -> None:
        service = self.services.pop(name)
        service.server.should_exit = True
        done, _ = await asyncio.wait({service.task}, timeout=15)
        if not done:  # a connection that never closes: stop without waiting for it
            service.server.force_exit = True
            done, _ = await asyncio.wait({service.task}, timeout=15)
        if not done:
            service.task.cancel()

    async def stop_all(self) -> None:
        for name in list(self.services):
            await self.stop(name)


async def start_intake_journey(
    intake: httpx.AsyncClient,
    coach_id: str,
    *,
    supervisor_id: str | None = None,
    client: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run an intake through to ClientCommitted; returns the start answer plus commit version."""
    headers = auth("coach", coach_id)
    started = await intake.post(
        "/v1/intakes",
        json={
            "coach_id": coach_id,
            "supervisor_id": supervisor_id,
            "client": client or {"name": "Ada Lovelace", "email": "ada@example.org"},
        },
        headers=headers,
    )
    assert started.status_code == 201, started.text
    body: dict[str, Any] = started.json()
    engagement_id = body["engagement_id"]
    steps = [
        ("assessments", {"instrument": "wellbeing", "scores": {"energy": 4}, "notes": "tired"}),
        ("goals", {"title": "Run 5k", "measure": "km", "baseline": 1, "target": 5}),
        (
            "agreement",
            {
                "role_explained": True,
                "confidentiality_limits_acknowledged": True,
                "signed_by_client": True,
                "signed_by_coach": True,
                "contact_channels": ["video"],
                "contact_hours": "weekdays 9-17",
                "session_cadence_days": 7,
            },
        ),
    ]
    for path, payload in steps:
        response = await intake.post(
            f"/v1/intakes/{engagement_id}/{path}", json=payload, headers=headers
        )
        assert response.status_code == 201, response.text
    committed = await intake.post(f"/v1/intakes/{engagement_id}/commitment", headers=headers)
    assert committed.status_code == 201, committed.text
    body["committed_version"] = committed.json()["stream_version"]
    return body
