"""A command route answers a request in order through the service's command gate, and every
other request exactly as FastAPI's own handler does: the same command reaches the service
either way, and errors keep the contract's problem+json."""

from __future__ import annotations

import importlib
import re
from typing import Any

import fastapi.routing
import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import Match

from rapport.registry import SERVICES
from services.engagement.domain import commands
from services.engagement.entrypoints.http import COMMAND_ROUTES
from shared.http.app import create_app
from shared.http.body_limit import MAX_BODY_BYTES
from shared.http.gate import ServiceApp
from shared.http.operations import REQUESTS
from shared.http.problems import PROBLEM
from shared.http.routes import add_command_routes
from shared.model.errors import DomainError
from shared.model.log import ConcurrencyConflict
from shared.runtime.config import Settings
from shared.security.tokens import REPEATED
from tests.fakes import RecordingCommands
from tests.support import auth, routes_edge

HOMEWORK = next(r for r in COMMAND_ROUTES if r.command is commands.AssignHomework)
PATH = "/v1/engagements/eng-1/homework"
BODY = {"title": "Journal three wins a day", "due_at": "2027-01-10T09:00:00Z"}


@pytest.fixture
def service() -> RecordingCommands:
    return RecordingCommands()


@pytest.fixture
def app(service: RecordingCommands) -> ServiceApp:
    app = create_app("test", health_checks={})
    add_command_routes(
        app,
        [HOMEWORK],
        edge=routes_edge(),
        service=lambda: service,
        tags=["test"],
    )
    return app


async def post(
    app: FastAPI, body: Any, headers: dict[str, str] | list[tuple[str, str]], **extra: Any
) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        if isinstance(body, bytes):
            return await http.post(PATH, content=body, headers=headers, **extra)
        return await http.post(PATH, json=body, headers=headers, **extra)


def standard_only(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    """Let FastAPI's own handler answer everything (the app without its gate's lanes)."""
    monkeypatch.setattr(app, "_lanes", [])


@pytest.fixture
def solved(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The requests FastAPI's dependency solver handled (the gate answered the others)."""
    requests: list[object] = []
    solve = fastapi.routing.solve_dependencies

    async def counted(**arguments: Any) -> Any:
        requests.append(arguments["request"])
        return await solve(**arguments)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counted)
    return requests


async def test_a_request_in_order_reaches_the_service_as_through_fastapi(
    app: FastAPI, service: RecordingCommands, monkeypatch: pytest.MonkeyPatch, solved: list[object]
) -> None:
    headers = {**auth("coach", "coach-1"), "Idempotency-Key": "k-1"}
    fast = await post(app, BODY, headers)
    assert solved == []  # the gate answered
    standard_only(app, monkeypatch)
    slow = await post(app, BODY, headers)
    assert len(solved) == 1  # FastAPI's own handler answered
    assert fast.status_code == slow.status_code == 201
    assert fast.json().keys() == slow.json().keys() == {"homework_id", "stream_version"}
    first, second = service.sent
    assert first.principal == second.principal
    assert first.stream_id == second.stream_id == "eng-1"
    assert first.command_type is second.command_type is commands.AssignHomework
    assert first.idempotency == second.idempotency
    assert first.fields.keys() == second.fields.keys()
    assert first.fields["title"] == second.fields["title"] == BODY["title"]
    assert first.fields["due_at"] == second.fields["due_at"]


@pytest.mark.parametrize(
    ("body", "headers", "status", "where"),
    [
        (BODY, {}, 401, None),
        (BODY, {"Authorization": "Bearer not-a-token"}, 401, None),
        ({"title": ""}, None, 422, "title"),
        (b"{not json", None, 422, "body"),
        (BODY, {"Idempotency-Key": "k" * 201}, 422, "Idempotency-Key"),
    ],
)
async def test_a_request_out_of_order_is_answered_by_fastapi_in_problem_json(
    app: FastAPI,
    service: RecordingCommands,
    body: Any,
    headers: dict[str, str] | None,
    status: int,
    where: str | None,
) -> None:
    sent_headers = {**auth("coach", "coach-1"), **(headers or {})}
    if headers == {}:
        sent_headers = {}
    if isinstance(body, bytes):
        sent_headers["Content-Type"] = "application/json"
    answered = await post(app, body, sent_headers)
    assert answered.status_code == status
    assert answered.headers["content-type"].startswith("application/problem+json")
    if where is not None:
        assert where in [error["field"] for error in answered.json()["errors"]], answered.json()
    assert service.sent == []


async def test_an_invalid_path_id_never_reaches_the_service(
    app: FastAPI, service: RecordingCommands
) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        answered = await http.post(
            "/v1/engagements/" + "x" * 101 + "/homework",
            json=BODY,
            headers=auth("coach", "coach-1"),
        )
    assert answered.status_code == 422
    assert service.sent == []


@pytest.mark.parametrize(
    ("refusal", "status"),
    [
        (DomainError("homework is closed", field="title"), 409),
        (ConcurrencyConflict("eng-1", 3, 4), 409),
        (RuntimeError("a bug"), 500),
    ],
)
async def test_an_error_raised_by_the_service_is_answered_by_the_apps_handlers(
    app: FastAPI,
    service: RecordingCommands,
    monkeypatch: pytest.MonkeyPatch,
    refusal: Exception,
    status: int,
) -> None:
    service.refusal = refusal
    headers = auth("coach", "coach-1")
    fast = await post(app, BODY, headers)
    standard_only(app, monkeypatch)
    slow = await post(app, BODY, headers)
    assert len(service.sent) == 2
    assert fast.status_code == slow.status_code == status
    assert fast.headers["content-type"] == slow.headers["content-type"] == PROBLEM
    assert fast.json() == slow.json()


async def test_a_body_longer_than_it_declared_is_refused_whole(
    app: FastAPI, service: RecordingCommands
) -> None:
    async def receive() -> dict[str, Any]:
        chunk = b" " * (MAX_BODY_BYTES // 2 + 1)
        return {"type": "http.request", "body": chunk, "more_body": True}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"10"),
        *[(k.lower().encode(), v.encode()) for k, v in auth("coach", "coach-1").items()],
    ]
    scope = {
        "type": "http",
        "method": "POST",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": b"",
        "headers": headers,
        "http_version": "1.1",
        "scheme": "http",
        "server": ("test", 80),
        "root_path": "",
    }
    await app(scope, receive, send)
    assert sent[0]["status"] == 413
    assert service.sent == []


