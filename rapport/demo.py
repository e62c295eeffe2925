"""`rapport demo`: one client walked through all four stages against a running stack.

The first thing to run after `make run`: an intake up to the coaching agreement, the
engagement it opens over Kafka, homework (one claim confirmed, one refuted), a session, a
boundary check-in, transformation, graduation to a longer cadence, graduated. Along the way the
client and the coach check in on the relationship: the client twice rates active listening low
(a concern opens, while the coach rates their own listening 5), then 4 (it resolves). After each
step it waits for the stage, trust and relationship views to catch up and prints the stage, the
trust score, the relationship's health and its open concerns.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from rich.text import Text

from rapport.terminal import output
from services.engagement.domain.events import FACTORS
from shared.security.tokens import Role, issue_token

DEFAULT_INTAKE_URL = "http://127.0.0.1:8001"
DEFAULT_ENGAGEMENT_URL = "http://127.0.0.1:8002"


class DemoFailed(RuntimeError):
    """The stack did not answer as the contract says."""


@dataclass(frozen=True)
class DemoStep:
    step: str
    stage: str
    score: int
    version: int
    health: int | None = None
    concerns: tuple[str, ...] = ()


def ratings(listening: int) -> dict[str, int]:
    """Six ratings of the relationship: 4 for each factor, `listening` for active listening."""
    return {**dict.fromkeys(FACTORS, 4), "active_listening": listening}


class _Walk:
    """The HTTP conversation of the demo, with one coach and one client."""

    def __init__(self, http: httpx.AsyncClient, urls: tuple[str, str], secret: str) -> None:
        self.http = http
        self.intake_url, self.engagement_url = urls
        self.secret = secret
        self.coach_id = f"demo-coach-{uuid.uuid4().hex[:8]}"
        self.client_id = ""
        self.engagement_id = ""
        self.steps: list[DemoStep] = []

    def headers(self, role: Role) -> dict[str, str]:
        sub = self.coach_id if role == "coach" else self.client_id
        now = datetime.now(UTC)
        token = issue_token(self.secret, role, sub, now=now, ttl=timedelta(minutes=30))
        return {"Authorization": f"Bearer {token}"}

    async def post(
        self, url: str, body: dict[str, Any] | None = None, role: Role = "coach"
    ) -> dict[str, Any]:
        response = await self.http.post(url, json=body, headers=self.headers(role))
        if response.status_code != 201:
            raise DemoFailed(f"POST {url} answered {response.status_code}: {response.text}")
        answer: dict[str, Any] = response.json()
        return answer

    async def intake(self) -> None:
        started = await self.post(
            f"{self.intake_url}/v1/intakes",
            {
                "coach_id": self.coach_id,
                "client": {"name": "Grace Hopper", "email": "grace@example.org"},
            },
        )
        self.engagement_id, self.client_id = started["engagement_id"], started["client_id"]
        base = f"{self.intake_url}/v1/intakes/{self.engagement_id}"
        await self.post(f"{base}/assessments", {"instrument": "wellbeing", "scores": {"energy": 3}})
        await self.post(
            f"{base}/goals", {"title": "Run 5k", "measure": "km", "baseline": 1, "target": 5}
        )
        await self.post(
            f"{base}/agreement",
            {
                "role_explained": True,
                "confidentiality_limits_acknowledged": True,
                "signed_by_client": True,
                "signed_by_coach": True,
                "contact_channels": ["video"],
                "contact_hours": "weekdays 9-17",
                "session_cadence_days": 7,
            },
        )
        await self.post(f"{base}/commitment")
        await self.record("Client committed (intake, then Kafka)", 1)

    async def command(
        self, step: str, path: str, body: dict[str, Any] | None = None, role: Role = "coach"
    ) -> dict[str, Any]:
        url = f"{self.engagement_url}/v1/engagements/{self.engagement_id}/{path}"
        answer = await self.post(url, body, role)
        await self.record(step, int(answer["stream_version"]))
        return answer

    async def view(self, suffix: str, version: int, timeout: float) -> dict[str, Any]:
        """A read, polled until it has folded `version` (reads are eventually consistent)."""
        url = f"{self.engagement_url}/v1/engagements/{self.engagement_id}{suffix}"
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            response = await self.http.get(url, headers=self.headers("coach"))
            if response.status_code == 200 and response.json()["version"] >= version:
                body: dict[str, Any] = response.json()
                return body
            if asyncio.get_running_loop().time() > deadline:
                raise DemoFailed(f"GET {url} did not reach version {version}: {response.text}")
            await asyncio.sleep(0.05)

    async def record(self, step: str, version: int, timeout: float = 30.0) -> None:
        stage = await self.view("", version, timeout)
        trust = await self.view("/trust", version, timeout)
        bond = await self.view("/relationship", version, timeout)
        self.steps.append(
            DemoStep(
                step,
                stage["stage"],
                int(trust["score"]),
                version,
                bond["health"],
                tuple(bond["concerns"]),
            )
        )

    async def check_in(self, step: str, listening: int, role: Role, comment: str) -> None:
        body = {"ratings": ratings(5 if role == "coach" else listening), "comment": comment}
        await self.command(step, "relationship-checkins", body, role)

    async def walk(self) -> dict[str, Any]:
        await self.intake()
        due = (datetime.now(UTC) + timedelta(days=7)).isoformat()
        await self.command("Plan started", "plan")
        await self.check_in(
            "Client checks in: listening 2", 2, "client", "I am not sure I am heard"
        )
        await self.check_in("Coach checks in: own listening 5", 5, "coach", "good rapport")
        first = await self.command(
            "Homework assigned", "homework", {"title": "Walk", "due_at": due}
        )
        walk = first["homework_id"]
        await self.command(
            "Client claims it", f"homework/{walk}/claim", {"note": "daily"}, "client"
        )
        await self.command(
            "Coach confirms it", f"homework/{walk}/verification", {"outcome": "confirmed"}
        )
        second = await self.command(
            "Homework assigned", "homework", {"title": "Journal", "due_at": due}
        )
        journal = second["homework_id"]
        await self.command("Client claims it", f"homework/{journal}/claim", None, "client")
        await self.command(
            "Coach refutes the claim",
            f"homework/{journal}/verification",
            {"outcome": "refuted", "evidence": "no entries"},
        )
        await self.command(
            "Session held",
            "sessions",
            {"held_at": datetime.now(UTC).isoformat(), "duration_minutes": 50},
        )
        await self.check_in(
            "Client: listening 1, concern raised", 1, "client", "talked over me again"
        )
        await self.command("Boundary check-in", "boundary-reviews", {"notes": "all respected"})
        await self.check_in(
            "Client: listening 4, concern resolved", 4, "client", "felt listened to today"
        )
        await self.command("Transformation achieved", "transformation", {"summary": "runs 5k"})
        await self.command("Graduation: every 28 days", "graduation", {"session_cadence_days": 28})
        await self.command("Graduated", "graduate")
        return await self.view("", self.steps[-1].version, 30.0)


async def run_demo(
    intake_url: str, engagement_url: str, secret: str, *, console: Console | None = None
) -> list[DemoStep]:
    """Walk one client through the stages; print each step and the stage timeline."""
    console = console or output()
    async with httpx.AsyncClient(timeout=10.0) as http:
        walk = _Walk(http, (intake_url.rstrip("/"), engagement_url.rstrip("/")), secret)
        try:
            final = await walk.walk()
        except httpx.HTTPError as error:
            raise DemoFailed(
                f"cannot reach the stack ({error!r}); is `make run` (rapport dev) running?"
            ) from error
    table = Table(title=f"Engagement {walk.engagement_id}")
    numeric = ("#", "trust score", "health")
    for column in ("#", "step", "stage", "trust score", "health", "concerns", "version"):
        table.add_column(column, justify="right" if column in numeric else "left")
    for number, step in enumerate(walk.steps, 1):
        table.add_row(
            str(number),
            step.step,
            step.stage,
            str(step.score),
            "—" if step.health is None else str(step.health),
            ", ".join(step.concerns) or "—",
            str(step.version),
        )
    console.print(table)
    timeline = Table(title="Stage timeline")
    timeline.add_column("stage")
    timeline.add_column("entered at")
    for entry in final["stage_history"]:
        timeline.add_row(entry["stage"], entry["entered_at"])
    console.print(timeline)
    console.print(next_steps(walk.engagement_id, walk.coach_id, engagement_url), soft_wrap=True)
    return walk.steps


def next_steps(engagement_id: str, coach_id: str, engagement_url: str) -> Text:
    """What to try after the demo, on the engagement it walked."""
    lines = [
        "Try next:",
        f"  rapport audit report {engagement_id} --out report.html"
        "   # its timeline, trust and six factors, for a browser",
        "  rapport audit verify     # every hash chain of every service",
        "  rapport audit replay     # rebuild every projection and compare",
        f"  rapport token --role coach --sub {coach_id}"
        f"   # a token for the API: {engagement_url.rstrip('/')}/docs",
    ]
    return Text("\n".join(lines))


def main(intake_url: str, engagement_url: str, secret: str | None, data_dir: Path) -> int:
    """`rapport demo`: the exit status (0 when the walk went through)."""
    console = output()
    if not secret:
        from rapport.secrets import no_secrets, stored_jwt_secret

        secret = stored_jwt_secret(data_dir)
        if secret is None:
            console.print(f"[red]error:[/] {no_secrets(data_dir)}", soft_wrap=True)
            return 2
    try:
        asyncio.run(run_demo(intake_url, engagement_url, secret, console=console))
    except DemoFailed as error:
        console.print(f"[red]demo failed:[/] {error}")
        return 1
    return 0
