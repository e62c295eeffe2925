"""The one HTTP pipeline of every service.

Every request passes the same middleware, each written once as pure ASGI, outermost first:
metrics (`shared.http.operations.Observe`), the mapping of errors to problem+json (`Problems`,
with the app's own exception handlers, the table FastAPI's routes use too), the refusal of
encoded slashes (`shared.http.paths`) and the body limits (`shared.http.body_limit`). Then a
command route answers in one step (a `Lane`: every `POST` command of the service), or FastAPI's
router answers (reads, operations, docs). A lane does what FastAPI would for its route, in the
same order and with the same errors (`shared.http.routes`), without the router's scan and the
general dependency solver; a middleware added here reaches both.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.http.body_limit import BodyLimit
from shared.http.operations import Observe, RequestMetrics
from shared.http.paths import RefuseEncodedSlash
from shared.http.problems import problem

__all__ = ["Handle", "Lane", "Problems", "ServiceApp"]

Handle = Callable[[Request], Awaitable[Response]]
"""A command route's answer to a request it owns (raising what FastAPI's route would raise)."""
ExceptionHandlers = Mapping[Any, Callable[[Request, Exception], Any]]


@dataclass(frozen=True)
class Lane:
    """One command route of the pipeline: its FastAPI route (its path, for metrics and
    OpenAPI) and how it answers."""

    route: APIRoute
    handle: Handle

    @property
    def pattern(self) -> re.Pattern[str]:
        return self.route.path_regex


async def problem_for(
    handlers: ExceptionHandlers, error: Exception, request: Request
) -> tuple[Response, Exception | None]:
    """The answer of the nearest handler of `error`'s type, and the error again when it is
    unexpected (only the catch-all `Exception` handler took it, or none did)."""
    for kind in type(error).__mro__:
        handler = handlers.get(kind)
        if handler is not None:
            answered = handler(request, error)
            if inspect.isawaitable(answered):
                answered = await answered
            if isinstance(answered, Response):
                return answered, error if kind is Exception else None
    return problem(500, "An unexpected error occurred."), error


class Problems:
    """Answers an exception raised before a response began with the app's exception handlers
    (problem+json); an unexpected one is raised again afterwards, for the server to log."""

    def __init__(self, app: ASGIApp, handlers: Callable[[], ExceptionHandlers]) -> None:
        self.app = app
        self.handlers = handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as error:
            if started:
                raise
            response, unexpected = await problem_for(
                self.handlers(), error, Request(scope, receive)
            )
            await response(scope, receive, send)
            if unexpected is not None:
                raise


class ServiceApp(FastAPI):
    """A FastAPI app behind the one pipeline (see the module)."""

    def __init__(self, service: str, **settings: Any) -> None:
        super().__init__(**settings)
        self.metrics = RequestMetrics(service)
        self._lanes: list[Lane] = []
        self._pipeline: ASGIApp | None = None

    def add_lane(self, lane: Lane) -> None:
        """Answer `POST lane.route.path` through `lane`."""
        self._lanes.append(lane)
        self._pipeline = None

    def pipeline(self) -> ASGIApp:
        """The middleware every request passes, around the lanes and FastAPI's router."""
        if self._pipeline is None:
            self._pipeline = Observe(
                Problems(
                    RefuseEncodedSlash(BodyLimit(self._route)), lambda: self.exception_handlers
                ),
                self.metrics,
            )
        return self._pipeline

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan (and websockets, of which there are none)
            await super().__call__(scope, receive, send)
            return
        await self.pipeline()(scope, receive, send)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "POST":
            path: str = scope["path"]
            for lane in self._lanes:
                matched = lane.pattern.match(path)
                if matched is not None:
                    scope["app"] = self
                    scope["route"] = lane.route
                    scope["path_params"] = matched.groupdict()
                    response = await lane.handle(Request(scope, receive))
                    await response(scope, receive, send)
                    return
        await super().__call__(scope, receive, send)
