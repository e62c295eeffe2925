"""Hostile input at every service's edge: each is answered 4xx problem+json, nothing is
written, and the service stays healthy and keeps accepting valid commands."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from rapport.registry import SERVICES
from services.engagement.domain.events import FACTORS
from tests.e2e.engagement_support import DUE, HELD, Journey, open_engagement
from tests.support import Stack, auth

JSON = {"content-type": "application/json"}
MEGABYTE = 1024 * 1024


@dataclass
class Target:
    """One POST endpoint, a valid body for it, and who may send it."""

    service: str
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    text_field: str  # a string field of the body
    number_field: str | None  # a number field of the body, if it has one
    bool_field: str | None = None  # a boolean field of the body, if it has one


@dataclass
class Hostile:
    name: str
    content: bytes
    headers: dict[str, str]
    status: int


def hostile_requests(target: Target) -> list[Hostile]:
    """Every kind of hostile body, for one endpoint."""
    body, text = target.body, target.text_field

    def with_(**fields: Any) -> bytes:
        return json.dumps({**body, **fields}).encode()

    def raw(fragment: str) -> bytes:
        """The valid body with `fragment` as the text field's raw JSON value."""
        encoded = json.dumps({**body, text: "__HOLE__"})
        return encoded.replace('"__HOLE__"', fragment).encode()

    cases = [
        Hostile("an oversized body", b'{"x": "' + b"a" * (300 * 1024) + b'"}', JSON, 413),
        Hostile("a one-megabyte string", with_(**{text: "a" * MEGABYTE}), JSON, 413),
        Hostile("a string over its limit", with_(**{text: "a" * (200 * 1024)}), JSON, 422),
        Hostile("deeply nested arrays", b"[" * 100_000 + b"]" * 100_000, JSON, 422),
        Hostile("deeply nested objects", b'{"a":' * 30_000 + b"1" + b"}" * 30_000, JSON, 422),
        Hostile("a nested value deep inside a field", raw("[" * 60_000 + "]" * 60_000), JSON, 422),
        Hostile("truncated JSON", json.dumps(body).encode()[:-3], JSON, 422),
        Hostile("not JSON at all", b"hello=world&x=1", JSON, 422),
        Hostile("an empty body", b"", JSON, 422),
        Hostile("a JSON array", b"[]", JSON, 422),
        Hostile("a JSON string", b'"body"', JSON, 422),
        Hostile("null", b"null", JSON, 422),
        Hostile("a number where text goes", raw("12345"), JSON, 422),
        Hostile("an object where text goes", raw('{"$ne": null}'), JSON, 422),
        Hostile("a list where text goes", raw('["a", "b"]'), JSON, 422),
        Hostile("an unknown field", with_(is_admin=True), JSON, 422),
        Hostile("a NUL character", raw('"a\\u0000b"'), JSON, 422),
        Hostile("a lone surrogate", raw('"\\ud800"'), JSON, 422),
        Hostile("bytes that are not UTF-8", raw('"').rstrip(b"}") + b'\xff\xfe"}', JSON, 422),
        Hostile(
            "JSON sent as text/plain",
            json.dumps(body).encode(),
            {"content-type": "text/plain"},
            415,
        ),
        Hostile(
            "JSON sent as a form",
            json.dumps(body).encode(),
            {"content-type": "application/x-www-form-urlencoded"},
            415,
        ),
    ]
    if target.number_field is not None:
        field = target.number_field

        def number(literal: str) -> bytes:
            encoded = json.dumps({**body, field: 0})
            return encoded.replace(f'"{field}": 0', f'"{field}": {literal}').encode()

        cases += [
            Hostile("NaN", number("NaN"), JSON, 422),
            Hostile("Infinity", number("Infinity"), JSON, 422),
            Hostile("-Infinity", number("-Infinity"), JSON, 422),
            Hostile("a number that overflows a float", number("1e999"), JSON, 422),
            Hostile("a number beyond the allowed range", number("1e300"), JSON, 422),
            Hostile("an integer of five thousand digits", number("9" * 5000), JSON, 422),
            Hostile("text where a number goes", number('"five"'), JSON, 422),
            Hostile("true where a number goes", number("true"), JSON, 422),
        ]
    if target.bool_field is not None:
        cases += [
            Hostile(
                f"{value!r} where a boolean goes", with_(**{target.bool_field: value}), JSON, 422
            )
            for value in ("true", 1, "yes", None)
        ]
    return cases


BAD_IDS = [
    ("sql", "x'; DROP TABLE events; --", 422),
    ("unicode", "ünïcødé-☃", 422),
    ("spaces", "a b", 422),
    ("too long", "a" * 101, 422),
    ("a slash", "a/b", 404),
    ("an encoded slash", "a%2Fb", 404),
    ("dot segments", "..%2F..%2Fetc", 404),
    ("percent-encoded NUL", "a%00b", 422),
]


