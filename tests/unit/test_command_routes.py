"""A command route answers every request to it through its lane in the service's one pipeline,
exactly as FastAPI's own route would: the same command reaches the service either way, the
same errors come back in the contract's problem+json, and the pipeline's middleware (body
limits, metrics, error mapping) sees every request."""

from __future__ import annotations

import importlib
import re
from typing import Any

import fastapi.routing
import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Match

from rapport.registry import SERVICES
from services.engagement.domain import commands
from services.engagement.entrypoints.http import COMMAND_ROUTES
from shared.http.app import create_app
from shared.http.body_limit import MAX_BODY_BYTES
from shared.http.operations import REQUESTS
from shared.http.pipeline import ServiceApp
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
    """Let FastAPI's own route answer everything (the app's pipeline without its lanes)."""
    monkeypatch.setattr(app, "_lanes", [])


@pytest.fixture
def solved(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The requests FastAPI's dependency solver handled (the lanes answered the others)."""
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
    assert solved == []  # the lane answered
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


BAD_REQUESTS = [
    (BODY, {}, 401, None),
    (BODY, {"Authorization": "Bearer not-a-token"}, 401, None),
    ({"title": ""}, None, 422, "title"),
    ({"title": "x", "extra": 1}, None, 422, "extra"),
    ({}, None, 422, "title"),
    (b"{not json", None, 422, "body"),
    (b"[" * 100_000, None, 422, "body"),
    (b"", None, 422, "body"),
    (b"\xff\xfe", None, 422, "body"),
    (BODY, {"Idempotency-Key": "k" * 201}, 422, "Idempotency-Key"),
    (b"{not json", {}, 422, "body"),  # FastAPI parses the body before it authenticates
]


@pytest.mark.parametrize(("body", "headers", "status", "where"), BAD_REQUESTS)
async def test_a_bad_request_is_answered_by_its_lane_as_fastapi_answers_it(
    app: FastAPI,
    service: RecordingCommands,
    monkeypatch: pytest.MonkeyPatch,
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
    fast = await post(app, body, sent_headers)
    standard_only(app, monkeypatch)
    slow = await post(app, body, sent_headers)
    assert fast.status_code == slow.status_code == status, (fast.json(), slow.json())
    assert fast.headers["content-type"].startswith("application/problem+json")
    assert fast.json() == slow.json()
    if where is not None:
        assert where in [error["field"] for error in fast.json()["errors"]], fast.json()
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
def test_every_command_route_of_a_service_has_a_lane_its_router_would_choose(
    service_name: str,
) -> None:
    bootstrap = importlib.import_module(f"services.{service_name}.bootstrap")
    app = bootstrap.create_app(Settings())
    commands_declared = [
        route.path
        for route in app.router.routes
        if isinstance(route, APIRoute)
        and route.methods == {"POST"}
        and route.name in {row.name for row in bootstrap_routes(service_name)}
    ]
    assert commands_declared and sorted(lane.route.path for lane in app._lanes) == sorted(
        commands_declared
    )
    for lane in app._lanes:
        path = re.sub(r"\{\w+\}", "id-1", lane.route.path)
        assert lane.pattern.match(path)
        chosen = next(
            route
            for route in app.router.routes
            if route.matches({"type": "http", "method": "POST", "path": path})[0] == Match.FULL
        )
        assert chosen is lane.route


def bootstrap_routes(service_name: str) -> list[Any]:
    """The command routes a service declares (its `COMMAND_ROUTES` table)."""
    http = importlib.import_module(f"services.{service_name}.entrypoints.http")
    return list(http.COMMAND_ROUTES)


async def test_a_command_without_a_body_takes_its_lane_too(monkeypatch: pytest.MonkeyPatch) -> None:
    service = RecordingCommands()
    plan = next(r for r in COMMAND_ROUTES if r.command is commands.StartPlan)
    app = create_app("test", health_checks={})
    add_command_routes(app, [plan], edge=routes_edge(), service=lambda: service, tags=["t"])
    solved: list[object] = []
    solve = fastapi.routing.solve_dependencies

    async def counted(**arguments: Any) -> Any:
        solved.append(arguments["request"])
        return await solve(**arguments)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counted)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        answered = await http.post("/v1/engagements/eng-1/plan", headers=auth("coach", "c-1"))
    assert answered.status_code == 201 and solved == []
    assert service.sent[0].command_type is commands.StartPlan


async def test_a_command_answered_by_its_lane_is_counted_in_the_metrics(app: FastAPI) -> None:
    counted = REQUESTS.labels("test", "POST", HOMEWORK.path, "201")
    before = counted._value.get()
    assert (await post(app, BODY, auth("coach", "coach-1"))).status_code == 201
    assert counted._value.get() == before + 1


async def test_two_authorization_headers_are_refused_by_the_lane_and_by_fastapi_alike(
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


async def test_a_request_repeating_any_header_is_answered_by_its_lane_too(
    app: FastAPI, solved: list[object]
) -> None:
    headers = [*auth("coach", "coach-1").items(), ("Accept", "a/b"), ("Accept", "c/d")]
    answered = await post(app, BODY, headers)
    assert answered.status_code == 201
    assert solved == []


async def test_a_middleware_of_the_pipeline_sees_commands_and_reads_alike(
    app: ServiceApp,
) -> None:
    refused = [
        await post(app, BODY, {**auth("coach", "coach-1"), "Content-Type": "text/plain"}),
    ]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        refused.append(
            await http.post("/health", content=b"x", headers={"Content-Type": "text/plain"})
        )
        encoded = await http.post(
            "/v1/engagements/eng-1%2Fx/homework", json=BODY, headers=auth("coach", "c-1")
        )
    assert [answer.status_code for answer in refused] == [415, 415]
    assert refused[0].json()["type"] == refused[1].json()["type"]
    assert encoded.status_code == 404


@pytest.mark.parametrize("service_name", SERVICES)
def test_a_command_built_from_a_validated_body_loses_none_of_its_fields(
    service_name: str,
) -> None:
    """A route's body is validated once, and its command built from it as it is: so every
    field a route gives (its body's, its path ids', its new ids') must be one of the command's."""
    for route in bootstrap_routes(service_name):
        given = {*route.path_ids[1:], *route.new_ids}
        if route.body is not None:
            given |= set(route.body.model_fields)
        assert given <= set(route.command.model_fields), (route.path, given)
