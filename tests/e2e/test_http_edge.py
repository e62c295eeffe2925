"""The HTTP edge of the running services: subjects and tokens refused with a 401 that says
why, one `Authorization` header or none, idempotency records that expire, and a server that
bounds what a client can make it hold (headers, slow heads and bodies, connections)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import pytest

from rapport.registry import SERVICES
from services.intake.bootstrap import create_app as intake_app
from shared.runtime.config import Settings
from shared.security.tokens import EXPIRED, FORGED, MALFORMED, MISSING, REPEATED
from tests.support import JWT_SECRET, MovableClock, Stack, auth, eventually, token

UNAUTHORIZED = "https://rapport.dev/problems/unauthorized"
INVALID_CLAIMS = "The bearer token's claims are not valid"


def intake_body(coach_id: str) -> dict[str, Any]:
    return {"coach_id": coach_id, "client": {"name": "Ada", "email": "ada@example.org"}}


def bearer(sub: str, role: str = "admin", **claims: Any) -> dict[str, str]:
    payload = {"sub": sub, "role": role, "exp": int(time.time()) + 600, **claims}
    return {"Authorization": f"Bearer {jwt.encode(payload, JWT_SECRET, algorithm='HS256')}"}


def assert_unauthorized(response: httpx.Response) -> str:
    """The contract's 401 (one type and title for every 401); its detail."""
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert (body["type"], body["title"], body["status"]) == (UNAUTHORIZED, "Unauthorized", 401)
    detail: str = body["detail"]
    return detail


async def idempotency_records(stack: Stack, service: str) -> int:
    count: int = await stack.core(service).pool.fetchval("SELECT count(*) FROM idempotency_keys")
    return count


# subjects


@pytest.mark.parametrize(
    "sub",
    ["a" * 10_000, "\ud800", "coach\x00one", "", "admin\u2028ops", "admin\u202eops"],
    ids=["ten-thousand", "lone-surrogate", "nul", "empty", "line-separator", "bidi-override"],
)
async def test_a_bad_subject_with_an_idempotency_key_answers_401_and_writes_nothing(
    stack: Stack, sub: str
) -> None:
    before = await idempotency_records(stack, "intake")
    headers = {**bearer(sub), "Idempotency-Key": f"k-{uuid.uuid4()}"}
    async with stack.client("intake") as intake:
        answered = await intake.post("/v1/intakes", json=intake_body("c-sub"), headers=headers)
        read = await intake.get("/v1/intakes/e-1", headers=bearer(sub))
    assert assert_unauthorized(answered).startswith(INVALID_CLAIMS)
    assert assert_unauthorized(read).startswith(INVALID_CLAIMS)
    assert await idempotency_records(stack, "intake") == before


async def test_a_subject_of_two_hundred_four_byte_characters_keeps_its_idempotency_key(
    stack: Stack,
) -> None:
    sub = "\U0010fffd" * 200
    longest_key = b"\xff" * 200  # 200 bytes on the wire, 400 once stored as UTF-8
    headers: dict[str, str | bytes] = {**bearer(sub), "Idempotency-Key": longest_key}
    async with stack.client("intake") as intake:
        first = await intake.post("/v1/intakes", json=intake_body("c-wide"), headers=headers)
        again = await intake.post("/v1/intakes", json=intake_body("c-wide"), headers=headers)
    assert first.status_code == again.status_code == 201, first.text
    assert first.json() == again.json()
    envelope = await stack.core("intake").pool.fetchval(
        "SELECT envelope FROM events WHERE stream_id = $1", first.json()["engagement_id"]
    )
    assert json.loads(envelope)["actor"] == {"role": "admin", "id": sub}


# 401s that say why


async def test_every_401_has_one_type_and_a_detail_saying_what_is_wrong(stack: Stack) -> None:
    now = int(time.time())
    other = "another-secret-of-at-least-32-bytes!"
    cases = {
        "missing": ({}, MISSING),
        "basic": ({"Authorization": "Basic YTpi"}, MISSING),
        "malformed": ({"Authorization": "Bearer not.a.jwt"}, MALFORMED),
        "expired": (
            {"Authorization": f"Bearer {token('admin', 'a', ttl=timedelta(seconds=-60))}"},
            EXPIRED,
        ),
        "forged": ({"Authorization": f"Bearer {token('admin', 'a', secret=other)}"}, FORGED),
        "unknown role": (bearer("a", role="root"), INVALID_CLAIMS),
        "over the cap": (bearer("a", exp=now + 30 * 3600), INVALID_CLAIMS),
        "exp of 10^30": (bearer("a", exp=10**30), INVALID_CLAIMS),
    }
    details = {}
    async with stack.client("engagement") as engagement:
        for name, (headers, expected) in cases.items():
            for answered in (
                await engagement.post("/v1/engagements/e-1/plan", json={}, headers=headers),
                await engagement.get("/v1/engagements/e-1", headers=headers),
            ):
                detail = assert_unauthorized(answered)
                assert detail.startswith(expected), (name, detail)
                details[name] = detail
    assert len({details[name] for name in ("missing", "malformed", "expired", "forged")}) == 4


