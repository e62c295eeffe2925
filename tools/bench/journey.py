"""The bench's HTTP clients: engagements prepared through the intake journey, the stage-view
lag probe, and sequential commands for the cost against stream length.

Everything goes through the public API (contract sections 2 and 3) with HS256 tokens signed
here, so any tree that honours the contract can be measured.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import jwt

HOMEWORK = {"title": "Read chapter 3", "due_at": "2031-01-01T09:00:00Z"}
AGREEMENT = {
    "role_explained": True,
    "confidentiality_limits_acknowledged": True,
    "signed_by_client": True,
    "signed_by_coach": True,
    "contact_channels": ["video", "email"],
    "contact_hours": "weekdays 9-17",
    "session_cadence_days": 7,
}


def token(secret: str, role: str, sub: str, hours: float = 12.0) -> str:
    """An HS256 token with `sub`, `role`, `exp` (contract section 2)."""
    now = datetime.now(UTC)
    claims = {"sub": sub, "role": role, "iat": now, "exp": now + timedelta(hours=hours)}
    return jwt.encode(claims, secret, algorithm="HS256")


@dataclass(frozen=True)
class Engagement:
    """An opened engagement and the token of its coach."""

    engagement_id: str
    coach_id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def homework_path(self) -> str:
        return f"/v1/engagements/{self.engagement_id}/homework"

    @property
    def view_path(self) -> str:
        return f"/v1/engagements/{self.engagement_id}"


class JourneyFailed(RuntimeError):
    """An answer the contract does not allow."""


def _expect(response: httpx.Response, status: int) -> dict[str, object]:
    if response.status_code != status:
        raise JourneyFailed(
            f"{response.request.method} {response.request.url.path}: expected {status},"
            f" got {response.status_code} {response.text[:300]}"
        )
    body: dict[str, object] = response.json()
    return body


async def open_engagement(
    http: httpx.AsyncClient, intake: str, secret: str, number: int
) -> Engagement:
    """POST intake, assessment, goal, agreement and commitment as the engagement's coach."""
    coach_id = f"bench-coach-{number}"
    coach = token(secret, "coach", coach_id)
    headers = {"Authorization": f"Bearer {coach}"}
    client = {"name": f"Client {number}", "email": f"client{number}@example.org"}
    started = _expect(
        await http.post(
            f"{intake}/v1/intakes",
            json={"coach_id": coach_id, "client": client},
            headers=headers,
        ),
        201,
    )
    engagement_id = str(started["engagement_id"])
    base = f"{intake}/v1/intakes/{engagement_id}"
    steps: list[tuple[str, dict[str, object] | None]] = [
        ("assessments", {"instrument": "PHQ-9", "scores": {"total": 11}}),
        ("goals", {"title": "Run a 10k", "measure": "minutes", "baseline": 70, "target": 55}),
        ("agreement", AGREEMENT),
        ("commitment", None),
    ]
    for step, body in steps:
        _expect(await http.post(f"{base}/{step}", json=body, headers=headers), 201)
    return Engagement(engagement_id, coach_id, coach)


async def wait_opened(
    http: httpx.AsyncClient, engagement_url: str, engagement: Engagement, timeout: float
) -> None:
    """Until the engagement service answers 200 on the engagement's stage view."""
    deadline = time.monotonic() + timeout
    while True:
        response = await http.get(engagement_url + engagement.view_path, headers=engagement.headers)
        if response.status_code == 200:
            return
        if response.status_code != 404 or time.monotonic() > deadline:
            raise JourneyFailed(
                f"engagement {engagement.engagement_id} not opened: {response.status_code}"
            )
        await asyncio.sleep(0.05)


async def prepare_engagements(
    intake: str,
    engagement_url: str,
    secret: str,
    count: int,
    *,
    concurrency: int = 8,
    timeout: float = 180.0,
) -> list[Engagement]:
    """`count` engagements through the intake journey, each open on the engagement service."""
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=60.0) as http:

        async def one(number: int) -> Engagement:
            async with gate:
                engagement = await open_engagement(http, intake, secret, number)
                await wait_opened(http, engagement_url, engagement, timeout)
                return engagement

        return list(await asyncio.gather(*(one(n) for n in range(count))))


