"""The API's errors as a client reads them: one problem+json `type` and title per status
whichever layer answers, a 413 that names the limit, a body the JSON parser refuses answered
422 like any invalid input, messages in our words rather than the framework's, a NUL reported
on its field, one 415 whether the Content-Type is missing or wrong, and no route through an
encoded slash."""

from __future__ import annotations

from collections.abc import AsyncIterator
from http import HTTPStatus
from typing import Any

import httpx
import pytest

from services.engagement.domain import commands as engagement_commands
from services.engagement.entrypoints.http import COMMAND_ROUTES as ENGAGEMENT_ROUTES
from services.intake.domain import commands as intake_commands
from services.intake.entrypoints.http import COMMAND_ROUTES as INTAKE_ROUTES
from shared.http.app import create_app
from shared.http.body_limit import MAX_BODY_BYTES
from shared.http.pipeline import ServiceApp
from shared.http.problems import PROBLEM, TITLES, title_of, type_of
from shared.http.routes import add_command_routes
from shared.model.errors import InvalidCommand, NotFound
from tests.fakes import RecordingCommands
from tests.support import auth, routes_edge

ROUTES = [
    next(r for r in ENGAGEMENT_ROUTES if r.command is engagement_commands.AssignHomework),
    next(r for r in INTAKE_ROUTES if r.command is intake_commands.StartIntake),
]
HOMEWORK = "/v1/engagements/eng-1/homework"
INTAKES = "/v1/intakes"
BODY = {"title": "Journal three wins a day", "due_at": "2027-01-10T09:00:00Z"}
INTAKE = {"coach_id": "coach-1", "client": {"name": "Ada", "email": "ada@example.org"}}
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def service() -> RecordingCommands:
    return RecordingCommands()


@pytest.fixture
def app(service: RecordingCommands) -> ServiceApp:
    app = create_app("test", health_checks={})
    add_command_routes(
        app,
        ROUTES,
        edge=routes_edge(),
        service=lambda: service,
        tags=["test"],
    )
    return app


@pytest.fixture
async def http(app: ServiceApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def coach(**headers: str) -> dict[str, str]:
    return {**auth("coach", "coach-1"), **headers}


def problem_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response's problem document, checked to have the one type and title of its status."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert (problem["type"], problem["title"]) == (type_of(status), title_of(status))
    return problem


def messages(problem: dict[str, Any]) -> dict[str, str]:
    return {error["field"]: error["message"] for error in problem["errors"]}


def test_every_status_has_one_title_and_a_type_named_after_it() -> None:
    assert TITLES[413] == "Content Too Large" and TITLES[422] == "Unprocessable Content"
    types = {type_of(status) for status in TITLES}
    assert len(types) == len(TITLES)
    assert type_of(413) == "https://rapport.dev/problems/content-too-large"
    assert title_of(418) == HTTPStatus(418).phrase  # one not listed: the standard phrase


async def test_a_body_too_large_answers_one_413_naming_the_limit_with_or_without_a_length(
    http: httpx.AsyncClient, service: RecordingCommands
) -> None:
    big = {**BODY, "title": "a" * (MAX_BODY_BYTES + 1)}
    declared = await http.post(HOMEWORK, json=big, headers=coach())
    assert "content-length" in declared.request.headers

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"title": "'
        for _ in range(30):
            yield b"a" * 10_000
        yield b'", "due_at": "2027-01-10T09:00:00Z"}'

    streamed = await http.post(HOMEWORK, content=chunks(), headers=coach(**JSON))
    assert "content-length" not in streamed.request.headers
    first, second = problem_of(declared, 413), problem_of(streamed, 413)
    assert first == second
    assert "262,144 bytes" in first["detail"] and "256 KiB" in first["detail"]
    assert service.sent == []


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"title": "\xff\xfe", "due_at": "2027-01-10T09:00:00Z"}', "not valid UTF-8"),
        (b'{"title": ' + b"9" * 5000 + b"}", "a number in it is too long"),
        (b'{"title": "t", "due_at": ', "not valid JSON"),
    ],
)
async def test_a_body_the_json_parser_refuses_is_invalid_input_422_on_the_field_body(
    http: httpx.AsyncClient, service: RecordingCommands, content: bytes, reason: str
) -> None:
    problem = problem_of(await http.post(HOMEWORK, content=content, headers=coach(**JSON)), 422)
    assert reason in problem["detail"]
    assert list(messages(problem)) == ["body"]
    assert service.sent == []