@pytest.mark.parametrize("service_name", SERVICES)
def test_every_lane_of_a_service_is_the_route_its_router_would_choose(service_name: str) -> None:
    bootstrap = importlib.import_module(f"services.{service_name}.bootstrap")
    app = bootstrap.create_app(Settings())
    assert app._lanes, "the service's commands have lanes"
    for pattern, lane in app._lanes:
        path = re.sub(r"\{\w+\}", "id-1", lane.path)
        assert pattern.match(path)
        chosen = next(
            route
            for route in app.router.routes
            if route.matches({"type": "http", "method": "POST", "path": path})[0] == Match.FULL
        )
        assert chosen.path == lane.path


async def test_a_command_answered_by_the_gate_is_counted_in_the_metrics(app: FastAPI) -> None:
    counted = REQUESTS.labels("test", "POST", HOMEWORK.path, "201")
    before = counted._value.get()
    assert (await post(app, BODY, auth("coach", "coach-1"))).status_code == 201
    assert counted._value.get() == before + 1


async def test_two_authorization_headers_are_refused_by_the_gate_and_by_fastapi_alike(
    app: FastAPI, service: RecordingCommands, monkeypatch: pytest.MonkeyPatch
) -> None:
    both = [
        ("Authorization", auth("admin", "ops")["Authorization"]),
        ("Authorization", auth("coach", "coach-1")["Authorization"]),
    ]
    fast = await post(app, BODY, both)
    standard_only(app, monkeypatch)
    slow = await post(app, BODY, both)
    assert fast.status_code == slow.status_code == 401
    assert fast.json() == slow.json()
    assert fast.json()["detail"] == REPEATED
    assert service.sent == []


async def test_a_request_repeating_any_header_is_left_to_fastapi(
    app: FastAPI, solved: list[object]
) -> None:
    headers = [*auth("coach", "coach-1").items(), ("Accept", "a/b"), ("Accept", "c/d")]
    answered = await post(app, BODY, headers)
    assert answered.status_code == 201
    assert len(solved) == 1  # FastAPI's own handler answered, not the gate
