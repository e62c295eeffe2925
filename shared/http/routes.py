"""The one route style of every service: a command is a row of a `CommandRoute` table, and
`add_command_routes` turns the table into `POST` routes.

Each route authenticates the caller, validates the body, scopes the `Idempotency-Key` to the
caller and the path, chooses the ids of what the command creates, and calls the service's
`act`; the service answers a `Reply`, returned with 201. What the routes need of the running
service (its token verifier and idempotency keys) comes through its `Edge`.

Command routes are the hot path, and every one has the same shape, so each is also a `Lane`
of the service's pipeline (`shared.http.pipeline`): the lane answers every request to its route
itself, after the pipeline's middleware, doing what FastAPI would in the order FastAPI does it
(the JSON body parsed, the caller authenticated, path ids, `Idempotency-Key` and body
validated, all errors raised as FastAPI raises them, so they are answered the same) without the
router's scan or the general dependency solver. FastAPI's route is declared too, for OpenAPI.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Protocol

import orjson
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import Field, TypeAdapter, ValidationError

from shared.http.bearer import Bearer
from shared.http.pipeline import Lane, ServiceApp
from shared.http.schemas import CommandAccepted, PathId, RequestBody
from shared.model.envelope import new_id
from shared.model.events import Command
from shared.security.tokens import Principal, TokenVerifier
from shared.usecases.access import recipient_key
from shared.usecases.application import Sent
from shared.usecases.commands import Reply
from shared.usecases.idempotency import IDEMPOTENCY_KEY_MAX_LENGTH, IdempotencyKey, IdempotencyKeys

__all__ = [
    "IDEMPOTENCY_HEADER",
    "CommandRoute",
    "Commands",
    "Edge",
    "add_command_routes",
    "idempotency_for",
]

IDEMPOTENCY_HEADER = Header(
    default=None,
    alias="Idempotency-Key",
    max_length=IDEMPOTENCY_KEY_MAX_LENGTH,
    description="Retrying a command with the same key within the retention (24 hours by "
    "default) returns the first answer; after it, the key is a new request.",
)
_PATH_ID: TypeAdapter[str] = TypeAdapter(PathId)
_KEY: TypeAdapter[str] = TypeAdapter(Annotated[str, Field(max_length=IDEMPOTENCY_KEY_MAX_LENGTH)])


class Endpoint(Protocol):
    """A command route's endpoint, as the gate calls it."""

    async def __call__(
        self,
        principal: Principal,
        idempotency_key: str | None,
        body: RequestBody | None = None,
        **ids: str,
    ) -> Response: ...


@dataclass(frozen=True)
class Edge:
    """What a service's routes need of it once it runs: who a bearer token names, and how an
    `Idempotency-Key` is kept."""

    tokens: Callable[[], TokenVerifier]
    idempotency: Callable[[], IdempotencyKeys]


def idempotency_for(
    keys: IdempotencyKeys, principal: Principal, target: str, value: str | None, request: Any
) -> IdempotencyKey | None:
    """The caller's `Idempotency-Key` for one target (a path without `/v1/`), or None. Its
    scope fits an index row whatever the request: a role, a `sub` of at most 200 characters
    and a route's path of ids of at most 100 ASCII characters each."""
    return keys.of(f"{recipient_key(principal)}:{target}", value, request)


@dataclass(frozen=True)
class CommandRoute:
    """One command of the contract: `POST <path>`.

    The first `{id}` of the path names the stream; other path ids and `new_ids` (ids chosen
    here for the things the command creates, and answered) join the body's fields. Without a
    path id the command creates its stream, named by the first new id (or runs on none).
    """

    path: str
    command: type[Command]
    who: str  # who may send it, in the service's access policy
    body: type[RequestBody] | None = None
    body_optional: bool = False
    new_ids: tuple[str, ...] = ()
    response: type[CommandAccepted] = CommandAccepted

    @property
    def path_ids(self) -> list[str]:
        return re.findall(r"\{(\w+)\}", self.path)

    @property
    def name(self) -> str:
        return self.command.__name__


class Commands(Protocol):
    """A service's application object, as the command routes call it."""

    async def act(self, sent: Sent) -> Reply:
        """Run the command; the reply is `sent.reply` and the stream's version."""
        ...


def add_command_routes(
    app: FastAPI,
    routes: Sequence[CommandRoute],
    *,
    edge: Edge,
    service: Callable[[], Commands],
    tags: Sequence[str | Enum],
) -> None:
    """Attach one `POST` route per row; `service()` runs the command."""
    caller = Bearer(edge.tokens)
    for route in routes:
        _add(app, route, caller, edge.idempotency, service, [*tags])


