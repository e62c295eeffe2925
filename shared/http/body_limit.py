"""Request bodies are bounded before anything reads them: 413 over the size, 415 when not JSON."""

from __future__ import annotations

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.http.problems import problem

__all__ = ["MAX_BODY_BYTES", "BodyLimit", "is_json"]

MAX_BODY_BYTES = 256 * 1024


def is_json(content_type: bytes) -> bool:
    """Whether a `Content-Type` value names JSON (`application/json` or `...+json`)."""
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
        if sends_body and content_type is not None and not is_json(content_type):
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