# one Authorization header


@pytest.mark.parametrize("service", SERVICES)
async def test_two_authorization_headers_are_refused_on_commands_and_reads(
    stack: Stack, service: str
) -> None:
    admin = auth("admin", "ops")["Authorization"]
    both = [("Authorization", admin), ("Authorization", admin)]
    requests = {
        "intake": [("POST", "/v1/intakes", intake_body("c-two")), ("GET", "/v1/intakes/e-1", None)],
        "engagement": [
            ("POST", "/v1/engagements/e-1/plan", {}),
            ("GET", "/v1/engagements/e-1", None),
        ],
        "notifications": [
            (
                "POST",
                "/v1/webhooks",
                {"recipient": "*", "url": "http://127.0.0.1:9/", "secret": "s"},
            ),
            ("GET", "/v1/notifications?recipient=*", None),
        ],
    }[service]
    async with stack.client(service) as client:
        for method, path, body in requests:
            answered = await client.request(method, path, json=body, headers=both)
            assert assert_unauthorized(answered) == REPEATED, (method, path)


# idempotency records expire


async def test_a_key_sent_again_after_the_retention_is_a_new_request(stack: Stack) -> None:
    headers = {**auth("coach", "c-expiry"), "Idempotency-Key": f"k-{uuid.uuid4()}"}
    async with stack.client("intake") as intake:
        first = await intake.post("/v1/intakes", json=intake_body("c-expiry"), headers=headers)
        within = await intake.post("/v1/intakes", json=intake_body("c-expiry"), headers=headers)
        await stack.core("intake").pool.execute(
            "UPDATE idempotency_keys SET created_at = created_at - interval '25 hours'"
            " WHERE key = $1",
            headers["Idempotency-Key"],
        )
        after = await intake.post("/v1/intakes", json=intake_body("c-expiry"), headers=headers)
    assert first.status_code == within.status_code == after.status_code == 201
    assert within.json() == first.json()
    assert after.json()["engagement_id"] != first.json()["engagement_id"]


async def test_every_service_prunes_its_expired_idempotency_records(stack: Stack) -> None:
    for service in SERVICES:
        await stack.core(service).pool.execute(
            "INSERT INTO idempotency_keys (scope, key, request_hash, status_code, response,"
            " created_at) VALUES ('admin:ops:x', $1, 'v2:x', 201, '{}', now() - interval '2 days')",
            f"expired-{service}",
        )

    async def pruned() -> bool:
        left = [
            await stack.core(service).pool.fetchval(
                "SELECT count(*) FROM idempotency_keys WHERE key = $1", f"expired-{service}"
            )
            for service in SERVICES
        ]
        return left == [0, 0, 0]

    await eventually(pruned)