def _add(
    app: FastAPI,
    route: CommandRoute,
    caller: Bearer,
    idempotency: Callable[[], IdempotencyKeys],
    service: Callable[[], Commands],
    tags: list[str | Enum],
) -> None:
    path_ids = route.path_ids

    async def endpoint(
        principal: Principal,
        idempotency_key: str | None,
        body: RequestBody | None = None,
        **ids: str,
    ) -> Response:
        target = route.path.removeprefix("/v1/").format(**ids)
        new = {name: new_id() for name in route.new_ids}
        fields = {
            **(body.model_dump() if body is not None else {}),
            **{name: ids[name] for name in path_ids[1:]},
            **new,
        }
        stream_id = ids[path_ids[0]] if path_ids else next(iter(new.values()), None)
        key = None
        if idempotency_key is not None:  # the request, as its key's hash covers it
            request = body.model_dump(mode="json") if body is not None else {}
            key = idempotency_for(idempotency(), principal, target, idempotency_key, request)
        reply = await service().act(
            Sent(
                principal,
                stream_id,
                route.command,
                fields,
                route.who,
                key,
                dict(new),
                validated=True,
            )
        )
        # the reply has the route's response model's shape already: sent as it is
        return Response(orjson.dumps(reply), status_code=201, media_type="application/json")

    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [inspect.Parameter(name, keyword, annotation=PathId) for name in path_ids]
    if route.body is not None:
        annotation: Any = route.body | None if route.body_optional else route.body
        default = None if route.body_optional else inspect.Parameter.empty
        parameters.append(
            inspect.Parameter("body", keyword, annotation=annotation, default=default)
        )
    parameters += [
        inspect.Parameter("principal", keyword, annotation=Principal, default=Depends(caller)),
        inspect.Parameter(
            "idempotency_key", keyword, annotation=str | None, default=IDEMPOTENCY_HEADER
        ),
    ]
    endpoint.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    app.router.add_api_route(
        route.path,
        endpoint,
        methods=["POST"],
        status_code=201,
        response_model=route.response,
        tags=tags,
        name=route.name,
        summary=f"{route.name} ({route.who})",
    )
    if isinstance(app, ServiceApp):
        declared = app.router.routes[-1]
        assert isinstance(declared, APIRoute) and declared.path == route.path
        app.add_lane(Lane(declared, _lane(route, endpoint, caller)))


def _parsed(raw: bytes) -> Any:
    """A request body parsed as FastAPI parses it, failing as FastAPI fails (malformed JSON:
    RequestValidationError; any other failure of the parser: 400 from its cause)."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        invalid = {
            "type": "json_invalid",
            "loc": ("body", error.pos),
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": error.msg},
        }
        raise RequestValidationError([invalid], body=error.doc) from error
    except Exception as error:
        raise HTTPException(
            status_code=400, detail="There was an error parsing the body"
        ) from error


def _errors(error: ValidationError, *where: str | int) -> list[dict[str, Any]]:
    return [{**item, "loc": (*where, *item["loc"])} for item in error.errors(include_url=False)]


def _lane(route: CommandRoute, endpoint: Endpoint, caller: Bearer) -> Callable[..., Any]:
    """A command route's lane: FastAPI's steps for this route, in FastAPI's order, answered by
    the endpoint (`shared.http.pipeline`)."""
    path_ids = route.path_ids
    body_model: TypeAdapter[Any] | None = None
    if route.body is not None:
        declared: Any = route.body | None if route.body_optional else route.body
        body_model = TypeAdapter(declared)

    async def handle(request: Request) -> Response:
        raw = await request.body()
        sent = _parsed(raw) if raw and body_model is not None else None
        principal = caller.principal(request)
        errors: list[dict[str, Any]] = []
        ids: dict[str, str] = {}
        for name in path_ids:
            try:
                ids[name] = _PATH_ID.validate_python(request.path_params[name])
            except ValidationError as error:
                errors += _errors(error, "path", name)
        key = request.headers.get("idempotency-key")
        if key is not None:
            try:
                _KEY.validate_python(key)
            except ValidationError as error:
                errors += _errors(error, "header", "Idempotency-Key")
        body = None
        if body_model is not None:
            if not raw and not route.body_optional:
                errors.append(
                    {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}
                )
            elif raw:
                try:
                    body = body_model.validate_python(sent)
                except ValidationError as error:
                    errors += _errors(error, "body")
        if errors:
            raise RequestValidationError(errors, body=sent)
        return await endpoint(principal, key, body, **ids)

    return handle