async def test_validation_messages_are_ours_not_the_frameworks(
    http: httpx.AsyncClient, service: RecordingCommands
) -> None:
    bad_time = await http.post(HOMEWORK, json={**BODY, "due_at": "tomorrow"}, headers=coach())
    time_message = messages(problem_of(bad_time, 422))["due_at"]
    assert time_message.startswith("expected an RFC 3339 time with an offset")
    client = {**INTAKE["client"], "email": "not an address"}  # type: ignore[dict-item]
    bad_email = await http.post(INTAKES, json={**INTAKE, "client": client}, headers=coach())
    assert messages(problem_of(bad_email, 422)) == {"client.email": "not a valid email address"}
    bad_id = await http.post(INTAKES, json={**INTAKE, "coach_id": "a b"}, headers=coach())
    id_message = messages(problem_of(bad_id, 422))["coach_id"]
    assert id_message == "an id has only letters, digits and _ . : @ -"
    unknown = await http.post(HOMEWORK, json={**BODY, "is_admin": True}, headers=coach())
    assert messages(problem_of(unknown, 422)) == {"is_admin": "unknown field"}
    for answered in (bad_time, bad_email, bad_id, unknown):
        for leaked in ("Value error", "String should match", "^[", "Extra inputs"):
            assert leaked not in answered.text
    assert service.sent == []


async def test_a_time_zone_that_is_not_an_iana_name_is_refused_on_its_field(
    http: httpx.AsyncClient, service: RecordingCommands
) -> None:
    for zone, accepted in (("Europe/London", True), ("Mars/Olympus", False), ("GMT+25", False)):
        client = {**INTAKE["client"], "timezone": zone}  # type: ignore[dict-item]
        answered = await http.post(INTAKES, json={**INTAKE, "client": client}, headers=coach())
        if accepted:
            assert answered.status_code == 201, answered.text
        else:
            message = messages(problem_of(answered, 422))["client.timezone"]
            assert message.startswith("not an IANA time zone name")
    assert len(service.sent) == 1


async def test_a_nul_character_is_reported_on_the_field_that_holds_it(
    http: httpx.AsyncClient, service: RecordingCommands
) -> None:
    in_title = await http.post(HOMEWORK, json={**BODY, "title": "a\x00b"}, headers=coach())
    assert list(messages(problem_of(in_title, 422))) == ["title"]
    client = {**INTAKE["client"], "name": "A\x00da"}  # type: ignore[dict-item]
    nested = await http.post(INTAKES, json={**INTAKE, "client": client}, headers=coach())
    assert list(messages(problem_of(nested, 422))) == ["client.name"]
    assert service.sent == []


async def test_a_body_without_a_content_type_answers_the_415_of_a_wrong_one(
    http: httpx.AsyncClient, service: RecordingCommands
) -> None:
    content = httpx.Request("POST", "http://test", json=BODY).content
    untyped = await http.post(HOMEWORK, content=content, headers=coach())
    assert "content-type" not in untyped.request.headers
    text = await http.post(
        HOMEWORK, content=content, headers=coach(**{"Content-Type": "text/plain"})
    )
    missing, wrong = problem_of(untyped, 415), problem_of(text, 415)
    assert "application/json" in missing["detail"] and "no Content-Type" in missing["detail"]
    assert "application/json" in wrong["detail"]
    assert service.sent == []


@pytest.mark.parametrize(
    ("refusal", "status"),
    [(NotFound("no engagement eng-1"), 404), (InvalidCommand("bad", field="title"), 422)],
)
async def test_the_domains_refusals_take_the_one_shape_of_their_status(
    http: httpx.AsyncClient, service: RecordingCommands, refusal: Exception, status: int
) -> None:
    service.refusal = refusal
    problem = problem_of(await http.post(HOMEWORK, json=BODY, headers=coach()), status)
    assert problem["detail"] == str(refusal)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/engagements/eng-1%2Fhomework"),  # the command gate's path
        ("POST", "/v1/engagements/eng-1%2fhomework"),
        ("GET", "/v1/engagements/eng-1%2Ftrust"),
        ("GET", "/health%2F"),
    ],
)
async def test_an_encoded_slash_never_routes_as_a_slash(
    http: httpx.AsyncClient, service: RecordingCommands, method: str, path: str
) -> None:
    response = await http.request(method, path, json=BODY, headers=coach())
    assert "%2F" in problem_of(response, 404)["detail"]
    assert service.sent == []
