"""problem+json (RFC 9457): the one error format of every service, and the exception
handlers that turn errors into it (validation, HTTP, domain, auth, races, dependencies)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any

import asyncpg
import structlog
from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.http.schemas import PATTERN_MESSAGES
from shared.model.errors import DomainError
from shared.model.log import ConcurrencyConflict
from shared.resilience.faults import DependencyUnavailable, is_connection_lost, is_transient
from shared.security.tokens import AuthenticationFailed, PermissionDenied
from shared.usecases.idempotency import IdempotencyRace

__all__ = [
    "DEPENDENCY_ERRORS",
    "PROBLEM",
    "PROBLEM_TYPES",
    "RETRY_AFTER_SECONDS",
    "TITLES",
    "ConnectionLost",
    "add_problem_handlers",
    "problem",
    "title_of",
    "type_of",
]

log = structlog.get_logger(__name__)

PROBLEM = "application/problem+json"
PROBLEM_TYPES = "https://rapport.dev/problems/"
# One title (and so one `type`) per status, whichever layer answers it: RFC 9110's names.
TITLES: dict[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def title_of(status: int) -> str:
    """The problem title of a status: `TITLES`, else the standard reason phrase."""
    if status in TITLES:
        return TITLES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def type_of(status: int) -> str:
    """The problem `type` URI of a status, named after its title."""
    return PROBLEM_TYPES + title_of(status).lower().replace(" ", "-")


def problem(
    status: int,
    detail: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An RFC 9457 problem document; its type and title follow from the status."""
    body: dict[str, Any] = {
        "type": type_of(status),
        "title": title_of(status),
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _field_name(location: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(part) for part in location]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] or parts
    return ".".join(parts) or "body"


def _message(item: Mapping[str, Any]) -> str:
    """A validation error in our words: the text of the rule that failed, without the
    framework's wording around it ("Value error, ...", a regular expression)."""
    context = item.get("ctx") or {}
    match item.get("type"):
        case "value_error" | "assertion_error" if "error" in context:
            return str(context["error"])
        case "string_pattern_mismatch":
            pattern = str(context.get("pattern"))
            return PATTERN_MESSAGES.get(pattern, f"must match the pattern {pattern}")
        case "extra_forbidden":
            return "unknown field"
    return str(item.get("msg", "invalid"))


async def _validation_problem(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    items = error.errors()
    unparsable = [item for item in items if item.get("type") == "json_invalid"]
    if unparsable:
        item = unparsable[0]
        location = item.get("loc", ())
        position = location[1] if len(location) > 1 else "?"
        reason = str((item.get("ctx") or {}).get("error", "invalid JSON"))
        message = f"{reason} at character {position}"
        return problem(
            422,
            f"The request body is not valid JSON: {message}.",
            errors=[{"field": "body", "message": message}],
        )
    errors = [
        {"field": _field_name(item.get("loc", ())), "message": _message(item)} for item in items
    ]
    return problem(422, "The request is not valid.", errors=errors)


def _unparsable_body(cause: BaseException | None) -> str | None:
    """Why the JSON parser refused a body FastAPI could not parse (None: not the parser)."""
    match cause:
        case RecursionError():
            return "it is nested too deeply"
        case UnicodeDecodeError():
            return "it is not valid UTF-8"
        case ValueError():
            return "a number in it is too long"
    return None


async def _http_problem(request: Request, error: Exception) -> Response:
    """Starlette's and FastAPI's own errors. A body the JSON parser refused is invalid input
    like any other (422, as malformed JSON is), not a 400."""
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 400 and (reason := _unparsable_body(error.__cause__)) is not None:
        return problem(
            422,
            f"The request body is not acceptable JSON: {reason}.",
            errors=[{"field": "body", "message": reason}],
        )
    return problem(error.status_code, str(error.detail), headers=getattr(error, "headers", None))


async def _domain_problem(request: Request, error: Exception) -> Response:
    assert isinstance(error, DomainError)
    errors = [{"field": error.field, "message": error.detail}] if error.field else None
    return problem(error.status, error.detail, errors=errors)


async def _unauthenticated(request: Request, error: Exception) -> Response:
    """401, one type and title; the detail says what is wrong with the token
    (`shared.security.tokens`)."""
    return problem(401, str(error), headers={"WWW-Authenticate": "Bearer"})


async def _forbidden(request: Request, error: Exception) -> Response:
    return problem(403, "This token does not grant that action.")


async def _conflict(request: Request, error: Exception) -> Response:
    return problem(409, "The stream changed concurrently; retry the command.")


async def _unexpected(request: Request, error: Exception) -> Response:
    log.error("unhandled_error", path=request.url.path, error=repr(error))
    return problem(500, "An unexpected error occurred.")


RETRY_AFTER_SECONDS = 2
# Errors that may mean a dependency is away; `_unavailable` answers 503 for the transient ones.
DEPENDENCY_ERRORS: tuple[type[Exception], ...] = (
    DependencyUnavailable,
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresError,
    KafkaError,
)

ConnectionLost = Callable[[], Awaitable[None]]


def _unavailable(on_connection_lost: ConnectionLost | None) -> Callable[..., Awaitable[Response]]:
    """503 problem+json with `Retry-After` for a transient dependency failure; 500 otherwise.

    Nothing was half-written: every command runs in one transaction, which the failure
    rolled back (or, at COMMIT, either committed whole or not at all).
    """

    async def handler(request: Request, error: Exception) -> Response:
        if not is_transient(error):
            return await _unexpected(request, error)
        if on_connection_lost is not None and is_connection_lost(error):
            await on_connection_lost()
        log.warning("dependency_unavailable", path=request.url.path, error=repr(error))
        dependency = error.dependency if isinstance(error, DependencyUnavailable) else "database"
        if isinstance(error, KafkaError):
            dependency = "broker"
        return problem(
            503,
            f"The {dependency} cannot be reached right now; nothing was written. Retry later.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    return handler


def add_problem_handlers(app: FastAPI, on_connection_lost: ConnectionLost | None = None) -> None:
    """Answer every error in problem+json.

    `on_connection_lost` is called when a request failed because a database connection
    broke (the service then drops its pooled connections instead of failing on each).
    """
    app.add_exception_handler(RequestValidationError, _validation_problem)
    app.add_exception_handler(StarletteHTTPException, _http_problem)
    app.add_exception_handler(DomainError, _domain_problem)
    app.add_exception_handler(AuthenticationFailed, _unauthenticated)
    app.add_exception_handler(PermissionDenied, _forbidden)
    app.add_exception_handler(ConcurrencyConflict, _conflict)
    app.add_exception_handler(IdempotencyRace, _conflict)
    unavailable = _unavailable(on_connection_lost)
    for error_type in DEPENDENCY_ERRORS:
        app.add_exception_handler(error_type, unavailable)
    app.add_exception_handler(Exception, _unexpected)
