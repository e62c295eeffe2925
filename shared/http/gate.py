"""The command gate: a service's ASGI app answers a command request that is in order in one
step, and hands every other request to FastAPI's full stack.

A command is the hot path of every service and each has the same shape (`POST`, a bearer
token, a JSON body, at most `MAX_BODY_BYTES`). Starlette's middleware stack, the router's
scan and FastAPI's dependency solver cost more than the command itself, so `ServiceApp`
matches command paths first and gives a request with a declared JSON body within the limit,
and no header repeated, to its `Lane` (a lane reads each header once; FastAPI's path decides
about repeated ones, `Authorization` above all: `shared.http.bearer`). The lane answers, or
declines (no valid token, a body its model refuses, ...) and the request goes through
FastAPI as if the gate were not there, with the body it sent.
Errors raised while answering go to the app's own exception handlers (problem+json), and
requests are counted and timed in the same metrics as every other request.
"""

from __future__ import annotations

import inspect
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import Message, Receive, Scope, Send

from shared.http.body_limit import MAX_BODY_BYTES, is_json
from shared.http.operations import RequestMetrics
from shared.http.paths import ENCODED_SLASH, has_encoded_slash
from shared.http.problems import problem

__all__ = ["Answer", "Headers", "Lane", "ServiceApp"]

Headers = dict[bytes, bytes]
# A command route's answer to a request: None declines it (FastAPI answers instead).
Answer = Callable[[Headers, dict[str, str], bytes], Awaitable[Response | None]]


@dataclass(frozen=True)
class Lane:
    """One command route in the gate: its path template and its answer."""

    path: str
    answer: Answer

    @property
    def pattern(self) -> re.Pattern[str]:
        return compile_path(self.path)[0]


class ServiceApp(FastAPI):
    """A FastAPI app with a command gate in front of its middleware stack (see the module)."""

    def __init__(self, service: str, **settings: Any) -> None:
        super().__init__(**settings)
        self.metrics = RequestMetrics(service)
        self._lanes: list[tuple[re.Pattern[str], Lane]] = []

    def add_lane(self, lane: Lane) -> None:
        """Answer `POST lane.path` through `lane` when the request is in order."""
        self._lanes.append((lane.pattern, lane))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and has_encoded_slash(scope):
            await problem(404, ENCODED_SLASH)(scope, receive, send)
            return
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            for pattern, lane in self._lanes:
                matched = pattern.match(path)
                if matched is not None:
                    await self._through(lane, matched.groupdict(), scope, receive, send)
                    return
        await super().__call__(scope, receive, send)

    async def _through(
        self, lane: Lane, ids: dict[str, str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        started = time.perf_counter()
        scope["app"] = self
        headers: Headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"")
        content_type = headers.get(b"content-type")
        if (
            len(headers) != len(scope["headers"])  # a repeated header: FastAPI reads them all
            or not declared.isdigit()
            or int(declared) > MAX_BODY_BYTES
            or content_type is None
            or not is_json(content_type)
        ):
            await super().__call__(scope, receive, send)
            return
        body, more = await _read(receive, MAX_BODY_BYTES)
        if more is not None:  # over the limit, or the client left: as FastAPI would answer
            await super().__call__(scope, _replaying(body, more, receive), send)
            return
        unexpected: Exception | None = None
        try:
            response = await lane.answer(headers, ids, body)
        except Exception as error:
            response, unexpected = await self._problem(error, scope, receive)
        if response is None:
            await super().__call__(scope, _replaying(body, None, receive), send)
            return
        await response(scope, receive, send)
        self.metrics.observe("POST", lane.path, response.status_code, started)
        if unexpected is not None:
            raise unexpected  # as Starlette does after its 500, for the server to log

    async def _problem(
        self, error: Exception, scope: Scope, receive: Receive
    ) -> tuple[Response, Exception | None]:
        """The app's own exception handler's answer to `error` (the nearest type's), and the
        error again when it is unexpected (only the catch-all `Exception` handler took it)."""
        for kind in type(error).__mro__:
            handler = self.exception_handlers.get(kind)
            if handler is not None:
                answered = handler(Request(scope, receive), error)
                if inspect.isawaitable(answered):
                    answered = await answered
                if isinstance(answered, Response):
                    return answered, error if kind is Exception else None
        answer = problem(500, "An unexpected error occurred.")
        return answer, error


async def _read(receive: Receive, limit: int) -> tuple[bytes, Message | None]:
    """The request body, up to `limit` bytes; with the message that stopped the reading early
    (one past the limit, or a disconnect), if any."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), message
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"".join(chunks), message
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), None


def _replaying(body: bytes, pending: Message | None, receive: Receive) -> Receive:
    """`receive` as if nothing had been read of it: the body read so far, then the message
    that stopped the reading, then the rest."""
    queue: list[Message] = [
        {"type": "http.request", "body": body, "more_body": pending is not None}
    ]
    if pending is not None:
        queue.append(pending)

    async def replay() -> Message:
        return queue.pop(0) if queue else await receive()

    return replay