@dataclass
class World:
    intake_id: str
    coach_id: str
    journey: Journey
    targets: list[Target]


@pytest.fixture(scope="module")
async def world(stack: Stack) -> AsyncIterator[World]:
    coach_id = f"coach-{uuid.uuid4().hex[:8]}"
    coach = auth("coach", coach_id)
    async with stack.client("intake") as intake, stack.client("engagement") as engagement:
        started = await intake.post(
            "/v1/intakes",
            json={"coach_id": coach_id, "client": {"name": "Hostile", "email": "h@x.example"}},
            headers=coach,
        )
        assert started.status_code == 201, started.text
        intake_id = started.json()["engagement_id"]
        journey = await open_engagement(stack, intake, engagement)
        eng = f"/v1/engagements/{journey.engagement_id}"
        targets = [
            Target(
                "intake",
                "/v1/intakes",
                {"coach_id": coach_id, "client": {"name": "N", "email": "n@x.example"}},
                coach,
                "coach_id",
                None,
            ),
            Target(
                "intake",
                f"/v1/intakes/{intake_id}/goals",
                {"title": "t", "measure": "m", "baseline": 0, "target": 1},
                coach,
                "title",
                "baseline",
            ),
            Target(
                "intake",
                f"/v1/intakes/{intake_id}/agreement",
                {
                    "role_explained": True,
                    "confidentiality_limits_acknowledged": True,
                    "signed_by_client": True,
                    "signed_by_coach": True,
                    "contact_channels": ["video"],
                    "contact_hours": "any",
                    "session_cadence_days": 7,
                },
                coach,
                "contact_hours",
                "session_cadence_days",
                "signed_by_client",
            ),
            Target(
                "intake",
                f"/v1/intakes/{intake_id}/assessments",
                {"instrument": "w", "scores": {"energy": 1}, "notes": "n"},
                coach,
                "notes",
                None,
            ),
            Target(
                "engagement",
                f"{eng}/homework",
                {"title": "t", "due_at": DUE},
                journey.headers("coach"),
                "title",
                None,
            ),
            Target(
                "engagement",
                f"{eng}/sessions",
                {"held_at": HELD, "duration_minutes": 30, "notes": "n"},
                journey.headers("coach"),
                "notes",
                "duration_minutes",
            ),
            Target(
                "engagement",
                f"{eng}/boundary-violations",
                {"violated_by": "client", "kind": "other", "description": "d"},
                journey.headers("coach"),
                "description",
                None,
            ),
            Target(  # after homework: its valid body starts the plan check-ins need
                "engagement",
                f"{eng}/relationship-checkins",
                {"ratings": dict.fromkeys(FACTORS, 3), "comment": "c"},
                journey.headers("client"),
                "comment",
                None,
            ),
            Target(
                "notifications",
                "/v1/webhooks",
                {"recipient": f"coach:{coach_id}", "url": "http://127.0.0.1:9/h", "secret": "s"},
                coach,
                "url",
                None,
            ),
        ]
        yield World(intake_id, coach_id, journey, targets)


async def written(stack: Stack, world: World) -> tuple[int, ...]:
    """What the targets could have written: the two streams, the coach's intakes, webhooks."""
    intake, engagement = stack.core("intake"), stack.core("engagement")
    async with intake.store.pool.acquire() as conn:
        intake_version = await intake.store.version(conn, world.intake_id)
        intakes = await conn.fetchval(
            "SELECT count(*) FROM intake.events WHERE event_type = 'IntakeStarted'"
            " AND envelope->'data'->>'coach_id' = $1",
            world.coach_id,
        )
        webhooks = await conn.fetchval(
            "SELECT count(*) FROM notifications.webhooks WHERE recipient = $1",
            f"coach:{world.coach_id}",
        )
    async with engagement.store.pool.acquire() as conn:
        engagement_version = await engagement.store.version(conn, world.journey.engagement_id)
    return (intake_version, engagement_version, intakes, webhooks)


def assert_problem(response: httpx.Response, status: int, what: str) -> None:
    assert response.status_code == status, f"{what}: {response.status_code} {response.text[:300]}"
    assert response.headers["content-type"].startswith("application/problem+json"), what
    problem = response.json()
    assert problem["status"] == status and problem["title"] and problem["detail"], what
    assert len(response.content) < 4096, what  # no echo of the hostile input


async def test_hostile_bodies_are_refused_with_problems_and_write_nothing(
    stack: Stack, world: World
) -> None:
    before = await written(stack, world)
    sent = 0
    for target in world.targets:
        async with stack.client(target.service) as http:
            for hostile in hostile_requests(target):
                response = await http.post(
                    target.path,
                    content=hostile.content,
                    headers={**target.headers, **hostile.headers},
                )
                assert_problem(response, hostile.status, f"{target.path}: {hostile.name}")
                sent += 1
    assert sent > 150
    assert await written(stack, world) == before