# request heads


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    return parts.hostname, parts.port


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    """What the server sent until it closed the connection (or reset it)."""
    received = b""
    try:
        while chunk := await reader.read(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


async def send_until_closed(
    url: str, head: bytes, filler: bytes = b"", total: int = 0
) -> tuple[bytes, int]:
    """Send `head`, then `filler` until `total` bytes went or the server answered or closed;
    what the server sent before it closed the connection, and how much of the filler went."""
    reader, writer = await asyncio.open_connection(*address(url))
    answer = asyncio.create_task(read_until_closed(reader))
    sent = 0
    try:
        writer.write(head)
        while sent < total and not answer.done():
            writer.write(filler)
            await writer.drain()
            sent += len(filler)
    except (ConnectionResetError, BrokenPipeError):
        pass
    received = await asyncio.wait_for(answer, timeout=60)
    writer.close()
    return received, sent


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def problem_of(answer: bytes) -> dict[str, Any]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/problem+json" in head.lower()
    assert b"connection: close" in head.lower()
    document: dict[str, Any] = json.loads(body)
    return document


async def assert_healthy(stack: Stack) -> None:
    async with stack.client("intake") as intake:
        assert (await intake.get("/health")).status_code == 200


async def test_an_eight_megabyte_header_is_refused_before_it_is_read_whole(stack: Stack) -> None:
    head = b"GET /health HTTP/1.1\r\nHost: rapport\r\nX-Big: "
    total = 8 * 1024 * 1024
    answer, sent = await send_until_closed(stack.url("intake"), head, b"a" * 65536, total)
    assert sent < total or status_of(answer) == 431
    if answer:
        assert status_of(answer) == 431
        assert "32768 bytes" in problem_of(answer)["detail"]
    await assert_healthy(stack)


def headers(count: int) -> bytes:
    return b"".join(b"X-%d: 1\r\n" % n for n in range(count))


async def test_a_hundred_thousand_headers_are_refused(stack: Stack) -> None:
    head = b"GET /health HTTP/1.1\r\nHost: rapport\r\n"
    many = headers(100_000)
    stalled, _ = await send_until_closed(stack.url("intake"), head + many[:65536])
    assert status_of(stalled) == 431
    whole, _ = await send_until_closed(stack.url("intake"), head + many + b"\r\n")
    assert not whole or status_of(whole) == 431
    await assert_healthy(stack)


async def test_a_hundred_and_one_headers_are_refused_and_a_hundred_are_served(
    stack: Stack,
) -> None:
    head = b"GET /health HTTP/1.1\r\nHost: rapport\r\n"  # Host is one header
    refused, _ = await send_until_closed(stack.url("intake"), head + headers(100) + b"\r\n")
    assert status_of(refused) == 431
    assert problem_of(refused)["detail"] == "The request has more than 100 headers."
    closing = b"Connection: close\r\n\r\n"  # the hundredth
    served, _ = await send_until_closed(stack.url("intake"), head + headers(98) + closing)
    assert status_of(served) == 200


async def test_a_url_over_the_limit_is_refused_and_a_head_within_it_is_served(
    stack: Stack,
) -> None:
    url = stack.url("intake")
    long_path = b"/health?" + b"q" * 40_000
    refused, _ = await send_until_closed(url, b"GET " + long_path + b" HTTP/1.1\r\nHost: r\r\n\r\n")
    assert status_of(refused) == 431
    within = b"GET /health HTTP/1.1\r\nHost: r\r\nX-Big: " + b"a" * 30_000
    served, _ = await send_until_closed(url, within + b"\r\nConnection: close\r\n\r\n")
    assert status_of(served) == 200


# slow clients, on an intake instance of its own with short limits

TIMEOUT_SECONDS = 2.0
MAX_CONNECTIONS = 25


@pytest.fixture(scope="module")
async def strict(settings: Settings) -> AsyncIterator[Stack]:
    """An HTTP-only intake instance whose heads and bodies time out after two seconds and
    which holds 25 connections at once."""
    limited = settings.model_copy(
        update={
            "http_head_timeout_seconds": TIMEOUT_SECONDS,
            "http_body_timeout_seconds": TIMEOUT_SECONDS,
            "http_max_connections": MAX_CONNECTIONS,
            "background": False,
        }
    )
    running = Stack(settings=limited, clock=MovableClock())
    await running.start("intake", intake_app)
    yield running
    await running.stop_all()


async def test_a_client_that_sends_half_a_head_and_stalls_is_answered_408_and_disconnected(
    strict: Stack,
) -> None:
    answer, _ = await send_until_closed(strict.url("intake"), b"GET /health HTTP/1.1\r\nHost:")
    assert status_of(answer) == 408
    assert "did not arrive within 2 s" in problem_of(answer)["detail"]


async def test_a_client_that_connects_and_sends_nothing_is_disconnected(strict: Stack) -> None:
    answer, _ = await send_until_closed(strict.url("intake"), b"")
    assert answer == b""  # closed, with nothing to answer


async def test_a_client_that_stalls_in_its_body_is_answered_408_and_disconnected(
    strict: Stack,
) -> None:
    head = (
        b"POST /v1/intakes HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\n"
        b"Content-Length: 500\r\n"
        + f"Authorization: {auth('coach', 'c')['Authorization']}".encode()
        + b"\r\n\r\n"
    )
    answer, _ = await send_until_closed(strict.url("intake"), head + b'{"coach_id": "c", ')
    assert status_of(answer) == 408
    assert "body did not arrive" in problem_of(answer)["detail"]


async def test_twenty_slow_clients_are_all_answered_408_and_disconnected(strict: Stack) -> None:
    url = strict.url("intake")
    answers = await asyncio.gather(
        *(send_until_closed(url, b"GET /health HTTP/1.1\r\nX-Slow: " + b"a" * n) for n in range(20))
    )
    assert [status_of(answer) for answer, _ in answers] == [408] * 20


async def test_a_connection_past_the_limit_is_closed_at_once(strict: Stack) -> None:
    url = strict.url("intake")
    held = [await asyncio.open_connection(*address(url)) for _ in range(MAX_CONNECTIONS)]
    try:
        for _, writer in held:
            writer.write(b"GET /health HTTP/1.1\r\n")  # open, and busy sending a head
            await writer.drain()
        await asyncio.sleep(0.3)  # for the server to take them all
        answer, _ = await send_until_closed(url, b"GET /health HTTP/1.1\r\nHost: r\r\n\r\n")
        assert answer == b""  # closed without an answer
    finally:
        for _, writer in held:
            writer.close()
    await eventually(lambda: healthy(url))


async def healthy(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            return (await client.get(f"{url}/health")).status_code == 200
    except httpx.HTTPError:
        return False
