"""Bounds on what one client can make a service's HTTP server hold: the size of a request's
head, its number of headers, the time it takes to arrive, and the connections open at once.

uvicorn's httptools protocol (the fast parser of `uvicorn[standard]`) sets none of these: it
buffers a header of any size and any number of headers, and waits forever for a head that
never ends. `BoundedHttpTools` is that protocol with the bounds, counted as the parser reads:

- A request's line and headers may take `max_head_bytes`. The parser's callbacks count the URL
  and each header as it is handed over (the exact size of what was read), and, while a head
  is not complete yet, the bytes received for it are counted too: the parser buffers a header
  until it ends, so this bounds what a header still arriving holds. Past it: 431.
- At most `max_headers` headers: 431.
- A head must be complete within `head_timeout` seconds of its first byte, or of the opening of
  the connection, and its body within `body_timeout` seconds of the head: otherwise 408 (if
  part of a request came and no answer has begun) and the connection is closed.
- At most `max_connections` connections per process: one more is closed as soon as it is
  accepted (before it sent anything, so with no answer), as a full accept queue would.

Each refusal is problem+json with `Connection: close`, written by the protocol before any of
the request reaches the app. An idle kept-alive connection is closed after uvicorn's
`timeout_keep_alive`. A connection so holds at most a head's bytes and one read, and a body
(bounded by `shared.http.body_limit`), for at most the two timeouts.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import Any, cast

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.server import ServerState

from shared.http.problems import problem

__all__ = ["BoundedHttpTools", "HttpLimits", "serving_options"]


@dataclass(frozen=True)
class HttpLimits:
    """The bounds of one server (see the module); the defaults are the settings' defaults
    (`shared.runtime.config`)."""

    max_head_bytes: int = 32 * 1024
    max_headers: int = 100
    head_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive: int = 5
    max_connections: int = 1000


@dataclass(frozen=True)
class _Refusal:
    status: int
    detail: str


class _Refused(Exception):
    """Raised in a parser callback to stop the parser at once (uvicorn then answers the
    parser's error, `send_400_response`, with the refusal)."""


class BoundedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol within `HttpLimits` (see the module)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: HttpLimits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self._refusal: _Refusal | None = None
        self._reading_head = True  # from a request's end (or the start) to its headers' end
        self._head_begun = False  # some of the head being read came
        self._head_received = 0  # bytes received for the head being read (while incomplete)
        self._head_size = 0  # of the headers the parser handed over
        self._header_count = 0
        self._ended_in_feed = False  # a request ended in the bytes being parsed
        self._deadline: asyncio.TimerHandle | None = None

    # the connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            transport.close()
            return
        self._arm(self.limits.head_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._reading_head and self._deadline is None:
            self._arm(self.limits.head_timeout)
        self._ended_in_feed = False
        super().data_received(data)
        if not self._reading_head or self.transport.is_closing():
            return
        # The head is still incomplete: all of these bytes are its own, unless a request
        # ended among them (pipelined requests), whose rest is not counted.
        if not self._ended_in_feed:
            self._head_received += len(data)
        if self._head_received > self.limits.max_head_bytes:
            self._refuse(self._too_large())

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request the parser failed on: a head refused by a callback
        here is answered with its refusal instead."""
        refusal, self._refusal = self._refusal, None
        if refusal is None:
            super().send_400_response(msg)
        else:
            self._refuse(refusal)

    # the parser's callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_begun = True
        self._head_size = self._header_count = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4  # `: ` and CRLF
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            self._stop(
                _Refusal(
                    431,
                    f"The request has more than {self.limits.max_headers} headers.",
                )
            )
        if len(self.url) + self._head_size > self.limits.max_head_bytes:
            self._stop(self._too_large())
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if len(self.url) + self._head_size > self.limits.max_head_bytes:
            self._stop(self._too_large())
        self._reading_head = self._head_begun = False
        self._arm(self.limits.body_timeout)  # until the body ends (at once, without a body)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()
        self._reading_head, self._ended_in_feed = True, True
        self._head_received = 0

    # refusals and the deadline

    def _too_large(self) -> _Refusal:
        return _Refusal(
            431,
            f"The request's line and headers take more than {self.limits.max_head_bytes} bytes.",
        )

    def _stop(self, refusal: _Refusal) -> None:
        self._refusal = refusal
        raise _Refused(refusal.detail)

    def _refuse(self, refusal: _Refusal) -> None:
        """Answer `refusal` in problem+json and close the connection."""
        self._disarm()
        answer = problem(refusal.status, refusal.detail, headers={"Connection": "close"})
        content = [STATUS_LINE[refusal.status]]
        for name, value in [*self.server_state.default_headers, *answer.raw_headers]:
            content += [name, b": ", value, b"\r\n"]
        content += [b"\r\n", bytes(answer.body)]
        self.transport.write(b"".join(content))
        self.transport.close()

    def _arm(self, timeout: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(timeout, self._timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        """A head or a body did not arrive in time: 408 and close, unless an answer already
        began (then close once it is sent, or at once if it was)."""
        self._deadline = None
        cycle: RequestResponseCycle | None = self.cycle
        if self.transport.is_closing():
            return
        if not self._reading_head and cycle is not None and cycle.response_started:
            if cycle.response_complete:
                self.transport.close()
            else:
                cycle.keep_alive = False
        elif self._reading_head and cycle is not None and not cycle.response_complete:
            cycle.keep_alive = False  # the next head is late; the answer before it is not
        elif self._reading_head and not self._head_begun:
            self.transport.close()  # nothing came: nothing to answer
        else:
            part = "line and headers" if self._reading_head else "body"
            timeout = self.limits.head_timeout if self._reading_head else self.limits.body_timeout
            self._refuse(
                _Refusal(
                    408,
                    f"The request's {part} did not arrive within {timeout:g} s.",
                )
            )


def serving_options(limits: HttpLimits) -> dict[str, Any]:
    """uvicorn's settings for a server within `limits`."""
    # uvicorn calls the protocol class with its config, server state and app state only.
    protocol = functools.partial(BoundedHttpTools, limits=limits)
    return {
        "http": cast("type[asyncio.Protocol]", protocol),
        "timeout_keep_alive": limits.keep_alive,
    }