async def test_an_oversized_body_streamed_without_a_length_is_refused(
    stack: Stack, world: World
) -> None:
    before = await written(stack, world)
    target = world.targets[1]

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"title": "'
        for _ in range(40):
            yield b"a" * 10_000
        yield b'", "measure": "m", "baseline": 0, "target": 1}'

    async with stack.client("intake") as http:
        response = await http.post(
            target.path, content=chunks(), headers={**target.headers, **JSON}
        )
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "chunked")
    assert await written(stack, world) == before


async def test_ids_that_are_not_ids_are_refused_in_paths_and_bodies(
    stack: Stack, world: World
) -> None:
    before = await written(stack, world)
    coach = auth("coach", world.coach_id)
    async with stack.client("intake") as intake, stack.client("engagement") as engagement:
        for name, bad, status in BAD_IDS:
            for http, path in (
                (intake, f"/v1/intakes/{bad}/goals"),
                (engagement, f"/v1/engagements/{bad}/homework"),
                (engagement, f"/v1/engagements/{world.journey.engagement_id}/homework/{bad}/claim"),
            ):
                body = {"title": "t", "measure": "m", "baseline": 0, "target": 1, "due_at": DUE}
                if "homework" in path:
                    body = {"title": "t", "due_at": DUE} if path.endswith("homework") else {}
                response = await http.post(path, json=body, headers=coach)
                assert_problem(response, status, f"{path} ({name})")
            read = await engagement.get(f"/v1/engagements/{bad}", headers=coach)
            assert_problem(read, status, f"read ({name})")
        for name, bad, _ in BAD_IDS:
            if "%" in bad:
                continue
            response = await intake.post(
                "/v1/intakes",
                json={"coach_id": bad, "client": {"name": "N", "email": "n@x.example"}},
                headers=auth("admin", "ops"),
            )
            assert_problem(response, 422, f"coach_id ({name})")
    assert await written(stack, world) == before


async def test_bad_query_values_are_refused_with_problems(stack: Stack, world: World) -> None:
    eng = f"/v1/engagements/{world.journey.engagement_id}"
    headers = world.journey.headers("coach")
    async with stack.client("engagement") as engagement, stack.client("notifications") as notes:
        for as_of in ("yesterday", "2030-01-01T00:00:00", "9" * 400, "2030-13-45T99:00:00Z"):
            response = await engagement.get(eng, params={"as_of": as_of}, headers=headers)
            assert_problem(response, 422, f"as_of={as_of}")
        for stage in ("nope", "' OR 1=1 --"):
            response = await engagement.get(
                f"/v1/coaches/{world.coach_id}/engagements",
                params={"stage": stage},
                headers=headers,
            )
            assert_problem(response, 422, f"stage={stage}")
        for recipient in ("coach", "coach:", "root:x", "coach:a/b", "coach:" + "a" * 200):
            response = await notes.get(
                "/v1/notifications", params={"recipient": recipient}, headers=headers
            )
            assert_problem(response, 422, f"recipient={recipient}")


async def test_an_encoded_slash_in_a_path_routes_nowhere_even_on_the_command_path(
    stack: Stack, world: World
) -> None:
    before = await written(stack, world)
    eng = world.journey.engagement_id
    headers = world.journey.headers("coach")
    async with stack.client("engagement") as engagement, stack.client("intake") as intake:
        trust = await engagement.get(f"/v1/engagements/{eng}%2Ftrust", headers=headers)
        assert_problem(trust, 404, "an encoded slash before trust")
        for spelled in ("%2F", "%2f"):
            command = await engagement.post(
                f"/v1/engagements/{eng}{spelled}homework",
                json={"title": "t", "due_at": DUE},
                headers=headers,
            )
            assert_problem(command, 404, f"an encoded slash ({spelled}) before homework")
        goal = await intake.post(
            f"/v1/intakes/{world.intake_id}%2Fgoals",
            json={"title": "t", "measure": "m", "baseline": 0, "target": 1},
            headers=auth("coach", world.coach_id),
        )
        assert_problem(goal, 404, "an encoded slash before goals")
        listed = await engagement.get(
            f"/v1/coaches/{world.coach_id}/engagements?stage=a%2Fb", headers=headers
        )
        assert "%2Fb" in str(listed.request.url)
        assert_problem(listed, 422, "an encoded slash in the query is only a value")
    assert await written(stack, world) == before


async def test_after_the_barrage_every_service_is_healthy_and_accepts_valid_commands(
    stack: Stack, world: World
) -> None:
    for name in SERVICES:
        async with stack.client(name) as http:
            health = await http.get("/health")
        assert health.status_code == 200, name
    for target in world.targets:
        async with stack.client(target.service) as http:
            response = await http.post(target.path, json=target.body, headers=target.headers)
        assert response.status_code == 201, f"{target.path}: {response.text}"