async def command(http: httpx.AsyncClient, engagement_url: str, engagement: Engagement) -> int:
    """One homework command; its answered stream version."""
    body = _expect(
        await http.post(
            engagement_url + engagement.homework_path, json=HOMEWORK, headers=engagement.headers
        ),
        201,
    )
    version = body["stream_version"]
    assert isinstance(version, int)
    return version


async def visible_after(
    http: httpx.AsyncClient,
    engagement_url: str,
    engagement: Engagement,
    version: int,
    *,
    timeout: float = 120.0,
) -> float:
    """Seconds until the stage view has folded `version`, polling from 2 ms up to 50 ms."""
    started = time.perf_counter()
    pause = 0.002
    while True:
        response = await http.get(engagement_url + engagement.view_path, headers=engagement.headers)
        if response.status_code == 200 and int(response.json()["version"]) >= version:
            return time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            raise JourneyFailed(f"stage view not at version {version} after {timeout:.0f} s")
        await asyncio.sleep(pause)
        pause = min(pause * 1.5, 0.05)


async def probe_lag(
    engagement_url: str,
    engagements: Sequence[Engagement],
    *,
    samples: int,
    spacing: float = 0.1,
    max_seconds: float = 240.0,
) -> list[float]:
    """Stage-view lags in ms: a command, then the time from its answer until the view shows
    its version; sequential, `spacing` seconds apart, at least `samples` (fewer only when
    `max_seconds` runs out)."""
    lags: list[float] = []
    deadline = time.monotonic() + max_seconds
    async with httpx.AsyncClient(timeout=60.0) as http:
        while len(lags) < samples and time.monotonic() < deadline:
            engagement = engagements[len(lags) % len(engagements)]
            version = await command(http, engagement_url, engagement)
            lags.append(1000 * await visible_after(http, engagement_url, engagement, version))
            await asyncio.sleep(spacing)
    return lags


async def settle(
    engagement_url: str, engagement: Engagement, *, below: float = 0.25, timeout: float = 300.0
) -> float:
    """Wait until the projections have caught up (a probe command shows within `below` s);
    the seconds it took."""
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=60.0) as http:
        while True:
            version = await command(http, engagement_url, engagement)
            lag = await visible_after(http, engagement_url, engagement, version, timeout=timeout)
            if lag < below or time.monotonic() - started > timeout:
                return time.monotonic() - started
            await asyncio.sleep(0.2)


async def interleaved_commands(
    engagement_url: str, first: Sequence[Engagement], second: Engagement, rounds: int
) -> tuple[list[float], list[float]]:
    """Sequential command latencies in ms, alternating between `first` (in turn) and `second`,
    so both series see the same machine."""
    a: list[float] = []
    b: list[float] = []
    async with httpx.AsyncClient(timeout=60.0) as http:
        for n in range(rounds):
            for series, engagement in ((a, first[n % len(first)]), (b, second)):
                started = time.perf_counter()
                await command(http, engagement_url, engagement)
                series.append(1000 * (time.perf_counter() - started))
    return a, b


async def warm(engagement_url: str, engagements: Sequence[Engagement], commands: int) -> None:
    """`commands` homework commands on each engagement (fresh streams of about that length)."""
    async with httpx.AsyncClient(timeout=60.0) as http:
        for engagement in engagements:
            for _ in range(commands):
                await command(http, engagement_url, engagement)


async def stage_version(engagement_url: str, engagement: Engagement) -> int:
    async with httpx.AsyncClient(timeout=60.0) as http:
        response = await http.get(engagement_url + engagement.view_path, headers=engagement.headers)
        version = _expect(response, 200)["version"]
        assert isinstance(version, int)
        return version


async def wait_version(
    engagement_url: str, engagement: Engagement, version: int, timeout: float = 600.0
) -> float:
    """Seconds until the engagement's stage view reaches `version`."""
    async with httpx.AsyncClient(timeout=60.0) as http:
        return await visible_after(http, engagement_url, engagement, version, timeout=timeout)
