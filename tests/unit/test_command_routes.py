"""A command route answers a request in order through its shortcut, and every other request
exactly as FastAPI's own handler does: the same command reaches the service either way, and
errors keep the contract's problem+json."""

from __future__ import annotations

from typing import Any

import fastapi.routing
import httpx
import pytest
from fastapi import FastAPI

from services.engagement.domain import commands
from services.engagement.entrypoints.http import COMMAND_ROUTES
from shared.app import create_app
from shared.application import Sent
from shared.bearer import authenticated
from shared.commands import Reply
from shared.routes import CommandAPIRoute, add_command_routes
from tests.support import JWT_SECRET, auth

HOMEWORK = next(r for r in COMMAND_ROUTES if r.command is commands.AssignHomework)
PATH = "/v1/engagements/eng-1/homework"
BODY = {"title": "Journal three wins a day", "due_at": "2027-01-10T09:00:00Z"}


class Recorder:
    """The service behind the routes: remembers what it was sent."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []

    async def act(self, sent: Sent) -> Reply:
        self.sent.append(sent)
        return {**sent.reply, "stream_version": 2}


@pytest.fixture
def service() -> Recorder:
    return Recorder()


@pytest.fixture
def app(service: Recorder) -> FastAPI:
    app = create_app("test", health_checks={})
    add_command_routes(
        app,
        [HOMEWORK],
        caller=authenticated(lambda: JWT_SECRET),
        service=lambda: service,
        tags=["test"],
    )
    return app


async def post(app: FastAPI, body: Any, headers: dict[str, str], **extra: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        if isinstance(body, bytes):
            return await http.post(PATH, content=body, headers=headers, **extra)
        return await http.post(PATH, json=body, headers=headers, **extra)


def standard_only(app: FastAPI) -> None:
    """Let FastAPI's own handler answer everything (the routes without their shortcut)."""

    async def never(request: Any) -> None:
        return None

    for route in app.routes:
        if isinstance(route, CommandAPIRoute):
            type(route).shortcut = staticmethod(never)


async def test_a_request_in_order_reaches_the_service_as_through_fastapi(
    app: FastAPI, service: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    solved: list[object] = []
    solve = fastapi.routing.solve_dependencies

    async def counted(**arguments: Any) -> Any:
        solved.append(arguments["request"])
        return await solve(**arguments)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counted)
    headers = {**auth("coach", "coach-1"), "Idempotency-Key": "k-1"}
    fast = await post(app, BODY, headers)
    assert solved == []  # the shortcut answered
    standard_only(app)
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
    service: Recorder,
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
    app: FastAPI, service: Recorder
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
