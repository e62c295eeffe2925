"""Load for the fault run: coaches onboarding clients and assigning homework, as a careful
client would send it: every command with an `Idempotency-Key`, retried with the same key after
a 503 or a connection error, until it is acknowledged."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support import auth

DUE = "2030-01-01T00:00:00Z"
GIVE_UP_SECONDS = 120.0


@dataclass(frozen=True)
class Ack:
    """An acknowledged command: where its event went."""

    service: str
    stream_id: str
    stream_version: int
    event_type: str
    at: float


@dataclass
class Ledger:
    """Everything the load saw."""

    acks: list[Ack] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)
    abandoned: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    committed: dict[str, float] = field(default_factory=dict)  # engagement id -> ack time

    def server_errors(self) -> dict[int, int]:
        return {status: n for status, n in self.statuses.items() if status >= 500}

    def first_ack_after(self, moment: float, service: str | None = None) -> float | None:
        times = [ack.at for ack in self.acks if ack.at > moment and service in (None, ack.service)]
        return min(times) - moment if times else None


class Load:
    """`clients` coaches sending commands until `stop` is set."""

    def __init__(self, urls: dict[str, list[str]], clients: int) -> None:
        self.urls = urls
        self.clients = clients
        self.ledger = Ledger()
        self.stop = asyncio.Event()
        self._open: list[tuple[str, str]] = []  # (engagement id, coach id), opened
        self._pending: list[tuple[str, str]] = []  # committed, not seen open yet

    async def run(self) -> None:
        limits = httpx.Limits(max_connections=self.clients * 2)
        async with httpx.AsyncClient(timeout=10.0, limits=limits) as http:
            await asyncio.gather(*(self._coach(http, n) for n in range(self.clients)))

    async def run_for(self, seconds: float) -> None:
        """Send for `seconds`, let every client finish what it sent, and check that each
        command was acknowledged as expected."""
        running = asyncio.create_task(self.run())
        await asyncio.sleep(seconds)
        self.stop.set()
        await asyncio.wait_for(running, 120)
        ledger = self.ledger
        assert ledger.acks and not ledger.unexpected and not ledger.abandoned

    async def command(
        self,
        http: httpx.AsyncClient,
        service: str,
        path: str,
        body: dict[str, Any] | None,
        headers: dict[str, str],
        event_type: str,
        *,
        stream_id: str | None = None,
    ) -> dict[str, Any] | None:
        """Send until acknowledged (same key every time); None if the stream is not open yet."""
        key = str(uuid.uuid4())
        deadline = time.monotonic() + GIVE_UP_SECONDS
        backoff = 0.1
        while time.monotonic() < deadline:
            url = random.choice(self.urls[service])
            try:
                response = await http.post(
                    url + path, json=body, headers={**headers, "Idempotency-Key": key}
                )
            except httpx.TransportError as error:
                self.ledger.transport_errors[type(error).__name__] += 1
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            self.ledger.statuses[response.status_code] += 1
            if response.status_code == 201:
                answer: dict[str, Any] = response.json()
                self.ledger.acks.append(
                    Ack(
                        service,
                        stream_id or answer["engagement_id"],
                        int(answer["stream_version"]),
                        event_type,
                        time.monotonic(),
                    )
                )
                return answer
            if response.status_code == 503:
                assert response.headers.get("retry-after"), response.text
                assert response.headers["content-type"].startswith("application/problem+json")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            if response.status_code == 404 and service == "engagement":
                return None  # not opened yet: the caller tries another engagement
            self.ledger.unexpected.append(f"{path}: {response.status_code} {response.text}")
            return None
        self.ledger.abandoned.append(f"{service} {path}")
        return None

    async def _coach(self, http: httpx.AsyncClient, n: int) -> None:
        coach_id = f"coach-fault-{n}-{uuid.uuid4().hex[:6]}"
        headers = auth("coach", coach_id)
        sent = 0
        while not self.stop.is_set():
            mine = [e for e in self._open if e[1] == coach_id]
            if not mine or sent % 15 == 0:
                await self._onboard(http, coach_id, headers)
            else:
                engagement_id, _ = random.choice(mine)
                await self.command(
                    http,
                    "engagement",
                    f"/v1/engagements/{engagement_id}/homework",
                    {"title": f"homework {sent}", "due_at": DUE},
                    headers,
                    "HomeworkAssigned",
                    stream_id=engagement_id,
                )
            sent += 1
            await self._notice_opened(http, headers)

    async def _onboard(
        self, http: httpx.AsyncClient, coach_id: str, headers: dict[str, str]
    ) -> None:
        started = await self.command(
            http,
            "intake",
            "/v1/intakes",
            {"coach_id": coach_id, "client": {"name": "Fault Client", "email": "f@x.example"}},
            headers,
            "IntakeStarted",
        )
        if started is None:
            return
        engagement_id = started["engagement_id"]
        steps: list[tuple[str, dict[str, Any] | None, str]] = [
            ("assessments", {"instrument": "w", "scores": {"energy": 3}}, "BaselineAssessed"),
            ("goals", {"title": "g", "measure": "m", "baseline": 1, "target": 2}, "GoalSet"),
            (
                "agreement",
                {
                    "role_explained": True,
                    "confidentiality_limits_acknowledged": True,
                    "signed_by_client": True,
                    "signed_by_coach": True,
                    "contact_channels": ["video"],
                    "contact_hours": "weekdays",
                    "session_cadence_days": 7,
                },
                "AgreementSigned",
            ),
            ("commitment", None, "ClientCommitted"),
        ]
        for path, body, event_type in steps:
            answer = await self.command(
                http,
                "intake",
                f"/v1/intakes/{engagement_id}/{path}",
                body,
                headers,
                event_type,
                stream_id=engagement_id,
            )
            if answer is None:
                return
        self.ledger.committed[engagement_id] = time.monotonic()
        self._pending.append((engagement_id, coach_id))

    async def _notice_opened(self, http: httpx.AsyncClient, headers: dict[str, str]) -> None:
        """Move committed engagements that answer on the engagement service to the open list."""
        for engagement_id, coach_id in random.sample(self._pending, min(2, len(self._pending))):
            try:
                response = await http.get(
                    f"{random.choice(self.urls['engagement'])}/v1/engagements/{engagement_id}",
                    headers=auth("coach", coach_id),
                )
            except httpx.TransportError:
                return
            if response.status_code == 200 and (engagement_id, coach_id) in self._pending:
                self._pending.remove((engagement_id, coach_id))
                self._open.append((engagement_id, coach_id))
