"""The HTTP edge shared by every service: problem+json errors, auth, health and metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

import asyncpg
import structlog
from aiokafka.errors import KafkaError
from fastapi import FastAPI, Header, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import AuthenticationFailed, PermissionDenied, Principal, TokenVerifier
from shared.errors import DomainError
from shared.eventstore import ConcurrencyConflict
from shared.faults import DependencyUnavailable, is_connection_lost, is_transient

log = structlog.get_logger(__name__)

PROBLEM = "application/problem+json"
MAX_BODY_BYTES = 256 * 1024

REQUESTS = Counter(
    "rapport_http_requests_total", "HTTP requests", ["service", "method", "route", "status"]
)
LATENCY = Histogram("rapport_http_request_seconds", "HTTP latency", ["service", "route"])


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An RFC 9457 problem document."""
    body: dict[str, Any] = {
        "type": f"https://rapport.dev/problems/{title.lower().replace(' ', '-')}",
        "title": title,
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
            "Unprocessable Content",
            f"The request body is not valid JSON: {message}.",
            errors=[{"field": "body", "message": message}],
        )
    errors = [
        {"field": _field_name(item.get("loc", ())), "message": str(item.get("msg", "invalid"))}
        for item in items
    ]
    return problem(422, "Unprocessable Content", "The request is not valid.", errors=errors)


def _unparsable_body(cause: BaseException | None) -> str | None:
    """Why a body FastAPI could not parse was refused, from the parser's error."""
    match cause:
        case RecursionError():
            return "The request body is not acceptable JSON: it is nested too deeply."
        case UnicodeDecodeError():
            return "The request body is not acceptable JSON: it is not valid UTF-8."
        case ValueError():
            return "The request body is not acceptable JSON: a number in it is too long."
        case None:
            return None
    return "The request body could not be parsed as JSON."


