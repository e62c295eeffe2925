"""Helpers for the engagement's end-to-end tests (no tests here): one engagement driven over
HTTP, its views polled until they reach the last command's version, its stored log peeked at."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.engagement.bootstrap import TOPIC as ENGAGEMENT_TOPIC
from shared.model.envelope import Envelope
from shared.security.tokens import Role
from tests.support import Stack, auth, eventually, start_intake_journey


@dataclass
class Journey:
    """One engagement, opened through the intake and driven through the engagement's HTTP."""

    stack: Stack
    http: httpx.AsyncClient
    engagement_id: str
    coach_id: str
    client_id: str
    supervisor_id: str | None
    version: int = 1

    def headers(self, role: Role, sub: str | None = None) -> dict[str, str]:
        subjects = {
            "coach": self.coach_id,
            "client": self.client_id,
            "supervisor": self.supervisor_id or "nobody",
        }
        return auth(role, sub or subjects.get(role, "ops"))

    async def post(
        self,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        role: Role = "coach",
        sub: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        return await self.http.post(
            f"/v1/engagements/{self.engagement_id}/{path}",
            json=body,
            headers={**self.headers(role, sub), **(headers or {})},
        )

    async def send(
        self, path: str, body: dict[str, Any] | None = None, *, role: Role = "coach"
    ) -> dict[str, Any]:
        """A command that must be accepted: 201 with the next stream version."""
        response = await self.post(path, body, role=role)
        assert response.status_code == 201, f"{path}: {response.status_code} {response.text}"
        answer: dict[str, Any] = response.json()
        assert answer["stream_version"] > self.version
        self.version = answer["stream_version"]
        return answer

    async def refused(
        self, path: str, body: dict[str, Any] | None = None, *, role: Role = "coach", status: int
    ) -> dict[str, Any]:
        """A command that must be refused with `status`, as problem+json, writing nothing."""
        response = await self.post(path, body, role=role)
        assert response.status_code == status, f"{path}: {response.status_code} {response.text}"
        assert response.headers["content-type"].startswith("application/problem+json")
        assert await self.stored_version() == self.version
        problem: dict[str, Any] = response.json()
        return problem

    async def view(self, suffix: str = "", *, role: Role = "coach") -> dict[str, Any]:
        """A read, polled until it has folded the last accepted command."""

        async def probe() -> dict[str, Any] | None:
            response = await self.http.get(
                f"/v1/engagements/{self.engagement_id}{suffix}",
                headers=self.headers(role),
            )
            if response.status_code != 200:
                return None
            body: dict[str, Any] = response.json()
            return body if body["version"] >= self.version else None

        return await eventually(probe)

    async def as_of(self, moment: str, suffix: str = "") -> dict[str, Any]:
        """A read as it stood at `moment` (no waiting: it is folded from the log)."""
        response = await self.http.get(
            f"/v1/engagements/{self.engagement_id}{suffix}",
            headers=self.headers("coach"),
            params={"as_of": moment},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def stage(self) -> dict[str, Any]:
        return await self.view()

    async def trust(self) -> dict[str, Any]:
        return await self.view("/trust")

    async def stored_version(self) -> int:
        store = self.stack.core("engagement").store
        async with store.pool.acquire() as conn:
            version: int = await store.version(conn, self.engagement_id)
        return version

    async def stored_events(self) -> list[Envelope]:
        store = self.stack.core("engagement").store
        async with store.snapshot() as conn:
            return [envelope async for envelope in store.read_stream(conn, self.engagement_id)]

    async def published_events(self) -> list[Envelope]:
        """The engagement's events as published on `engagement.events`, up to the last version."""
        return await eventually(self._published, timeout=20.0)

    async def _published(self) -> list[Envelope] | None:
        bootstrap = self.stack.settings.kafka_bootstrap
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            partitions = [
                TopicPartition(ENGAGEMENT_TOPIC, p)
                for p in sorted(consumer.partitions_for_topic(ENGAGEMENT_TOPIC) or {0})
            ]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            found: list[Envelope] = []
            while any([await consumer.position(p) < ends[p] for p in partitions]):
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        if record.key == self.engagement_id.encode():
                            found.append(Envelope.model_validate_json(record.value))
        finally:
            await consumer.stop()
        seen = {envelope.event_id: envelope for envelope in found}
        ordered = sorted(seen.values(), key=lambda envelope: envelope.stream_version)
        return ordered if ordered and ordered[-1].stream_version >= self.version else None


async def open_engagement(
    stack: Stack,
    intake: httpx.AsyncClient,
    engagement: httpx.AsyncClient,
    *,
    supervisor: bool = False,
    coach_id: str | None = None,
) -> Journey:
    """An intake run to ClientCommitted, and the engagement it opens once that propagates."""
    coach_id = coach_id or f"coach-{uuid.uuid4().hex[:8]}"
    supervisor_id = f"sup-{uuid.uuid4().hex[:8]}" if supervisor else None
    started = await start_intake_journey(intake, coach_id, supervisor_id=supervisor_id)
    journey = Journey(
        stack=stack,
        http=engagement,
        engagement_id=started["engagement_id"],
        coach_id=coach_id,
        client_id=started["client_id"],
        supervisor_id=supervisor_id,
    )
    await journey.stage()
    return journey


def stages(view: dict[str, Any]) -> list[str]:
    return [entry["stage"] for entry in view["stage_history"]]


def trust_numbers(view: dict[str, Any]) -> tuple[int, int, int, int, int, bool]:
    """(score, confirmed, refuted, awaiting, open client violations, deception pattern)."""
    return (
        view["score"],
        view["confirmed"],
        view["refuted"],
        view["awaiting_verification"],
        view["open_client_violations"],
        view["deception_pattern"],
    )


DUE = "2030-01-01T09:00:00Z"
HELD = "2025-01-01T09:00:00Z"  # a session is recorded once held: in the past