async def _http_problem(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    try:
        title = HTTPStatus(error.status_code).phrase
    except ValueError:
        title = "Error"
    detail = str(error.detail)
    if error.status_code == 400:
        detail = _unparsable_body(error.__cause__) or detail
    return problem(
        error.status_code,
        title,
        detail,
        headers=getattr(error, "headers", None),
    )


async def _domain_problem(request: Request, error: Exception) -> Response:
    assert isinstance(error, DomainError)
    errors = [{"field": error.field, "message": error.detail}] if error.field else None
    return problem(error.status, error.title, error.detail, errors=errors)


async def _unauthenticated(request: Request, error: Exception) -> Response:
    return problem(
        401,
        "Unauthorized",
        "A valid bearer token is required.",
        headers={"WWW-Authenticate": "Bearer"},
    )


async def _forbidden(request: Request, error: Exception) -> Response:
    return problem(403, "Forbidden", "This token does not grant that action.")


async def _conflict(request: Request, error: Exception) -> Response:
    return problem(409, "Conflict", "The stream changed concurrently; retry the command.")


async def _unexpected(request: Request, error: Exception) -> Response:
    log.error("unhandled_error", path=request.url.path, error=repr(error))
    return problem(500, "Internal Server Error", "An unexpected error occurred.")


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
            "Service Unavailable",
            f"The {dependency} cannot be reached right now; nothing was written. Retry later.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    return handler


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")


class BodyLimit:
    """Refuses request bodies over a size with 413 and bodies that are not JSON with 415,
    before anything reads them."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or {})
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await problem(413, "Content Too Large", "The request body is too large.")(
                scope, receive, send
            )
            return
        content_type = headers.get(b"content-type")
        sends_body = scope.get("method") in ("POST", "PUT", "PATCH") and declared != b"0"
        if sends_body and content_type is not None and not _is_json(content_type):
            await problem(
                415, "Unsupported Media Type", "Request bodies must be application/json."
            )(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise StarletteHTTPException(413, "The request body is too large.")
            return message

        await self.app(scope, limited, send)


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
# What an authenticated command / read can answer besides success (contract section 3).
COMMAND_PROBLEMS = (400, 401, 403, 404, 409, 413, 415, 422)
READ_PROBLEMS = (401, 403, 404, 422)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` declaring problem+json answers with these statuses."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM: {"schema": PROBLEM_SCHEMA}},
        }
        for status in statuses
    }


def document_problems(app: FastAPI) -> None:
    """Declare in OpenAPI the problem+json answers of every authenticated (`/v1/`) route, so
    the statuses a client can meet are the statuses documented."""
    for route in app.routes:
        if not isinstance(route, APIRoute) or not route.path.startswith("/v1/"):
            continue
        writes = bool((route.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"})
        declared = problem_responses(*(COMMAND_PROBLEMS if writes else READ_PROBLEMS))
        route.responses = {**declared, **route.responses}
    app.openapi_schema = None


HealthCheck = Callable[[], Awaitable[bool]]
HEALTH_CHECK_SECONDS = 2.0


class Observe:
    """Counts requests by route and status and times them (pure ASGI: no per-request task)."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            REQUESTS.labels(self.service, scope["method"], path, str(status)).inc()
            LATENCY.labels(self.service, path).observe(time.perf_counter() - started)


def create_app(
    service: str,
    *,
    version: str = "0.1.0",
    health_checks: dict[str, HealthCheck],
    lifespan: Any = None,
    description: str = "",
    on_connection_lost: ConnectionLost | None = None,
) -> FastAPI:
    """A FastAPI app with the contract's error format, /health and /metrics.

    `on_connection_lost` is called when a request failed because a database connection
    broke (the service then drops its pooled connections instead of failing on each).
    """
    app = FastAPI(
        title=f"Rapport {service}", version=version, lifespan=lifespan, description=description
    )
    app.add_exception_handler(RequestValidationError, _validation_problem)
    app.add_exception_handler(StarletteHTTPException, _http_problem)
    app.add_exception_handler(DomainError, _domain_problem)
    app.add_exception_handler(AuthenticationFailed, _unauthenticated)
    app.add_exception_handler(PermissionDenied, _forbidden)
    app.add_exception_handler(ConcurrencyConflict, _conflict)
    unavailable = _unavailable(on_connection_lost)
    for error_type in DEPENDENCY_ERRORS:
        app.add_exception_handler(error_type, unavailable)
    app.add_exception_handler(Exception, _unexpected)
    app.add_middleware(BodyLimit)
    app.add_middleware(Observe, service=service)

    @app.get(
        "/health",
        tags=["operations"],
        responses={
            200: {"description": "Database and broker reachable"},
            503: {"description": "Database or broker unreachable"},
        },
    )
    async def health() -> JSONResponse:
        results = {}
        for name, check in health_checks.items():
            try:
                results[name] = bool(await asyncio.wait_for(check(), HEALTH_CHECK_SECONDS))
            except Exception:
                results[name] = False
        healthy = all(results.values())
        down = [name for name, ok in results.items() if not ok]
        body: dict[str, Any] = {"status": "ok" if healthy else "unavailable", "checks": results}
        if down:
            body["down"] = down
        return JSONResponse(
            body,
            status_code=200 if healthy else 503,
            headers=None if healthy else {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    @app.get("/metrics", tags=["operations"], response_class=PlainTextResponse)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


_bearer = HTTPBearer(auto_error=False, description="HS256 JWT with sub, role and exp")


def authenticated(secret: Callable[[], str]) -> Callable[..., Awaitable[Principal]]:
    """A FastAPI dependency yielding the caller, documented as bearer auth in OpenAPI."""

    verifiers: dict[str, TokenVerifier] = {}

    async def principal(
        credentials: HTTPAuthorizationCredentials | None = Security(_bearer),
    ) -> Principal:
        if credentials is None:
            raise AuthenticationFailed("missing token")
        key = secret()
        verifier = verifiers.get(key) or verifiers.setdefault(key, TokenVerifier(key))
        return verifier.verify(credentials.credentials)

    return principal


IDEMPOTENCY_HEADER = Header(
    default=None,
    alias="Idempotency-Key",
    max_length=200,
    description="Retrying a command with the same key returns the first answer.",
)
